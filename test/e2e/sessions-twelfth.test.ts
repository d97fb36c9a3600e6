/**
 * Sessions, single sign-on and sign-out as a person in Debian's Chromium (the twelfth fresh-eyes
 * passes of 2026-12-07, docs/security-passes.md): two apps on other origins (one at `localhost`,
 * one at `127.0.0.1`), a page of a third site linking into Latchkey, and what Latchkey's own pages
 * then tell the person about their session. One browser and one server for the file.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, screenshots, watchCsp } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'a passphrase for the twelfth sessions pass';
const SECRET = 'sessions-twelfth-client-secret-with-plenty-of-entropy';
/** Any PKCE challenge: these tests never redeem the code. */
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

describe('e2e (Chromium): sessions, single sign-on and sign-out (twelfth pass)', function () {
  // Each test drives a few dozen pages in Chromium: a minute or so on a loaded machine.
  this.timeout(180_000);
  let browser: Browser;
  let server: TestServer;
  /** The apps' pages and a third site's: echoes the URL it was reached at, and serves /links?to=… as a page of links. */
  let site: Server;
  let sitePort: number;
  const shot = screenshots('browser/sessions-twelfth');
  const cspViolations: string[] = [];

  const app = (id: string, host: string) => ({
    client_id: id,
    client_secret: SECRET,
    client_name: `${id} at ${host}`,
    redirect_uris: [`http://${host}:${sitePort}/cb`],
    post_logout_redirect_uris: [`http://${host}:${sitePort}/bye`],
  });
  const APPS = { app1: 'localhost', app2: '127.0.0.1' } as const;
  const authorize = (id: keyof typeof APPS, extra: Record<string, string> = {}) =>
    `${server.issuer}/auth?${new URLSearchParams({ client_id: id, response_type: 'code', scope: 'openid', redirect_uri: `http://${APPS[id]}:${sitePort}/cb`, code_challenge: CHALLENGE, code_challenge_method: 'S256', state: 'st', ...extra })}`;
  /** Where a silent sign-in at `id` ends: `code` or the error the app was told. */
  const silently = async (page: Page, id: keyof typeof APPS) => {
    await page.goto(authorize(id, { prompt: 'none' }));
    const back = new URL(page.url());
    assert.equal(back.pathname, '/cb', page.url());
    return back.searchParams.has('code') ? 'code' : back.searchParams.get('error');
  };
  /** Follows a link to `to` from a page of another site, as a person clicking it there. */
  const fromAnotherSite = async (page: Page, to: string) => {
    await page.goto(`http://127.0.0.1:${sitePort}/links?to=${encodeURIComponent(to)}`);
    await Promise.all([page.waitForURL((url) => url.href.startsWith(server.issuer)), page.click('#go')]);
  };
  const heading = (page: Page) => page.locator('h1').innerText();

  /** Back at the app, through the consent page the first time (a consent given is remembered across sign-outs). */
  async function allowed(page: Page): Promise<void> {
    await page.waitForURL((url) => url.pathname === '/cb' || url.pathname.startsWith('/interaction/'));
    if (new URL(page.url()).pathname !== '/cb') await page.click('button:has-text("Allow")');
    await page.waitForURL((url) => url.pathname === '/cb');
  }

  async function signIn(context: BrowserContext): Promise<Page> {
    const page = watchCsp(await context.newPage(), cspViolations);
    await page.goto(authorize('app1'));
    await page.fill('input[name="username"]', 'alice');
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button:has-text("Sign in")');
    await allowed(page);
    await page.goto(authorize('app2'));
    await allowed(page);
    assert.equal(await silently(page, 'app1'), 'code');
    assert.equal(await silently(page, 'app2'), 'code');
    return page;
  }

  before(async () => {
    site = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://site.invalid');
      const to = url.searchParams.get('to');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      const text = (value: string) => value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
      res.end(url.pathname === '/links' && to ? `<!doctype html><title>Another site</title><a id="go" href="${text(to)}">Go</a>` : `<!doctype html><title>App</title><p id="at">${text(url.href)}</p>`);
    });
    await new Promise<void>((done) => site.listen(0, '127.0.0.1', done));
    sitePort = (site.address() as AddressInfo).port;
    // A sign-in counts as recent for one second (the account page's "signed in again" notice).
    server = await startServer({ ownRedis: true, cheapHashing: true, env: { ACCOUNTS_REAUTHENTICATE_AFTER: '1' }, clients: [app('app1', APPS.app1), app('app2', APPS.app2)] });
    await server.accounts.create('alice', PASSWORD, { name: 'Alice' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    await new Promise((done) => site?.close(done));
    assert.deepEqual(cspViolations, []);
  });

  it('a link from another site to a signed-out page does not tell a signed-in person they are signed out (/session/end/success, with an app\'s client_id, /upstream/<id>/signed-out): the page says this browser is still signed in, and offers to sign out', async () => {
    const context = await browser.newContext();
    try {
      const page = await signIn(context);
      for (const path of ['/session/end/success', '/session/end/success?client_id=app2', '/upstream/any/signed-out']) {
        await fromAnotherSite(page, `${server.issuer}${path}`);
        await shot(page, `still-signed-in${path.replace(/[^a-z0-9]+/gi, '-')}`);
        const text = await page.locator('main').innerText();
        assert.doesNotMatch(text, /signed out of|are signed out/i, `${path}: ${text}`);
        assert.equal(await heading(page), 'You are still signed in', path);
        assert.match(text, /still signed in to Latchkey/);
        assert.equal(await page.locator('a:has-text("Sign out")').getAttribute('href'), `${server.issuer}/session/end`, path);
        // And so it is: both apps still sign the person in without a password.
        assert.equal(await silently(page, 'app1'), 'code', path);
        assert.equal(await silently(page, 'app2'), 'code', path);
      }
    } finally {
      await context.close();
    }
  });

  it('the signed-out pages a real sign-out leads to say what happened: "Only sign out of" an app says that app is signed out and Latchkey is not; "Sign out everywhere" says the person is signed out', async () => {
    const context = await browser.newContext();
    try {
      const page = await signIn(context);
      await fromAnotherSite(page, `${server.issuer}/session/end?client_id=app2`);
      await page.click('button:has-text("Only sign out of")');
      await page.waitForURL((url) => url.pathname === '/session/end/success');
      await shot(page, 'only-app2');
      const only = await page.locator('main').innerText();
      assert.match(only, /You have been signed out of app2 at 127\.0\.0\.1/);
      assert.match(only, /still signed in to Latchkey/);
      assert.equal(await silently(page, 'app1'), 'code');

      await fromAnotherSite(page, `${server.issuer}/session/end?client_id=app1`);
      await page.click('button:has-text("Sign out everywhere")');
      await page.waitForURL((url) => url.pathname === '/session/end/success');
      await shot(page, 'everywhere');
      assert.equal(await heading(page), 'You are signed out');
      assert.match(await page.locator('main').innerText(), /signed out of Latchkey and the applications/);
      assert.equal(await silently(page, 'app1'), 'login_required');
      assert.equal(await silently(page, 'app2'), 'login_required');
    } finally {
      await context.close();
    }
  });

  it('a notice of the account page says only what this session did there: a link from another site to /account?done=<section>.<key> shows none ("That session is signed out", "every other session is signed out", …), nor "You signed in again" on either page once that sign-in is not recent; a real change still shows its notice', async () => {
    const context = await browser.newContext();
    try {
      const page = watchCsp(await context.newPage(), cspViolations);
      await page.goto(`${server.issuer}/account`);
      await page.fill('input[name="username"]', 'alice');
      await page.fill('input[name="password"]', PASSWORD);
      await page.click('button:has-text("Sign in")');
      await page.waitForURL(`${server.issuer}/account`);
      const notices = ['sessions.signed-out', 'password.changed-everywhere', 'apps.withdrawn', 'authenticator.removed'];
      for (const done of notices) {
        await fromAnotherSite(page, `${server.issuer}/account?done=${done}#${done.split('.')[0]}`);
        assert.equal(await heading(page), 'Your account', done);
        assert.equal(await page.locator('.notice').count(), 0, `${done}: ${await page.locator('.notice').allInnerTexts()}`);
      }
      // Once the sign-in is older than ACCOUNTS_REAUTHENTICATE_AFTER, "go ahead" would not be true.
      await new Promise((resolve) => setTimeout(resolve, 2100));
      for (const path of ['/account?done=password.signed-in-again', '/developer?done=apps.signed-in-again']) {
        await fromAnotherSite(page, `${server.issuer}${path}`);
        assert.equal(await page.locator('.notice').count(), 0, `${path}: ${await page.locator('.notice').allInnerTexts()}`);
      }

      // The person's own change: its notice is shown.
      await page.goto(`${server.issuer}/account`);
      await page.fill('#current_password', PASSWORD);
      await page.fill('#new_password', `${PASSWORD} renewed`);
      await page.fill('#confirm_password', `${PASSWORD} renewed`);
      await page.click('button:has-text("Change password")');
      await page.waitForURL(/done=password\.changed-everywhere/);
      await shot(page, 'password-changed-notice');
      assert.match(await page.locator('.notice').innerText(), /Your password has been changed, and every other session is signed out/);
      // The same address in another person's browser (or this one's next session) shows nothing.
      const done = page.url();
      const other = watchCsp(await (await browser.newContext()).newPage(), cspViolations);
      await other.goto(`${server.issuer}/account`);
      await other.fill('input[name="username"]', 'alice');
      await other.fill('input[name="password"]', `${PASSWORD} renewed`);
      await other.click('button:has-text("Sign in")');
      await other.waitForURL(`${server.issuer}/account`);
      await other.goto(done);
      assert.equal(await other.locator('.notice').count(), 0);
      await other.context().close();
    } finally {
      await context.close();
    }
  });
});
