/**
 * The thirteenth fresh-eyes pass at "more than was granted" (2026-12-07, docs/security-passes.md,
 * "more than was granted, thirteenth pass"), black box. Found and fixed here: a scope taken out of a
 * configured API across a restart, leaving a client's operator grant there with none of the API's
 * scopes, left the tokens that client got there without naming a scope good (introspection and the
 * feed), where its new ones are refused as "no leave to call it" (resource-servers.ts), as an
 * operator's narrowing of the grant to none of them ends them whole (apis.ts #endTaken); and so for an
 * API given its first scopes, which a grant holding none of them reached before.
 */
import assert from 'node:assert/strict';
import { createResourceServer } from '../../src/resource-server/index.js';
import { serverRestarts } from '../helpers/restarts.js';
import { acceptedBy, basic, grantFeed, introspect, machineClient, type ClientCredentials } from '../helpers/tokens.js';

/** A JWT API whose `read` the operator takes out, keeping `write`. */
const NOTES = 'https://notes.thirteenth.example.test';
/** An opaque API, the same change. */
const LEDGER = 'https://ledger.thirteenth.example.test';
/** An opaque API whose only scope the operator takes out: then reached by a grant alone, but for one that only makes a client serve as it. */
const BARE = 'https://bare.thirteenth.example.test';
/** An opaque API with no scopes (reached by a grant alone) given its first, `read`. */
const GROWN = 'https://grown.thirteenth.example.test';
/** Serves as the four APIs: introspects their tokens, follows the feed for NOTES. */
const API: ClientCredentials = { id: 'thirteenth-api', secret: 'thirteenth-api-secret-with-plenty-of-entropy-0123456789' };
/** Granted `read` at both APIs at runtime (`latchkey apis grant`), in the store. */
const MACHINE: ClientCredentials = { id: 'thirteenth-machine', secret: 'thirteenth-machine-secret-with-plenty-of-entropy-0123456789' };
/** Granted `read` at BARE and serves as it (introspection): no leave to call it once it has no scopes. */
const SERVING: ClientCredentials = { id: 'thirteenth-serving', secret: 'thirteenth-serving-secret-with-plenty-of-entropy-0123456789' };
/** Granted `read write` at NOTES: keeps `write` there, the control. */
const OTHER: ClientCredentials = { id: 'thirteenth-other', secret: 'thirteenth-other-secret-with-plenty-of-entropy-0123456789' };

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

describe('e2e: thirteenth fresh-eyes pass, more than was granted', function () {
  this.timeout(60_000);

  describe("a scope taken out of a configured API, leaving a client's grant there with none of its scopes", () => {
    const restarts = serverRestarts('test');
    const settings = (scopes: string[], bare: string[], grown: string[]) => ({
      env: {
        RESOURCE_SERVERS: JSON.stringify([
          { identifier: NOTES, scopes, format: 'jwt', grants: [{ client_id: API.id, introspect: true }] },
          { identifier: LEDGER, scopes, format: 'opaque', grants: [{ client_id: API.id, introspect: true }] },
          { identifier: BARE, scopes: bare, format: 'opaque', grants: [{ client_id: API.id, introspect: true }] },
          { identifier: GROWN, scopes: grown, format: 'opaque', grants: [{ client_id: API.id, introspect: true }] },
        ]),
      },
      clients: [machineClient(API), machineClient(MACHINE), machineClient(OTHER), machineClient(SERVING)],
    });

    it('ends the tokens the client got there without naming a scope, at introspection and on the feed, as its new ones are refused; a client still allowed to call the API keeps its own', async () => {
      const server = await restarts.start(settings(['read', 'write'], ['read'], []));
      await grantFeed(server, API.id);
      await server.apis.grant(MACHINE.id, NOTES, { scopes: ['read'] });
      await server.apis.grant(MACHINE.id, LEDGER, { scopes: ['read'] });
      await server.apis.grant(OTHER.id, NOTES, { scopes: ['read', 'write'] });
      await server.apis.grant(SERVING.id, BARE, { scopes: ['read'], introspect: true });
      await server.apis.grant(MACHINE.id, BARE, { scopes: ['read'] });
      await server.apis.grant(MACHINE.id, GROWN, { scopes: [] });
      const jwt = await ownToken(server.url, MACHINE, NOTES);
      const opaque = await ownToken(server.url, MACHINE, LEDGER);
      const kept = await ownToken(server.url, OTHER, NOTES);
      const serving = await ownToken(server.url, SERVING, BARE);
      const bareKept = await ownToken(server.url, MACHINE, BARE);
      const grown = await ownToken(server.url, MACHINE, GROWN);
      for (const got of [jwt, opaque, kept, serving, bareKept, grown]) assert.equal(got.status, 200, got.error);

      // The operator takes `read` out of NOTES and LEDGER (`write` stays) and out of BARE (none stays),
      // gives GROWN its first scope, `read`, and restarts.
      const narrowed = await restarts.start(settings(['write'], [], ['read']));
      // What the client may get now: nothing (it holds none of the APIs' scopes), as resource-servers.ts says.
      assert.equal((await ownToken(narrowed.url, MACHINE, NOTES)).error, 'invalid_scope');
      assert.equal((await ownToken(narrowed.url, MACHINE, LEDGER)).error, 'invalid_scope');
      assert.equal((await ownToken(narrowed.url, SERVING, BARE)).error, 'invalid_scope');
      assert.equal((await ownToken(narrowed.url, MACHINE, GROWN)).error, 'invalid_scope');
      // And what it got before, without naming a scope, is no more leave to call them.
      assert.equal((await introspect(narrowed.url, API, jwt.token!)).active, false, "the client's JWT at introspection");
      assert.equal((await introspect(narrowed.url, API, opaque.token!)).active, false, "the client's opaque token at introspection");
      assert.equal((await introspect(narrowed.url, API, serving.token!)).active, false, 'the token of a client that only serves as an API left with no scopes');
      assert.equal((await introspect(narrowed.url, API, grown.token!)).active, false, 'the token a grant alone got at an API given scopes since');
      // An API left with no scopes is reached by a grant alone: a client granted more than serving as it keeps its token.
      assert.equal((await ownToken(narrowed.url, MACHINE, BARE)).status, 200);
      assert.equal((await introspect(narrowed.url, API, bareKept.token!)).active, true);
      const helper = await createResourceServer({ issuer: narrowed.issuer, audience: NOTES, clientId: API.id, clientSecret: API.secret });
      try {
        assert.equal(await acceptedBy(helper, jwt.token!), false, 'an API verifying locally (the feed)');
        // A client that still holds `write` there keeps the token it got without naming a scope.
        assert.equal(await acceptedBy(helper, kept.token!), true);
        assert.equal((await introspect(narrowed.url, API, kept.token!)).active, true);
      } finally {
        helper.close();
      }
    });
  });
});
