/**
 * The red team's web pass (2026-12-01): an outsider attacks every page and form Latchkey serves, in
 * Chromium and by raw HTTP. Cells earlier files performed are not repeated (headers on every answer,
 * cookies' flags, secrets never stored, the developer page's CSRF: web-surfaces; session fixation,
 * cookie tossing, header injection: outsider-attacks; forged form tokens: forms). Kept here: markup
 * in every value an outsider controls, walked through in Chromium; the Content-Security-Policy
 * stopping a script that got into a page anyway; forms posted, and sign-out asked, from another site;
 * our own pages' return parameters.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, watchCsp } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'a perfectly fine password';
const REDIRECT = 'https://app.example.test/callback';
const SIGNED_OUT = 'https://app.example.test/signed-out';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
/** Markup an outsider puts in a value: a page that runs it calls alert (a dialog) or leaves an element behind. */
const MARKUP = `"'><img src=/x onerror=alert(1)><script>alert(2)</script><svg onload=alert(3)>`;

/** What a page would carry had markup got into it, read in Chromium's DOM. */
async function injected(page: Page): Promise<Record<string, unknown[]>> {
  // A string, not a function: tsx's compiled helpers (__name) do not exist in the page.
  return (await page.evaluate(`(() => ({
    inlineScripts: [...document.scripts].filter((s) => !s.src).map((s) => s.text),
    foreignScripts: [...document.scripts].filter((s) => s.src && new URL(s.src).origin !== location.origin).map((s) => s.src),
    handlers: [...document.querySelectorAll('*')].flatMap((e) => [...e.attributes].filter((a) => /^on/i.test(a.name)).map((a) => e.tagName + ' ' + a.name)),
    elements: [...document.querySelectorAll('svg, iframe, object, embed, img[src="/x"], base')].map((e) => e.outerHTML),
    schemes: [...document.querySelectorAll('a[href], form[action], img[src]')].map((e) => e.href || e.action || e.src).filter((u) => /^(javascript|vbscript|data:text)/i.test(u)),
  }))()`)) as Record<string, unknown[]>;
}

/** Asserts `page` shows what it shows as text: nothing ran, no element or link was made of a value. */
async function assertInert(page: Page, dialogs: string[], where: string): Promise<void> {
  assert.deepEqual(await injected(page), { inlineScripts: [], foreignScripts: [], handlers: [], elements: [], schemes: [] }, where);
  assert.deepEqual(dialogs, [], `${where}: no script ran`);
}

