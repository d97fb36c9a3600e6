/**
 * What a person who opens the server's address in Chromium sees: a small page (not a JSON 404)
 * saying what this is, with working links, in the pages' look and under their strict CSP, and a
 * favicon, so that no page load logs a 404.
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import type { Browser } from 'playwright-core';
import { createLogger } from '../../src/ops/logger.js';
import { launchChromium, screenshots } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('e2e: the home page and the favicon', function () {
  this.timeout(60_000);
  let server: TestServer;
  let browser: Browser;
  const logLines: string[] = [];

  before(async () => {
    server = await startServer({ env: { LOG_LEVEL: 'info' }, logger: createLogger('info', { write: (line: string) => void logLines.push(line) }) });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('GET / is a page that says what this server is and links to discovery, the keys and the developer page', async () => {
    const shot = screenshots('home-page');
    const context = await browser.newContext({ viewport: { width: 900, height: 800 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`);
    });

    const response = await page.goto(`${server.url}/`);
    assert.equal(response?.status(), 200);
    assert.match(response!.headers()['content-security-policy'] ?? '', /default-src 'none'/);
    assert.equal(await page.title(), 'Sign-in provider · Latchkey');
    assert.match(await page.locator('main').innerText(), new RegExp(`OpenID Connect provider at ${server.issuer.replace(/[.]/g, '\\.')}`));
    assert.equal(await page.locator('link[rel=stylesheet]').getAttribute('href'), '/static/latchkey.css', 'the pages\' look');
    await shot(page, 'home');

    // The click returns once the linked document is committed, not loaded: the JSON read whole.
    await page.click('text=Discovery document');
    await page.waitForLoadState();
    const discovery = JSON.parse(await page.locator('body').innerText()) as { issuer: string; jwks_uri: string };
    assert.equal(discovery.issuer, server.issuer);
    await page.goto(`${server.url}/`);
    await page.click('text=Signing keys');
    await page.waitForLoadState();
    assert.ok((JSON.parse(await page.locator('body').innerText()) as { keys: unknown[] }).keys.length >= 1);
    await page.goto(`${server.url}/`);
    await page.click('text=Developer page');
    assert.equal(new URL(page.url()).pathname, '/developer');
    await shot(page, 'developer');

    assert.deepEqual(problems, [], 'no failed request (favicon included) and no CSP violation');
    await context.close();
  });

  it('the favicon is an image, cached, and no page load logs a 404', async () => {
    for (const path of ['/favicon.ico', '/favicon.svg']) {
      const response = await fetch(`${server.url}${path}`);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('content-type'), 'image/svg+xml');
      assert.match(response.headers.get('cache-control') ?? '', /max-age=\d+/);
      assert.match(await response.text(), /^<svg /);
      // (node:http: fetch adds cache-control: no-cache to a conditional request, which disables it)
      const again = await new Promise<number | undefined>((done, fail) =>
        get(`${server.url}${path}`, { headers: { 'if-none-match': response.headers.get('etag')! } }, (res) => {
          res.resume();
          done(res.statusCode);
        }).on('error', fail),
      );
      assert.equal(again, 304);
    }
    const page = await browser.newPage();
    await page.goto(`${server.url}/developer`);
    assert.equal(await page.locator('link[rel=icon]').getAttribute('href'), '/favicon.svg');
    await page.close();
    const notFound = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.msg === 'request' && entry.status === 404);
    assert.deepEqual(notFound.map((entry) => entry.path), []);
  });
});
