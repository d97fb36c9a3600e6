/**
 * The red team's thirteenth pass at "Latchkey hands out more than was granted" (2026-12-03): sign-ins
 * interleaved in one browser (Chromium, whose cookies are scoped by path as the interaction's are):
 * apps' requests pending at once, one finished with its second factor and consent, then another by
 * its own form, as the same person or another, and one requiring a second factor after another
 * person's; and two sign-ins through the (fake) upstream pending at once in one browser (a cookie jar:
 * the state cookie is one per browser, whatever the path), which held and are pinned here where no
 * earlier test performed them; and, found and fixed, a login_hint of an address the signed-in person
 * holds unverified answered with that person's code. docs/security-passes.md lists the rest of what was tried.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import type { Browser, Page } from 'playwright-core';
import { Agent } from '../helpers/agent.js';
import { launchChromium } from '../helpers/browser.js';
import { isConsent, startAuthorization } from '../helpers/sign-in.js';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'red team granted thirteen passphrase';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789abcdef';
const NOTES = 'https://notes.example.test/callback';
const TASKS = 'https://tasks.example.test/callback';
const UPSTREAM_SECRET = 'upstream-client-secret-with-plenty-of-entropy-0123456789';
const codeFor = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });

describe('e2e (Chromium): red team, thirteenth granting pass, sign-ins interleaved in one browser give each app its own request, person and factors', function () {
  this.timeout(90_000);
  let server: TestServer;
  let browser: Browser;
  let notes: oidc.Configuration;
  let tasks: oidc.Configuration;
  /** The authenticator apps of pia and quinn: each code is spent once, so each sign-in takes the next step's (`last`: the one typed last). */
  const totp: Record<string, { secret: string; step: number; last?: string }> = {};
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;
  const subs: Record<string, string> = {};

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
      clients: [
        { client_id: 'notes', client_name: 'Notes', client_secret: SECRET, redirect_uris: [NOTES], grant_types: ['authorization_code', 'refresh_token'] },
        { client_id: 'tasks', client_name: 'Tasks', client_secret: SECRET, redirect_uris: [TASKS], grant_types: ['authorization_code', 'refresh_token'] },
      ],
    });
    const pia = await server.accounts.create('pia', PASSWORD, { email: 'pia@example.test', email_verified: true });
    const sam = await server.accounts.create('sam', PASSWORD, { email: 'sam@example.test', email_verified: true });
    subs.pia = pia.sub;
    subs.sam = sam.sub;
    const quinn = await server.accounts.create('quinn', PASSWORD);
    subs.quinn = quinn.sub;
    for (const [username, sub] of [['pia', pia.sub], ['quinn', quinn.sub]] as const) {
      const { secret } = await server.secondFactors.totp.begin(sub, username, 'test-session');
      assert.equal(await server.secondFactors.totp.confirm(sub, codeFor(secret, -1), 'test-session'), true);
      totp[username] = { secret, step: 0 };
    }
    const options = { execute: [oidc.allowInsecureRequests] };
    notes = await oidc.discovery(new URL(server.issuer), 'notes', SECRET, undefined, options);
    tasks = await oidc.discovery(new URL(server.issuer), 'tasks', SECRET, undefined, options);
    fake = await fakeUpstreamOf(server, UPSTREAM_SECRET);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await fake?.close();
    await server?.stop();
  });

  /** An app's request opened in a new tab of `context`'s browser; the tab and the PKCE verifier. */
  async function open(context: Awaited<ReturnType<Browser['newContext']>>, config: oidc.Configuration, redirectUri: string, scope: string, extra: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope, state: 'st', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra });
    const tab = await context.newPage();
    await tab.goto(url.href);
    await tab.waitForSelector('main h1');
    return { tab, verifier };
  }

  /** The password (and the person's authenticator code when asked) typed in `tab`. */
  async function signIn(tab: Page, username: string): Promise<void> {
    await tab.fill('input[name="username"]', username);
    await tab.fill('input[name="password"]', PASSWORD);
    await tab.click('button:has-text("Sign in")');
    await tab.waitForSelector('main h1');
    if (await tab.locator('input[name="code"][inputmode="numeric"]').count()) {
      const app = totp[username]!;
      app.last = codeFor(app.secret, app.step++);
      await tab.fill('input[name="code"][inputmode="numeric"]', app.last);
      await tab.click('button:has-text("Verify")');
      await tab.waitForSelector('main h1');
    }
  }

  async function allow(tab: Page): Promise<void> {
    await tab.click('button:has-text("Allow")');
  }

  /** The code `tab` was sent back with, redeemed. */
  async function redeemed(config: oidc.Configuration, answer: string, verifier: string) {
    assert.match(answer, /[?&]code=/, `expected a code, got ${answer}`);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(answer), { pkceCodeVerifier: verifier, expectedState: 'st' });
    return { scope: tokens.scope, refresh: tokens.refresh_token, claims: tokens.claims()! };
  }

  /** Tokens of `sub` for `openid` alone, signed in with `amr`: no refresh token, no email. */
  function openidOnly(tokens: Awaited<ReturnType<typeof redeemed>>, sub: string, amr: string[]): void {
    assert.equal(tokens.claims.sub, sub);
    assert.equal(tokens.scope, 'openid');
    assert.equal(tokens.refresh, undefined);
    assert.equal(tokens.claims.email, undefined);
    assert.deepEqual(tokens.claims.amr, amr);
  }

  it("apps' sign-ins pending in one browser: finishing one (second factor, consent to email and offline access) and then another, by its own form as the same person or as another, gives each app its own request's scope and its own person's code and factors; an authenticator code spent in one counts in no other; the second person's session answers neither the first's app nor its consent, nor meets an app's acr_values=mfa with the first's second factor", async () => {
    const context = await browser.newContext();
    // Where the apps were sent back to (the request is seen whether or not the page loads).
    const answers: string[] = [];
    context.on('request', (request) => {
      if (request.url().startsWith(NOTES) || request.url().startsWith(TASKS)) answers.push(request.url());
    });
    await context.route(/^https:\/\/(notes|tasks)\.example\.test\//, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<main><h1>back at the app</h1></main>' }));
    // `state` tells the requests apart (a navigation cut short may be seen twice).
    const answerFor = async (redirectUri: string, state = 'st') => {
      const deadline = Date.now() + 20_000;
      const ours = (url: string) => url.startsWith(redirectUri) && new URL(url).searchParams.get('state') === state;
      while (!answers.some(ours) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      const index = answers.findIndex(ours);
      assert.notEqual(index, -1, `nothing came back to ${redirectUri}`);
      return answers.splice(index, 1)[0]!;
    };
    try {
      // Notes asks for openid only; tasks for openid email offline_access. Both wait at the login form.
      const a = await open(context, notes, NOTES, 'openid');
      const b = await open(context, tasks, TASKS, 'openid email offline_access', { prompt: 'consent' });
      const c = await open(context, notes, NOTES, 'openid');
      const e = await open(context, tasks, TASKS, 'openid', { acr_values: 'mfa' });
      const f = await open(context, notes, NOTES, 'openid');
      // Tasks finishes first: pia's password, her authenticator code, her consent.
      await signIn(b.tab, 'pia');
      await allow(b.tab);
      const forTasks = await redeemed(tasks, await answerFor(TASKS), b.verifier);
      assert.equal(forTasks.claims.sub, subs.pia);
      assert.equal(forTasks.scope, 'openid email offline_access');
      assert.ok(forTasks.refresh);
      assert.equal(forTasks.claims.acr, 'mfa');

      // Notes' login form, left open, posted by pia: the code her authenticator gave for tasks' sign-in counts for no other,
      // then her sign-in again (both factors), and notes' own consent page, for openid only.
      const spent = totp.pia!.last!;
      await a.tab.fill('input[name="username"]', 'pia');
      await a.tab.fill('input[name="password"]', PASSWORD);
      await a.tab.click('button:has-text("Sign in")');
      await a.tab.fill('input[name="code"][inputmode="numeric"]', spent);
      await a.tab.click('button:has-text("Verify")');
      await a.tab.waitForSelector('main h1');
      assert.equal(await a.tab.locator('input[name="code"][inputmode="numeric"]').count(), 1, 'the second factor is asked again');
      await a.tab.fill('input[name="code"][inputmode="numeric"]', codeFor(totp.pia!.secret, totp.pia!.step++));
      await a.tab.click('button:has-text("Verify")');
      await a.tab.waitForSelector('main h1');
      const page = await a.tab.locator('main').innerText();
      assert.match(page, /Notes asks to/);
      assert.doesNotMatch(page, /email|offline/i);
      await allow(a.tab);
      openidOnly(await redeemed(notes, await answerFor(NOTES), a.verifier), subs.pia!, ['pwd', 'otp', 'mfa']);

      // A third request of notes, opened before either sign-in, its form posted by sam: sam's own code, sam's factors.
      await signIn(c.tab, 'sam');
      const samPage = await c.tab.locator('main').innerText();
      assert.match(samPage, /Signed in as sam/);
      assert.doesNotMatch(samPage, /email|offline/i);
      await allow(c.tab);
      openidOnly(await redeemed(notes, await answerFor(NOTES), c.verifier), subs.sam!, ['pwd']);

      // The browser is sam's now: tasks, which only pia allowed, gets no code silently.
      const silent = await context.newPage();
      const verifier = oidc.randomPKCECodeVerifier();
      await silent.goto(oidc.buildAuthorizationUrl(tasks, { redirect_uri: TASKS, scope: 'openid email', state: 'silent', prompt: 'none', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }).href, { waitUntil: 'commit' }).catch(() => undefined); // a redirect off our origin in goto may end as a name error: the request was seen
      const quiet = await answerFor(TASKS, 'silent');
      assert.equal(new URL(quiet).searchParams.get('code'), null, quiet);
      assert.equal(new URL(quiet).searchParams.get('error'), 'consent_required', quiet);

      // Two more requests pending: tasks requiring a second factor (acr_values=mfa), and notes. Quinn signs in at notes with his;
      // then tasks' form, posted by sam (who has none), gets no code and no acr of quinn's sign-in.
      await signIn(f.tab, 'quinn');
      await allow(f.tab);
      const forQuinn = await redeemed(notes, await answerFor(NOTES), f.verifier);
      assert.equal(forQuinn.claims.sub, subs.quinn);
      assert.equal(forQuinn.claims.acr, 'mfa');
      await signIn(e.tab, 'sam');
      assert.match(await e.tab.locator('main').innerText(), /Second factor required/);
      await e.tab.click('button:has-text("Return to the application")');
      const unmet = new URL(await answerFor(TASKS));
      assert.equal(unmet.searchParams.get('code'), null, unmet.href);
      assert.equal(unmet.searchParams.get('error'), 'unmet_authentication_requirements', unmet.href);

    } finally {
      await context.close();
    }
  });

  it("two apps' sign-ins through the upstream pending in one browser: the first's answer, arriving after the second was started, signs no one in and is not redeemed; the second's signs in to its own app's request only, and neither answer counts again", async () => {
    const agent = new Agent();
    const callbackPath = `${server.issuer}/upstream/fake/callback`;
    /** An app's request sent straight to the upstream (upstream=fake): the upstream's answer, not yet delivered. */
    const upstreamAnswer = async (config: oidc.Configuration, redirectUri: string, scope: string) => {
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope, state: 'st', upstream: 'fake', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      const page = await agent.follow(url.href, {}, callbackPath);
      assert.ok(page.url.startsWith(callbackPath), `expected the upstream's answer, got ${page.status} ${page.url}`);
      return { answer: page.url, verifier };
    };
    fake.state.sub = 'fake-person-interleaved';
    const forNotes = await upstreamAnswer(notes, NOTES, 'openid');
    const forTasks = await upstreamAnswer(tasks, TASKS, 'openid email offline_access');
    const redeemedAtUpstream = fake.state.tokens;
    // Notes' answer: this browser's state is tasks' now.
    const refused = await agent.follow(forNotes.answer, {}, NOTES);
    assert.equal(refused.status, 400, `${refused.status} ${refused.url}`);
    assert.equal(fake.state.tokens, redeemedAtUpstream, "notes' answer was not redeemed at the upstream");
    // Tasks' answer: tasks' own consent page, for what tasks asked.
    const consent = await agent.follow(forTasks.answer, {}, TASKS);
    assert.match(consent.html, /<bdi>Tasks<\/bdi><\/strong> asks to/);
    const back = await agent.submit(consent, '/confirm', {}, TASKS);
    const tokens = await oidc.authorizationCodeGrant(tasks, new URL(back.url), { pkceCodeVerifier: forTasks.verifier, expectedState: 'st' });
    assert.equal(tokens.scope, 'openid email offline_access');
    // Both answers again: neither signs in again, nor is redeemed.
    const redeemed = fake.state.tokens;
    for (const answer of [forNotes.answer, forTasks.answer]) {
      const again = await agent.follow(answer, {}, NOTES);
      assert.equal(again.status, 400, `${answer}: ${again.status} ${again.url}`);
      assert.ok(!again.url.startsWith(NOTES) && !again.url.startsWith(TASKS), again.url);
    }
    assert.equal(fake.state.tokens, redeemed);
  });

  it("a login_hint naming an address the session's person holds unverified (an upstream's word not taken, an operator's entry) is not answered with that person: the login page, login_required at prompt=none; the address verified, or the username, still signs in silently (OIDC Core §3.1.2.1)", async () => {
    // Mallory's account holds uma's address, which nobody verified (as an upstream's unverified address is taken just in time).
    const mallory = await server.accounts.create('mallory', PASSWORD, { email: 'uma@example.test', email_verified: false });
    const agent = new Agent();
    const first = await startAuthorization(agent, notes, NOTES);
    let page = await agent.submit(first.page, '/login', { username: 'mallory', password: PASSWORD }, NOTES);
    if (isConsent(page)) page = await agent.submit(page, '/confirm', {}, NOTES);
    assert.ok(page.url.startsWith(NOTES), `signed in: ${page.status} ${page.url}`);
    // Notes' chooser offers "Continue as uma@example.test" at this browser: it is not mallory who is asked for.
    const silent = await startAuthorization(agent, notes, NOTES, { login_hint: 'uma@example.test', prompt: 'none' });
    const answer = new URL(silent.page.url);
    assert.equal(answer.searchParams.get('code'), null, `mallory's code for a hint of uma's address: ${silent.page.url}`);
    assert.equal(answer.searchParams.get('error'), 'login_required', silent.page.url);
    const shown = await startAuthorization(agent, notes, NOTES, { login_hint: 'uma@example.test' });
    assert.ok(shown.page.html.includes('name="password"'), `the login page: ${shown.page.status} ${shown.page.url}`);
    // Mallory's username names her; so does the address once it is verified.
    const byName = await startAuthorization(agent, notes, NOTES, { login_hint: 'mallory', prompt: 'none' });
    assert.ok(new URL(byName.page.url).searchParams.get('code'), byName.page.url);
    await server.accounts.updateClaims(mallory.sub, { email: 'uma@example.test', email_verified: true });
    const verified = await startAuthorization(agent, notes, NOTES, { login_hint: 'uma@example.test', prompt: 'none' });
    assert.ok(new URL(verified.page.url).searchParams.get('code'), verified.page.url);
  });
});
