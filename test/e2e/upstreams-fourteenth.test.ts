/**
 * Upstream identity providers, attacked: fourteenth fresh-eyes pass (docs/security-passes.md,
 * "Looked at in the fourteenth fresh-eyes passes of 2026-12-07: upstream identity providers, attacked").
 *
 * The fake upstream of test/helpers/fake-upstream.ts against a Latchkey on a Redis store (REDIS_URL,
 * else db 13 of the local Redis), through a cookie-keeping agent and raw fetch.
 */
import assert from 'node:assert/strict';
import { Agent } from '../helpers/agent.js';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent } from '../helpers/sign-in.js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';
import { Upstreams } from '../../src/upstreams/registry.js';
import { UpstreamLinks } from '../../src/accounts/links.js';

const SECRET = 'upstream-fourteenth-client-secret-with-plenty-of-entropy';
const APP = { client_id: 'app1', client_secret: SECRET, redirect_uris: ['http://app1.localhost:1/callback'], grant_types: ['authorization_code'] };
const REDIRECT = APP.redirect_uris[0]!;

describe('e2e: upstream identity providers, attacked (fourteenth pass)', function () {
  this.timeout(60_000);
  let latchkey: TestServer;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    latchkey = await startServer({ ownRedis: true, port: await freePort(), clients: [APP], env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', UPSTREAMS_TIMEOUT: '2' } });
    fake = await fakeUpstreamOf(latchkey, SECRET);
  });
  after(async () => {
    await latchkey?.stop();
    await fake?.close();
  });

  const backchannel = (token: string) => fetch(`${latchkey.issuer}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });

  /** Signed in to app1 through the fake upstream as `sub` in its session `sid`, in a fresh browser; `silent` asks app1's prompt=none. */
  async function signedInThroughFake(sub: string, sid: string) {
    fake.state.mode = 'good';
    fake.state.sub = sub;
    fake.state.sid = sid;
    const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'fake' });
    const browser = new Agent();
    let page = await browser.follow(`${latchkey.issuer}/auth?${params}`, {}, REDIRECT);
    if (isConsent(page)) page = await browser.submit(page, '/confirm', {}, REDIRECT);
    assert.ok(page.url.startsWith(REDIRECT) && new URL(page.url).searchParams.has('code'), `signed in: ${page.status} ${page.url}`);
    const silent = async () => {
      const again = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', prompt: 'none' });
      return (await browser.follow(`${latchkey.issuer}/auth?${again}`, {}, REDIRECT)).url;
    };
    return { browser, silent };
  }

  it("a valid logout token that arrives while the upstream's key set cannot be read is answered 503 with Retry-After, not refused: the upstream's retry ends the session (Back-Channel Logout §2.8)", async () => {
    // Latchkey reads the key set for logout tokens apart from the callback's: a server's first logout
    // token (after a start, or once the set's cache ended) fetches it, and a blip of the upstream's
    // then was answered 400 "does not verify", which a provider takes as final: the session lived on.
    const { silent } = await signedInThroughFake('person-jwks-blip', 'sid-jwks-blip');
    const token = await fake.logoutToken({ sid: 'sid-jwks-blip' });
    fake.state.jwksDown = true;
    try {
      const blip = await backchannel(token);
      const body = await blip.text();
      assert.equal(blip.status, 503, `the keys could not be read: ${blip.status} ${body}`);
      assert.ok(blip.headers.get('retry-after'), 'told when to retry');
      assert.equal((JSON.parse(body) as { error: string }).error, 'temporarily_unavailable');
    } finally {
      fake.state.jwksDown = false;
    }
    assert.doesNotMatch(await silent(), /error=login_required/, 'nothing ended yet');
    assert.equal((await backchannel(token)).status, 200, 'the same token, sent again, is taken (its jti was not spent)');
    assert.match(await silent(), /error=login_required/, 'signed out');
    assert.equal((await backchannel(token)).status, 400, 'and then spent');
  });
  it("the upstream's key set unreadable at the callback (a first sign-in through an upstream id whose keys were never read): the \"not answering\" page and temporarily_unavailable, not a refusal", async () => {
    // Another id for the same provider: its own discovery and key set, read for the first time at this callback.
    await new Upstreams(latchkey.kv, latchkey.config.keys.secrets).add({ id: 'fresh-keys', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email profile', displayName: 'Fresh Keys', linkByEmail: false, endSession: false });
    fake.state.mode = 'good';
    fake.state.sub = 'person-jwks-callback';
    fake.state.jwksDown = true;
    const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'fresh-keys' });
    const browser = new Agent();
    let page;
    try {
      page = await browser.follow(`${latchkey.issuer}/auth?${params}`, {}, REDIRECT);
    } finally {
      fake.state.jwksDown = false;
    }
    assert.equal(page.status, 502, `${page.status} ${page.url}`);
    assert.match(page.html, /Fresh Keys is not answering/);
    assert.match(page.html, /value="temporarily_unavailable"/);
  });

  it('logout tokens that must not end anything (held): iat an hour ahead, exp passed, too old, HS256 keyed with the client secret, another sid, the sid with another sub, a sub alone of another person; the session stays', async () => {
    const { silent } = await signedInThroughFake('person-held', 'sid-held');
    const now = Math.floor(Date.now() / 1000);
    const refusals: Record<string, string> = {
      'iat an hour ahead': await fake.logoutToken({ sid: 'sid-held', iat: now + 3600 }),
      'exp passed': await fake.logoutToken({ sid: 'sid-held', iat: now - 120, exp: now - 60 }),
      'iat 20 minutes old': await fake.logoutToken({ sid: 'sid-held', iat: now - 1200 }),
      'HS256 with the client secret': await new SignJWT({ iss: fake.state.issuer, aud: 'latchkey', iat: now, exp: now + 120, jti: crypto.randomUUID(), sid: 'sid-held', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
        .setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' })
        .sign(new TextEncoder().encode(SECRET)),
      'an ID token in its place': await fake.logoutToken({ sid: 'sid-held', nonce: 'n', events: undefined }),
    };
    for (const [what, token] of Object.entries(refusals)) assert.equal((await backchannel(token)).status, 400, what);
    for (const [what, claims] of Object.entries({ 'another sid': { sid: 'sid-other' }, 'the sid with another sub': { sid: 'sid-held', sub: 'someone-else' }, 'another sub alone': { sub: 'someone-else' } })) {
      assert.equal((await backchannel(await fake.logoutToken(claims))).status, 200, what);
    }
    assert.doesNotMatch(await silent(), /error=login_required/, 'still signed in');
  });
  it('an upstream removed and its id given to another issuer while the person is at the first one: the callback is refused, as for an upstream removed, and nothing is made or redeemed at the new provider', async () => {
    const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
    const settings = { id: 'swapped', clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email profile', displayName: 'Swapped', linkByEmail: false, endSession: false };
    const first = fake.state.issuer;
    await upstreams.add({ ...settings, issuer: first });
    fake.state.mode = 'good';
    fake.state.sub = 'person-swapped';
    const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'swapped' });
    const browser = new Agent();
    const atUpstream = await browser.follow(`${latchkey.issuer}/auth?${params}`, {}, `${first}/authorize`);
    assert.ok(atUpstream.url.startsWith(`${first}/authorize`), `at the first provider: ${atUpstream.status} ${atUpstream.url}`);
    // While the person is there, the operator removes the upstream and adds another provider under its id
    // (the fake under another issuer name, answering whatever code it is given).
    await upstreams.remove('swapped');
    const second = first.replace('127.0.0.1', 'localhost');
    await upstreams.add({ ...settings, issuer: second });
    fake.state.issuer = second;
    const tokensBefore = fake.state.tokens;
    try {
      const back = await browser.follow(atUpstream.url, {}, REDIRECT);
      assert.equal(back.status, 400, `the sign-in the removed provider was asked for does not go on with the new one: ${back.status} ${back.url}`);
      assert.equal(fake.state.tokens, tokensBefore, "the first provider's code and our PKCE verifier were not sent to the new provider");
    } finally {
      fake.state.issuer = first;
    }
    assert.equal(await new UpstreamLinks(latchkey.kv, latchkey.accounts).find('swapped', 'person-swapped'), undefined, 'nothing linked');
  });
  it("a logout token signed with a key the upstream published less than 30 s after Latchkey last read its key set (a rotation) is answered 503, and taken once the set may be read again", async () => {
    const { silent } = await signedInThroughFake('person-rotated', 'sid-rotated');
    // Latchkey reads the set now (a logout token of no session of ours), then the upstream publishes a new key and signs with it at once.
    assert.equal((await backchannel(await fake.logoutToken({ sid: 'sid-of-no-one' }))).status, 200);
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    fake.state.moreKeys = [{ ...(await exportJWK(publicKey)), kid: 'rotated', alg: 'RS256', use: 'sig' }];
    // jose's cooldown (30 s) is timed on Date.now, which the in-process server shares with this test:
    // the clock is moved on past it rather than waited out (62 s of the suite's wall time). The tokens
    // below stay within their exp (120 s) and LOGOUT_TOKEN_MAX_AGE, the session within its lifetime.
    const realNow = Date.now;
    let ahead = 0;
    Date.now = () => realNow() + ahead;
    const pastCooldown = () => (ahead += 31_000);
    try {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ iss: fake.state.issuer, aud: 'latchkey', iat: now, exp: now + 120, jti: crypto.randomUUID(), sid: 'sid-rotated', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
        .setProtectedHeader({ alg: 'RS256', kid: 'rotated', typ: 'logout+jwt' })
        .sign(privateKey);
      const early = await backchannel(token);
      assert.equal(early.status, 503, `the set was read moments ago: ${early.status} ${await early.text()}`);
      assert.ok(early.headers.get('retry-after'));
      assert.doesNotMatch(await silent(), /error=login_required/, 'nothing ended yet');
      pastCooldown();
      assert.equal((await backchannel(token)).status, 200, 'the retry reads the set again and finds the key');
      assert.match(await silent(), /error=login_required/, 'signed out');
      // A key no set holds, read just now, is the token's fault.
      const unknown = await new SignJWT({ iss: fake.state.issuer, aud: 'latchkey', iat: now, exp: now + 120, jti: crypto.randomUUID(), sid: 'sid-rotated', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
        .setProtectedHeader({ alg: 'RS256', kid: 'never-published', typ: 'logout+jwt' })
        .sign(privateKey);
      pastCooldown();
      assert.equal((await backchannel(unknown)).status, 400, 'the set read again holds no such key');
    } finally {
      Date.now = realNow;
      fake.state.moreKeys = [];
    }
  });
});
