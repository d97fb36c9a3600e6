/**
 * A single-page app as oidc-client-ts's README shows it, unmodified, in Chromium (twelfth pass, new
 * kinds of clients): its own origin, a public client with PKCE, every call to Latchkey a CORS fetch
 * (discovery, token, userinfo, revocation, JWKS), refresh tokens in the browser with rotation,
 * signinSilent by refresh token and signoutRedirect. A browser shows a page nothing of an answer
 * that lacks CORS headers: not its status, not its body, not Retry-After; the library gets "Failed
 * to fetch", which says nothing of a limit to wait out. docs/security-passes.md: "Looked at in the
 * twelfth fresh-eyes passes of 2026-12-07: new kinds of clients with unmodified libraries".
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'correct horse battery staple';
const LIBRARY = readFileSync(join(dirname(createRequire(import.meta.url).resolve('oidc-client-ts/package.json')), 'dist', 'browser', 'oidc-client-ts.min.js'), 'utf8');

/** The app's own origin: one page at every path, which loads oidc-client-ts and makes its UserManager as the README does. */
async function spaHost(port: number, issuer: string): Promise<Server> {
  const origin = `http://127.0.0.1:${port}`;
  const settings = {
    authority: issuer,
    client_id: 'spa',
    redirect_uri: `${origin}/cb`,
    post_logout_redirect_uri: `${origin}/signed-out`,
    scope: 'openid profile offline_access',
    loadUserInfo: true,
    automaticSilentRenew: false,
  };
  const page = `<!doctype html><meta charset="utf-8"><title>SPA</title><script src="/oidc-client-ts.js"></script>
<script>window.settings = ${JSON.stringify(settings)}; window.mgr = new oidc.UserManager(window.settings);</script><p id="here">SPA</p>`;
  const server = createServer((req, res) => {
    if (req.url === '/oidc-client-ts.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(LIBRARY);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(page);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

/** What a page's fetch saw: the status and headers it may read, or the error a CORS refusal makes. */
type Seen = { status?: number; retryAfter?: string | null; error?: string; failed?: string };

describe('e2e (Chromium): oidc-client-ts as a single-page app, unmodified (twelfth pass)', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let server: TestServer;
  let host: Server;
  let spa: string;
  let browser: Browser;
  let page: Page;

  before(async () => {
    redis = await startRedisServer();
    const spaPort = await freePort();
    spa = `http://127.0.0.1:${spaPort}`;
    server = await startServer({
      redisUrl: redis.url,
      cheapHashing: true,
      clients: [{
        client_id: 'spa',
        client_name: 'Notes SPA',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: [`${spa}/cb`],
        post_logout_redirect_uris: [`${spa}/signed-out`],
      }],
      // Low enough for the limit's test to reach it at the token endpoint, after the sign-in's own requests.
      env: { RATE_LIMIT_PER_IP: '12', RATE_LIMIT_WINDOW: '600' },
    });
    await server.accounts.create('alice', PASSWORD, { name: 'Alice Liddell' });
    host = await spaHost(spaPort, server.issuer);
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => host?.close(resolve));
    await server?.stop();
    await redis?.stop();
  });

  /** A token request from the app's page, as a CORS fetch: what the page may read of the answer. */
  const tokenRequestFromPage = (body: string) =>
    page.evaluate(async ({ token, body }): Promise<Seen> => {
      try {
        const answer = await fetch(token, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
        return { status: answer.status, retryAfter: answer.headers.get('retry-after'), error: ((await answer.json()) as { error?: string }).error };
      } catch (error) {
        return { failed: String(error) };
      }
    }, { token: `${server.issuer}/token`, body });

  it('signs in with a redirect, loads userinfo, renews by refresh token (rotated), revokes, and signs out with a redirect (held)', async () => {
    await page.goto(`${spa}/`);
    void page.evaluate(() => (globalThis as unknown as { mgr: { signinRedirect(args: object): Promise<void> } }).mgr.signinRedirect({ prompt: 'consent' })).catch(() => undefined);
    await page.waitForSelector('input[name="password"]');
    await page.fill('input[name="username"]', 'alice');
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('text=Allow access?');
    await page.click('button:has-text("Allow")');
    await page.waitForURL(`${spa}/cb?**`);
    const signedIn = await page.evaluate(async () => {
      const { mgr } = globalThis as unknown as { mgr: { signinRedirectCallback(): Promise<Record<string, unknown> & { profile: Record<string, unknown> }>; signinSilent(): Promise<Record<string, unknown> & { profile: Record<string, unknown> }> } };
      const user = await mgr.signinRedirectCallback();
      const renewed = await mgr.signinSilent();
      return {
        name: user.profile.name, sub: user.profile.sub, tokenType: user.token_type, scope: user.scope, refresh: user.refresh_token, expires: user.expires_in,
        renewedSub: renewed.profile.sub, renewedRefresh: renewed.refresh_token, renewedName: renewed.profile.name,
      };
    });
    assert.equal(signedIn.name, 'Alice Liddell', 'userinfo read by the page');
    assert.equal(signedIn.tokenType, 'Bearer');
    assert.equal(signedIn.scope, 'openid profile offline_access');
    assert.ok(typeof signedIn.expires === 'number' && signedIn.expires > 0);
    assert.ok(signedIn.refresh, 'a refresh token for the app');
    assert.equal(signedIn.renewedSub, signedIn.sub, 'signinSilent renewed by refresh token');
    assert.notEqual(signedIn.renewedRefresh, signedIn.refresh, 'rotated');

    // Revoked from the page; the revoked refresh token is then refused, and the page reads why.
    const afterRevocation = await page.evaluate(async () => {
      const { mgr, oidc, settings } = globalThis as unknown as { mgr: { getUser(): Promise<{ refresh_token: string; id_token: string; profile: object }>; revokeTokens(types: string[]): Promise<void> }; oidc: { OidcClient: new (s: object) => { useRefreshToken(a: object): Promise<unknown> } }; settings: object };
      const user = await mgr.getUser();
      await mgr.revokeTokens(['refresh_token']);
      try {
        await new oidc.OidcClient(settings).useRefreshToken({ state: { refresh_token: user.refresh_token, id_token: user.id_token, profile: user.profile, session_state: null } });
        return 'refreshed';
      } catch (error) {
        return (error as { error?: string }).error ?? String(error);
      }
    });
    assert.equal(afterRevocation, 'invalid_grant');

    void page.evaluate(() => (globalThis as unknown as { mgr: { signoutRedirect(): Promise<void> } }).mgr.signoutRedirect()).catch(() => undefined);
    await page.waitForSelector('text=Sign out?');
    await page.click('button:has-text("Sign out everywhere")');
    await page.waitForURL(`${spa}/signed-out`);
    const signedOut = await page.evaluate(async () => {
      const { mgr } = globalThis as unknown as { mgr: { signoutRedirectCallback(): Promise<{ error?: string } | undefined>; getUser(): Promise<unknown> } };
      const response = await mgr.signoutRedirectCallback();
      return { error: response?.error ?? null, user: await mgr.getUser() };
    });
    assert.deepEqual(signedOut, { error: null, user: null });
  });

  it('the page reads a 413 of the token endpoint (a body over its limit), not "Failed to fetch"', async () => {
    const seen = await tokenRequestFromPage(`grant_type=refresh_token&client_id=spa&refresh_token=${'x'.repeat(100_000)}`);
    assert.deepEqual(seen, { status: 413, retryAfter: null, error: 'invalid_request' });
  });

  it('the page reads the token endpoint\'s 503 and its Retry-After while the store is away', async () => {
    await redis.kill();
    try {
      const seen = await tokenRequestFromPage('grant_type=refresh_token&client_id=spa&refresh_token=nothing');
      assert.deepEqual(seen, { status: 503, retryAfter: seen.retryAfter, error: 'temporarily_unavailable' });
      assert.match(seen.retryAfter ?? '', /^\d+$/, 'Retry-After readable by the page');
    } finally {
      await redis.restart();
    }
  });
  it('a page of another origin than the client\'s redirect URIs still reads nothing of the token endpoint\'s answer for that client (the engine\'s client-based CORS, held)', async () => {
    const other = await (await browser.newContext()).newPage();
    try {
      await other.goto(spa.replace('127.0.0.1', 'localhost'));
      const seen = await other.evaluate(async (token): Promise<Seen> => {
        try {
          const answer = await fetch(token, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&client_id=spa&refresh_token=nothing' });
          return { status: answer.status };
        } catch (error) {
          return { failed: String(error) };
        }
      }, `${server.issuer}/token`);
      assert.deepEqual(seen, { failed: 'TypeError: Failed to fetch' });
    } finally {
      await other.context().close();
    }
  });

  it('the page reads the token endpoint\'s 429 and its Retry-After, and oidc-client-ts reports temporarily_unavailable, not a network error', async () => {
    let seen: Seen = {};
    for (let i = 0; i < 20 && seen.status !== 429 && !seen.failed; i++) seen = await tokenRequestFromPage('grant_type=refresh_token&client_id=spa&refresh_token=nothing');
    assert.equal(seen.failed, undefined, `the page could not read the answer: ${seen.failed}`);
    assert.equal(seen.status, 429);
    assert.match(seen.retryAfter ?? '', /^\d+$/, 'Retry-After readable by the page');
    assert.equal(seen.error, 'temporarily_unavailable');
    const told = await page.evaluate(async () => {
      const { oidc, settings } = globalThis as unknown as { oidc: { OidcClient: new (s: object) => { useRefreshToken(a: object): Promise<unknown> } }; settings: object };
      try {
        await new oidc.OidcClient(settings).useRefreshToken({ state: { refresh_token: 'nothing', profile: {}, session_state: null } });
        return 'refreshed';
      } catch (error) {
        return (error as { error?: string }).error ?? String(error);
      }
    });
    assert.equal(told, 'temporarily_unavailable');
  });
});
