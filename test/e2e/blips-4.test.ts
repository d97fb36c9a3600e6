/**
 * The fourth blips pass (2026-12-04), black box: a multi-write operation with Redis paused (past
 * REDIS_COMMAND_TIMEOUT, the write and what follows run once it resumes, after the answer) at a
 * chosen write. The house rule: a 503 means not done (and done when asked again) or done whole,
 * never half. RFC 7591 registration paused at its registration access token's save answered 503
 * with its client made (fixed: the token is saved first, the client last and bounded); an RFC 7592
 * update paused at its new registration access token's save answered 503 with the presented token
 * spent and the new one shown to nobody (fixed: the presented token is taken last).
 */
import assert from 'node:assert/strict';
import { type RedisServer } from '../helpers/redis.js';
import { scriptOn, startRelayedServer, type Relay, type RelayedServer } from '../helpers/relay.js';
import { initialAccessToken } from '../helpers/operator.js';
import { type TestServer } from '../helpers/server.js';
import { clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };

interface Registered {
  readonly client_id: string;
  readonly registration_access_token: string;
  readonly registration_client_uri: string;
  readonly redirect_uris: string[];
}

describe('e2e: fourth blips pass: RFC 7591 / 7592 with Redis paused at a write', function () {
  this.timeout(60_000);
  let relayed: RelayedServer;
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;
  let admin: string;

  before(async () => {
    // A command waits half a second: a Redis paused longer is an outage (503).
    relayed = await startRelayedServer({}, { commandTimeout: 500, clients: [machineClient(OPS)] });
    ({ redis, relay, server } = relayed);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
  });
  after(() => relayed?.stop());

  /** `request`, its first script on a key holding `key` reaching a paused Redis, which runs it once resumed, after the answer. */
  async function pausedAt<T>(key: string, request: () => Promise<T>): Promise<T> {
    const held = await relay.hold(scriptOn(key), request);
    redis.pause();
    const answer = await held.release();
    redis.resume();
    // Redis runs what waited in its socket.
    await new Promise((resolve) => setTimeout(resolve, 300));
    return answer;
  }

  const listed = async () => {
    const response = await fetch(`${server.url}/admin/clients`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(response.status, 200);
    return ((await response.json()) as { client_id: string }[]).map((client) => client.client_id).filter((id) => id !== OPS.id);
  };

  const register = (iat: string, name: string) => () =>
    fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` }, body: JSON.stringify({ client_name: name, redirect_uris: [`https://${name}.example.test/callback`] }) });

  /** What the registration endpoint says of the client its token manages: the status, and the redirect URIs. */
  const read = async (made: Registered, token = made.registration_access_token) => {
    const response = await fetch(made.registration_client_uri, { headers: { authorization: `Bearer ${token}` } });
    return { status: response.status, redirect_uris: response.status === 200 ? ((await response.json()) as Registered).redirect_uris : [] };
  };

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
});
