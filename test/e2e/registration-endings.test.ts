/**
 * An RFC 7592 update in flight when an operator changes its client (or rotates its secret) does not
 * undo the change: the engine read the client as it checked the registration access token and wrote
 * it back after, so an update whose write landed after the operator's (which ends every
 * registration access token of the client, precisely so that the client cannot put back what the
 * operator took) put the old metadata back. Here instance A reaches Redis through a relay that holds
 * the update at its client write while the operator's CLI acts directly.
 */
import assert from 'node:assert/strict';
import { latchkey } from '../helpers/process.js';
import { scriptOn, startRelayedServer, type Held, type RelayedServer, type Relay } from '../helpers/relay.js';
import type { TestServer } from '../helpers/server.js';
import { basic, clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const REDIRECT = 'https://dev.example.test/callback';
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };

describe('e2e: an RFC 7592 update in flight does not undo an operator\'s change', function () {
  this.timeout(60_000);
  let relay: Relay;
  let server: TestServer;
  let env: Record<string, string>;
  let relayed: RelayedServer;

  before(async () => {
    relayed = await startRelayedServer({ REGISTRATION_OPEN: 'true', CLIENTS: JSON.stringify([machineClient(OPS)]) });
    ({ relay, server, env } = relayed);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
  });
  /** `request`, held at its write of client `clientId` (the adapter's script), once it is held there. */
  const heldAtClientWrite = <T>(clientId: string, request: () => Promise<T>) => relay.hold(scriptOn(`oidc:Client:${clientId}`), request);
  /** The client's own RFC 7592 update, once it is held at its write of the client (it has read the client and checked its token). */
  const updateHeldAtItsWrite = (clientId: string, token: string, uri: string): Promise<Held<Response>> =>
    heldAtClientWrite(clientId, () =>
      fetch(uri, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: clientId, redirect_uris: [REDIRECT] }),
      }),
    );
  after(() => relayed?.stop());

  it("an operator's change (latchkey clients update --require-mfa) made while the client's own update is in flight stays made; the update gets 401 and no new token", async () => {
    const registered = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT] }) });
    assert.equal(registered.status, 201);
    const { client_id: clientId, registration_access_token: token, registration_client_uri: uri } = (await registered.json()) as Record<string, string>;

    // The client's update, held at its write of the client (it has read the client and checked its token).
    const held = await updateHeldAtItsWrite(clientId!, token!, uri!);
    const changed = await latchkey(env, ['clients', 'update', clientId!, '--require-mfa']);
    assert.equal(changed.status, 0, changed.stderr);

    const answered = await held.release();
    const body = (await answered.json()) as { error?: string; registration_access_token?: string };
    const stored = JSON.parse((await server.kv.getRecord(`oidc:Client:${clientId}`))!.payload) as { require_mfa?: boolean };
    assert.equal(stored.require_mfa, true, "the operator's change was undone by the client's update that was in flight");
    assert.equal(answered.status, 401, JSON.stringify(body));
    assert.equal(body.error, 'invalid_token');
    assert.equal(body.registration_access_token, undefined, 'no new registration access token');
    assert.equal((await fetch(uri!, { headers: { authorization: `Bearer ${token}` } })).status, 401, 'the token stays ended');
  });

  it("a secret rotated because it leaked stays rotated when an operator's change of the client was in flight (read before, written after): the change is refused, never the leaked secret written back", async () => {
    const registered = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT] }) });
    const { client_id: clientId, client_secret: leaked } = (await registered.json()) as Record<string, string>;
    const authenticates = async (secret: string) =>
      (await fetch(`${server.url}/token/introspection`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: clientId!, secret }) },
        body: new URLSearchParams({ token: 'anything' }),
      })).status !== 401;
    assert.equal(await authenticates(leaked!), true);

    // The operator's CLI (through the relay) changes the client: held at its write, having read it.
    const held = await heldAtClientWrite(clientId!, () => latchkey(relayed.relayedEnv, ['clients', 'update', clientId!, '--require-par']));
    // Meanwhile the secret is rotated without grace (it leaked).
    const admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const rotation = await fetch(`${server.url}/admin/clients/${encodeURIComponent(clientId!)}/secret`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ previous_secret_valid_for: 0 }),
    });
    assert.equal(rotation.status, 200);
    const { client_secret: fresh } = (await rotation.json()) as { client_secret: string };

    const changed = await held.release();
    assert.equal(await authenticates(leaked!), false, "the leaked secret works again: the operator's change in flight wrote it back");
    assert.equal(await authenticates(fresh), true);
    assert.equal(changed.status, 1, changed.stdout);
    assert.match(changed.stderr, /changed \(or removed\) meanwhile: nothing was written; try again/);
  });

  it('a client deleted (latchkey clients remove) while its own update is in flight stays deleted: the update does not write it back', async () => {
    const registered = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT] }) });
    const { client_id: clientId, client_secret: secret, registration_access_token: token, registration_client_uri: uri } = (await registered.json()) as Record<string, string>;
    const held = await updateHeldAtItsWrite(clientId!, token!, uri!);
    const removed = await latchkey(env, ['clients', 'remove', clientId!]);
    assert.equal(removed.status, 0, removed.stderr);
    const answered = await held.release();
    assert.equal(await server.kv.getRecord(`oidc:Client:${clientId}`), undefined, 'the update in flight wrote the deleted client back');
    assert.equal(answered.status, 401);
    const authenticated = await fetch(`${server.url}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: clientId!, secret: secret! }) },
      body: new URLSearchParams({ token: 'anything' }),
    });
    assert.equal(authenticated.status, 401, 'the deleted client does not authenticate');
  });
});
