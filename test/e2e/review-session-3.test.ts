/**
 * The third session review (2026-12-04): fresh eyes, as an attacker, on the last session's changes
 * (docs/security-passes.md, "Looked at in the third session review"). Each test titled "held: …" pins what
 * held; the others pin what was found and fixed, and fail without their fix.
 *
 * The consent page's check after its writes (interactions/consent.ts), at 3157515, read the grant's
 * own revocation entry, written on the store's clock, and took it for an ending only if written at or
 * after the interaction's `iat`, which the engine stamps on this machine's clock. On an instance whose
 * clock differs from Redis's the two were seconds apart: 30 s slow, an app's own RFC 7009 revocation
 * of an access token up to 30 s before the person's next request refused its consent page, forgot the
 * remembered consent and destroyed the grant the revocation keeps; 30 s fast, a refresh token's
 * revocation landing while the page was confirmed was not seen, and the page stored the revoked grant
 * again, whose new tokens worked (also when the page was shown by the fast instance and confirmed at
 * another). The twenty-second granting pass, landed meanwhile, tells a grant's ending apart by its
 * kind (RevocationList.endGrant), with no time compared: these tests pin that it holds on such clocks.
 *
 * A code's consumption carries the last millisecond, on Redis's clock, at which its request still
 * waits (store/redis.ts #until), so that a Redis paused past the command timeout does not spend the
 * code after the request's 503. It was read off Date.now() plus the offset followed once a minute:
 * this machine's clock stepped forward since, the bound was late by the step, and the code was
 * spent. Now it is counted on the monotonic clock (clock.ts storeMilliseconds).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { serveProcess, type ServerProcess } from '../helpers/process.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { commandsIn, scriptOn, startRelay, startRelayedServer, type Relay, type RelayedServer } from '../helpers/relay.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { skewedClock } from '../helpers/skewed-clock.js';
import { digestOf } from '../../src/store/record-keys.js';

const PASSWORD = 'review session three passphrase';
const SECRET = 'review-session-3-app-secret-with-plenty-of-entropy-0123';
const REDIRECT = 'https://app.example.test/callback';
/** How far off the skewed instances' clocks are from Redis's. */
const SKEW_MS = 30_000;

