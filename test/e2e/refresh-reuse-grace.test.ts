/**
 * Concurrent refreshes (ttl.refreshReuseGrace): within the window after a refresh token was
 * rotated, the same client presenting it again gets a sibling under the same grant; after the
 * window, reuse revokes the grant as before; 0 keeps strict rotation. Two instances share one
 * Redis, so the decision is shown to hold across instances (it rests on the store's atomic
 * consumption mark). The window is GRACE seconds: long enough that a loaded machine answering
 * one refresh slowly keeps the next one inside it (1 s was overrun under load: the parallel or
 * retried refresh arrived after the window, was taken for reuse, and revoked the grant), short
 * enough to wait out once.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { frontChannel } from '../helpers/front-channel.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { basic, introspect } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const OTHER = { id: 'other', secret: 'other-app-secret-with-plenty-of-entropy-012345' };
const PASSWORD = 'correct horse battery staple';
const CLIENTS = JSON.stringify(
  [WEB, OTHER].map(({ id, secret }) => ({ client_id: id, client_secret: secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] })),
);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** ttl.refreshReuseGrace of the first two instances, seconds. */
const GRACE = 5;

interface Answer {
  readonly status: number;
  readonly body: { refresh_token?: string; access_token?: string; error?: string; error_description?: string };
}

async function refresh(server: TestServer, refreshToken: string, client = WEB): Promise<Answer> {
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

/** A signed-in person's first tokens at `server`, with offline access. */
async function tokensAt(server: TestServer) {
  const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), {
    execute: [oidc.allowInsecureRequests],
  });
  const flow = await frontChannel(config, {
    redirectUri: REDIRECT,
    username: 'alice',
    password: PASSWORD,
    params: { scope: 'openid offline_access', prompt: 'consent' },
  });
  return oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier });
}

describe('e2e: concurrent refreshes within ttl.refreshReuseGrace', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let first: TestServer;
  let second: TestServer;
  let strict: TestServer;

  before(async () => {
    redis = await startRedisServer();
    // Two instances of one deployment: one Redis, one issuer, one key prefix.
    const port = await freePort();
    const env = { CLIENTS, TTL_REFRESH_REUSE_GRACE: String(GRACE), ISSUER: `http://localhost:${port}` };
    first = await startServer({ redisUrl: redis.url, port, env });
    second = await startServer({ redisUrl: redis.url, env });
    await first.accounts.create('alice', PASSWORD);
    strict = await startServer({ redisUrl: redis.url, env: { CLIENTS, TTL_REFRESH_REUSE_GRACE: '0', REDIS_KEY_PREFIX: 'strict:' } });
    await strict.accounts.create('alice', PASSWORD);
  });
  after(async () => {
    await first?.stop();
    await second?.stop();
    await strict?.stop();
    await redis?.stop();
  });

  it('two parallel refreshes with the same token, on two instances, both succeed; each successor works', async () => {
    const tokens = await tokensAt(first);
    const [a, b] = await Promise.all([refresh(first, tokens.refresh_token!), refresh(second, tokens.refresh_token!)]);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(b.status, 200, JSON.stringify(b.body));
    assert.notEqual(a.body.refresh_token, b.body.refresh_token);
    for (const successor of [a.body.refresh_token!, b.body.refresh_token!]) {
      const next = await refresh(second, successor);
      assert.equal(next.status, 200, JSON.stringify(next.body));
    }
    assert.equal((await introspect(first.url, WEB, a.body.access_token!)).active, true);
  });

  it('a retry right after a completed refresh gets a sibling under the same grant', async () => {
    const tokens = await tokensAt(first);
    const done = await refresh(first, tokens.refresh_token!);
    const retry = await refresh(second, tokens.refresh_token!);
    assert.equal(retry.status, 200, JSON.stringify(retry.body));
    assert.equal((await introspect(first.url, WEB, done.body.access_token!)).active, true, 'the first answer stays good');
  });

  it('reuse after the window revokes the grant: the successor, siblings and access tokens die with it', async () => {
    const tokens = await tokensAt(first);
    const done = await refresh(first, tokens.refresh_token!);
    const sibling = await refresh(first, tokens.refresh_token!);
    assert.equal(sibling.status, 200);
    await sleep(GRACE * 1000 + 500);
    const late = await refresh(second, tokens.refresh_token!);
    assert.equal(late.status, 400);
    assert.equal(late.body.error, 'invalid_grant');
    for (const successor of [done.body.refresh_token!, sibling.body.refresh_token!]) {
      assert.equal((await refresh(first, successor)).body.error, 'invalid_grant');
    }
    assert.equal((await introspect(first.url, WEB, done.body.access_token!)).active, false);
  });

  it('within the window, another client presenting the token gets invalid_grant and nothing; the rightful client is unaffected', async () => {
    const tokens = await tokensAt(first);
    const done = await refresh(first, tokens.refresh_token!);
    const stolen = await refresh(second, tokens.refresh_token!, OTHER);
    assert.equal(stolen.status, 400);
    assert.equal(stolen.body.error, 'invalid_grant');
    assert.equal(stolen.body.refresh_token, undefined);
    assert.equal((await refresh(first, done.body.refresh_token!)).status, 200);
  });

  it('a revoked grant stays revoked: the just-rotated token presented within the window gets invalid_grant', async () => {
    const tokens = await tokensAt(first);
    const done = await refresh(first, tokens.refresh_token!);
    const revoked = await fetch(`${first.url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) },
      body: new URLSearchParams({ token: done.body.refresh_token!, token_type_hint: 'refresh_token' }),
    });
    assert.equal(revoked.status, 200);
    const again = await refresh(second, tokens.refresh_token!);
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
    assert.equal((await introspect(first.url, WEB, done.body.access_token!)).active, false);
  });

  it('window 0: of two parallel refreshes one fails, and the grant is revoked (strict rotation)', async () => {
    const tokens = await tokensAt(strict);
    const answers = await Promise.all([refresh(strict, tokens.refresh_token!), refresh(strict, tokens.refresh_token!)]);
    const failed = answers.filter((answer) => answer.status !== 200);
    assert.ok(failed.length >= 1, 'a concurrent reuse is refused');
    assert.equal(failed[0]!.body.error, 'invalid_grant');
    for (const answer of answers.filter((a) => a.status === 200)) {
      assert.equal((await refresh(strict, answer.body.refresh_token!)).body.error, 'invalid_grant', 'the winner dies with the grant');
    }
    // Sequential reuse, right away: refused and revoking.
    const more = await tokensAt(strict);
    const rotated = await refresh(strict, more.refresh_token!);
    assert.equal((await refresh(strict, more.refresh_token!)).body.error, 'invalid_grant');
    assert.equal((await refresh(strict, rotated.body.refresh_token!)).body.error, 'invalid_grant');
  });
});
