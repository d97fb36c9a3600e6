/**
 * Review of the merged changes, fourteenth fresh-eyes passes (h12; docs/security-passes.md, "Looked
 * at in the fourteenth fresh-eyes passes of 2026-12-07: review of the merged changes (h12)").
 *
 * The fake upstream of test/helpers/fake-upstream.ts against a Latchkey on a Redis store (REDIS_URL,
 * else db 13 of the local Redis), through raw fetch.
 */
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';

const SECRET = 'review-fourteenth-h12-client-secret-with-plenty-of-entropy';

describe('review of the merged changes, fourteenth passes (h12)', function () {
  this.timeout(60_000);
  let latchkey: TestServer;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    latchkey = await startServer({ port: await freePort(), env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', UPSTREAMS_TIMEOUT: '2' } });
    fake = await fakeUpstreamOf(latchkey, SECRET);
  });
  after(async () => {
    await latchkey?.stop();
    await fake?.close();
  });

  const backchannel = (token: string) => fetch(`${latchkey.issuer}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });

  it("a logout token signed with a key published just after Latchkey read the set is told to retry once the set may be read again (Retry-After), and that retry is taken", async () => {
    // The 503 said Retry-After: 2 (the store outage's), but jose reads the set again for an unknown
    // kid only 30 s after it last did: an upstream retrying as told met 503 again and again within
    // those 30 s, and one that retries a few times only gave up with the logout lost.
    assert.equal((await backchannel(await fake.logoutToken({ sid: 'sid-of-no-one' }))).status, 200, 'the set is read now');
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    fake.state.moreKeys = [{ ...(await exportJWK(publicKey)), kid: 'rotated-h12', alg: 'RS256', use: 'sig' }];
    const realNow = Date.now;
    try {
      const token = await new SignJWT({ iss: fake.state.issuer, aud: 'latchkey', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 120, jti: crypto.randomUUID(), sid: 'sid-of-no-one-either', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
        .setProtectedHeader({ alg: 'RS256', kid: 'rotated-h12', typ: 'logout+jwt' })
        .sign(privateKey);
      const early = await backchannel(token);
      assert.equal(early.status, 503, `the set was read moments ago: ${early.status} ${await early.text()}`);
      const retryAfter = Number(early.headers.get('retry-after'));
      assert.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 31, `Retry-After in whole seconds, at most the cooldown: ${retryAfter}`);
      // Told when: jose's cooldown is timed on Date.now, which the in-process server shares with this
      // test, so the clock is moved on by Retry-After rather than waited out (about 30 s of wall time).
      Date.now = () => realNow() + retryAfter * 1000;
      const retried = await backchannel(token);
      assert.equal(retried.status, 200, `the retry, when told, finds the key: ${retried.status} ${await retried.text()}`);
    } finally {
      Date.now = realNow;
      fake.state.moreKeys = [];
    }
  });
});
