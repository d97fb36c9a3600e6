/**
 * OAuth 2.0 Form Post Response Mode, as the OpenID Foundation's Form Post plan plays it, but in a
 * real browser: the response is an HTML form that the browser submits by itself (§2), under the
 * strict Content-Security-Policy of Latchkey's pages, whose script-src admits the engine's inline
 * auto-submit by its hash. The client's redirect URI is intercepted in Chromium, so the test sees
 * exactly what the browser posted. Besides the first sign-in and a silent error, the answer is
 * given on other paths, each checked here with no click on the answer's page: straight from GET
 * /auth (an existing session), after a page whose CSP was widened for a client's logo (consent,
 * second factor, account chooser), on "Cancel" at consent, and for a pushed request (PAR).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import type { Browser, BrowserContext, Page as BrowserPage } from 'playwright-core';
import { launchChromium, watchCsp } from '../helpers/browser.js';
import { addPerson, ALICE, startOp, webClient, type Op, type Person } from './fixture.js';

const SECRET = 'form-post-client-secret-with-plenty-of-entropy-0123';
const REDIRECT = 'https://web.example.test/callback';
/** Both clients' redirect URIs: web's, and logo's (a client whose logo widens img-src on our pages). */
const CALLBACKS = /^https:\/\/(web|logo)\.example\.test\/callback/;

interface Posted {
  readonly method: string;
  readonly contentType: string;
  readonly params: URLSearchParams;
}

