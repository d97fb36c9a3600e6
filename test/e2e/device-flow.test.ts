/**
 * A command-line tool signs a person in with the device authorization grant (RFC 8628): the tool
 * is openid-client (initiateDeviceAuthorization, pollDeviceAuthorizationGrant), polling while the
 * person, in Debian's Chromium, types the code at /device, checks which app asks and for what,
 * signs in and approves, or denies. Screenshots go to test/artifacts/browser/device/.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createLogger } from '../../src/ops/logger.js';
import { launchChromium, screenshots, watchCsp } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const PASSWORD = 'a passphrase for the terminal';
const insecure = { execute: [oidc.allowInsecureRequests] };

describe('e2e (Chromium + openid-client): a CLI signs in with the device authorization grant', function () {
  this.timeout(60_000);
  let latchkey: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let config: oidc.Configuration;
  const cspViolations: string[] = [];
  const logLines: string[] = [];
  /** Every device code and user code handed out, none of which may reach the log. */
  const codes: string[] = [];
  const shot = screenshots('browser/device');

  before(async () => {
    latchkey = await startServer({
      ownRedis: true,
      // One second between polls keeps the test short; the grant's default is five.
      env: { DEVICE_FLOW_POLL_INTERVAL: '1', LOG_LEVEL: 'info' },
      logger: createLogger('info', { write: (line: string) => void logLines.push(line) }),
      clients: [
        {
          client_id: 'ledger-cli',
          client_name: 'Ledger CLI',
          application_type: 'native',
          token_endpoint_auth_method: 'none',
          grant_types: [DEVICE_GRANT, 'refresh_token'],
          response_types: [],
          redirect_uris: [],
        },
      ],
    });
    await latchkey.accounts.create('alice', PASSWORD, { name: 'Alice Liddell', email: 'alice@example.test' });
    config = await oidc.discovery(new URL(latchkey.issuer), 'ledger-cli', { token_endpoint_auth_method: 'none' }, oidc.None(), insecure);
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 900, height: 760 } });
    page = await context.newPage();
    watchCsp(page, cspViolations);
  });

  after(async () => {
    await browser?.close();
    await latchkey?.stop();
  });

  it('the person types the code (lower case, with a space), sees the app and its scopes, signs in and allows; the polling CLI gets tokens', async () => {
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid profile offline_access' });
    codes.push(device.device_code, device.user_code);
    assert.equal(device.interval, 1);
    const polling = oidc.pollDeviceAuthorizationGrant(config, device);

    await page.goto(device.verification_uri);
    await shot(page, 'enter-code');
    await page.fill('#user_code', device.user_code.toLowerCase().replace('-', ' '));
    await page.click('button[type=submit]');
    assert.equal(await page.locator('h1').innerText(), 'Connect Ledger CLI?');
    assert.equal(await page.locator('p.user-code').innerText(), device.user_code);
    assert.match(await page.locator('ul.scopes').innerText(), /See your name and profile details/);
    await shot(page, 'confirm');
    await page.click('button[name=confirm]');

    await page.fill('#username', 'alice');
    await page.fill('#password', PASSWORD);
    await shot(page, 'sign-in');
    await page.click('button[type=submit]');
    assert.match(await page.locator('h1').innerText(), /Allow access/);
    await shot(page, 'consent');
    await page.click('form[action$="/confirm"] button[type=submit]');
    assert.equal(await page.locator('h1').innerText(), 'Device connected');
    await shot(page, 'connected');
    // The page says where access is withdrawn: the account page lists the device's app there.
    await page.click('#account-page');
    await page.waitForURL(/\/account(#apps)?$/);
    assert.match(await page.locator('#apps').innerText(), /Ledger CLI[\s\S]*Withdraw access/);

    const tokens = await polling;
    assert.equal(tokens.claims()?.name, 'Alice Liddell');
    assert.ok(tokens.refresh_token, 'offline_access: the CLI can refresh');
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.access_token);
  });

  it('verification_uri_complete fills the code in; the person denies; the polling CLI gets access_denied', async () => {
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    codes.push(device.device_code, device.user_code);
    const polling = oidc.pollDeviceAuthorizationGrant(config, device).then(
      () => assert.fail('no tokens after a denial'),
      (error: unknown) => error,
    );
    await page.goto(device.verification_uri_complete!);
    assert.equal(await page.inputValue('#user_code'), device.user_code);
    await shot(page, 'prefilled');
    await page.click('button[type=submit]');
    await page.click('button[name=abort]');
    assert.match(await page.locator('.notice').innerText(), /Access denied/);
    await shot(page, 'denied');
    const error = (await polling) as oidc.ResponseBodyError;
    assert.ok(error instanceof oidc.ResponseBodyError, String(error));
    assert.equal(error.error, 'access_denied');
  });

  it("a link to /device fills in only what could be a code: a link's words are not shown in the code's box (content injection, CWE-74; security-passes.md, eighth passes, the web pages)", async () => {
    for (const words of ['Locked: call 1-800-555-0100', 'YOUR ACCOUNT IS LOCKED', 'BCDF-GHJK call us', 'B'.repeat(33)]) {
      await page.goto(`${latchkey.issuer}/device?${new URLSearchParams({ user_code: words })}`);
      assert.equal(await page.inputValue('#user_code'), '', words);
      assert.doesNotMatch(await page.content(), /call|LOCKED|BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB/i, words);
      assert.match(await page.locator('main').innerText(), /Enter the code your device or terminal shows/, words);
    }
    // A code as a person may have it: any case, full-width, spaced.
    for (const code of ['bcdf ghjk', 'ＢＣＤＦ－ＧＨＪＫ']) {
      await page.goto(`${latchkey.issuer}/device?${new URLSearchParams({ user_code: code })}`);
      assert.equal(await page.inputValue('#user_code'), code);
    }
  });

  it("the confirmation lists only claims the provider offers: names a device's request made up are not shown as what the app asks to see (content injection, CWE-74; security-passes.md, eighth passes, the web pages)", async () => {
    const words = 'Your account is locked: call 1-800-555-0100';
    const claims = JSON.stringify({ id_token: { [words]: null, email: { essential: true } }, userinfo: { 'CALL SUPPORT NOW': null } });
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid', claims });
    codes.push(device.device_code, device.user_code);
    await page.goto(device.verification_uri_complete!);
    await page.click('button[type=submit]');
    const listed = await page.locator('ul.scopes').innerText();
    assert.match(listed, /See these details about you: [^\n]*\bemail\b/, 'a claim the provider offers, asked by name, is listed');
    assert.doesNotMatch(await page.content(), /locked|1-800-555-0100|CALL SUPPORT/i);
    await page.click('button[name=abort]');
    assert.match(await page.locator('.notice').innerText(), /Access denied/);
  });

  it('a wrong code is said plainly, on the same page; no page broke the Content-Security-Policy', async () => {
    await page.goto(`${latchkey.issuer}/device`);
    await page.fill('#user_code', 'BCDF-GHJK');
    await page.click('button[type=submit]');
    assert.match(await page.locator('.error').innerText(), /not right/);
    await shot(page, 'wrong-code');
    assert.deepEqual(cspViolations, []);
  });

  it('the log names the client of each device authorization, and holds no device code or user code', () => {
    const events = logLines.map((line) => JSON.parse(line) as { event?: string; client_id?: string });
    assert.ok(events.some((entry) => entry.event === 'device_authorization.success' && entry.client_id === 'ledger-cli'));
    for (const code of codes) {
      assert.ok(!logLines.some((line) => line.includes(code) || line.includes(code.replace('-', ''))), 'a code reached the log');
    }
  });
});
