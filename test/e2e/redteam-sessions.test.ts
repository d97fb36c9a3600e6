/**
 * The red team's browser-session pass (2026-12-02), black box against a running Latchkey on a real
 * Redis: the OWASP ASVS session-management catalogue (fixation at every sign-in, sign-out and what
 * outlives it, where the session id travels) item by item, for the cells no earlier file pins.
 * Each test performs attacks and asserts they fail; docs/security.md's threat model points here.
 */
import assert from 'node:assert/strict';
import { Secret, TOTP } from 'otpauth';
import type { Browser } from 'playwright-core';
import { Agent, type Page } from '../helpers/agent.js';
import { launchChromium } from '../helpers/browser.js';
import { eventually } from '../helpers/eventually.js';
import { signInSteps } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'https://app.example.test/callback';
const SIGNED_OUT = 'https://app.example.test/signed-out';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'; // RFC 7636 Appendix B's: an S256 challenge is 43 characters (patches/sha256-bindings.ts)

const codeFor = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });

describe("redteam-sessions: an outsider's pass at browser sessions (black box)", function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      clients: [{ client_id: 'app', client_secret: 'client-secret-with-plenty-of-entropy-0123456789', redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT] }],
    });
    await server.accounts.create('alice', PASSWORD);
    await server.accounts.create('bob', PASSWORD);
    await server.accounts.create('carol', PASSWORD);
  });
  after(() => server?.stop());

  const authUrl = (params: Record<string, string> = {}) =>
    `${server.issuer}/auth?${new URLSearchParams({ client_id: 'app', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: CHALLENGE, code_challenge_method: 'S256', state: 's', ...params })}`;
  const sessionId = (agent: Agent) => /(?:^|; )lk_session=([^;]+)/.exec(agent.cookieHeader(server.url))?.[1];
  /** What the cookies `cookie` reach: the account page's answer and a silent request's. */
  const reach = async (cookie: string) => {
    const account = await fetch(`${server.url}/account`, { headers: { cookie, accept: 'text/html' }, redirect: 'manual' });
    const silent = await fetch(authUrl({ prompt: 'none' }), { headers: { cookie }, redirect: 'manual' });
    return { account: account.status, silent: new URL(silent.headers.get('location') ?? '', server.url).searchParams.get('error') ?? 'code' };
  };
  const signedOutReach = { account: 302, silent: 'login_required' };
  async function enrolTotp(username: string): Promise<string> {
    const account = (await server.accounts.findByUsername(username))!;
    const { secret } = await server.secondFactors.totp.begin(account.sub, username, 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(account.sub, codeFor(secret, -1), 'test-session'), true);
    return secret;
  }
  /** The engine's own pages on the way (the sign-out of another person's session, the consent), as a browser submits them. */
  async function through(agent: Agent, page: Page): Promise<Page> {
    if (page.html.includes('/session/end/confirm')) page = await agent.submit(page, '/session/end/confirm', {}, REDIRECT);
    if (page.html.includes('/confirm')) page = await agent.submit(page, '/confirm', {}, REDIRECT);
    return page;
  }

  it('session fixation at an account switch and at a step-up by second factor: each ends with a session id the browser did not have, and the one before signs nobody in (ASVS V3.2.1, V3.3.1, OWASP session fixation)', async () => {
    const secret = await enrolTotp('bob');
    // Account switch: alice's browser (a shared computer), bob signs in with prompt=login (password and authenticator app).
    const shared = new Agent();
    await signInSteps(shared, await shared.follow(authUrl(), {}, REDIRECT), { username: 'alice', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    const alices = shared.cookieHeader(server.url);
    const aliceId = sessionId(shared);
    let page = await shared.submit(await shared.follow(authUrl({ prompt: 'login' }), {}, REDIRECT), '/login', { username: 'bob', password: PASSWORD }, REDIRECT);
    page = await through(shared, await shared.submit(page, '/second-factor', { method: 'totp', code: codeFor(secret) }, REDIRECT));
    assert.match(page.url, /^https:\/\/app\.example\.test\/callback\?code=/);
    assert.ok(sessionId(shared) && sessionId(shared) !== aliceId, 'a new session id for bob');
    assert.deepEqual(await reach(alices), signedOutReach, "alice's session id is no session any more");
    assert.deepEqual(await reach(shared.cookieHeader(server.url)), { account: 200, silent: 'code' });

    // Step-up: carol's password-only session (signed in before she set up her authenticator app), then an app asks for a second factor.
    const agent = new Agent();
    await signInSteps(agent, await agent.follow(authUrl(), {}, REDIRECT), { username: 'carol', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    const before = agent.cookieHeader(server.url);
    const beforeId = sessionId(agent);
    const carolSecret = await enrolTotp('carol');
    page = await agent.follow(authUrl({ acr_values: 'mfa' }), {}, REDIRECT);
    page = await agent.submit(page, '/login', { username: 'carol', password: PASSWORD }, REDIRECT);
    assert.match(page.html, /second-factor/, `expected the second-factor page, got ${page.status} ${page.url}`);
    page = await through(agent, await agent.submit(page, '/second-factor', { method: 'totp', code: codeFor(carolSecret) }, REDIRECT));
    assert.match(page.url, /^https:\/\/app\.example\.test\/callback\?code=/, page.url);
    assert.ok(sessionId(agent) && sessionId(agent) !== beforeId, 'a new session id at the step-up');
    assert.deepEqual(await reach(before), signedOutReach, 'the password-only session id is no session any more');
    assert.deepEqual(await reach(agent.cookieHeader(server.url)), { account: 200, silent: 'code' });
  });

  it('sign-out is complete and only by the person: a GET of /session/end ends nothing; once signed out, the session id replayed signs nobody in and the account page open in another tab changes nothing; a sign-out page left open signs out no later session (ASVS V3.3.1, OIDC RP-Initiated Logout §2)', async () => {
    const agent = new Agent();
    await signInSteps(agent, await agent.follow(authUrl(), {}, REDIRECT), { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
    const old = agent.cookieHeader(server.url);
    // A link or image to the sign-out endpoint, with and without a post-logout URI: a confirmation page, nothing ended.
    for (const query of ['', `?client_id=app&post_logout_redirect_uri=${encodeURIComponent(SIGNED_OUT)}`]) {
      const shown = await agent.request(`${server.url}/session/end${query}`);
      assert.equal(shown.status, 200);
      assert.equal(shown.headers.get('cache-control'), 'no-store');
    }
    assert.deepEqual(await reach(old), { account: 200, silent: 'code' }, 'a GET signs nobody out');
    // The account page, open in a second tab, with its form token.
    const accountTab = await agent.follow(`${server.issuer}/account`);
    assert.equal(accountTab.url, `${server.issuer}/account`);
    const staleSignOut = await agent.follow(`${server.url}/session/end`);
    // Signing out in the first tab.
    const out = await agent.submit(await agent.follow(`${server.url}/session/end`), '/session/end/confirm', { logout: 'yes' });
    assert.equal(out.status, 200);
    assert.equal(sessionId(agent), undefined, 'the browser is told to forget the cookie');
    assert.deepEqual(await reach(old), signedOutReach, 'the session id replayed is no session (ended on the server, not only in the browser)');
    const sessions = await agent.submit(accountTab, '/account/sessions/sign-out', {});
    assert.equal(sessions.status, 401, 'the account page of the ended session acts for nobody');
    const replayed = await fetch(`${server.url}/account/sessions/sign-out`, {
      method: 'POST',
      headers: { cookie: old, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: /name="csrf" value="([^"]+)"/.exec(accountTab.html)![1]! }),
      redirect: 'manual',
    });
    assert.equal(replayed.status, 401, 'nor with the old cookie and token replayed');
    // Signed in again; the sign-out page left open in a tab from the session before is sent.
    await signInSteps(agent, await agent.follow(authUrl(), {}, REDIRECT), { username: 'alice', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    const current = agent.cookieHeader(server.url);
    const stale = await agent.submit(staleSignOut, '/session/end/confirm', { logout: 'yes' });
    assert.equal(stale.status, 400, 'its form token was the ended session\'s');
    assert.deepEqual(await reach(current), { account: 200, silent: 'code' }, 'the later session goes on');
    // Not an "invalid sign-in request" a person on a shared computer walks away from believing they signed out.
    assert.match(stale.html, /<h1>Not signed out<\/h1>/);
    assert.match(stale.html, /You may still be signed in here/);
    const again = /<a class="button" href="([^"]+)">Sign out<\/a>/.exec(stale.html)?.[1];
    assert.equal(again && new URL(again).pathname, '/session/end', 'the page offers the sign-out again');
    const signOutAgain = await agent.follow(again!);
    const ended = await agent.submit(signOutAgain, '/session/end/confirm', { logout: 'yes' });
    assert.equal(ended.status, 200, 'and that sign-out goes through');
    assert.deepEqual(await reach(current), signedOutReach, 'the later session ended by it');
  });

  it("the session id is 256 random bits, new at every sign-in, and travels only in its cookie: never in a URL, a Location, a page or a Referer of a whole visit (sign-in, consent, account and developer pages, sign-out) (ASVS V3.2.2, V3.1.1)", async () => {
    const seen: string[] = [];
    class Watching extends Agent {
      override async request(url: string, init: RequestInit = {}): Promise<Response> {
        const response = await super.request(url, init);
        seen.push(url, response.headers.get('location') ?? '', response.headers.get('referrer-policy') ?? '', await response.clone().text());
        return response;
      }
    }
    const ids = new Set<string>();
    for (let i = 0; i < 4; i += 1) {
      const agent = new Watching();
      await signInSteps(agent, await agent.follow(authUrl({ prompt: 'consent' }), {}, REDIRECT), { username: 'alice', password: PASSWORD, login: 'required', stopAt: REDIRECT });
      const id = sessionId(agent)!;
      assert.match(id, /^[A-Za-z0-9_-]{43,}$/, 'at least 256 bits, base64url');
      ids.add(id);
      await agent.follow(`${server.issuer}/account/sign-in`);
      assert.equal((await agent.follow(`${server.issuer}/account`)).status, 200);
      await agent.follow(`${server.issuer}/developer/sign-in`);
      await agent.follow(`${server.issuer}/developer`);
      await agent.submit(await agent.follow(`${server.url}/session/end`), '/session/end/confirm', { logout: 'yes' });
      const everything = seen.join('\n');
      assert.ok(!everything.includes(id), 'the session id appears in no URL, Location or page');
      assert.ok(seen.filter((_, n) => n % 4 === 2).every((policy) => policy === 'no-referrer'), 'no page sends a Referer');
    }
    assert.equal(ids.size, 4);
  });
});

describe('redteam-sessions: the back button after signing out (Chromium)', function () {
  this.timeout(45_000);
  let server: TestServer;
  let browser: Browser;

  before(async () => {
    server = await startServer();
    await server.accounts.create('dana', PASSWORD, { name: 'Dana Private' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it("back and forward after signing out show none of the person's pages from the browser's cache (account, developer page): each is asked again and asks for a sign-in (ASVS V8.2.1, V3.3.1)", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.issuer}/account`);
    await page.fill('input[name="username"]', 'dana');
    await page.fill('input[name="password"]', PASSWORD);
    await Promise.all([page.waitForURL(`${server.issuer}/account`), page.click('button[type="submit"]')]);
    assert.match(await page.content(), /Dana Private/);
    await page.goto(`${server.issuer}/developer`);
    await page.fill('input[name="name"]', 'Dana Secret App');
    await page.fill('textarea[name="redirect_uris"]', 'https://dana.example.test/cb');
    // The navigation's own URL, not the load state (which the page before already has, so it raced the POST).
    await Promise.all([page.waitForURL(`${server.issuer}/developer/apps`), page.click('form[action="/developer/apps"] button[type="submit"]')]);
    assert.match(await page.content(), /App registered/);
    await page.goto(`${server.issuer}/developer`);
    assert.match(await page.content(), /Dana Secret App/);
    await page.goto(`${server.issuer}/session/end`);
    await Promise.all([page.waitForURL(/\/session\/end\/success/), page.click('button[name="logout"], button[type="submit"]')]);
    assert.match(page.url(), /\/session\/end\/success/);
    // Back through /session/end, the developer page, the app's secret (a POST's answer: Chromium asks to
    // send it again, ERR_CACHE_MISS, rather than show it), and the account page; then forward again.
    const visited: string[] = [];
    const move = async (go: () => Promise<unknown>) => {
      await go().catch((error: Error) => assert.match(error.message, /ERR_CACHE_MISS/));
      await page.waitForLoadState('load');
      const html = await eventually(() => page.content(), 20, 100);
      visited.push(page.url());
      assert.doesNotMatch(html, /Dana Private|Signed in as|Dana Secret App|Copy the secret/, visited.join(' < '));
    };
    for (let back = 0; back < 5; back += 1) await move(() => page.goBack({ waitUntil: 'load' }));
    for (let forward = 0; forward < 5; forward += 1) await move(() => page.goForward({ waitUntil: 'load' }));
    // The account page was asked again (its sign-in shown), and the secret's page was not shown from the cache.
    assert.ok(visited.some((url) => url.includes('/interaction/')), visited.join(' '));
    assert.ok(visited.some((url) => url.startsWith('chrome-error:')), visited.join(' '));
    await context.close();
  });
});

describe('redteam-sessions: an idle session (black box)', function () {
  this.timeout(40_000);
  let server: TestServer;

  before(async () => {
    // Sessions live 5 seconds from their last use (whole seconds: a little over 4, time enough on a
    // loaded machine for a sign-in to reach the account page), and at most an hour after their sign-in.
    server = await startServer({ env: { TTL_SESSION: '5', TTL_SESSION_MAX: '3600' } });
    await server.accounts.create('erin', PASSWORD);
  });
  after(() => server?.stop());

  it('a session left idle for ttl.session ends on the server, "keep me signed in" or not: its cookie replayed reaches neither the account page nor a silent sign-in (ASVS V3.3.2)', async () => {
    const cookies: string[] = [];
    for (const fields of [{}, { remember: 'yes' }] as Record<string, string>[]) {
      const agent = new Agent();
      const page = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'erin', password: PASSWORD, login: 'required', consent: 'stop', fields });
      assert.equal(page.url, `${server.issuer}/account`);
      cookies.push(agent.cookieHeader(server.url));
    }
    // Nothing touches them for longer than ttl.session (any check before would be a use that keeps
    // them). They end at their exp: the engine's 15 s of clock tolerance, with which it read its own
    // records, kept them that much longer before patches/exact-expiry.ts.
    await new Promise((resolve) => setTimeout(resolve, 6_500));
    for (const cookie of cookies) {
      const account = await fetch(`${server.url}/account`, { headers: { cookie, accept: 'text/html' }, redirect: 'manual' });
      assert.equal(account.status, 302, 'still signed in');
      assert.match(account.headers.get('location') ?? '', /sign-in/);
      const silent = await fetch(`${server.issuer}/account/sign-in`, { headers: { cookie }, redirect: 'manual' });
      const auth = await fetch(new URL(silent.headers.get('location')!).href.replace('scope=openid', 'scope=openid&prompt=none'), { headers: { cookie }, redirect: 'manual' });
      assert.equal(new URL(auth.headers.get('location')!).searchParams.get('error'), 'login_required');
    }
  });
});
