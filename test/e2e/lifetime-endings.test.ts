/**
 * A revocation-list entry must live as long as the longest token it ends can: here the tokens were
 * issued under longer lifetimes than the instance (or the CLI) writing the entry is configured
 * with: an operator shortened ttl.accessToken, ttl.clientCredentials or ttl.apiAccessTokenMax and
 * restarted, or runs the CLI with other settings than the servers'. Each entry's `exp` on the feed
 * (and its key's TTL in the store) is compared with the `exp` of the token it ends: no waiting.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { frontChannel } from '../helpers/front-channel.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, grantFeed, machineClient, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const PASSWORD = 'correct horse battery staple';
const LONG_API = 'https://long.example.test';
const CLIENTS = JSON.stringify([
  { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
  machineClient(MACHINE),
  machineClient(RS),
]);
/** What the servers ran with first: every access token lifetime an hour. */
const LONGER = { TTL_ACCESS_TOKEN: '3600', TTL_CLIENT_CREDENTIALS: '3600', TTL_API_ACCESS_TOKEN_MAX: '3600' };

type Entry = { type: string; gid?: string; sub?: string; client_id?: string; aud?: string; exp: number };

describe('e2e: revocation entries outlive the tokens they end, whatever lifetimes the writer is configured with', function () {
  this.timeout(120_000);
  const dir = testDir();
  let redis: RedisServer;
  let raw: Redis;
  let port: number;
  let server: TestServer;

  const start = (env: Record<string, string>) => startServer({ redisUrl: redis.url, dir, port, env: { CLIENTS, RESOURCE_SERVERS, ...env } });
  const cliEnv = () => testEnv(dir, port, { redisUrl: redis.url, env: { CLIENTS, RESOURCE_SERVERS } });

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    port = await freePort();
    server = await start(LONGER);
    await server.accounts.create('alice', PASSWORD);
    await server.accounts.create('bob', PASSWORD);
    await grantFeed(server, RS.id);
  });
  after(async () => {
    await server?.stop();
    raw?.disconnect();
    await redis?.stop();
  });

  async function personToken(username: string) {
    const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const flow = await frontChannel(config, { redirectUri: REDIRECT, username, password: PASSWORD, params: { scope: 'openid offline_access read', resource: API, prompt: 'consent' } });
    return oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API });
  }

  async function feed(): Promise<Entry[]> {
    const token = await clientCredentialsToken(server.url, RS, `${server.issuer}/revocations`, 'revocations');
    const response = await fetch(`${server.url}/revocations`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200);
    return ((await response.json()) as { entries: Entry[] }).entries;
  }

  /** The feed's entry `matches` ends the token at least until its exp, and so does the store's key. */
  async function outlives(what: string, token: string, matches: (entry: Entry) => boolean, key: string) {
    const { exp } = decodeJwt(token);
    const entry = (await feed()).find(matches);
    assert.ok(entry, `${what}: no entry on the feed`);
    assert.ok(entry.exp >= exp!, `${what}: the entry ends at ${entry.exp}, ${exp! - entry.exp} s before the token it revokes (exp ${exp})`);
    const ttl = await raw.ttl(`${server.config.redis.keyPrefix}${key}`);
    const left = exp! - Math.floor(Date.now() / 1000);
    assert.ok(ttl >= left, `${what}: the store keeps the entry ${ttl} s, the token has ${left} s left`);
  }

  it('tokens issued under longer lifetimes, revoked once the servers were restarted with shorter ones, or by a CLI with other settings: every entry lives as long as they do', async () => {
    // Under the longer lifetimes: people's tokens, and a client's own for an API added with an hour.
    const alice = await personToken('alice');
    const bob = await personToken('bob');
    await server.apis.add({ identifier: LONG_API, scopes: ['read'], accessTokenTTL: 3600 });
    await server.apis.grant(MACHINE.id, LONG_API, { scopes: ['read'] });
    const longApi = await clientCredentialsToken(server.url, MACHINE, LONG_API);
    for (const token of [alice.access_token, bob.access_token, longApi]) assert.ok(decodeJwt(token).exp! - decodeJwt(token).iat! >= 3600);

    // The operator shortens every lifetime (the defaults) and restarts.
    await server.stop();
    server = await start({});

    // A grant ended at the revocation endpoint.
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', WEB, alice.refresh_token!)).status, 200);
    const { gid } = decodeJwt(alice.access_token) as { gid: string };
    await outlives('grant', alice.access_token, (entry) => entry.type === 'grant' && entry.gid === gid, `revoked:{rv}:grant:${gid}`);

    // A person disabled, and an operator's grant revoked, by a CLI with the shorter settings.
    const disabled = await latchkey(cliEnv(), ['users', 'disable', 'bob']);
    assert.equal(disabled.status, 0, disabled.stderr);
    const { sub } = decodeJwt(bob.access_token);
    await outlives('sub (CLI)', bob.access_token, (entry) => entry.type === 'sub' && entry.sub === sub, `revoked:{rv}:sub:${sub}`);
    // The API's own hour: tokens the restarted server issues for it hold to the maximum it has now.
    const later = await clientCredentialsToken(server.url, MACHINE, LONG_API);
    assert.ok(decodeJwt(later).exp! - decodeJwt(later).iat! <= server.config.ttl.apiAccessTokenMax, 'a stored API keeps no lifetime above ttl.apiAccessTokenMax');
    const revoked = await latchkey(cliEnv(), ['apis', 'revoke', '--client', MACHINE.id, '--api', LONG_API]);
    assert.equal(revoked.status, 0, revoked.stderr);
    await outlives('client_grant (CLI)', longApi, (entry) => entry.type === 'client_grant' && entry.aud === LONG_API, `revoked:{rv}:client-grant:${MACHINE.id}::${LONG_API}`);
    await server.apis.remove(LONG_API);
    for (const token of [longApi, later]) await outlives('api', token, (entry) => entry.type === 'api' && entry.aud === LONG_API, `revoked:{rv}:api:${LONG_API}`);
  });
});
