/**
 * The developer page in Chromium: sign in, register an app, copy its secret from the page, use it
 * for client_credentials, rotate it, delete the app; a second person sees and changes none of it.
 */
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, screenshots } from '../helpers/browser.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'developer page password';

describe('e2e (Chromium): the developer page', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let server: TestServer;
  let browser: Browser;
  const shot = screenshots('developer');
  let alice: { context: BrowserContext; page: Page };
  let appId: string;
  let firstSecret: string;
  let secondSecret: string;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({ redisUrl: redis.url });
    await server.accounts.create('alice', PASSWORD, { name: 'Alice' });
    await server.accounts.create('bob', PASSWORD, { name: 'Bob' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    await redis?.stop();
  });

  async function signIn(username: string) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${server.issuer}/developer`);
    assert.match(await page.locator('h1').innerText(), /Register your apps/);
    await page.click('a.button:has-text("Sign in")');
    await page.fill('input[name="username"]', username);
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button:has-text("Sign in")');
    // Straight back, no consent page: the developer page is Latchkey itself (provider/consents.ts).
    await page.waitForURL(`${server.issuer}/developer`);
    assert.match(await page.locator('h1').innerText(), /Your apps/);
    return { context, page };
  }

  const clientCredentials = (id: string, secret: string) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
      body: 'grant_type=client_credentials',
    }).then((response) => response.status);

  it('signs in and registers a web app; the secret shown once works for client_credentials', async () => {
    alice = await signIn('alice');
    await shot(alice.page, 'developer-empty');
    await alice.page.fill('#name', 'Alice Analytics');
    await alice.page.check('input[name="type"][value="web"]');
    await alice.page.fill('#redirect_uris', 'https://analytics.example.test/callback');
    await alice.page.click('button:has-text("Register app")');
    await alice.page.waitForSelector('#client-secret');
    appId = await alice.page.locator('#client-id').innerText();
    firstSecret = await alice.page.locator('#client-secret').innerText();
    assert.match(await alice.page.locator('main').innerText(), /shows it only this once/);
    await shot(alice.page, 'developer-secret-once');
    assert.equal(await clientCredentials(appId, firstSecret), 200);

    await alice.page.goto(`${server.issuer}/developer`);
    assert.match(await alice.page.locator('main').innerText(), /Alice Analytics/);
    assert.doesNotMatch(await alice.page.content(), new RegExp(firstSecret), 'never shown again');
  });

  it('refuses an unsafe redirect URI with a message a developer understands', async () => {
    await alice.page.fill('#name', 'Sloppy');
    await alice.page.check('input[name="type"][value="web"]');
    await alice.page.fill('#redirect_uris', 'http://sloppy.example.test/*');
    await alice.page.click('button:has-text("Register app")');
    await alice.page.waitForSelector('.error');
    assert.match(await alice.page.locator('.error').innerText(), /wildcards are not allowed/);
    await shot(alice.page, 'developer-policy-refusal');
  });

  it('rotates the secret: the new one works, and the old one for the grace period', async () => {
    await alice.page.goto(`${server.issuer}/developer`);
    await alice.page.click('button:has-text("Rotate secret")');
    await alice.page.waitForSelector('#client-secret');
    secondSecret = await alice.page.locator('#client-secret').innerText();
    assert.notEqual(secondSecret, firstSecret);
    assert.match(await alice.page.locator('main').innerText(), /previous secret keeps working for 24 hours\./);
    await shot(alice.page, 'developer-rotated');
    assert.equal(await clientCredentials(appId, secondSecret), 200);
    assert.equal(await clientCredentials(appId, firstSecret), 200);
  });

  it('a second person cannot see or change the first one’s apps', async () => {
    const bob = await signIn('bob');
    assert.doesNotMatch(await bob.page.locator('main').innerText(), /Alice Analytics/);
    await shot(bob.page, 'developer-other-person');
    const csrf = await bob.page.locator('input[name="csrf"]').first().inputValue();
    for (const action of ['secret', 'delete']) {
      const response = await bob.context.request.post(`${server.issuer}/developer/apps/${encodeURIComponent(appId)}/${action}`, { form: { csrf } });
      assert.equal(response.status(), 404, action);
    }
    const forged = await alice.context.request.post(`${server.issuer}/developer/apps/${encodeURIComponent(appId)}/delete`, { form: { csrf } });
    assert.equal(forged.status(), 403, "bob's CSRF token is no good in alice's session");
    assert.equal(await clientCredentials(appId, secondSecret), 200, 'still there');
    await bob.context.close();
  });

  it('registers a single-page app with PAR and DPoP required; the page lists them and the server enforces PAR', async () => {
    await alice.page.goto(`${server.issuer}/developer`);
    await alice.page.fill('#name', 'Alice Notes');
    await alice.page.check('input[name="type"][value="spa"]');
    await alice.page.fill('#redirect_uris', 'https://notes.example.test/callback');
    await alice.page.check('input[name="par"]');
    await alice.page.check('input[name="dpop"]');
    await alice.page.click('button:has-text("Register app")');
    await alice.page.waitForSelector('#client-id');
    const notesId = await alice.page.locator('#client-id').innerText();
    await alice.page.goto(`${server.issuer}/developer`);
    const section = alice.page.locator('section.app', { hasText: 'Alice Notes' });
    assert.equal(await section.locator('dd.protections').innerText(), 'PAR required, DPoP-bound tokens');
    await shot(alice.page, 'developer-protections');
    const params = new URLSearchParams({ client_id: notesId, response_type: 'code', redirect_uri: 'https://notes.example.test/callback', scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    const location = (await fetch(`${server.url}/auth?${params}`, { redirect: 'manual' })).headers.get('location') ?? '';
    assert.equal(new URL(location).searchParams.get('error'), 'invalid_request', location);
  });

  it('deletes the app: its secrets stop working', async () => {
    await alice.page.goto(`${server.issuer}/developer`);
    await alice.page.click('button:has-text("Delete Alice Analytics")');
    await alice.page.waitForURL(`${server.issuer}/developer`);
    assert.doesNotMatch(await alice.page.locator('main').innerText(), /Alice Analytics/);
    await shot(alice.page, 'developer-after-delete');
    assert.equal(await clientCredentials(appId, secondSecret), 401);
    assert.equal(await clientCredentials(appId, firstSecret), 401);
  });
});
