/**
 * The review of the thirteenth fresh-eyes passes' merged changes (2026-12-07, h12,
 * docs/security-passes.md "review of the merged changes (h12)"), black box. granted-thirteenth ended
 * the tokens a client got at a configured API without naming a scope once a change of the API's
 * scopes left the client no leave to call it (resource-servers.ts). The same leave is lost by a
 * change of the client's grant, which ended such tokens only when the grant was left with no scope
 * at all: not when it was left with scopes the API no longer offers, nor when it came to only make
 * the client serve as an API without scopes.
 */
import assert from 'node:assert/strict';
import { serverRestarts } from '../helpers/restarts.js';
import { basic, introspect, machineClient, type ClientCredentials } from '../helpers/tokens.js';

/** A configured API whose `write` the operator takes out, keeping `read`. */
const NOTES = 'https://notes.merged-review.example.test';
/** A configured API without scopes: reached by a grant alone, but for one that only makes a client serve as it. */
const BARE = 'https://bare.merged-review.example.test';
/** Serves as both APIs: introspects their tokens. */
const API: ClientCredentials = { id: 'merged-review-api', secret: 'merged-review-api-secret-with-plenty-of-entropy-0123456789' };
/** Granted at both APIs at runtime (`latchkey apis grant`), in the store. */
const MACHINE: ClientCredentials = { id: 'merged-review-machine', secret: 'merged-review-machine-secret-with-plenty-of-entropy-0123456789' };

/** client_credentials at `resource` naming no scope: the token, or the error. */
async function ownToken(url: string, client: ClientCredentials, resource: string): Promise<{ status: number; token?: string; error?: string }> {
  const response = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource }),
  });
  const body = (await response.json()) as { access_token?: string; error?: string };
  return { status: response.status, token: body.access_token, error: body.error };
}

describe('e2e: review of the thirteenth passes, a grant change that leaves a client no leave to call an API', function () {
  this.timeout(60_000);
  const restarts = serverRestarts('test');
  const settings = (notes: string[]) => ({
    env: {
      RESOURCE_SERVERS: JSON.stringify([
        { identifier: NOTES, scopes: notes, format: 'opaque', grants: [{ client_id: API.id, introspect: true }] },
        { identifier: BARE, scopes: [], format: 'opaque', grants: [{ client_id: API.id, introspect: true }] },
      ]),
    },
    clients: [machineClient(API), machineClient(MACHINE)],
  });

  it("ends the tokens it got there without naming a scope when its last scope the API offers is revoked, or its grant comes to only serve as the API", async () => {
    const before = await restarts.start(settings(['read', 'write']));
    await before.apis.grant(MACHINE.id, NOTES, { scopes: ['read', 'write'] });
    await before.apis.grant(MACHINE.id, BARE, { scopes: [] });
    // The operator takes `write` out of NOTES and restarts: the client's stored grant keeps it, and `read` lets it call NOTES.
    const server = await restarts.start(settings(['read']));
    const notes = await ownToken(server.url, MACHINE, NOTES);
    const bare = await ownToken(server.url, MACHINE, BARE);
    for (const got of [notes, bare]) assert.equal(got.status, 200, got.error);

    // `latchkey apis revoke --scope read` leaves `write`, which NOTES no longer offers; `apis grant
    // --introspect` at BARE makes the client one that only serves as it.
    await server.apis.revoke(MACHINE.id, NOTES, ['read']);
    await server.apis.grant(MACHINE.id, BARE, { scopes: [], introspect: true });
    // What the client may get now: nothing at either (resource-servers.ts).
    assert.equal((await ownToken(server.url, MACHINE, NOTES)).error, 'invalid_scope');
    assert.equal((await ownToken(server.url, MACHINE, BARE)).error, 'invalid_scope');
    // And what it got before is no more leave to call them.
    assert.equal((await introspect(server.url, API, notes.token!)).active, false, 'left with only a scope the API no longer offers');
    assert.equal((await introspect(server.url, API, bare.token!)).active, false, 'left only serving as an API without scopes');
  });
});