describe('OAuth 2.0 Form Post Response Mode (in a browser)', function () {
  this.timeout(60_000);
  let op: Op;
  let browser: Browser;

  before(async () => {
    op = await startOp({ people: [ALICE], clients: [webClient('web', SECRET), webClient('logo', SECRET, { logo_uri: 'https://cdn.example.test/logo.png', policy_uri: 'https://logo.example.test/privacy' })] });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await op?.stop();
  });

  /**
   * A fresh browser whose requests to the clients' redirect URIs are caught and answered here:
   * `posted` is the first answer, `next()` the one after the last asked for.
   */
  async function person(): Promise<{ context: BrowserContext; page: BrowserPage; posted: Promise<Posted>; next: () => Promise<Posted>; violations: string[] }> {
    const context = await browser.newContext();
    const answers: Posted[] = [];
    let waiting: ((posted: Posted) => void) | undefined;
    let taken = 0;
    const next = () => new Promise<Posted>((done) => {
      if (answers.length > taken) done(answers[taken++]!);
      else waiting = (posted) => { taken += 1; done(posted); };
    });
    // The logo is not fetched from anywhere: the page's CSP is what is under test, not the image.
    await context.route('https://cdn.example.test/**', (route) => route.fulfill({ status: 404, body: '' }));
    await context.route(CALLBACKS, async (route) => {
      const request = route.request();
      answers.push({ method: request.method(), contentType: (await request.allHeaders())['content-type'] ?? '', params: new URLSearchParams(request.postData() ?? new URL(request.url()).search) });
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'the client got it' });
      const arrived = waiting;
      waiting = undefined;
      arrived?.(answers.at(-1)!);
    });
    const violations: string[] = [];
    const page = watchCsp(await context.newPage(), violations);
    return { context, page, posted: next(), next, violations };
  }

  async function authorizationUrl(params: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = new URL(op.metadata.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: 'web',
      response_type: 'code',
      response_mode: 'form_post',
      scope: 'openid',
      redirect_uri: `https://${params.client_id ?? 'web'}.example.test/callback`,
      state: 'form-post-state',
      nonce: 'form-post-nonce',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...params,
    }).toString();
    return { url: url.href, verifier };
  }

  it('after sign-in and consent the browser posts code, state and iss to the redirect URI by itself, form-encoded, and the code is good (Form Post Response Mode §2, RFC 9207 §2)', async () => {
    const { context, page, posted, violations } = await person();
    try {
      const { url, verifier } = await authorizationUrl();
      await page.goto(url);
      await page.fill('input[name="username"]', ALICE.username);
      await page.fill('input[name="password"]', ALICE.password);
      await page.click('button:has-text("Sign in")');
      await page.waitForSelector('text=Allow access?');
      await page.click('button:has-text("Allow")');
      const answer = await posted;
      assert.equal(answer.method, 'POST');
      assert.match(answer.contentType, /^application\/x-www-form-urlencoded/);
      assert.ok(answer.params.get('code'));
      assert.equal(answer.params.get('state'), 'form-post-state');
      assert.equal(answer.params.get('iss'), op.issuer);
      assert.deepEqual(violations, [], 'the auto-submit ran under the CSP');
      const token = await fetch(op.metadata.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: answer.params.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier }),
      });
      assert.equal(token.status, 200);
    } finally {
      await context.close();
    }
  });

  it('an error goes the same way: prompt=none without a session posts error=login_required with state and iss, and no code (Form Post Response Mode §2, Core §3.1.2.6)', async () => {
    const { context, page, posted, violations } = await person();
    try {
      await page.goto((await authorizationUrl({ prompt: 'none' })).url);
      const answer = await posted;
      assert.equal(answer.method, 'POST');
      assert.equal(answer.params.get('error'), 'login_required');
      assert.equal(answer.params.get('state'), 'form-post-state');
      assert.equal(answer.params.get('iss'), op.issuer);
      assert.equal(answer.params.get('code'), null);
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  let people = 0;
  /** A person of the test's own: no consent remembered from another test. */
  async function newPerson(): Promise<Person & { sub: string }> {
    people += 1;
    const someone = { username: `form-post-${people}`, password: `form post passphrase of person ${people}` };
    return { ...someone, sub: await addPerson(op.env, someone) };
  }

  async function signIn(page: BrowserPage, someone: Person) {
    await page.fill('input[name="username"]', someone.username);
    await page.fill('input[name="password"]', someone.password);
    await page.click('button:has-text("Sign in")');
  }

  /** The person signed in at the logo client and allowed it: its answer taken, the callback page loaded. */
  async function signedInAtLogo() {
    const who = await person();
    await who.page.goto((await authorizationUrl({ client_id: 'logo' })).url);
    await signIn(who.page, await newPerson());
    await who.page.click('button:has-text("Allow")');
    assert.ok((await who.posted).params.get('code'));
    await who.page.waitForURL(CALLBACKS);
    return who;
  }

  it('with a session, GET /auth answers straight away and the browser posts by itself: consent_required for prompt=none at a client not yet allowed, then a code at the one allowed (Form Post §2, Core §3.1.2.6)', async () => {
    const { context, page, next, violations } = await signedInAtLogo();
    try {
      // waitUntil commit: the answer's page submits itself, which may end its load before "load".
      await page.goto((await authorizationUrl({ client_id: 'web', prompt: 'none' })).url, { waitUntil: 'commit' });
      const silent = await next();
      assert.equal(silent.method, 'POST');
      assert.equal(silent.params.get('error'), 'consent_required');
      assert.equal(silent.params.get('state'), 'form-post-state');
      // The post is caught before its page loads: a goto now would race the browser's own navigation.
      await page.waitForURL(CALLBACKS);
      await page.goto((await authorizationUrl({ client_id: 'logo' })).url, { waitUntil: 'commit' });
      const sso = await next();
      assert.equal(sso.method, 'POST');
      assert.ok(sso.params.get('code'));
      assert.equal(sso.params.get('iss'), op.issuer);
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  it('"Cancel" at the consent page of a client with a logo posts error=access_denied by itself (Form Post §2, RFC 6749 §4.1.2.1)', async () => {
    const { context, page, posted, violations } = await person();
    try {
      await page.goto((await authorizationUrl({ client_id: 'logo' })).url);
      await signIn(page, await newPerson());
      await page.waitForSelector('text=Allow access?');
      await page.click('button:has-text("Cancel")');
      const answer = await posted;
      assert.equal(answer.method, 'POST');
      assert.equal(answer.params.get('error'), 'access_denied');
      assert.equal(answer.params.get('state'), 'form-post-state');
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  it('after the second factor and the account chooser (prompt=select_account), at a client with a logo, the browser posts the code by itself', async () => {
    const someone = await newPerson();
    const { totp } = op.server!.secondFactors;
    const { secret } = await totp.begin(someone.sub, someone.username, 'form-post');
    const codeFor = (steps: number) => TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });
    assert.equal(await totp.confirm(someone.sub, codeFor(-1), 'form-post'), true);
    const { context, page, posted, next, violations } = await person();
    try {
      await page.goto((await authorizationUrl({ client_id: 'logo' })).url);
      await signIn(page, someone);
      await page.fill('#totp-code', codeFor(0));
      await page.click('button:has-text("Verify")');
      await page.click('button:has-text("Allow")');
      assert.ok((await posted).params.get('code'));
      await page.waitForURL(CALLBACKS);
      await page.goto((await authorizationUrl({ client_id: 'logo', prompt: 'select_account' })).url);
      await page.click('button:has-text("Continue as")');
      const chosen = await next();
      assert.equal(chosen.method, 'POST');
      assert.ok(chosen.params.get('code'));
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });

  it('a pushed request (PAR, RFC 9126) with response_mode=form_post is answered the same way, the browser posting by itself', async () => {
    const { context, page, next, violations } = await signedInAtLogo();
    try {
      const pushed = await fetch(op.metadata.pushed_authorization_request_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`logo:${SECRET}`).toString('base64')}` },
        body: new URL((await authorizationUrl({ client_id: 'logo' })).url).searchParams,
      });
      assert.equal(pushed.status, 201);
      const { request_uri } = (await pushed.json()) as { request_uri: string };
      const url = new URL(op.metadata.authorization_endpoint!);
      url.search = new URLSearchParams({ client_id: 'logo', request_uri }).toString();
      await page.goto(url.href, { waitUntil: 'commit' });
      const answer = await next();
      assert.equal(answer.method, 'POST');
      assert.ok(answer.params.get('code'));
      assert.equal(answer.params.get('state'), 'form-post-state');
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });
});
