/**
 * The account page in Chromium, as people use it: signing in to it; a second browser (another
 * context, as a phone) signed out from the first and asked to sign in again; changing the password
 * (a wrong current one refused; afterwards the old one no longer signs in); withdrawing an app's
 * access. No script on the page but our own files (passkey enrolment), and no CSP violation (the app's logo comes from its own origin).
 * Screenshots of each state in test/artifacts/browser/account/.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Agent } from '../helpers/agent.js';
import { launchChromium, screenshots } from '../helpers/browser.js';
import { signInSteps } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'account page password';
const NEW_PASSWORD = 'a brand new passphrase';
const REDIRECT = 'https://notes.example.test/callback';
const LOGO = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" rx="12" fill="#c2410c"/><circle cx="32" cy="32" r="16" fill="#fff"/></svg>';
const PHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1';

describe('e2e (Chromium): the account page', function () {
  this.timeout(90_000);
  let server: TestServer;
  let logos: Server;
  let browser: Browser;
  const shot = screenshots('browser/account');
  let laptop: { context: BrowserContext; page: Page };
  /** CSP violations and other errors the pages logged. */
  const problems: string[] = [];

  before(async () => {
    logos = createServer((req, res) => {
      if (req.url === '/logo.svg') res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(LOGO);
      else res.writeHead(404).end();
    });
    await new Promise<void>((done) => logos.listen(0, '127.0.0.1', done));
    const logoUri = `http://127.0.0.1:${(logos.address() as AddressInfo).port}/logo.svg`;
    const notes = { client_id: 'notes', client_name: 'Orange Notes', logo_uri: logoUri, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] };
    server = await startServer({ ownRedis: true, clients: [notes] });
    await server.accounts.create('alice', PASSWORD, { name: 'Alice Liddell' });
    // Alice has let Orange Notes sign her in (elsewhere, before).
    const config = await oidc.discovery(new URL(server.issuer), 'notes', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid profile email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const agent = new Agent();
    await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    logos?.close();
  });

  async function openBrowser(userAgent?: string) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, ...(userAgent ? { userAgent } : {}) });
    const page = await context.newPage();
    page.on('console', (message) => {
      // (A 4xx page is logged as a failed load: only what the CSP refused counts.)
      if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text());
    });
    return { context, page };
  }

  /** From /account to the login page, signed in, straight back (no consent page: the account page is Latchkey itself). */
  async function signIn(page: Page, password = PASSWORD) {
    await page.goto(`${server.issuer}/account`);
    await page.fill('input[name="username"]', 'alice');
    await page.fill('input[name="password"]', password);
    await page.click('button:has-text("Sign in")');
    await page.waitForLoadState();
    await page.waitForURL(`${server.issuer}/account`);
  }

  it('a person signs in to their page: password, apps with access, where they are signed in', async () => {
    laptop = await openBrowser();
    await signIn(laptop.page);
    const main = laptop.page.locator('main');
    assert.match(await main.innerText(), /Signed in as alice \(Alice Liddell\)/);
    assert.match(await main.innerText(), /Orange Notes at notes\.example\.test\s+May know who you are, see your name and profile, see your email address\./);
    assert.equal(await laptop.page.locator('img.listed-logo').evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth), 64, 'the logo loads under the CSP');
    // No script but our own files for passkey enrolment (served from /static/, under script-src 'self').
    const scripts = await laptop.page.locator('script').evaluateAll((elements) => elements.map((element) => element.getAttribute('src') ?? 'inline'));
    assert.ok(scripts.every((src) => /^\/static\/[\w-]+\.js$/.test(src)), `only our own script files: ${scripts.join(', ')}`);
    await shot(laptop.page, 'account-page');
  });

  it('signs out another browser, which is asked to sign in again', async () => {
    const phone = await openBrowser(PHONE);
    await signIn(phone.page);
    await laptop.page.reload();
    // This browser first, then the phone (seen last), then where Alice let Orange Notes in (before).
    const rows = laptop.page.locator('#sessions .listed');
    assert.equal(await rows.count(), 3);
    assert.match(await rows.nth(0).innerText(), /This browser/);
    assert.match(await rows.nth(1).innerText(), /^Safari 18 on iOS \(mobile\)\s+From 127\.0\.0\.1\. Last seen .+ UTC\. Signed in .+ UTC\./);
    await shot(laptop.page, 'sessions');

    await rows.nth(1).locator('button:has-text("Sign out")').click();
    await laptop.page.waitForURL(/done=sessions\.signed-out/);
    assert.match(await laptop.page.locator('#sessions').innerText(), /That session is signed out/);
    assert.equal(await rows.count(), 2);
    assert.doesNotMatch(await laptop.page.locator('#sessions').innerText(), /Safari/);
    await shot(laptop.page, 'session-signed-out');

    await phone.page.goto(`${server.issuer}/account`);
    assert.ok(phone.page.url().includes('/interaction/'), `the phone is at ${phone.page.url()}`);
    assert.equal(await phone.page.locator('input[name="password"]').count(), 1, 'the phone is asked to sign in again');
    await shot(phone.page, 'phone-asked-to-sign-in');
    await phone.context.close();
  });

  it('withdraws an app’s access', async () => {
    const page = laptop.page;
    await page.locator('#apps button:has-text("Withdraw access")').click();
    await page.waitForURL(/done=apps\.withdrawn/);
    assert.match(await page.locator('#apps').innerText(), /Access withdrawn[\s\S]*No app has access to your account/);
    await shot(page, 'access-withdrawn');
  });

  it('changes the password: a wrong current one is refused; afterwards the old one no longer signs in', async () => {
    const page = laptop.page;
    await page.fill('#current_password', 'not my password');
    await page.fill('#new_password', NEW_PASSWORD);
    await page.fill('#confirm_password', NEW_PASSWORD);
    await page.click('button:has-text("Change password")');
    await page.waitForLoadState();
    assert.match(await page.locator('#password .error').innerText(), /That is not your current password/);
    await shot(page, 'wrong-current-password');

    await page.fill('#current_password', PASSWORD);
    await page.fill('#new_password', NEW_PASSWORD);
    await page.fill('#confirm_password', NEW_PASSWORD);
    await page.click('button:has-text("Change password")');
    await page.waitForURL(/done=password\.changed/);
    assert.match(await page.locator('#password .notice').innerText(), /Your password has been changed/);
    await shot(page, 'password-changed');

    const other = await openBrowser();
    await other.page.goto(`${server.issuer}/account`);
    await other.page.fill('input[name="username"]', 'alice');
    await other.page.fill('input[name="password"]', PASSWORD);
    await other.page.click('button:has-text("Sign in")');
    await other.page.waitForSelector('.error');
    assert.match(await other.page.locator('.error').innerText(), /do not match/);
    await signIn(other.page, NEW_PASSWORD);
    await other.context.close();
    assert.deepEqual(problems, [], 'no CSP violation or other error on any page');
  });
});
