/**
 * The server as an operator sees it: health endpoints, public-only JWKS, state that survives a
 * restart when it lives in Redis, and a Redis outage answered with 503 then recovered from.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import * as oidc from 'openid-client';
import { PRIVATE_JWK_MEMBERS } from '../../src/keyring/keyring.js';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'web-app-secret-with-plenty-of-entropy-0123456789';
const CLIENTS = JSON.stringify([
  { client_id: 'web', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] },
]);

describe('server: health, JWKS, restarts and Redis outages', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer;
  const dir = testDir();
  let port: number;

  before(async () => {
    redis = await startRedisServer({ appendonly: true });
    port = await freePort();
    server = await startServer({ redisUrl: redis.url, dir, port, env: { CLIENTS } });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/healthz says the process is up; /readyz that Redis answers and keys are loaded', async () => {
    assert.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { status: 'ok' });
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', store: 'redis: ok', keys: 2 }, 'the current key and the next one');
  });

  it('JWKS publishes RS256 public keys with thumbprint kids and never a private member', async () => {
    const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as { keys: Record<string, unknown>[] };
    assert.ok(jwks.keys.length >= 1);
    for (const key of jwks.keys) {
      assert.equal(key.kty, 'RSA');
      assert.equal(key.alg, 'RS256');
      assert.equal(key.use, 'sig');
      assert.ok(typeof key.kid === 'string' && /^[\w-]{43}$/.test(key.kid), 'kid is a base64url SHA-256 thumbprint');
      for (const member of PRIVATE_JWK_MEMBERS) assert.equal(key[member], undefined, `private member ${member} published`);
      assert.ok(Buffer.from(String(key.n), 'base64url').length >= 256, 'at least 2048 bits');
    }
  });

  it('pages carry a strict Content-Security-Policy and framing is denied', async () => {
    const response = await fetch(`${server.url}/static/latchkey.css`);
    assert.equal(response.status, 200);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(response.headers.get('x-frame-options'), 'DENY');
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
  });

  it('with Redis, a session and a refresh token survive a restart of the server', async () => {
    const { sub } = await server.accounts.create('carol', 'carol has a long password');
    const config = await oidc.discovery(new URL(server.issuer), 'web', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const start = async (prompt: string) => {
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: REDIRECT, scope: 'openid offline_access', prompt,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      return { verifier, page: await agent.follow(url.href, {}, REDIRECT) };
    };
    const { verifier, page: first } = await start('consent');
    const page = await signInSteps(agent, first, { username: 'carol', password: 'carol has a long password', login: 'required', consent: 'required', stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier, idTokenExpected: true });
    assert.equal(tokens.claims()!.sub, sub);

    await server.close();
    server = await startServer({ redisUrl: redis.url, dir, port, env: { CLIENTS } });

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    assert.equal(refreshed.claims()!.sub, sub);
    const silent = await start('none');
    assert.ok(new URL(silent.page.url).searchParams.get('code'), `silent sign-in after restart: ${silent.page.url}`);
  });

  it('while Redis is down: 503 with Retry-After, /readyz not ready, discovery and JWKS still served; then it recovers', async () => {
    const tokenRequest = () =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          authorization: `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`,
        },
        body: 'grant_type=client_credentials',
      });
    assert.equal((await tokenRequest()).status, 200);

    await redis.kill();
    const down = await tokenRequest();
    assert.equal(down.status, 503);
    assert.ok(Number(down.headers.get('retry-after')) > 0);
    assert.equal(((await down.json()) as { error: string }).error, 'temporarily_unavailable');
    const authorize = new URL('/auth', server.url);
    authorize.search = new URLSearchParams({
      client_id: 'web', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    }).toString();
    const page = await fetch(authorize, { headers: { accept: 'text/html' }, redirect: 'manual' });
    assert.equal(page.status, 503);
    assert.match(await page.text(), /Temporarily unavailable/);
    assert.equal((await fetch(`${server.url}/readyz`)).status, 503);
    assert.equal((await fetch(`${server.url}/.well-known/openid-configuration`)).status, 200);
    assert.equal((await fetch(`${server.url}/jwks`)).status, 200);

    await redis.restart();
    await eventually(async () => assert.equal((await tokenRequest()).status, 200), 100);
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
  });
});
