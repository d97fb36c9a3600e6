/**
 * Passkeys and second factors as a person sees them, in Debian's Chromium with its virtual
 * authenticator (DevTools WebAuthn domain: CTAP2, internal transport, resident keys and user
 * verification), and an app using openid-client: enrol a passkey and an authenticator app (its
 * codes computed here with otpauth) and make recovery codes on the account page; sign out; sign in
 * with the passkey alone (amr swk, acr phr); a password sign-in then asks for a second factor, and
 * the passkey answers it; remove the passkey and see it refused. Screenshots of each new page go to
 * test/artifacts/browser/passkeys/.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, screenshots, watchCsp } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'https://notes.example.test/callback';
const SECRET = 'passkey-test-client-secret-with-plenty-of-entropy';
const PASSWORD = 'a passphrase for the passkey test';

describe('e2e (Chromium, virtual authenticator): passkeys, authenticator app and recovery codes', function () {
  this.timeout(60_000);
  let server: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let notes: oidc.Configuration;
  let strict: oidc.Configuration;
  const cspViolations: string[] = [];
  /**
   * Whether the virtual authenticator answers at once, as if touched. With it on, a login page's
   * autofill request (conditional mediation) is answered as soon as the page loads; off, the
   * authenticator waits, as for a person who types their password instead.
   */
  let presence: (enabled: boolean) => Promise<unknown>;
  const shot = screenshots('browser/passkeys');
  const screenshot = (name: string) => shot(page, name);

  before(async () => {
    const client = (id: string, name: string, extra: Record<string, unknown> = {}) => ({ client_id: id, client_secret: SECRET, client_name: name, redirect_uris: [REDIRECT], ...extra });
    server = await startServer({ ownRedis: true, clients: [client('notes', 'Orange Notes'), client('vault', 'Vault', { require_mfa: true })] });
    await server.accounts.create('alice', PASSWORD, { name: 'Alice Liddell' });
    await server.accounts.create('bob', PASSWORD);
    const discover = (id: string) => oidc.discovery(new URL(server.issuer), id, SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    [notes, strict] = await Promise.all([discover('notes'), discover('vault')]);

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 900, height: 900 } });
    page = await context.newPage();
    watchCsp(page, cspViolations);
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    presence = (enabled) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });
    // The app's redirect URI: answered here, so the browser stops there and the test reads the code.
    await context.route('https://notes.example.test/**', (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'back at the app' }));
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** An authorization request of `config`'s app in the browser; returns how to finish it at the app. */
  async function authorize(config: oidc.Configuration, params: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...params,
    });
    await page.goto(url.href);
    return async () => {
      await allowIfAsked(() => page.url().startsWith(REDIRECT));
      const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier });
      return tokens.claims()!;
    };
  }

  /** Waits until `arrived`, allowing access on the consent page if it is asked on the way. */
  async function allowIfAsked(arrived: () => boolean | Promise<boolean>) {
    const consent = page.locator('h1:has-text("Allow access?")');
    for (let waited = 0; !(await arrived()); waited += 100) {
      if (waited > 15_000) throw new Error(`stuck at ${page.url()}: ${(await page.locator('body').innerText()).slice(0, 300)}`);
      if (await consent.count()) await page.click('button:has-text("Allow")');
      await page.waitForTimeout(100);
    }
  }

  const onAccountPage = async () => (await page.locator('#passkeys').count()) > 0;

  async function typePassword(username: string) {
    await page.waitForSelector('input[name="password"]');
    await page.fill('input[name="username"]', username);
    await page.fill('input[name="password"]', PASSWORD);
    await page.press('input[name="password"]', 'Enter');
  }

  let totpSecret = '';
  let recoveryCodes: string[] = [];

  it('account page: enrol a passkey (named), an authenticator app (QR code and text key, confirmed with a code) and recovery codes', async () => {
    await page.goto(`${server.issuer}/account`);
    await typePassword('alice');
    await allowIfAsked(onAccountPage);
    await screenshot('account-page');

    await page.fill('#passkey-name', 'Test laptop');
    await page.click('#passkey-enrol-button');
    await page.waitForSelector('text=Passkey added.');
    assert.match(await page.locator('#passkeys').innerText(), /Test laptop[\s\S]*Not used yet/);

    await page.click('button:has-text("Set up an authenticator app")');
    await page.waitForSelector('img.qr');
    await screenshot('authenticator-setup');
    totpSecret = (await page.locator('#totp-secret').innerText()).replace(/\s/g, '');
    await page.fill('#totp-code', '000000' === TOTP.generate({ secret: Secret.fromBase32(totpSecret) }) ? '111111' : '000000');
    await page.click('button:has-text("Confirm")');
    await page.waitForSelector('text=That code does not match');
    await page.fill('#totp-code', TOTP.generate({ secret: Secret.fromBase32(totpSecret) }));
    await page.click('button:has-text("Confirm")');
    await page.waitForSelector('text=Authenticator app set up');

    await page.click('button:has-text("Make recovery codes")');
    await page.waitForSelector('#recovery-codes');
    recoveryCodes = (await page.locator('#recovery-codes li').allInnerTexts()).map((code) => code.trim());
    assert.equal(recoveryCodes.length, 10);
    assert.match((await page.locator('a[download]').getAttribute('href')) ?? '', /^data:text\/plain/);
    await screenshot('recovery-codes-shown-once');
    await page.click('a:has-text("Done")');
    await page.waitForSelector('text=10 of 10 recovery codes left');
    await screenshot('account-page-enrolled');
  });

  it('signed out, the passkey alone signs in to an app through the login page\'s autofill (conditional mediation), no password typed: amr swk and mfa, acr phr', async () => {
    await context.clearCookies();
    // The person picks the passkey the browser's autofill offers (the virtual authenticator answers the page's request at once).
    await presence(true);
    const finish = await authorize(notes);
    const claims = await finish();
    assert.deepEqual(claims.amr, ['swk', 'mfa']);
    assert.equal(claims.acr, 'phr');
  });

  it('the login page\'s passkey button signs in too, keeping "Keep me signed in"', async () => {
    await context.clearCookies();
    await presence(false);
    const finish = await authorize(notes, { prompt: 'login' });
    await page.waitForSelector('#passkey-button:not([hidden])');
    assert.equal(await page.getAttribute('#username', 'autocomplete'), 'username webauthn', 'autofill offers passkeys');
    await screenshot('login-with-passkey');
    await page.check('input[name="remember"]');
    await presence(true);
    await page.click('#passkey-button');
    assert.equal((await finish()).acr, 'phr');
    const session = (await context.cookies()).find((cookie) => cookie.name === 'lk_session');
    assert.ok(session && session.expires > 0, '"Keep me signed in" makes the session cookie persistent for a passkey sign-in too');
  });

  it('a password sign-in now asks for a second factor; the passkey answers it (amr pwd swk mfa); a recovery code works once', async () => {
    await context.clearCookies();
    await presence(false);
    let finish = await authorize(notes);
    await typePassword('alice');
    await page.waitForSelector('text=Confirm it is you');
    await screenshot('second-factor');
    await presence(true);
    await page.click('#passkey-button');
    const claims = await finish();
    assert.deepEqual(claims.amr, ['pwd', 'swk', 'mfa']);

    await presence(false);
    for (const expected of ['accepted', 'refused']) {
      await context.clearCookies();
      finish = await authorize(notes);
      await typePassword('alice');
      await page.click('summary:has-text("Use a recovery code")');
      await page.fill('#recovery-code', recoveryCodes[0]!);
      await page.click('button:has-text("Use recovery code")');
      if (expected === 'accepted') assert.equal((await finish()).acr, 'mfa');
      else await page.waitForSelector('text=That code is not right');
    }
  });

  it('a password-only person facing an app that requires MFA is asked to set one up on the account page', async () => {
    await context.clearCookies();
    await authorize(strict);
    await typePassword('bob');
    await page.waitForSelector('text=Second factor required');
    assert.equal(await page.getAttribute('#account-page', 'href'), '/account');
    await screenshot('second-factor-required');
    await page.click('button:has-text("Return to the application")');
    await page.waitForURL((at) => at.href.startsWith(REDIRECT));
    assert.equal(new URL(page.url()).searchParams.get('error'), 'unmet_authentication_requirements');
  });

  it('removed on the account page (last used shown), the passkey is refused', async () => {
    await context.clearCookies();
    await page.goto(`${server.issuer}/account`);
    await typePassword('alice');
    await page.fill('#totp-code', TOTP.generate({ secret: Secret.fromBase32(totpSecret), timestamp: Date.now() + 30_000 }));
    await page.click('button:has-text("Verify")');
    await allowIfAsked(onAccountPage);
    assert.match(await page.locator('#passkeys').innerText(), /Test laptop[\s\S]*Last used/);
    await page.click('#passkeys button:has-text("Remove")');
    await page.waitForSelector('text=Passkey removed.');

    await context.clearCookies();
    await presence(true); // the authenticator still holds the passkey and answers the autofill; Latchkey no longer accepts it
    await authorize(notes);
    await page.waitForSelector('text=That passkey was not accepted');
    assert.equal(await page.getAttribute('#passkey-form', 'data-autofill'), 'no', 'after a refusal, autofill does not ask again by itself');
    // The button's ceremony submits the form from script, after the click has returned, and the
    // page it leaves says the same words: wait for the new page, or the old one would pass.
    const refusedAgain = page.waitForEvent('framenavigated', (frame) => frame === page.mainFrame());
    await page.click('#passkey-button');
    await refusedAgain;
    await page.waitForSelector('text=That passkey was not accepted');
    await screenshot('passkey-refused');
    assert.deepEqual(cspViolations, [], 'no page broke the Content-Security-Policy');
  });
});
