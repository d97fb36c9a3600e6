/**
 * The login and consent pages show the client's logo_uri, policy_uri and tos_uri (OpenID Connect
 * Registration §2), and the Content-Security-Policy of that page, and of that page only, lets
 * images load from exactly the origin of that client's registered logo. Checked in the HTML and
 * headers, and in Chromium (no CSP violation; the logo really loads; screenshots in
 * test/artifacts/browser/client-branding/). The registration policy admits https logos and, for
 * development, http on loopback hosts; the browser test serves its logo from 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page as BrowserPage } from 'playwright-core';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { launchChromium, screenshots, watchCsp } from '../helpers/browser.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.localhost:1/callback';
const PASSWORD = 'correct horse battery staple';
const LOGO = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" rx="12" fill="#c2410c"/><circle cx="32" cy="32" r="16" fill="#fff"/></svg>';

const imgSrc = (csp: string | null) => csp?.split(';').map((d) => d.trim()).find((d) => d.startsWith('img-src '))?.split(' ').slice(1) ?? [];

describe('e2e: the client\'s logo, privacy policy and terms on the login and consent pages', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer;
  let logos: Server;
  let logoOrigin: string;
  let browser: Browser;
  const shot = screenshots('browser/client-branding');

  const client = (id: string, extra: Record<string, unknown>) => ({
    client_id: id,
    client_name: `App ${id}`,
    token_endpoint_auth_method: 'none',
    redirect_uris: [REDIRECT],
    ...extra,
  });

  before(async () => {
    logos = createServer((req, res) => {
      if (req.url === '/logo.svg') res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(LOGO);
      else res.writeHead(404).end();
    });
    await new Promise<void>((done) => logos.listen(0, '127.0.0.1', done));
    logoOrigin = `http://127.0.0.1:${(logos.address() as AddressInfo).port}`;
    redis = await startRedisServer();
    server = await startServer({
      redisUrl: redis.url,
      env: {
        CLIENTS: JSON.stringify([
          client('local', { client_name: 'Orange Notes', logo_uri: `${logoOrigin}/logo.svg`, policy_uri: 'https://notes.example.test/privacy', tos_uri: 'https://notes.example.test/terms' }),
          client('cdn', { logo_uri: 'https://cdn.example.test/brand/logo.png', policy_uri: 'https://cdn-app.example.test/privacy' }),
          // Whatever the URL holds after its origin never reaches the header.
          client('tricky', { logo_uri: "https://img.example.test/x.png?a=';script-src *;img-src *" }),
          client('plain', {}),
        ]),
      },
    });
    await server.accounts.create('alice', PASSWORD);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
    await redis?.stop();
    logos?.close();
  });

  async function authorizationUrl(clientId: string): Promise<string> {
    const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const verifier = oidc.randomPKCECodeVerifier();
    return oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).href;
  }

  /** The login page, then (signed in) the consent page, as plain HTTP. */
  async function pages(clientId: string): Promise<{ login: Page; consent: Page }> {
    const agent = new Agent();
    const login = await agent.follow(await authorizationUrl(clientId), {}, REDIRECT);
    const consent = await agent.submit(login, '/login', { username: 'alice', password: PASSWORD }, REDIRECT);
    assert.match(consent.html, /Allow access\?/);
    return { login, consent };
  }

  it('consent and login pages show the logo and open the policy and terms with rel="noopener noreferrer"; img-src names exactly the logo origin', async () => {
    const { login, consent } = await pages('cdn');
    for (const page of [login, consent]) {
      assert.match(page.html, /<img class="client-logo" src="https:\/\/cdn\.example\.test\/brand\/logo\.png"/);
      assert.match(page.html, /<a href="https:\/\/cdn-app\.example\.test\/privacy" target="_blank" rel="noopener noreferrer">Privacy policy of <bdi>App cdn<\/bdi><\/a>/);
      assert.doesNotMatch(page.html, /Terms of service/, 'no tos_uri registered, no link');
      assert.deepEqual(imgSrc(page.headers.get('content-security-policy')), ["'self'", 'data:', 'https://cdn.example.test']);
    }
    const local = await pages('local');
    assert.match(local.consent.html, /<a href="https:\/\/notes\.example\.test\/terms" target="_blank" rel="noopener noreferrer">Terms of service of <bdi>Orange Notes<\/bdi><\/a>/);
    assert.deepEqual(imgSrc(local.consent.headers.get('content-security-policy')), ["'self'", 'data:', logoOrigin]);
  });

  it('only that page and that client: a client without a logo, and other responses, keep img-src to ourselves', async () => {
    const { login, consent } = await pages('plain');
    for (const page of [login, consent]) {
      assert.doesNotMatch(page.html, /client-logo|Privacy policy/);
      assert.deepEqual(imgSrc(page.headers.get('content-security-policy')), ["'self'", 'data:']);
    }
    const discovery = await fetch(`${server.url}/.well-known/openid-configuration`);
    assert.deepEqual(imgSrc(discovery.headers.get('content-security-policy')), ["'self'", 'data:']);
  });

  it('a logo URL cannot inject directives: only its origin goes into the header', async () => {
    const { consent } = await pages('tricky');
    const csp = consent.headers.get('content-security-policy')!;
    assert.deepEqual(imgSrc(csp), ["'self'", 'data:', 'https://img.example.test']);
    assert.doesNotMatch(csp, /script-src \*|img-src \*/);
    assert.equal(csp.split(';').filter((d) => d.trim().startsWith('img-src')).length, 1);
  });

  it('Chromium loads the logo on the login and consent pages without CSP violations', async () => {
    const context = await browser.newContext({ viewport: { width: 720, height: 760 } });
    const page = await context.newPage();
    const violations: string[] = [];
    watchCsp(page, violations);
    const logoLoaded = (on: BrowserPage) =>
      on.locator('img.client-logo').evaluate((img) => {
        const image = img as unknown as { complete: boolean; naturalWidth: number };
        return image.complete && image.naturalWidth > 0;
      });

    await page.goto(await authorizationUrl('local'));
    await page.waitForSelector('input[name="password"]');
    assert.ok(await logoLoaded(page), 'the logo loads on the login page');
    await shot(page, 'login-with-client-logo');
    await page.fill('input[name="username"]', 'alice');
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('text=Allow access?');
    assert.ok(await logoLoaded(page), 'the logo loads on the consent page');
    const links = await page.locator('.client-links a').evaluateAll((anchors) =>
      (anchors as unknown as { href: string; rel: string; target: string }[]).map((a) => [a.href, a.rel, a.target]),
    );
    assert.deepEqual(links, [
      ['https://notes.example.test/privacy', 'noopener noreferrer', '_blank'],
      ['https://notes.example.test/terms', 'noopener noreferrer', '_blank'],
    ]);
    await shot(page, 'consent-with-client-logo');
    assert.deepEqual(violations, []);
    await context.close();
  });
});
