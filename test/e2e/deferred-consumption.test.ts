/**
 * A token request's code or refresh token is consumed together with the tokens it makes, in one
 * round trip before the answer leaves (provider/patches/deferred-consumption.ts): these races
 * must still end as they did when consumption came first. Of parallel redemptions of one code,
 * exactly one may win; the losers answer invalid_grant, the replay revokes the grant, and no
 * token any of them made stays in the store or works. (The store side, a code gone before the
 * request settles included, is test/integration/deferred-consumption.test.ts.)
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { frontChannel } from '../helpers/front-channel.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { basic, introspect } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
const PASSWORD = 'correct horse battery staple';

describe('e2e: a code is consumed together with the tokens it makes', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let raw: Redis;
  let first: TestServer;
  let second: TestServer;

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    const clients = [{ client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] }];
    first = await startServer({ redisUrl: redis.url, clients });
    // A second instance of the same deployment, so that the racers really run in parallel.
    second = await startServer({ redisUrl: redis.url, clients, env: { ISSUER: first.issuer } });
    await first.accounts.create('alice', PASSWORD);
  });
  after(async () => {
    raw?.disconnect();
    await first?.stop();
    await second?.stop();
    await redis?.stop();
  });

  const accessTokenKeys = async () => (await raw.keys('*oidc:AccessToken:*')).length + (await raw.keys('*oidc:RefreshToken:*')).length;

  async function code() {
    const config = await oidc.discovery(new URL(first.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'alice', password: PASSWORD, params: { scope: 'openid offline_access', prompt: 'consent' } });
    return { code: flow.callback.searchParams.get('code')!, verifier: flow.verifier };
  }

  async function exchange(server: TestServer, { code, verifier }: { code: string; verifier: string }) {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }),
    });
    return { status: response.status, body: (await response.json()) as { access_token?: string; refresh_token?: string; error?: string } };
  }

  it('of parallel redemptions of one code at most one wins, the replay revokes the grant, and nothing made stays', async () => {
    const issued = await code();
    const before = await accessTokenKeys();
    const answers = await Promise.all([first, second, first, second].map((server) => exchange(server, issued)));
    const won = answers.filter((a) => a.status === 200);
    assert.ok(won.length <= 1, `${won.length} redemptions of one code succeeded`);
    for (const lost of answers.filter((a) => a.status !== 200)) {
      assert.equal(lost.status, 400);
      assert.equal(lost.body.error, 'invalid_grant');
      assert.equal(lost.body.access_token, undefined);
    }
    for (const winner of won) {
      assert.equal((await introspect(first.url, WEB, winner.body.access_token!)).active, false, 'the replay revoked the winner too');
      assert.equal((await introspect(first.url, WEB, winner.body.refresh_token!)).active, false);
    }
    assert.equal(await accessTokenKeys(), before, 'every token the racers made was deleted');
  });

  it('a code redeemed once works, and its second redemption is refused and revokes what the first made', async () => {
    const issued = await code();
    const firstAnswer = await exchange(first, issued);
    assert.equal(firstAnswer.status, 200, JSON.stringify(firstAnswer.body));
    assert.equal((await introspect(first.url, WEB, firstAnswer.body.access_token!)).active, true);
    const again = await exchange(second, issued);
    assert.equal(again.body.error, 'invalid_grant');
    assert.equal((await introspect(first.url, WEB, firstAnswer.body.access_token!)).active, false);
  });
});
