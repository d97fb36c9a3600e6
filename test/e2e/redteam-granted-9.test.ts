/**
 * The red team's ninth pass at "Latchkey hands out more than was granted" (2026-12-02), the people
 * side, black box: a person's consent given to an app that only calls itself by another's name.
 * An app's name (and logo) is whatever its developer typed: anyone who may use the developer page
 * (or open registration) registered an app named "Notes", like the operator's, with its redirect
 * URI on a host of their own, and its sign-in and consent pages read word for word as the real
 * app's: the person, signed in, allowed it their email and name, which went to the impostor's host, and
 * the account page then listed two apps called Notes alike, so the person could not tell which to
 * withdraw.
 * That succeeded before its fix; the rest of the pass held, and docs/security-passes.md lists what was tried.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { developerSignIn } from '../helpers/developer.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'red team granted nine passphrase';
const NOTES_REDIRECT = 'https://notes.example.test/callback';
const NOTES = { client_id: 'notes', client_name: 'Notes', client_secret: 'notes-client-secret-with-plenty-of-entropy-0123456789', redirect_uris: [NOTES_REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
const IMPOSTOR_REDIRECT = 'https://notes-sign-in.example.net/callback';

describe("e2e (Chromium): red team, ninth pass, an app's pages name where the person is sent back, not only what the app calls itself", function () {
  this.timeout(60_000);
  let server: TestServer;
  let browser: Browser;
  let impostorId: string;

  before(async () => {
    server = await startServer({ ownRedis: true, clients: [NOTES] });
    await server.accounts.create('mallory', PASSWORD);
    await server.accounts.create('alice', PASSWORD, { email: 'alice@example.test', email_verified: true, name: 'Alice Example' });
    // Mallory, a person like any other, registers a single-page app on the developer page named as the operator's.
    const { agent, page } = await developerSignIn(server.issuer, 'mallory', PASSWORD);
    const made = await agent.submit(page, '/developer/apps', { name: 'Notes', type: 'spa', redirect_uris: IMPOSTOR_REDIRECT });
    impostorId = made.html.match(/id="client-id">([^<]+)</)?.[1] ?? '';
    assert.ok(impostorId, `registered: ${made.status}`);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** What the person reads on the page an authorization request of `clientId` shows (login or consent), without the parts that change per request. */
  async function pageText(page: Page, clientId: string, redirectUri: string): Promise<string> {
    const url = new URL(`${server.issuer}/auth`);
    const challenge = await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier());
    for (const [name, value] of Object.entries({ client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid email profile', code_challenge: challenge, code_challenge_method: 'S256' })) url.searchParams.set(name, value);
    await page.goto(url.href);
    await page.waitForSelector('main h1');
    return page.locator('main').innerText();
  }

  it("the login and consent pages of an app named like another say where the person goes back to, and the account page where each app is, so a name typed on the developer page cannot pass for the operator's app (RFC 6819 §4.4.1.4, RFC 7591 §5)", async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      // Both apps' hosts answer where the browser is sent back.
      for (const host of ['notes.example.test', 'notes-sign-in.example.net']) await page.route(`https://${host}/**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'back at the app' }));
      // Before signing in: the login page of each.
      const realLogin = await pageText(page, 'notes', NOTES_REDIRECT);
      const impostorLogin = await pageText(page, impostorId, IMPOSTOR_REDIRECT);
      assert.notEqual(impostorLogin, realLogin, 'the impostor’s login page reads as the real app’s');
      assert.match(impostorLogin, /notes-sign-in\.example\.net/);
      assert.match(realLogin, /notes\.example\.test/);

      // Signed in: the consent page of each.
      await page.fill('input[name="username"]', 'alice');
      await page.fill('input[name="password"]', PASSWORD);
      await page.click('button:has-text("Sign in")');
      await page.waitForSelector('button:has-text("Allow")');
      const impostorConsent = await page.locator('main').innerText();
      const realConsent = await pageText(page, 'notes', NOTES_REDIRECT);
      assert.match(realConsent, /Allow access/);
      assert.notEqual(impostorConsent, realConsent, 'the impostor’s consent page reads as the real app’s');
      assert.match(impostorConsent, /notes-sign-in\.example\.net/);
      assert.match(realConsent, /notes\.example\.test/);

      // The person allows both; the account page lists two apps called Notes, which they can tell apart to withdraw the impostor.
      for (const [clientId, redirectUri] of [['notes', NOTES_REDIRECT], [impostorId, IMPOSTOR_REDIRECT]] as const) {
        await pageText(page, clientId, redirectUri);
        await page.click('button:has-text("Allow")');
        await page.waitForURL(`${redirectUri}?**`);
      }
      await page.goto(`${server.issuer}/account`);
      const listed = await page.locator('.listed-text').allInnerTexts();
      const named = listed.filter((entry) => entry.startsWith('Notes'));
      assert.equal(named.length, 2, listed.join(' | '));
      assert.notEqual(named[0], named[1], 'two apps listed alike on the account page');
      assert.ok(named.some((entry) => entry.includes('notes-sign-in.example.net')) && named.some((entry) => entry.includes('notes.example.test')), named.join(' | '));
    } finally {
      await context.close();
    }
  });
});
