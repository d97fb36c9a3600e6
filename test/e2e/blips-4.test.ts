/**
 * The fourth blips pass (2026-12-04), black box: a multi-write operation with Redis paused (past
 * REDIS_COMMAND_TIMEOUT, the write and what follows run once it resumes, after the answer) at a
 * chosen write. The house rule: a 503 means not done (and done when asked again) or done whole,
 * never half. RFC 7591 registration paused at its registration access token's save answered 503
 * with its client made (fixed: the token is saved first, the client last and bounded); an RFC 7592
 * update paused at its new registration access token's save answered 503 with the presented token
 * spent and the new one shown to nobody (fixed: the presented token is taken last); an RFC 7592
 * deletion cut off before its record went left no token to delete it with (fixed); a secret rotation
 * with a grace paused at the client's write stopped the old secret at once (fixed).
 */
import assert from 'node:assert/strict';
import { eventually, pastOutages } from '../helpers/eventually.js';
import { BLIP_COMMAND_TIMEOUT, commandsIn, scriptOn, startRelayedServer, type Relay, type RelayedServer } from '../helpers/relay.js';
import { initialAccessToken } from '../helpers/operator.js';
import { register as registerWith, readRegistration, registeredWithUpdate, type Registered } from '../helpers/registration.js';
import { type TestServer } from '../helpers/server.js';
import { basic, clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };


