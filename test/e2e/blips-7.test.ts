/**
 * The seventh blips pass (2026-12-05), black box, over registration: RFC 7591 registration with
 * an initial access token, RFC 7592 management with its registration access token, and a client
 * secret's rotation, each with Redis paused (past REDIS_COMMAND_TIMEOUT: the write and what follows
 * run once it resumes, after the answer) or the connection cut at a chosen write. The house rule: a
 * 503 leaves nothing lost and nothing half-made; the caller's retry succeeds and ends in the state
 * one success gives. See docs/security-passes.md, "seventh blips pass".
 */
import assert from 'node:assert/strict';
import { pastOutages } from '../helpers/eventually.js';
import { scriptOn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
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

describe('e2e: seventh blips pass: registration, client management and secret rotation with Redis paused (or the connection cut) at a write', function () {
  this.timeout(60_000);
  let relayed: RelayedServer;
  let server: TestServer;
  let admin: string;

  before(async () => {
    // A command waits half a second: a Redis paused longer is an outage (503).
    relayed = await startRelayedServer({}, { commandTimeout: 500, clients: [machineClient(OPS)] });
    ({ server } = relayed);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    admin = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
  });
  after(() => relayed?.stop());

  const listed = async () => {
    const response = await pastOutages(() => fetch(`${server.url}/admin/clients`, { headers: { authorization: `Bearer ${admin}` } }));
    assert.equal(response.status, 200);
    return ((await response.json()) as { client_id: string }[]).map((client) => client.client_id).filter((id) => id !== OPS.id).sort();
  };

  const register = (iat: string, name: string) => () =>
    fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` }, body: JSON.stringify({ client_name: name, redirect_uris: [`https://${name}.example.test/callback`] }) });

  const read = async (made: Registered, token = made.registration_access_token) => {
    const response = await fetch(made.registration_client_uri, { headers: { authorization: `Bearer ${token}` } });
    return { status: response.status, redirect_uris: response.status === 200 ? ((await response.json()) as Registered).redirect_uris : [] };
  };

  /** Sent again (past the 503's Retry-After): registered, one client more than before, managed by the token shown, and the initial access token spent. */
  async function registeredOnceByTheRetry(iat: string, name: string, before: string[]): Promise<Registered> {
    const again = await pastOutages(register(iat, name));
    assert.equal(again.status, 201, `the retry of a registration answered 503 answered ${again.status}: ${await again.clone().text()}`);
    const made = (await again.json()) as Registered;
    assert.deepEqual(await listed(), [...before, made.client_id].sort(), 'one client, the one the developer was shown');
    assert.equal((await read(made)).status, 200, 'managed by the token shown');
    assert.equal((await register(iat, `${name}-second`)()).status, 401, 'the initial access token is spent');
    assert.deepEqual(await listed(), [...before, made.client_id].sort());
    return made;
  }

  it('an RFC 7591 registration answered 503 at its initial access token’s spend: sent again, registered once, the token spent (before the fix: 401 "already used", and once the claim expired a second client, the first one’s secret shown to nobody)', async () => {
    const before = await listed();
    const iat = await initialAccessToken(server);
    const blip = await relayed.pausedAt(scriptOn('oidc:InitialAccessToken:'), register(iat, 'spent'));
    assert.equal(blip.status, 503);
    assert.ok(blip.headers.get('retry-after'));
    await registeredOnceByTheRetry(iat, 'spent', before);
  });
});
