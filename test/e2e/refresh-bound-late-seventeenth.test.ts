/**
 * Review of the seventeenth passes' boundLate fix (dpop-bound-refresh.ts and refresh-chain-marks.ts,
 * provider.ts ttl.RefreshToken), on Redis and two instances: a single-page app's chain bound to a
 * thief's DPoP key at a refresh keeps its first token's end wherever it is rotated (the mark is in
 * the stored payload, not in one instance's memory), and a Redis outage in the middle of the
 * thief's refresh (503) loses nothing and marks nothing: the retry on the other instance binds and
 * marks the chain as the first try would have. refresh-tokens-seventeenth covers the embedded store.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'bound late seventeenth password';
const SPA = { id: 'spa', redirect: 'https://spa.example.test/callback' };

describe('e2e: a refresh chain bound late, on Redis and two instances (seventeenth passes, review)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let one: TestServer;
  let two: TestServer;
  let viaOne: oidc.Configuration;
  let viaTwo: oidc.Configuration;

  before(async () => {
    redis = await startRedisServer();
    const clients = [
      { client_id: SPA.id, token_endpoint_auth_method: 'none', application_type: 'web', redirect_uris: [SPA.redirect], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' },
    ];
    const env = { TTL_REFRESH_TOKEN: '600', TTL_GRANT: '6000', TTL_REFRESH_REUSE_GRACE: '30', REDIS_COMMAND_TIMEOUT: '500' };
    one = await startServer({ redisUrl: redis.url, clients, env, cheapHashing: true });
    two = await startServer({ dir: dirname(one.env.KEYS_DIR!), port: await freePort(), redisUrl: redis.url, clients, env: { ...env, ISSUER: one.issuer } });
    await one.accounts.create('rosa', PASSWORD);
    viaOne = await oidc.discovery(new URL(one.issuer), SPA.id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    viaTwo = await oidc.discovery(new URL(one.issuer), SPA.id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    // The same issuer and endpoints (a DPoP proof's htu), reached through the other instance.
    viaTwo[oidc.customFetch] = (url, options) => fetch(url.replace(one.url, two.url), options as RequestInit);
  });
  after(async () => {
    redis?.resume();
    await two?.stop();
    await one?.stop();
    await redis?.stop();
  });

  async function firstRefreshToken(): Promise<string> {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, viaOne, SPA.redirect, { scope: 'openid offline_access', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'rosa', password: PASSWORD, stopAt: SPA.redirect });
    const tokens = await oidc.authorizationCodeGrant(viaOne, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    assert.ok(tokens.refresh_token, 'a refresh token for offline_access');
    return tokens.refresh_token;
  }

  /** The token as the given instance reads it from the store. */
  async function stored(server: TestServer, value: string): Promise<{ exp: number; jkt?: string; boundLate?: unknown }> {
    const token = (await server.provider.RefreshToken.find(value)) as { exp?: number; jkt?: string; boundLate?: unknown } | undefined;
    assert.ok(token, 'the refresh token is stored');
    return { exp: token.exp!, jkt: token.jkt, boundLate: token.boundLate };
  }

  /** Rotates `value` a whole second after it was issued (a later exp would show). */
  async function rotated(via: oidc.Configuration, value: string, dpop: oidc.DPoPHandle): Promise<string> {
    await sleep(1_100);
    const tokens = await oidc.refreshTokenGrant(via, value, undefined, { DPoP: dpop });
    assert.ok(tokens.refresh_token && tokens.refresh_token !== value, 'rotated');
    return tokens.refresh_token;
  }

  it('bound on one instance, rotated on the other: the chain still ends with its first token (the mark is in the stored payload)', async () => {
    const first = await firstRefreshToken();
    const { exp } = await stored(one, first);
    const keys = await generateKeyPair('ES256');
    const second = await rotated(viaOne, first, oidc.getDPoPHandle(viaOne, keys));
    const read = await stored(two, second);
    assert.ok(read.jkt, 'bound to the thief’s key');
    assert.equal(read.boundLate, true, 'the other instance reads the mark from Redis');
    assert.equal(read.exp, exp);
    const third = await rotated(viaTwo, second, oidc.getDPoPHandle(viaTwo, keys));
    assert.equal((await stored(one, third)).exp, exp, 'rotated on the other instance: no later an end');
  });

  it('a Redis outage in the middle of the thief’s refresh: 503, the token unspent and unbound; the retry on the other instance is bound, marked, no later an end', async () => {
    const first = await firstRefreshToken();
    const { exp } = await stored(one, first);
    const keys = await generateKeyPair('ES256');
    await sleep(1_100);
    redis.pause();
    try {
      await assert.rejects(oidc.refreshTokenGrant(viaOne, first, undefined, { DPoP: oidc.getDPoPHandle(viaOne, keys) }), (error: unknown) => {
        assert.equal((error as { cause?: Response }).cause?.status ?? (error as { status?: number }).status, 503, String(error));
        return true;
      });
    } finally {
      redis.resume();
    }
    const unspent = await stored(two, first);
    assert.equal(unspent.jkt, undefined, 'nothing of the failed refresh was written');
    assert.equal(unspent.boundLate, undefined);
    const second = await rotated(viaTwo, first, oidc.getDPoPHandle(viaTwo, keys));
    const read = await stored(one, second);
    assert.ok(read.jkt && read.boundLate === true, 'bound and marked by the retry');
    assert.equal(read.exp, exp);
    assert.equal((await stored(two, await rotated(viaOne, second, oidc.getDPoPHandle(viaOne, keys)))).exp, exp);
  });
});