describe('e2e: the third session review', function () {
  this.timeout(120_000);
  const dir = testDir();
  let redis: RedisServer;
  /** The fast instance's way to Redis. */
  let relay: Relay;
  /** Instance A's way to Redis. */
  let relayA: Relay;
  let balancer: Balancer;
  /** Instance A, in this process, on Redis's clock, reaching Redis through relayA. */
  let server: TestServer;
  /** An instance whose machine's clock is SKEW_MS behind Redis's. */
  let slow: ServerProcess;
  /** An instance whose machine's clock is SKEW_MS ahead of Redis's, reaching Redis through the relay. */
  let fast: ServerProcess;
  let app: oidc.Configuration;

  before(async () => {
    [redis, balancer] = await Promise.all([startRedisServer(), startBalancer()]);
    [relay, relayA] = await Promise.all([startRelay(redis.port), startRelay(redis.port)]);
    const clients = [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] }];
    const shared = { ISSUER: balancer.url, CLIENTS: JSON.stringify(clients) };
    // Held writes must not time out (503) while the ending runs.
    server = await startServer({ dir, redisUrl: relayA.url, env: { ...shared, REDIS_COMMAND_TIMEOUT: '30000' } });
    await server.accounts.create('alice', PASSWORD);
    [slow, fast] = await Promise.all([
      freePort().then((port) => serveProcess(testEnv(dir, port, { redisUrl: redis.url, env: { ...shared, ...skewedClock(-SKEW_MS) } }))),
      freePort().then((port) => serveProcess(testEnv(dir, port, { redisUrl: relay.url, env: { ...shared, REDIS_COMMAND_TIMEOUT: '30000', ...skewedClock(SKEW_MS) } }))),
    ]);
    balancer.route(server.url);
    app = await oidc.discovery(new URL(balancer.url), 'app', SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    relay?.release();
    relayA?.release();
    await Promise.all([slow?.stop(), fast?.stop()]);
    await server?.stop();
    await balancer?.close();
    relay?.close();
    relayA?.close();
    await redis?.stop();
  });

  const basic = `Basic ${Buffer.from(`app:${SECRET}`).toString('base64')}`;
  const post = (url: string, fields: Record<string, string>) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }, body: new URLSearchParams(fields) });

  /** An authorization request of the app at `agent`'s browser, to its first page (or back). */
  async function authorize(agent: Agent, params: Record<string, string>): Promise<{ page: Page; verifier: string }> {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...params });
    return { page: await agent.follow(url.href, {}, REDIRECT), verifier };
  }

  /** The code `page` brought back, redeemed at `base`: its tokens. */
  async function redeem(base: string, page: Page, verifier: string): Promise<{ access_token: string; refresh_token: string }> {
    const code = new URL(page.url).searchParams.get('code');
    assert.ok(page.url.startsWith(REDIRECT) && code, `expected a code, got ${page.status} ${page.url} ${page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`);
    const response = await post(`${base}/token`, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
    const body = (await response.json()) as { access_token?: string; refresh_token?: string };
    assert.ok(response.ok && body.access_token && body.refresh_token, JSON.stringify(body));
    return { access_token: body.access_token, refresh_token: body.refresh_token };
  }

  /** Whether the refresh token still gets tokens (its grant lives). */
  const refreshes = async (base: string, token: string) => (await post(`${base}/token`, { grant_type: 'refresh_token', refresh_token: token })).status === 200;

  /** Alice signed in to the app with offline access, at `instance`: her browser and tokens. */
  async function signedIn(instance: { readonly url: string }): Promise<{ browser: Agent; tokens: { access_token: string; refresh_token: string } }> {
    balancer.route(instance.url);
    const browser = new Agent();
    const first = await authorize(browser, { scope: 'openid offline_access', prompt: 'consent' });
    const back = await signInSteps(browser, first.page, { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
    return { browser, tokens: await redeem(instance.url, back, first.verifier) };
  }

  it("held: an app's own RFC 7009 revocation of an access token, seconds before its person's next request, at an instance whose clock is 30 s behind Redis's: the consent page adds to the grant the revocation keeps, which goes on refreshing (at 3157515 it was refused as withdrawn, the grant destroyed)", async () => {
    const { browser, tokens } = await signedIn(slow);
    const revoked = await post(`${slow.url}/token/revocation`, { token: tokens.access_token, token_type_hint: 'access_token' });
    assert.equal(revoked.status, 200, await revoked.text());
    // A later second than the revocation (an entry of the request's own second is taken as an ending).
    await new Promise((done) => setTimeout(done, 1100));
    const next = await authorize(browser, { scope: 'openid email offline_access', prompt: 'consent' });
    assert.ok(isConsent(next.page), `expected the consent page, got ${next.page.status} ${next.page.url}`);
    const back = await signInSteps(browser, next.page, { username: 'alice', password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    const more = await redeem(slow.url, back, next.verifier);
    assert.equal(await refreshes(slow.url, more.refresh_token), true, 'the grant the revocation of an access token keeps');
    // And what was allowed is remembered: the next request asks nothing.
    const silent = await authorize(browser, { scope: 'openid email offline_access', prompt: 'none' });
    assert.ok(new URL(silent.page.url).searchParams.get('code'), `${silent.page.status} ${silent.page.url}`);
  });

  it("held: a refresh token revoked (RFC 7009, which ends its grant) while its person's consent page adds to the grant, at an instance whose clock is 30 s ahead of Redis's: the page is refused as withdrawn and the grant stays ended (at 3157515 it was stored again, and its new tokens worked)", async () => {
    const { browser, tokens } = await signedIn(fast);
    const next = await authorize(browser, { scope: 'openid email offline_access', prompt: 'consent' });
    assert.ok(isConsent(next.page), `expected the consent page, got ${next.page.status} ${next.page.url}`);
    // The confirmation is held at its write of the grant, which it found and checked; meanwhile the
    // app revokes its refresh token at another instance: the grant's entry, then its record deleted.
    const held = await relay.hold(scriptOn('oidc:Grant:'), () => browser.submit(next.page, '/confirm', {}, REDIRECT));
    const revoked = await post(`${server.url}/token/revocation`, { token: tokens.refresh_token, token_type_hint: 'refresh_token' });
    assert.equal(revoked.status, 200, await revoked.text());
    assert.equal(await refreshes(server.url, tokens.refresh_token), false, 'the revocation ended the grant');
    const page = await held.release();
    // Later than the revocation's second: a token of that second would be ended by its entry anyway.
    await new Promise((done) => setTimeout(done, 1100));
    if (page.url.startsWith(REDIRECT)) {
      const stored = await redeem(fast.url, page, next.verifier);
      assert.fail(`the revoked grant was stored again: its new refresh token ${(await refreshes(fast.url, stored.refresh_token)) ? 'works' : 'is refused'}`);
    }
    assert.equal(page.status, 400, `${page.status} ${page.url}`);
    assert.match(page.html, /consent was withdrawn/);
    assert.equal(await refreshes(server.url, tokens.refresh_token), false);
  });

  it("held: the same across instances: the consent page shown by the instance 30 s fast, confirmed at one on Redis's clock while the refresh token's revocation lands, is refused as withdrawn", async () => {
    const { browser, tokens } = await signedIn(fast);
    const next = await authorize(browser, { scope: 'openid email offline_access', prompt: 'consent' });
    assert.ok(isConsent(next.page), `expected the consent page, got ${next.page.status} ${next.page.url}`);
    balancer.route(server.url);
    // The browser's open connection to the fast one is closed by the switch: let it see that first.
    await new Promise((done) => setTimeout(done, 100));
    const held = await relayA.hold(scriptOn('oidc:Grant:'), () => browser.submit(next.page, '/confirm', {}, REDIRECT));
    const revoked = await post(`${slow.url}/token/revocation`, { token: tokens.refresh_token, token_type_hint: 'refresh_token' });
    assert.equal(revoked.status, 200, await revoked.text());
    const page = await held.release();
    await new Promise((done) => setTimeout(done, 1100));
    if (page.url.startsWith(REDIRECT)) {
      const stored = await redeem(server.url, page, next.verifier);
      assert.fail(`the revoked grant was stored again: its new refresh token ${(await refreshes(server.url, stored.refresh_token)) ? 'works' : 'is refused'}`);
    }
    assert.equal(page.status, 400, `${page.status} ${page.url}`);
    assert.match(page.html, /consent was withdrawn/);
  });
});

describe('e2e: the third session review: a code sent as Redis pauses, just after this machine\'s clock stepped forward', function () {
  this.timeout(60_000);
  const REDIRECT = 'https://app.example.test/callback';
  const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
  let relayed: RelayedServer;
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;

  before(async () => {
    relayed = await startRelayedServer({}, {
      // A command waits half a second: a Redis paused longer is an outage (503).
      commandTimeout: 500,
      clients: [{ client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' }],
    });
    ({ redis, relay, server } = relayed);
    await server.accounts.create('pat', PASSWORD);
  });
  after(() => relayed?.stop());

  const token = (body: Record<string, string>) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${WEB.id}:${WEB.secret}`).toString('base64')}` },
      body: new URLSearchParams(body),
    });

  it("a code exchange answered 503 while Redis was paused (it ran it on resuming), sent just after this machine's clock stepped 10 s forward (NTP, a migrated VM; the store's clock is followed once a minute), spent nothing: the same code works once after (its consumption's bound was read off the stepped clock, 10 s late, and the code was spent by the failed request: its retry was a replay)", async () => {
    const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT, consent: 'required' });
    const exchange = { grant_type: 'authorization_code', code: new URL(done.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier };
    const consuming = (chunk: string) => commandsIn(chunk).some(([name = '', , , key = '', at = '']) => /^eval(sha)?$/i.test(name) && key.includes('oidc:AuthorizationCode:') && /^\d+(\.\d+)?$/.test(at));
    // This process is the server's: its clock steps 10 s forward, and back once the request is answered.
    const now = Date.now.bind(Date);
    Date.now = () => now() + 10_000;
    let answer: Response;
    try {
      const held = await relay.hold(consuming, () => token(exchange));
      redis.pause();
      answer = await held.release();
    } finally {
      Date.now = now;
      redis.resume();
    }
    assert.equal(answer.status, 503, await answer.clone().text());
    // Redis runs what waited in its socket.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const redeemed = await token(exchange);
    assert.equal(redeemed.status, 200, `the same code once Redis is back: ${redeemed.status} ${await redeemed.clone().text()}`);
    assert.equal((await token(exchange)).status, 400, 'spent once');
  });
});

describe("e2e: the third session review: sessions the idle bound reads (patches/session-idle.ts) as the previous release saved them, or crafted", function () {
  this.timeout(60_000);
  const REDIRECT = 'https://app.example.test/callback';
  const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
  let server: TestServer;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      clients: [{ client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid' }],
      env: { TTL_SESSION: '3600' },
    });
    await server.accounts.create('pat', PASSWORD);
  });
  after(() => server?.stop());

  it("held: a session without usedAt (saved by the release before) keeps its stored expiry; one whose usedAt is not a number, null or far ahead is read by its stored expiry too (the bound only lowers it); one last used longer ago than ttl.session is not found; none answers a 500", async () => {
    const config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, login: 'required', stopAt: REDIRECT, consent: 'required' });
    assert.ok(new URL(done.url).searchParams.get('code'));
    const cookie = agent.cookieHeader(server.url);
    const sessionId = /lk_session=([^;]+)/.exec(cookie)?.[1];
    assert.ok(sessionId, cookie);
    const key = `oidc:Session:${digestOf(sessionId)}`;
    const now = Math.floor(Date.now() / 1000);
    const signedIn = await server.kv.getRecord(key);
    assert.equal(typeof (JSON.parse(signedIn!.payload) as { usedAt?: unknown }).usedAt, 'number', 'this release stamps usedAt');

    /** The stored session with its usedAt replaced (`undefined`: without one), then a silent request with the cookie: 'code' or its error. */
    async function silentWith(usedAt: unknown): Promise<string> {
      const stored = await server.kv.getRecord(key);
      assert.ok(stored, 'the session is stored');
      const payload = JSON.parse(stored.payload) as Record<string, unknown>;
      if (usedAt === undefined) delete payload.usedAt;
      else payload.usedAt = usedAt;
      // Its stored expiry (ttl.session after its last save) is still ahead.
      assert.ok(typeof payload.exp === 'number' && payload.exp > now + 3000, String(payload.exp));
      await server.kv.putRecord(key, JSON.stringify(payload), 3600);
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', prompt: 'none', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      const answer = await fetch(url, { headers: { cookie, accept: 'text/html' }, redirect: 'manual' });
      assert.equal(answer.status, 303, `a redirect, not ${answer.status}: ${await answer.text()}`);
      const back = new URL(answer.headers.get('location')!, server.url).searchParams;
      return back.get('code') ? 'code' : (back.get('error') ?? 'nothing');
    }

    assert.equal(await silentWith(undefined), 'code', 'saved by the release before');
    assert.equal(await silentWith('yesterday'), 'code');
    assert.equal(await silentWith(null), 'code');
    assert.equal(await silentWith(1e12), 'code', 'far ahead: the stored expiry, not later');
    assert.equal(await silentWith(now - 7200), 'login_required', 'last used two hours ago, ttl.session an hour');
  });
});
