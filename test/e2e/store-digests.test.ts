/**
 * Bearer values are not in the store (RFC 6819 §5.1.4.1.3, OWASP ASVS V8.3.4): authorization codes,
 * refresh tokens and opaque access and client_credentials tokens are kept under their SHA-256
 * digest, their records without their jti, and a grant's index lists the digested keys. Flows are
 * driven with real clients (openid-client: code + PKCE with refresh; client_credentials with an
 * opaque token), then every key and value in the store is read (SCAN, and GET / HGETALL / SMEMBERS
 * / ZRANGE / LRANGE by type) and none may hold a value handed out. A record kept by its value by
 * the release before is still found, and revoked.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { clientCredentialsToken, introspect, machineClient, OPAQUE_API, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';
import { digestOf } from '../../src/store/adapter.js';

const REDIRECT = 'https://spa.example.test/callback';
const PASSWORD = 'correct horse battery staple';
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const SPA = { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };

describe('e2e: no code or token handed out is in the store (kept under its digest)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let raw: Redis;
  let server: TestServer;
  let config: oidc.Configuration;

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    server = await startServer({ redisUrl: redis.url, clients: [machineClient(MACHINE), machineClient(RS), SPA], env: { RESOURCE_SERVERS } });
    await server.accounts.create('alice', PASSWORD);
    config = await oidc.discovery(new URL(server.issuer), 'spa', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    raw?.disconnect();
    await server?.stop();
    await redis?.stop();
  });

  /** Every key in the store, with every value it holds. */
  async function everything(): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await raw.scan(cursor, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        found.push(key);
        const type = await raw.type(key);
        if (type === 'string') found.push((await raw.get(key)) ?? '');
        else if (type === 'hash') found.push(...Object.entries(await raw.hgetall(key)).flat());
        else if (type === 'set') found.push(...(await raw.smembers(key)));
        else if (type === 'zset') found.push(...(await raw.zrange(key, '0', '-1')));
        else if (type === 'list') found.push(...(await raw.lrange(key, 0, -1)));
        else if (type === 'stream') found.push(JSON.stringify(await raw.xrange(key, '-', '+')));
        else assert.fail(`key ${key} of type ${type}`);
      }
    } while (cursor !== '0');
    return found;
  }

  /** Code + PKCE (openid-client, a person by a cookie-keeping agent): the code and the tokens. */
  async function codeFlow() {
    const agent = new Agent();
    const start = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const verifier = start.verifier;
    const page = await signInSteps(agent, start.page, { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
    const code = new URL(page.url).searchParams.get('code');
    assert.ok(code, `a code, got ${page.url}`);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier });
    assert.ok(tokens.refresh_token);
    return { code, tokens: { ...tokens, refresh_token: tokens.refresh_token } };
  }

  /** Moves the record of `value` from under its digest to under its value, as the release before kept it (and its grant's index with it). */
  async function keptByValue(model: string, value: string) {
    const [digested] = await raw.keys(`*oidc:${model}:${digestOf(value)}`);
    assert.ok(digested, 'kept under its digest');
    const record = await raw.hgetall(digested);
    const payload = JSON.parse(record.p!) as { grantId?: string };
    const legacy = digested.replace(digestOf(value), value);
    await raw.hset(legacy, { ...record, p: JSON.stringify({ ...payload, jti: value }) });
    await raw.expire(legacy, 600);
    await raw.del(digested);
    if (payload.grantId) {
      const index = digested.replace(`${model}:${digestOf(value)}`, `grant:${payload.grantId}`);
      assert.equal(await raw.srem(index, digested.slice(digested.indexOf('oidc:'))), 1, 'the grant listed it');
      await raw.sadd(index, legacy.slice(legacy.indexOf('oidc:')));
    }
  }

  it('code + PKCE with refresh, client_credentials (opaque): no code or token is a key, a member or inside a value', async () => {
    const { code, tokens } = await codeFlow();
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.refresh_token);
    const opaque = await clientCredentialsToken(server.url, MACHINE, OPAQUE_API);
    assert.equal((await introspect(server.url, RS, opaque)).active, true);

    const handedOut = { code, refresh: tokens.refresh_token, refreshed: refreshed.refresh_token, opaque };
    const store = await everything();
    assert.ok(store.length > 10, 'the store holds the flows');
    for (const [name, value] of Object.entries(handedOut)) {
      const holding = store.filter((entry) => entry.includes(value));
      assert.deepEqual(holding, [], `the ${name} is in the store`);
    }
  });

  it('a client_credentials token and a refresh token kept by their value (the release before) are still found and revoked', async () => {
    const opaque = await clientCredentialsToken(server.url, MACHINE, OPAQUE_API);
    await keptByValue('ClientCredentials', opaque);
    assert.equal((await introspect(server.url, RS, opaque)).active, true, 'found by its value');
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, opaque)).status, 200);
    assert.equal((await introspect(server.url, RS, opaque)).active, false, 'revoked');
    assert.deepEqual(await raw.keys(`*${opaque}`), []);

    // A refresh token: used once it is rotated; used again, a replay, its grant revoked with it.
    const { tokens } = await codeFlow();
    await keptByValue('RefreshToken', tokens.refresh_token);
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.refresh_token, 'rotated');
    await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token), (error: Error & { error?: string }) => error.error === 'invalid_grant');
    await assert.rejects(oidc.refreshTokenGrant(config, refreshed.refresh_token!), (error: Error & { error?: string }) => error.error === 'invalid_grant', 'the grant was revoked');
    assert.deepEqual(await raw.keys(`*${tokens.refresh_token}`), []);
  });
});
