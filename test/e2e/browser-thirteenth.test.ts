/**
 * Browser-level attacks on Latchkey's own pages (the thirteenth fresh-eyes passes of 2026-12-07,
 * docs/security-passes.md, h21): every HTML answer's security headers (error pages too), CORS
 * answers to another origin, the cookies' flags, a session id planted before sign-in, and in
 * Debian's Chromium an attacker's page on another site that frames our pages, posts our forms
 * and reflects markup through the sign-in parameters.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { Agent, type Page } from '../helpers/agent.js';
import { launchChromium } from '../helpers/browser.js';
import { developerSignIn } from '../helpers/developer.js';
import { freePort } from '../helpers/redis.js';
import { signedInToAccountPage, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'a passphrase for the thirteenth browser pass';
const SECRET = 'browser-thirteenth-client-secret-with-plenty-of-entropy';
const REDIRECT = 'http://127.0.0.1:9/cb';
const EVIL = 'https://evil.example';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
/** Markup an attacker puts in every parameter a page might show. */
const MARKUP = '"><img src=x onerror=alert(1)><b>pwned</b>';

describe('e2e: browser-level attacks on our own pages (thirteenth pass, h21)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let config: oidc.Configuration;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      cheapHashing: true,
      clients: [
        { client_id: 'tv', client_name: `TV ${MARKUP}`, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] },
        { client_id: 'notes', client_secret: SECRET, client_name: `Notes ${MARKUP}`, redirect_uris: [REDIRECT], post_logout_redirect_uris: ['http://127.0.0.1:9/out'] },
      ],
    });
    await server.accounts.create('alice', PASSWORD, { name: 'Alice' });
    await server.accounts.create('bob', PASSWORD, { name: 'Bob' });
    config = await oidc.discovery(new URL(server.issuer), 'notes', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => server?.stop());

  /** Our HTML answers: the flow's pages with markup in every parameter, error pages, and the signed-in pages. */
  async function htmlAnswers(agent: Agent): Promise<[string, Page][]> {
    const pages: [string, Page][] = [];
    const { page: login, verifier } = await startAuthorization(agent, config, REDIRECT, { login_hint: MARKUP, ui_locales: MARKUP, state: MARKUP });
    pages.push(['login', login]);
    const consent = await signInSteps(agent, login, { username: 'alice', password: PASSWORD, consent: 'stop' });
    pages.push(['consent', consent]);
    // The sign-out confirmation naming the client, and the device pages naming theirs.
    const back = await agent.submit(consent, '/confirm', {}, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: verifier, expectedState: MARKUP });
    pages.push(['sign-out', await agent.follow(oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://127.0.0.1:9/out' }).href)]);
    const tv = await oidc.discovery(new URL(server.issuer), 'tv', { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    pages.push(['device confirmation', confirm]);
    pages.push(['device consent', await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'alice', password: PASSWORD, consent: 'stop' })]);
    const paths = [
      '/nope',
      `/auth?client_id=${encodeURIComponent(MARKUP)}&response_type=code`,
      `/auth?client_id=notes&response_type=code&redirect_uri=${encodeURIComponent(EVIL)}&error_description=${encodeURIComponent(MARKUP)}`,
      `/session/end?post_logout_redirect_uri=${encodeURIComponent(EVIL)}&ui_locales=${encodeURIComponent(MARKUP)}`,
      '/session/end/success',
      `/device?user_code=${encodeURIComponent(MARKUP)}`,
      `/interaction/${encodeURIComponent(MARKUP)}`,
      `/upstream/x/callback?error=${encodeURIComponent(MARKUP)}&error_description=${encodeURIComponent(MARKUP)}`,
      `/account/callback?error=${encodeURIComponent(MARKUP)}`,
      '/',
    ];
    for (const path of paths) pages.push([path, await agent.follow(`${server.issuer}${path}`, {}, 'http://127.0.0.1:9/')]);
    pages.push(['account', (await signedInToAccountPage(server.issuer, 'alice', PASSWORD)).page]);
    pages.push(['developer', (await developerSignIn(server.issuer, 'alice', PASSWORD)).page]);
    return pages;
  }

  const NAMING_CLIENT = new Set(['login', 'consent', 'sign-out', 'device confirmation', 'device consent', 'account']);

  it('sends every HTML answer, error pages included, unframeable, unsniffable, uncached, without a referrer, and reflects no markup', async () => {
    const agent = new Agent();
    for (const [name, page] of await htmlAnswers(agent)) {
      const at = `${name} (${page.status} ${page.url})`;
      if (page.url.startsWith('http://127.0.0.1:9/')) {
        assert.ok(!page.url.startsWith(EVIL), at);
        continue;
      }
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/, at);
      assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, at);
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/, at);
      assert.doesNotMatch(page.headers.get('content-security-policy') ?? '', /unsafe-inline|unsafe-eval/, at);
      assert.equal(page.headers.get('x-frame-options'), 'DENY', at);
      assert.equal(page.headers.get('x-content-type-options'), 'nosniff', at);
      assert.equal(page.headers.get('referrer-policy'), 'no-referrer', at);
      assert.match(page.headers.get('cache-control') ?? '', /no-store/, at);
      assert.ok(!page.html.includes('<img src=x') && !page.html.includes('<b>pwned'), `markup reflected by ${at}`);
      // The pages that name the client show its markup as text.
      if (NAMING_CLIENT.has(name)) assert.ok(page.html.includes('&lt;b&gt;pwned'), `the client's name, escaped, on ${at}`);
    }
    for (const line of agent.setCookies) {
      assert.match(line, /;\s*httponly/i, line);
      assert.match(line, /;\s*samesite=lax/i, line);
    }
  });

  it('lets no other origin read our pages, and no CORS answer allows credentials', async () => {
    const { agent } = await signedInToAccountPage(server.issuer, 'alice', PASSWORD);
    const ours = ['/account', '/account/sessions/sign-out', '/developer', '/developer/apps', '/interaction/x', '/session/end', '/device', '/admin/users', '/reg', '/'];
    const engines = ['/me', '/token', '/token/introspection', '/token/revocation', '/device/auth', '/.well-known/openid-configuration', '/jwks'];
    for (const path of [...ours, ...engines]) {
      for (const method of ['GET', 'OPTIONS']) {
        const answer = await agent.request(`${server.issuer}${path}`, { method, headers: { origin: EVIL, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
        await answer.body?.cancel();
        assert.equal(answer.headers.get('access-control-allow-credentials'), null, `${method} ${path}`);
        if (ours.includes(path)) assert.equal(answer.headers.get('access-control-allow-origin'), null, `${method} ${path}`);
      }
    }
  });

  it('renews the session id at sign-in: a session planted in the browser before is not the one signed in', async () => {
    // The attacker's own session (signed in as alice), planted in the victim's browser.
    const attacker = await signedInToAccountPage(server.issuer, 'alice', PASSWORD);
    const planted = attacker.agent.cookieHeader(server.issuer);
    const victim = new Agent();
    victim.keepCookies(server.issuer, new Response(null, { headers: planted.split('; ').map((pair) => ['set-cookie', `${pair}; Path=/`]) }));
    const { page } = await startAuthorization(victim, config, REDIRECT, { prompt: 'login' });
    let back = await signInSteps(victim, page, { username: 'bob', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    // Another person's session in this browser: the engine ends it first through a page that posts back, then on.
    if (back.html.includes('Submitting Callback')) back = await signInSteps(victim, await victim.submit(back, '/', {}, REDIRECT), { username: 'bob', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(back.url.startsWith(REDIRECT), `${back.status} ${back.url} ${back.html.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").slice(0, 600)}`);
    const session = (header: string) => header.split('; ').find((pair) => pair.startsWith('lk_session='));
    assert.notEqual(session(victim.cookieHeader(server.issuer)), session(planted));
    // The planted id, replayed, is nobody's now (or still alice's): never bob's.
    const replayed = await new Agent().follow(`${server.issuer}/account`, { headers: { cookie: planted } });
    assert.ok(!replayed.html.includes('bob'), 'the planted session became the victim’s');
  });

  describe('in Chromium, from an attacker’s page on another site', () => {
    let browser: Browser;
    let evil: Server;
    let evilUrl: string;
    let evilPage = '';

    before(async () => {
      browser = await launchChromium();
      evil = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(evilPage));
      const port = await freePort();
      await new Promise<void>((resolve) => evil.listen(port, '127.0.0.1', resolve));
      // Another site than the issuer's (localhost): 127.0.0.1.
      evilUrl = `http://127.0.0.1:${port}/`;
    });
    after(async () => {
      await browser?.close();
      await new Promise((resolve) => evil?.close(resolve));
    });

    it('cannot frame our pages, and its forms posted at the account page change nothing', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      // The person signs in to the account page in this browser.
      await page.goto(`${server.issuer}/account`);
      await page.fill('input[name=username]', 'bob');
      await page.fill('input[name=password]', PASSWORD);
      await page.click('button[type=submit]');
      await page.waitForURL(`${server.issuer}/account`);
      const csrf = await page.locator('form[action="/account/password"] input[name=csrf]').first().inputValue();

      evilPage = `<iframe id="a" src="${server.issuer}/account"></iframe><iframe id="b" src="${server.issuer}/developer"></iframe>`;
      await page.goto(evilUrl);
      await page.waitForTimeout(500);
      for (const frame of page.frames().slice(1)) {
        const text = await frame.locator('body').innerText({ timeout: 1000 }).catch(() => '');
        assert.ok(!/bob|Bob|sign out|password/i.test(text), `a framed page showed: ${text.slice(0, 100)}`);
      }

      // Cross-site posts, with and without the person's own token (as if it leaked): the SameSite=Lax session cookie stays home.
      for (const token of ['', csrf]) {
        evilPage = `<form method="post" action="${server.issuer}/account/password"><input name="csrf" value="${token}"><input name="username" value="bob"><input name="current_password" value="${PASSWORD}"><input name="new_password" value="the attacker new passphrase"><input name="confirm_password" value="the attacker new passphrase"></form><script>document.forms[0].submit()</script>`;
        await page.goto(evilUrl);
        await page.waitForURL((url) => url.href.startsWith(server.issuer));
        await page.waitForLoadState();
      }
      await context.close();
      // Bob's password is what it was.
      await signedInToAccountPage(server.issuer, 'bob', PASSWORD);
    });
  });
});