describe('e2e: fourth blips pass: a multi-write operation with Redis paused (or the connection cut) at a write', function () {
  this.timeout(60_000);
  let relayed: RelayedServer;
  let relay: Relay;
  let server: TestServer;
  let admin: string;

  before(async () => {
    // A command waits half a second: a Redis paused longer is an outage (503).
    relayed = await startRelayedServer({}, { commandTimeout: BLIP_COMMAND_TIMEOUT, clients: [machineClient(OPS)] });
    ({ relay, server } = relayed);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
  });
  after(() => relayed?.stop());

  /** `request`, its first script on a key holding `key` reaching a paused Redis, which runs it once resumed, after the answer. */
  const pausedAt = <T>(key: string, request: () => Promise<T>): Promise<T> => relayed.pausedAt(scriptOn(key), request);

  const listed = async () => {
    const response = await fetch(`${server.url}/admin/clients`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(response.status, 200);
    return ((await response.json()) as { client_id: string }[]).map((client) => client.client_id).filter((id) => id !== OPS.id);
  };

  const register = (iat: string, name: string) => registerWith(server, iat, name);

  /** What the registration endpoint says of the client its token manages: the status, and the redirect URIs. */
  const read = readRegistration;

  it('an RFC 7591 registration answered 503 at its registration access token’s save made no client: registered again, one client, managed by the token shown (before the fix: two, the first with a secret and token nobody was shown)', async () => {
    const before = await listed();
    const iat = await initialAccessToken(server);
    const blip = await pausedAt('oidc:RegistrationAccessToken:', register(iat, 'tokenfirst'));
    assert.equal(blip.status, 503);
    assert.ok(blip.headers.get('retry-after'));
    // Before the fix: the client was there, written before the token's save timed out.
    assert.deepEqual(await listed(), before, 'a registration answered 503 made no client');
    const again = await register(iat, 'tokenfirst')();
    assert.equal(again.status, 201);
    const made = (await again.json()) as Registered;
    assert.deepEqual(await listed(), [...before, made.client_id].sort(), 'one client, the one the developer was shown');
    assert.equal((await read(made)).status, 200, 'managed by the token shown');
  });
  /** A client registered (the retry of a 503 aside) and the update that changes its redirect URI, with the token it presents. */
  const registered = (name: string) => registeredWithUpdate(server, name);

  /** Sent again with the token presented before: done, the successor shown works, the presented token and only it ended. */
  async function sentAgainDone(made: Registered, update: (token: string) => () => Promise<Response>, name: string): Promise<void> {
    const again = await update(made.registration_access_token)();
    assert.equal(again.status, 200, 'sent again with the token presented before, the update is done');
    const successor = ((await again.json()) as Registered).registration_access_token;
    assert.notEqual(successor, made.registration_access_token);
    assert.deepEqual(await read(made, successor), { status: 200, redirect_uris: [`https://${name}.example.test/moved`] }, 'the successor shown manages the client, updated');
    assert.equal((await read(made)).status, 401, 'the token presented is ended');
  }

  it('an RFC 7592 update answered 503 at its new registration access token’s save left the token presented working: sent again, done, its successor shown (before the fix: the presented token spent, the successor shown to nobody, the client unmanageable)', async () => {
    const { made, update } = await registered('rotated');
    // The successor's save names the client in its payload; the presented token's take does not.
    const blip = await relayed.pausedAt((chunk) => scriptOn('oidc:RegistrationAccessToken:')(chunk) && chunk.includes(made.client_id), update(made.registration_access_token));
    assert.equal(blip.status, 503);
    assert.ok(blip.headers.get('retry-after'));
    // Before the fix: 401, the presented token taken before the successor's save timed out.
    assert.equal((await read(made)).status, 200, 'an update answered 503 left the token presented working');
    await sentAgainDone(made, update, 'rotated');
  });

  it('an RFC 7592 update answered 503 at the take of the token presented (its last write) left that token working: sent again, done (held)', async () => {
    const { made, update } = await registered('taken');
    const blip = await relayed.pausedAt((chunk) => scriptOn('oidc:RegistrationAccessToken:')(chunk) && !chunk.includes(made.client_id), update(made.registration_access_token));
    assert.equal(blip.status, 503);
    assert.equal((await read(made)).status, 200, 'an update answered 503 left the token presented working');
    await sentAgainDone(made, update, 'taken');
  });
  it('an RFC 7592 deletion cut off as its client’s record was deleted (the deletion dropped), its tokens ended before: said not done, the token presented still deletes it (before the fix: the client left, and no token to delete it with)', async () => {
    const { made } = await registered('deleted');
    const remove = () => fetch(made.registration_client_uri, { method: 'DELETE', headers: { authorization: `Bearer ${made.registration_access_token}` } });
    // Every connection cut at the deletion of the client's record, which is dropped (not run).
    const deletesTheClient = (chunk: string) => commandsIn(chunk).some(([name = '', ...keys]) => /^(del|unlink)$/i.test(name) && keys.some((key) => key.endsWith(`oidc:Client:${made.client_id}`)));
    const cut = relay.cut(deletesTheClient, { answered: false });
    const first = await remove();
    relay.release();
    // (A deletion that answered without reaching the write cut nothing: the trigger named the wrong traffic.)
    assert.ok(await cut, `answered ${first.status} without the cut`);
    assert.equal(first.status, 503);
    await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
    assert.ok((await listed()).includes(made.client_id), 'said not done, the client is there');
    // Sent again: the token presented still deletes the client (before the fix: 401, the client left).
    const again = await pastOutages(remove);
    assert.equal(again.status, 204, `a deletion said not done, sent again, answered ${again.status}`);
    assert.ok(!(await listed()).includes(made.client_id), 'the client is gone');
    assert.equal((await read(made)).status, 401);
  });

  it('a secret rotation with a grace answered 503 at the client’s write (run once Redis resumed) left the old secret working for its grace (before the fix: the grace deleted as the rotation failed, the old secret stopped at once, the new one shown to nobody)', async () => {
    const made = await fetch(`${server.url}/admin/clients`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ client_name: 'Rotated', redirect_uris: ['https://rotated.example.test/callback'] }) });
    assert.equal(made.status, 201);
    const app = (await made.json()) as { client_id: string; client_secret: string };
    // The client has no client_credentials grant: its secret authenticates (400 unauthorized_client) or not (401).
    const authenticates = async (secret: string) => {
      const response = await pastOutages(() => fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: app.client_id, secret }) }, body: 'grant_type=client_credentials' }));
      assert.ok(response.status === 400 || response.status === 401, `answered ${response.status}`);
      return response.status === 400;
    };
    assert.equal(await authenticates(app.client_secret), true);
    const rotate = () => fetch(`${server.url}/admin/clients/${app.client_id}/secret`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ previous_secret_valid_for: 3600 }) });
    const blip = await pausedAt(`oidc:Client:${app.client_id}`, rotate);
    assert.equal(blip.status, 503);
    // Before the fix: 401, the grace's record deleted as the rotation failed, and its write run after.
    assert.equal(await authenticates(app.client_secret), true, 'a rotation with a grace answered 503 left the old secret working');
  });
});
