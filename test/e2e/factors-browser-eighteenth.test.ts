/**
 * The eighteenth passes over passkeys and second factors, in a real browser (docs/security-passes.md,
 * "passkeys, second factors and the new kinds of clients, in a real browser (h14)"): Debian's
 * Chromium with its virtual authenticator (DevTools WebAuthn domain) against a running Latchkey on a
 * Redis of its own, the account page as the person uses it.
 */
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'a passphrase for the eighteenth browser pass';

describe('passkeys in Chromium, eighteenth pass (black box)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let browser: Browser;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** A browser context with a virtual authenticator that answers at once. */
  async function withAuthenticator() {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    return { context, page, cdp, authenticatorId };
  }

  /** A new such context, signed in to the account page as `username` with their password. */
  async function signedIn(username: string) {
    const { context, page, cdp, authenticatorId } = await withAuthenticator();
    await page.goto(`${server.issuer}/account`);
    await page.waitForSelector('input[name="password"]');
    await page.fill('input[name="username"]', username);
    await page.fill('input[name="password"]', PASSWORD);
    await page.press('input[name="password"]', 'Enter');
    await page.waitForSelector('#passkeys');
    return { context, page, credentials: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials };
  }

  it('the account page open in two tabs (or on two devices): a passkey added in the one opened first is registered, not refused after the authenticator made it', async () => {
    await server.accounts.create('two-tabs', PASSWORD);
    const { context, page: first, credentials } = await signedIn('two-tabs');
    try {
      // A second view of the account page (another tab, a reload, another device of the same person).
      const second = await context.newPage();
      await second.goto(`${server.issuer}/account`);
      await second.waitForSelector('#passkeys');
      await first.bringToFront(); // WebAuthn asks a focused page
      await first.fill('#passkey-name', 'First tab');
      await first.click('#passkey-enrol-button');
      await first.waitForSelector('text=/Passkey added\\.|could not be added/');
      // Before: "could not be added", with a passkey the authenticator now holds and Latchkey never registered.
      assert.equal(await first.locator('text=Passkey added.').count(), 1, (await first.locator('#passkeys').innerText()).slice(0, 300));
      assert.equal((await credentials()).length, 1);
      assert.match(await first.locator('#passkeys').innerText(), /First tab/);
    } finally {
      await context.close();
    }
  });

  /**
   * Signs in at the account page's login with the passkey the browser's autofill offers (the
   * authenticator answers the login page's request at once); true when the account page was reached,
   * false when the login page came back refusing it (its autofill then off).
   */
  async function passkeySignIn(page: Page): Promise<boolean> {
    await page.goto(`${server.issuer}/account`);
    await page.waitForSelector('#passkeys, #passkey-form[data-autofill="no"]');
    return (await page.locator('#passkeys').count()) > 0;
  }

  it('held: a cloned authenticator (the passkey copied with its counter, then used less often than the original) is refused, the original still signs in (WebAuthn L3 §7.2 step 22)', async () => {
    await server.accounts.create('cloned', PASSWORD);
    const { context, page, credentials } = await signedIn('cloned');
    const clone = await withAuthenticator();
    try {
      await page.fill('#passkey-name', 'Original');
      await page.click('#passkey-enrol-button');
      await page.waitForSelector('text=Passkey added.');
      const [copied] = await credentials();
      // The copy taken now (its counter as made); the original is then used twice, as its owner would.
      await context.clearCookies();
      assert.ok(await passkeySignIn(page), 'the original signs in');
      await context.clearCookies();
      assert.ok(await passkeySignIn(page), 'and again');
      await clone.cdp.send('WebAuthn.addCredential', { authenticatorId: clone.authenticatorId, credential: copied! });
      assert.equal(await passkeySignIn(clone.page), false, 'the clone, its counter behind the original\'s, is refused');
      await context.clearCookies();
      assert.ok(await passkeySignIn(page), 'the original still signs in');
    } finally {
      await clone.context.close();
      await context.close();
    }
  });
});