describe('red team: the web surfaces, attacked from outside (Chromium and raw HTTP)', function () {
  this.timeout(120_000);
  let server: TestServer;
  let browser: Browser;
  /** Another site (127.0.0.1 beside the issuer's localhost): serves the HTML a test puts in `attackerPage`. */
  let attacker: Server;
  let attackerPage = '';
  let attackerOrigin = '';

  before(async () => {
    server = await startServer({
      env: { REGISTRATION_OPEN: 'true' },
      clients: [{ client_id: 'app', client_name: 'Plain App', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT] }],
    });
    await server.accounts.create('vic', PASSWORD, { name: `Vic ${MARKUP}` });
    attacker = createServer((_, response) => response.writeHead(200, { 'content-type': 'text/html' }).end(attackerPage));
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerOrigin = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    attacker?.close();
    await server?.stop();
  });

  /** A fresh browser profile, recording the dialogs scripts open and the CSP violations Chromium reports. */
  async function profile(): Promise<{ context: BrowserContext; page: Page; dialogs: string[]; csp: string[] }> {
    const context = await browser.newContext();
    const dialogs: string[] = [];
    const csp: string[] = [];
    const page = watchCsp(await context.newPage(), csp);
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    return { context, page, dialogs, csp };
  }

  const authorize = (clientId: string, redirectUri: string, extra: Record<string, string> = {}) =>
    `${server.issuer}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, code_challenge: CHALLENGE, code_challenge_method: 'S256', ...extra })}`;

  /** Signs vic in to the account page in `page`'s browser (Latchkey's own client: no consent). */
  async function signInToAccount(page: Page): Promise<void> {
    await page.goto(`${server.issuer}/account`);
    await page.fill('#username', 'vic');
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL(`${server.issuer}/account`), page.click('button:has-text("Sign in")')]);
  }

  it('markup and script URLs in every value an outsider controls stay text in Chromium: client metadata of a registered app (name, policy and terms links), the developer page\'s app name and redirect URIs, a person\'s display name, and what error, device and sign-in pages reflect from the query (OWASP ASVS V5.3.3, CWE-79)', async () => {
    for (const [name, value] of [['policy_uri', 'javascript:alert(4)'], ['tos_uri', 'data:text/html,<script>alert(5)</script>'], ['client_uri', 'javascript:alert(6)'], ['logo_uri', 'javascript:alert(7)']] as const) {
      const refused = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', [name]: value }) });
      assert.equal(refused.status, 400, `${name}=${value}: ${await refused.text()}`);
    }
    // What the registration policy does not check is not kept: no page could show it.
    const unchecked = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', 'client_name#fr': MARKUP, 'policy_uri#fr': 'javascript:alert(12)', 'logo_uri#de': 'javascript:alert(13)', frontchannel_logout_uri: 'javascript:alert(14)' }),
    });
    assert.equal(unchecked.status, 201);
    assert.deepEqual(Object.keys((await unchecked.json()) as object).filter((key) => key.includes('#') || key.startsWith('frontchannel')), []);
    const registered = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', client_name: `Evil ${MARKUP}`,
        policy_uri: `https://app.example.test/policy?a="><script>alert(8)</script>`, tos_uri: `https://app.example.test/tos#'><svg onload=alert(9)>`,
      }),
    });
    assert.equal(registered.status, 201, await registered.clone().text());
    const evil = ((await registered.json()) as { client_id: string }).client_id;

    const { context, page, dialogs } = await profile();
    // The login page, with what the query carries (login_hint prefills the username).
    await page.goto(authorize(evil, REDIRECT, { login_hint: MARKUP, ui_locales: MARKUP, state: MARKUP, nonce: MARKUP }));
    assert.equal(await page.inputValue('#username'), MARKUP, 'login_hint is the username field\'s value, as text');
    assert.match(await page.locator('main').innerText(), /Evil "'><img src=\/x/, 'the name is shown as text');
    assert.equal(await page.getAttribute('a:has-text("Privacy policy")', 'href'), new URL(`https://app.example.test/policy?a="><script>alert(8)</script>`).href, 'the policy link, as registered (normalised)');
    await assertInert(page, dialogs, 'login page');
    await page.fill('#username', 'vic');
    await page.fill('#password', PASSWORD);
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('button:has-text("Allow")');
    await assertInert(page, dialogs, 'consent page');
    // The app's redirect URI is not on the network (and a route does not see a redirect's next hop):
    // the request leaving for it is the end of the flow, and its failure's error page is awaited, so
    // that it cannot land after the next goto began and cut that short.
    await Promise.all([
      page.waitForEvent('framenavigated', (frame) => frame === page.mainFrame() && frame.url().startsWith('chrome-error:')),
      page.waitForRequest((request) => request.url().startsWith(REDIRECT)),
      page.click('button:has-text("Allow")'),
    ]);
    // The chooser shows the person's display name.
    await page.goto(authorize(evil, REDIRECT, { prompt: 'select_account' }));
    await page.waitForSelector('text=Choose an account');
    assert.match(await page.locator('main').innerText(), /Continue as Vic "'><img/);
    await assertInert(page, dialogs, 'select-account page');
    // The account page lists the app by its name, and the developer page shows what a developer typed.
    await page.goto(`${server.issuer}/account`);
    await page.waitForURL(`${server.issuer}/account`);
    assert.match(await page.locator('main').innerText(), /Evil "'><img/, 'the account page names the app');
    await assertInert(page, dialogs, 'account page');
    await page.goto(`${server.issuer}/developer`);
    await page.waitForURL(`${server.issuer}/developer`);
    await page.fill('#name', `Dev ${MARKUP}`.slice(0, 80));
    await page.check('input[name=type][value=web]');
    await page.fill('#redirect_uris', `https://dev.example.test/cb?x="><script>alert(10)</script>\njavascript:alert(11)`);
    // The refused registration's own page (the POST's URL), not the load state the page before already
    // has: the redirect URIs filled next could land on the page the answer then replaced (it keeps
    // the refused values), and the second registration was refused too.
    await Promise.all([page.waitForURL(`${server.issuer}/developer/apps`), page.click('button:has-text("Register app")')]);
    await assertInert(page, dialogs, 'developer page, refused registration');
    await page.fill('#redirect_uris', 'https://dev.example.test/cb');
    await page.click('button:has-text("Register app")');
    await page.waitForSelector('#client-id');
    await assertInert(page, dialogs, 'developer page, new app\'s secret');
    await page.goto(`${server.issuer}/developer`);
    assert.match(await page.locator('main').innerText(), /Dev "'><img/);
    await assertInert(page, dialogs, 'developer page');

    // Pages that reflect the query: error pages, the device page, the end-session page.
    for (const path of [
      `/device?user_code=${encodeURIComponent(MARKUP)}`,
      `/auth?client_id=${encodeURIComponent(MARKUP)}&response_type=code&redirect_uri=${encodeURIComponent(REDIRECT)}`,
      `/auth?client_id=${evil}&response_type=code&redirect_uri=${encodeURIComponent(`${REDIRECT}?${MARKUP}`)}&state=${encodeURIComponent(MARKUP)}&error_description=${encodeURIComponent(MARKUP)}`,
      `/session/end?client_id=app&post_logout_redirect_uri=${encodeURIComponent(MARKUP)}&state=${encodeURIComponent(MARKUP)}&ui_locales=${encodeURIComponent(MARKUP)}`,
      `/session/end?client_id=app&post_logout_redirect_uri=${encodeURIComponent(SIGNED_OUT)}&state=${encodeURIComponent(MARKUP)}&logout_hint=${encodeURIComponent(MARKUP)}`,
      `/interaction/${encodeURIComponent(MARKUP)}`,
      `/upstream/${encodeURIComponent(MARKUP)}/callback?error=${encodeURIComponent(MARKUP)}&error_description=${encodeURIComponent(MARKUP)}&state=x`,
      `/account/callback?error=${encodeURIComponent(MARKUP)}&error_description=${encodeURIComponent(MARKUP)}`,
      `/account?done=${encodeURIComponent(MARKUP)}`,
      `/developer?done=${encodeURIComponent(MARKUP)}`,
      `/${encodeURIComponent(MARKUP)}`,
    ]) {
      await page.goto(`${server.issuer}${path}`);
      await assertInert(page, dialogs, path);
    }
    await context.close();
  });

  it("the Content-Security-Policy stops a script that got into a page anyway: an inline script and an event handler placed in the home, sign-in, consent, account, developer, device and error pages do not run in Chromium, which reports the violation (CSP Level 3 script-src without 'unsafe-inline')", async () => {
    const { context, page, csp } = await profile();
    // Every page of ours comes back with a script and a handler added, under the headers it was
    // served with; the control (?control) without its Content-Security-Policy shows the injection runs.
    await context.route(`${server.issuer}/**`, async (route) => {
      const response = await route.fetch({ maxRedirects: 0 });
      if (!(response.headers()['content-type'] ?? '').startsWith('text/html')) return route.fulfill({ response });
      const body = (await response.text()).replace('</main>', '<script>document.title = "ran"</script><img src="/x" onerror="document.title = \'ran\'"></main>');
      const control = new URL(route.request().url()).searchParams.has('control');
      const headers = Object.fromEntries(Object.entries(response.headers()).filter(([name]) => !(control && name === 'content-security-policy')));
      await route.fulfill({ response, body, headers });
    });
    await page.goto(`${server.issuer}/?control`);
    await page.waitForLoadState('load');
    assert.equal(await page.title(), 'ran', 'without the policy, the injected script runs');
    const reached: string[] = [];
    const check = async (where: string) => {
      await page.waitForLoadState('load');
      reached.push(where);
      assert.notEqual(await page.title(), 'ran', `${where}: the injected script ran`);
    };
    await page.goto(`${server.issuer}/`);
    await check('home');
    await page.goto(authorize('app', REDIRECT));
    await page.waitForSelector('#username');
    await check('sign-in');
    await page.fill('#username', 'vic');
    await page.fill('#password', PASSWORD);
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('button:has-text("Allow")');
    await check('consent');
    await page.goto(`${server.issuer}/account`);
    await page.waitForURL(`${server.issuer}/account`);
    await check('account');
    await page.goto(`${server.issuer}/developer`);
    await check('developer');
    await page.goto(`${server.issuer}/device`);
    await check('device');
    await page.goto(`${server.issuer}/interaction/unknown`);
    await check('error');
    assert.ok(csp.filter((line) => /script/i.test(line)).length >= reached.length, `a violation reported on every page: ${csp.join('\n')}`);
    await context.close();
  });

  it("a signed-in person's browser sent to another site: its forms posted to the account page, the developer page, the device page and sign-out, and sign-out asked by a link, an image or a top-level GET, change nothing; the person stays signed in (SameSite=Lax, CSRF tokens; RFC 9700 §4.7, OpenID RP-Initiated Logout §6)", async () => {
    const { context, page } = await profile();
    await signInToAccount(page);
    const accountHtml = await page.content();
    const session = /name="session" value="([^"]+)"/.exec(accountHtml)?.[1] ?? 'unknown';
    const appsBefore = await (async () => { await page.goto(`${server.issuer}/developer`); return page.locator('section.app').count(); })();

    // Each form the attacker's page posts on load, as a victim visiting it would.
    const forms: [string, Record<string, string>][] = [
      ['/account/password', { current_password: PASSWORD, new_password: 'the attacker chose this one', confirm_password: 'the attacker chose this one' }],
      ['/account/sessions/sign-out', { session }],
      ['/account/recovery-codes', {}],
      ['/account/authenticator/start', {}],
      ['/developer/apps', { name: 'Planted', type: 'web', redirect_uris: 'https://evil.example/cb' }],
      ['/session/end/confirm', { logout: 'yes' }],
      ['/device', { user_code: 'BCDF-GHJK', confirm: 'yes' }],
    ];
    for (const [action, fields] of forms) {
      const inputs = Object.entries(fields).map(([k, v]) => `<input name="${k}" value="${v}">`).join('');
      attackerPage = `<!doctype html><form method="post" action="${server.issuer}${action}">${inputs}</form><script>document.forms[0].submit()</script>`;
      const answered = page.waitForResponse((response) => response.url().startsWith(`${server.issuer}${action}`));
      await page.goto(`${attackerOrigin}/`);
      const answer = await answered;
      assert.ok([400, 401, 403].includes(answer.status()), `${action} from another site: ${answer.status()}`);
    }
    // Sign-out asked without a form: an image, a link followed, a top-level GET with a registered return address.
    attackerPage = `<!doctype html><img src="${server.issuer}/session/end"><img src="${server.issuer}/session/end/confirm?logout=yes">`;
    await page.goto(`${attackerOrigin}/`);
    await page.waitForLoadState('load');
    for (const path of ['/session/end', `/session/end?client_id=app&post_logout_redirect_uri=${encodeURIComponent(SIGNED_OUT)}`, '/session/end/confirm?logout=yes', `/account/sessions/sign-out?session=${session}`]) {
      attackerPage = `<!doctype html><a id="go" href="${server.issuer}${path}">go</a><script>document.getElementById('go').click()</script>`;
      await page.goto(`${attackerOrigin}/`);
      await page.waitForURL((url) => url.origin === new URL(server.issuer).origin);
      assert.notEqual(new URL(page.url()).origin, new URL(SIGNED_OUT).origin, `${path}: no sign-out without the person's confirmation`);
    }

    await page.goto(`${server.issuer}/account`);
    assert.equal(page.url(), `${server.issuer}/account`, 'still signed in');
    assert.ok(await server.accounts.verify('vic', PASSWORD), 'the password is unchanged');
    await page.goto(`${server.issuer}/developer`);
    assert.equal(await page.locator('section.app').count(), appsBefore, 'no app planted');
    await context.close();
  });

  it('a sign-out page another site opens does not act on a key press: nothing on it holds the focus, so an Enter or a Space meant for that site (held down as the page opens) signs nobody out; the person\'s click still does (keystroke-jacking, logout CSRF; the web surface, ninth pass)', async () => {
    const { context, page } = await profile();
    await signInToAccount(page);
    attackerPage = `<!doctype html><a id="go" href="${server.issuer}/session/end">go</a><script>document.getElementById('go').click()</script>`;
    await page.goto(`${attackerOrigin}/`);
    await page.waitForURL(`${server.issuer}/session/end`);
    await page.waitForLoadState('load');
    // A key the page receives goes to what holds the focus: before, "Sign out everywhere" (autofocus).
    assert.equal(await page.evaluate('document.activeElement ? document.activeElement.tagName : null'), 'BODY', 'no control of the sign-out page holds the focus');
    await page.keyboard.press('Enter');
    await page.keyboard.press('Space');
    await page.waitForLoadState('networkidle');
    assert.equal(page.url(), `${server.issuer}/session/end`, 'the keys sent nothing');
    await page.goto(`${server.issuer}/account`);
    assert.equal(page.url(), `${server.issuer}/account`, 'still signed in');
    await page.goto(`${server.issuer}/session/end`);
    await page.click('button[name="logout"]');
    await page.waitForURL(`${server.issuer}/session/end/success`);
    await page.goto(`${server.issuer}/account`);
    assert.notEqual(page.url(), `${server.issuer}/account`, 'signed out by the click');
    await context.close();
  });

  it("another site can neither frame a signed-in person's pages (sign-in, consent, account, developer, device, sign-out) for a click, nor read them with the person's cookies through CORS, in Chromium (X-Frame-Options DENY, frame-ancestors 'none'; no Access-Control-Allow-Credentials)", async () => {
    const { context, page } = await profile();
    await signInToAccount(page);
    const paths = ['/account', '/developer', '/device', '/session/end', authorize('app', REDIRECT).slice(server.issuer.length)];
    attackerPage = `<!doctype html>${paths.map((path) => `<iframe src="${server.issuer}${path}"></iframe>`).join('')}`;
    await page.goto(`${attackerOrigin}/`);
    await page.waitForLoadState('load');
    const frames = page.frames().filter((frame) => frame !== page.mainFrame());
    assert.equal(frames.length, paths.length);
    for (const frame of frames) {
      // A refused frame is Chromium's error page, never our document with its buttons.
      const buttons = await frame.locator('button').count().catch(() => 0);
      assert.equal(buttons, 0, `${frame.url()} was framed`);
      assert.doesNotMatch(frame.url(), new RegExp(`^${server.issuer}`), 'the frame holds no page of ours');
    }
    const reads = (await page.evaluate(`Promise.all(${JSON.stringify(paths.map((path) => `${server.issuer}${path}`))}.map((url) =>
      fetch(url, { credentials: 'include' }).then((answer) => 'read ' + answer.status, (error) => 'refused: ' + error.name)))`)) as string[];
    assert.deepEqual(reads, paths.map(() => 'refused: TypeError'));
    await context.close();
  });

  it('no page of ours forwards a browser off-site through its own return parameters: `again` and `state` on the account and developer pages\' sign-in and callback, `done` and the upstream signed-out page (RFC 9700 §4.11.2, CWE-601)', async () => {
    const issuer = new URL(server.issuer);
    for (const target of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)', '%2F%2Fevil.example']) {
      for (const path of [
        `/account/sign-in?again=${encodeURIComponent(target)}`,
        `/developer/sign-in?again=${encodeURIComponent(target)}`,
        `/account/callback?state=${encodeURIComponent(`x.${target}`)}&code=x`,
        `/developer/callback?state=${encodeURIComponent(`x.${target}`)}&code=x`,
        `/account/callback?state=x&code=x&again=${encodeURIComponent(target)}`,
        `/upstream/corp/signed-out?state=${encodeURIComponent(target)}`,
        `/account?done=${encodeURIComponent(target)}&next=${encodeURIComponent(target)}`,
      ]) {
        const answer = await fetch(`${server.issuer}${path}`, { redirect: 'manual', headers: { accept: 'text/html' } });
        await answer.arrayBuffer();
        const location = answer.headers.get('location');
        if (!location) continue;
        const to = new URL(location, server.issuer);
        assert.equal(to.origin, issuer.origin, `${path} → ${location}`);
        if (to.pathname === '/auth') assert.equal(to.searchParams.get('redirect_uri')?.startsWith(server.issuer), true, `${path} → ${location}`);
      }
    }
  });
});
