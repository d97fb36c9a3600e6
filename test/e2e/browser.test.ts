/**
 * Single sign-on as a person sees it, in Debian's Chromium (playwright-core): two apps on their
 * own origins (app1.localhost, app2.localhost; Chromium resolves *.localhost to loopback) that
 * trust Latchkey, on its own origin. Screenshots of every page go to test/artifacts/browser/.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, screenshots, watchCsp } from '../helpers/browser.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startRelyingParty, type RelyingParty } from '../helpers/relying-party.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';

const SECRET = 'browser-test-client-secret-with-plenty-of-entropy';
const PASSWORD = 'a passphrase for the browser';

describe('e2e (Chromium): sign in once, signed in everywhere; sign out once, signed out everywhere', function () {
  this.timeout(90_000);
  const dir = testDir();
  let redis: RedisServer;
  let latchkey: TestServer;
  let latchkeyPort: number;
  let env: Record<string, string>;
  let app1: RelyingParty;
  let app2: RelyingParty;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const cspViolations: string[] = [];
  const shot = screenshots('browser');
  const screenshot = (name: string) => shot(page, name);

  before(async () => {
    redis = await startRedisServer();
    latchkeyPort = await freePort();
    const [port1, port2] = [await freePort(), await freePort()];
    const client = (id: string, name: string, port: number) => ({
      client_id: id,
      client_secret: SECRET,
      client_name: name,
      redirect_uris: [`http://${id}.localhost:${port}/callback`],
      post_logout_redirect_uris: [`http://${id}.localhost:${port}/signed-out`],
      // Server to server: Latchkey posts logout tokens to the app's back end.
      backchannel_logout_uri: `http://127.0.0.1:${port}/backchannel-logout`,
      backchannel_logout_session_required: true,
    });
    env = {
      CLIENTS: JSON.stringify([client('app1', 'Notes', port1), client('app2', 'Photos', port2)]),
      OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
    };
    latchkey = await startServer({ redisUrl: redis.url, dir, port: latchkeyPort, env });
    await latchkey.accounts.create('alice', PASSWORD, { name: 'Alice Liddell', email: 'alice@example.test' });
    const rp = (id: string, title: string, port: number) =>
      startRelyingParty({ issuer: latchkey.issuer, clientId: id, clientSecret: SECRET, title, port, publicUrl: (p) => `http://${id}.localhost:${p}` });
    app1 = await rp('app1', 'Notes', port1);
    app2 = await rp('app2', 'Photos', port2);

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 900, height: 760 } });
    page = await context.newPage();
    watchCsp(page, cspViolations);
  });

  after(async () => {
    await browser?.close();
    await app1?.close();
    await app2?.close();
    await latchkey?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const status = () => page.locator('#status').innerText();

  it('app1: login page, then consent, then signed in', async () => {
    await page.goto(app1.url);
    await screenshot('app1-not-signed-in');
    await page.click('#signin');
    await page.waitForSelector('input[name="password"]');
    assert.equal(new URL(page.url()).port, String(latchkeyPort), 'on Latchkey');
    assert.match(await page.locator('main').innerText(), /to continue to Notes/);
    await screenshot('latchkey-login');
    await page.fill('input[name="username"]', 'alice');
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('text=Allow access?');
    assert.match(await page.locator('main').innerText(), /Notes[\s\S]*See your name and profile details[\s\S]*See your email address/);
    await screenshot('latchkey-consent');
    await page.click('button:has-text("Allow")');
    await page.waitForURL(`${app1.url}/`);
    assert.match(await status(), /Signed in as Alice Liddell/);
    await screenshot('app1-signed-in');
  });

  it('app2, another origin: no password asked, consent, signed in', async () => {
    await page.goto(app2.url);
    await page.click('#signin');
    await page.waitForSelector('text=Allow access?');
    assert.equal(await page.locator('input[name="password"]').count(), 0, 'no password asked');
    assert.match(await page.locator('main').innerText(), /Photos/);
    await screenshot('latchkey-consent-app2');
    await page.click('button:has-text("Allow")');
    await page.waitForURL(`${app2.url}/`);
    assert.match(await status(), /Signed in as Alice Liddell/);
    await screenshot('app2-signed-in');
  });

  it('after a restart of Latchkey, app2 signs in silently (prompt=none)', async () => {
    await latchkey.close();
    latchkey = await startServer({ redisUrl: redis.url, dir, port: latchkeyPort, env });
    await context.clearCookies({ domain: 'app2.localhost' });
    await page.goto(app2.url);
    assert.match(await status(), /Not signed in/, 'app2 forgot its own session');
    await page.goto(`${app2.url}/login?prompt=none`);
    await page.waitForURL(`${app2.url}/`);
    assert.match(await status(), /Signed in as Alice Liddell/);
    await screenshot('app2-silent-sign-in-after-restart');
  });

  it('signing out at app2 ends app1 too (back-channel logout); app1 then asks for the password', async () => {
    await page.click('#signout');
    await page.waitForSelector('text=Sign out everywhere');
    assert.match(await page.locator('main').innerText(), /Photos asks to sign you out/);
    await screenshot('latchkey-logout-confirmation');
    await page.click('button:has-text("Sign out everywhere")');
    await page.waitForURL(`${app2.url}/signed-out`);
    assert.match(await status(), /You are signed out/);
    await screenshot('app2-signed-out');

    await eventually(async () => assert.equal(app1.loggedOut.length, 1, 'app1 received a logout token'));
    await page.goto(app1.url);
    assert.match(await status(), /Not signed in/, "app1's session ended");
    await page.click('#signin');
    await page.waitForSelector('input[name="password"]');
    await screenshot('latchkey-login-again');
  });

  it('a wrong password shows a message a person understands; no page broke the Content-Security-Policy', async () => {
    await page.fill('input[name="username"]', 'alice');
    await page.fill('input[name="password"]', 'not my password');
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('.error');
    assert.match(await page.locator('.error').innerText(), /username and password do not match/);
    await screenshot('latchkey-wrong-password');
    assert.deepEqual(cspViolations, []);
  });

  it('the sample app opened at another name than its registered one (127.0.0.1 for app1.localhost) still signs in: its sign-in starts at its own name', async () => {
    await page.goto(`http://127.0.0.1:${new URL(app1.url).port}/`);
    await page.click('#signin');
    await page.waitForSelector('input[name="password"]');
    await page.fill('input[name="username"]', 'alice');
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button:has-text("Sign in")');
    // Before: back at the registered name without the cookie of the name it started at, "Not signed in (no_pending_request)".
    await page.waitForURL(`${app1.url}/`);
    assert.match(await status(), /Signed in as Alice Liddell/);
  });
});
