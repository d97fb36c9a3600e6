/**
 * The web surfaces people and developers click, attacked black box: what each answer carries
 * (framing, sniffing, referrer, caching of pages that show a secret), the cookies' flags under an
 * https issuer behind a proxy, and bodies the server cannot read.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { Agent, type Page } from '../helpers/agent.js';
import { launchChromium } from '../helpers/browser.js';
import { developerSignIn } from '../helpers/developer.js';
import { clientCredentialsToken, machineClient } from '../helpers/tokens.js';
import { signInSteps } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'a perfectly fine password';
const REDIRECT = 'https://app.example.test/callback';
const SIGNED_OUT = 'https://app.example.test/signed-out';
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };

/** The headers every answer carries, whatever its path, method or status. */
function assertHardened(headers: Headers, name: string): void {
  assert.equal(headers.get('x-frame-options'), 'DENY', name);
  const csp = headers.get('content-security-policy') ?? '';
  assert.match(csp, /frame-ancestors 'none'/, name);
  assert.match(csp, /default-src 'none'/, name);
  assert.doesNotMatch(/script-src ([^;]*)/.exec(csp)?.[1] ?? '', /unsafe-inline|unsafe-eval|\*|https?:|data:/, name);
  assert.equal(headers.get('x-content-type-options'), 'nosniff', name);
  assert.equal(headers.get('referrer-policy'), 'no-referrer', name);
  const permissions = headers.get('permissions-policy') ?? '';
  for (const feature of ['camera', 'microphone', 'geolocation', 'payment']) assert.match(permissions, new RegExp(`(^|, )${feature}=\\(\\)`), name);
  // Passkeys must keep working: WebAuthn is never turned off.
  assert.doesNotMatch(permissions, /publickey-credentials/, name);
}

describe('e2e: the web surfaces (headers, cookies, bodies)', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      clients: [{ client_id: 'app', client_name: 'Surfaces App', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] }, machineClient(OPS, { scope: 'admin' })],
    });
    await server.accounts.create('pat', PASSWORD);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
  });
  after(() => server?.stop());

  it('a body the server cannot read (gzip, deflate or br over bytes not so compressed) is a 400 page at every form of ours, never a 500', async () => {
    const forms = ['/interaction/some-uid/login', '/interaction/some-uid/confirm', '/developer/apps', '/account/password', '/upstream/some-upstream/backchannel-logout'];
    for (const path of forms) {
      for (const encoding of ['gzip', 'deflate', 'br']) {
        const answer = await fetch(`${server.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': encoding, accept: 'text/html' },
          body: 'username=pat&password=not-compressed',
        });
        const html = await answer.text();
        assert.equal(answer.status, 400, `${path} ${encoding}: ${answer.status} ${html.slice(0, 200)}`);
        assert.match(html, /could not be read/, `${path} ${encoding}`);
        assertHardened(answer.headers, `${path} ${encoding}`);
      }
    }
    // A form that really is compressed is still read: the login form of a real sign-in, gzipped.
    const agent = new Agent();
    const login = await agent.follow(`${server.url}/developer/sign-in`);
    const csrf = login.html.match(/name="csrf" value="([^"]+)"/)![1]!;
    const action = new URL(login.html.match(/action="([^"]*\/login)"/)![1]!, login.url).href;
    const gzipped = await agent.request(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' },
      body: gzipSync(new URLSearchParams({ csrf, username: 'pat', password: PASSWORD }).toString()),
    });
    assert.equal(gzipped.status, 303, 'a gzipped form is read as the form it is');
  });

  it('the admin API: a JSON body it cannot read is a 400, not a 500; its answers that hold a client secret are never stored', async () => {
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const post = (body: RequestInit['body'], headers: Record<string, string> = {}) =>
      fetch(`${server.url}/admin/clients`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers }, body });
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const answer = await post('{"redirect_uris":["https://x.example.test/cb"]}', { 'content-encoding': encoding });
      assert.equal(answer.status, 400, `${encoding}: ${answer.status} ${await answer.text()}`);
    }
    const made = await post(gzipSync(JSON.stringify({ client_id: 'made-by-ops', redirect_uris: ['https://made.example.test/cb'] })), { 'content-encoding': 'gzip' });
    assert.equal(made.status, 201, 'a JSON body that really is gzipped is read');
    assert.ok(((await made.json()) as { client_secret?: string }).client_secret);
    const rotated = await fetch(`${server.url}/admin/clients/made-by-ops/secret`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.ok(((await rotated.json()) as { client_secret?: string }).client_secret);
    for (const [name, answer] of Object.entries({ made, rotated })) {
      assert.equal(answer.headers.get('cache-control'), 'no-store', name);
      assertHardened(answer.headers, name);
    }
  });

  it('every answer carries the framing, sniffing and referrer headers: pages, errors, 404s, refusals, HEAD and OPTIONS, programs\' JSON', async () => {
    const agent = new Agent();
    const { page: developer } = await developerSignIn(server.issuer, 'pat', PASSWORD, agent);
    const requests: [string, string, RequestInit?][] = [
      ['home', '/'],
      ['unknown path', '/no-such-page'],
      ['unknown sign-in', '/interaction/unknown'],
      ['unknown client at /auth', '/auth?client_id=nobody&response_type=code'],
      ['device page', '/device'],
      ['logout page', '/session/end'],
      ['account page (signed out)', '/account'],
      ['HEAD account', '/account', { method: 'HEAD' }],
      ['OPTIONS account', '/account', { method: 'OPTIONS' }],
      ['PUT developer', '/developer', { method: 'PUT' }],
      ['login POST without a sign-in', '/interaction/unknown/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' }],
      ['developer POST without CSRF', '/developer/apps', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: agent.cookieHeader(server.issuer) }, body: 'name=x' }],
      ['too large', '/account/password', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `a=${'x'.repeat(100_000)}` }],
      ['admin API without a token', '/admin/clients'],
      ['token endpoint error', '/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=nope' }],
      ['discovery', '/.well-known/openid-configuration'],
    ];
    assertHardened(developer.headers, 'developer page (signed in)');
    for (const [name, path, init] of requests) {
      const answer = await fetch(`${server.url}${path}`, { redirect: 'manual', ...init, headers: { accept: 'text/html', ...(init?.headers as Record<string, string>) } });
      await answer.arrayBuffer();
      assert.ok(answer.status < 500, `${name}: ${answer.status}`);
      assertHardened(answer.headers, `${name} (${answer.status})`);
    }
  });

  it("another site cannot load our pages as no-cors resources (CORP same-origin), yet reads discovery, the JWKS and userinfo's answer with CORS in Chromium", async () => {
    const { page: signedIn, agent } = await developerSignIn(server.issuer, 'pat', PASSWORD);
    assert.equal(signedIn.headers.get('cross-origin-resource-policy'), 'same-origin', 'developer page');
    for (const path of ['/', '/account', '/no-such-page', '/interaction/unknown']) {
      const answer = await agent.request(`${server.issuer}${path}`);
      await answer.arrayBuffer();
      assert.equal(answer.headers.get('cross-origin-resource-policy'), 'same-origin', path);
    }
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks']) {
      for (let i = 0; i < 2; i += 1) { // the first answer and the kept one
        const answer = await fetch(`${server.issuer}${path}`);
        await answer.arrayBuffer();
        assert.equal(answer.headers.get('cross-origin-resource-policy'), 'cross-origin', path);
      }
    }

    // Another origin (127.0.0.1 beside the issuer's localhost) in a real browser.
    const elsewhere = createServer((_, response) => response.end('<!doctype html><title>elsewhere</title>'));
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/`);
      // A string, not a function: tsx's compiled helpers (__name) do not exist in the page.
      const results = (await page.evaluate(`(async (issuer) => {
        const read = (path) => fetch(issuer + path).then((answer) => String(answer.status), (error) => 'refused: ' + error.name);
        const load = (path) => fetch(issuer + path, { mode: 'no-cors' }).then((answer) => answer.type, (error) => 'refused: ' + error.name);
        return {
          discovery: await read('/.well-known/openid-configuration'),
          jwks: await read('/jwks'),
          userinfo: await read('/me'),
          account: await load('/account'),
          developer: await load('/developer'),
          loginPage: await load('/interaction/unknown'),
          jwksNoCors: await load('/jwks'),
        };
      })(${JSON.stringify(server.issuer)})`)) as Record<string, string>;
      assert.deepEqual(results, {
        discovery: '200', jwks: '200', userinfo: '401',
        account: 'refused: TypeError', developer: 'refused: TypeError', loginPage: 'refused: TypeError',
        jwksNoCors: 'opaque',
      });
    } finally {
      await browser.close();
      elsewhere.close();
    }
  });

  it("a cross-site form at the developer page's actions (the person's cookies, no token or a forged one) changes nothing: 403 at create, rotate and delete", async () => {
    const { agent, page } = await developerSignIn(server.issuer, 'pat', PASSWORD);
    const csrf = page.html.match(/name="csrf" value="([^"]+)"/)![1]!;
    const made = await agent.follow(`${server.issuer}/developer/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, name: 'Kept', type: 'web', redirect_uris: 'https://kept.example.test/cb' }),
    });
    const id = made.html.match(/id="client-id">([^<]+)</)![1]!;
    const before = await agent.follow(`${server.issuer}/developer`);
    for (const [action, fields] of [['apps', { name: 'Planted', type: 'web', redirect_uris: 'https://evil.example/cb' }], [`apps/${id}/secret`, { leaked: 'yes' }], [`apps/${id}/delete`, {}]] as const) {
      for (const token of [undefined, '', 'forged', csrf.slice(0, -1)]) {
        const answer = await agent.request(`${server.issuer}/developer/${action}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
          body: new URLSearchParams({ ...fields, ...(token === undefined ? {} : { csrf: token }) }),
        });
        assert.equal(answer.status, 403, `${action} with csrf=${String(token)}: ${answer.status}`);
        await answer.arrayBuffer();
      }
    }
    const after = await agent.follow(`${server.issuer}/developer`);
    const apps = (html: string) => [...html.matchAll(/<h2>([^<]+)<\/h2>/g)].map(([, name]) => name);
    assert.deepEqual(apps(after.html), apps(before.html), 'no app added or deleted');
    assert.match(after.html, new RegExp(id));
  });

  it('pages that show a secret are never stored: a new app\'s client secret, a rotated one, the authenticator app\'s secret, recovery codes', async () => {
    const { agent, page } = await developerSignIn(server.issuer, 'pat', PASSWORD);
    const made = await agent.submit(page, '/developer/apps', { name: 'Secret Keeper', type: 'web', redirect_uris: 'https://keeper.example.test/cb' });
    assert.match(made.html, /id="client-secret"/, `the new app's page shows its secret: ${made.status}`);
    const rotated = await agent.submit(await agent.follow(`${server.issuer}/developer`), '/secret', {});
    assert.match(rotated.html, /id="client-secret"/);

    const account = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'pat', password: PASSWORD });
    assert.equal(account.url, `${server.issuer}/account`);
    const totp = await agent.submit(account, '/authenticator/start', {});
    assert.match(totp.html, /id="totp-secret"/);
    const codes = await agent.submit(account, '/account/recovery-codes', {});
    assert.match(codes.html, /id="recovery-codes"/);

    const shown: [string, Page][] = [['new app', made], ['rotated secret', rotated], ['authenticator setup', totp], ['recovery codes', codes]];
    for (const [name, answer] of shown) {
      assert.equal(answer.headers.get('cache-control'), 'no-store', name);
      assertHardened(answer.headers, name);
    }
  });
});

describe('e2e: the sign-in page tells no one which usernames exist', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ env: { ACCOUNTS_THROTTLE_MAX_FAILURES: '3' } });
    await server.accounts.create('known', PASSWORD);
    await server.accounts.create('disabled', PASSWORD);
    await server.accounts.setDisabled('disabled', true);
    await server.accounts.createWithoutPassword('federated', {});
  });
  after(() => server?.stop());

  /** The answer to one sign-in attempt, with what differs between any two attempts (ids, tokens, the username echoed) taken out. */
  async function attempt(username: string, password: string) {
    const agent = new Agent();
    const login = await agent.follow(`${server.issuer}/account/sign-in`);
    const answer = await agent.submit(login, '/login', { username, password });
    const page = answer.html
      .replace(/\/interaction\/[A-Za-z0-9_-]+/g, '/interaction/UID')
      .replace(/value="[A-Za-z0-9_-]{20,}"/g, 'value="TOKEN"')
      .replace(/data-options="[^"]*"/, 'data-options="OPTIONS"')
      .replace(/<code>[0-9a-f-]{36}<\/code>/g, '<code>REQUEST</code>')
      .replaceAll(`value="${username}"`, 'value="USERNAME"');
    return { status: answer.status, retryAfter: answer.headers.get('retry-after'), page };
  }

  it('a wrong password, an unknown username, a disabled account (with its right password) and an account without a password get the same page, and are paused after the same number of tries', async () => {
    const tries: Record<string, Awaited<ReturnType<typeof attempt>>[]> = {};
    for (const [username, password] of [['known', 'a wrong password'], ['nobody-by-this-name', 'a wrong password'], ['disabled', PASSWORD], ['federated', 'a wrong password']] as const) {
      tries[username] = [];
      for (let i = 0; i < 4; i += 1) tries[username].push(await attempt(username, password));
    }
    const [reference, ...others] = Object.entries(tries);
    assert.deepEqual(reference![1].map(({ status }) => status), [401, 401, 429, 429], 'the third failure pauses the username');
    assert.match(reference![1][0]!.page, /That username and password do not match/);
    for (const [username, answers] of others) {
      answers.forEach((answer, i) => {
        assert.equal(answer.status, reference![1][i]!.status, `${username}, try ${i + 1}`);
        assert.equal(answer.retryAfter, reference![1][i]!.retryAfter, `${username}, try ${i + 1}`);
        assert.equal(answer.page, reference![1][i]!.page, `${username}, try ${i + 1}: the page differs`);
      });
    }
  });
});

describe('e2e: cookies under an https issuer whose TLS ends at a proxy', function () {
  this.timeout(30_000);
  const ISSUER = 'https://id.example.test';
  let server: TestServer;

  before(async () => {
    // No PROXY setting: the connection reaching Latchkey is plain http and carries no X-Forwarded-Proto.
    server = await startServer({
      env: { ISSUER },
      clients: [
        { client_id: 'app', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT] },
        { client_id: 'tv', token_endpoint_auth_method: 'none', application_type: 'native', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [] },
      ],
    });
    await server.accounts.create('pat', PASSWORD);
  });
  after(() => server?.stop());

  it('every Set-Cookie of every flow is Secure, HttpOnly and SameSite=Lax (a wrong password, a declined and an allowed consent, select_account, prompt=login, the account page, a device code, signing out), and every page on the way forbids framing and storing (OWASP ASVS V3.4, RFC 9700 §4.16)', async () => {
    const agent = new Agent();
    const pages: { url: string; headers: Headers }[] = [];
    const request = agent.request.bind(agent);
    agent.request = async (url: string, init?: RequestInit) => {
      const response = await request(url.replace(ISSUER, server.url), init);
      pages.push({ url: `${init?.method ?? 'GET'} ${url}`, headers: response.headers });
      return response;
    };
    const auth = (extra: Record<string, string> = {}) =>
      `${ISSUER}/auth?${new URLSearchParams({ client_id: 'app', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'a'.repeat(43), code_challenge_method: 'S256', ...extra })}`;
    let page = await agent.follow(auth(), {}, REDIRECT);
    page = await agent.submit(page, '/login', { username: 'pat', password: 'not the password at all' }, REDIRECT);
    assert.equal(page.status, 401);
    page = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.match((await agent.submit(page, '/abort', {}, REDIRECT)).url, /error=access_denied/);
    assert.match((await signInSteps(agent, await agent.follow(auth({ prompt: 'consent' }), {}, REDIRECT), { username: 'pat', password: PASSWORD, stopAt: REDIRECT })).url, /code=/);
    assert.match((await agent.follow(auth({ prompt: 'select_account' }), {}, REDIRECT)).html, /<form/);
    assert.match((await signInSteps(agent, await agent.follow(auth({ prompt: 'login' }), {}, REDIRECT), { username: 'pat', password: PASSWORD, stopAt: REDIRECT })).url, /code=/);
    assert.equal((await agent.follow(`${ISSUER}/account`)).status, 200);
    const device = await fetch(`${server.url}/device/auth`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'client_id=tv&scope=openid' });
    const { user_code: userCode } = (await device.json()) as { user_code: string };
    assert.equal((await agent.submit(await agent.follow(`${ISSUER}/device`), '/device', { user_code: userCode })).status, 200);
    const signOut = await agent.follow(`${ISSUER}/session/end?${new URLSearchParams({ client_id: 'app', post_logout_redirect_uri: SIGNED_OUT })}`, {}, SIGNED_OUT);
    assert.equal((await agent.submit(signOut, '/session/end/confirm', { logout: 'yes' }, SIGNED_OUT)).url, SIGNED_OUT);
    assert.equal((await agent.follow(`${ISSUER}/interaction/no-such-sign-in`)).status, 400);

    const names = new Set(agent.setCookies.map((line) => line.split('=')[0]!.replace(/^(__Host-lk_flow_).+$/, '$1<uid>')));
    for (const name of ['lk_interaction', 'lk_resume', '__Host-lk_flow_<uid>', '__Host-lk_session']) assert.ok(names.has(name), `${name} was set: ${[...names].join(', ')}`);
    for (const line of agent.setCookies) {
      const attributes = line.split(';').slice(1).map((a) => a.trim().toLowerCase());
      for (const attribute of ['secure', 'httponly', 'samesite=lax']) assert.ok(attributes.includes(attribute), `not ${attribute}: ${line.replace(/=[^;]*/, '=…')}`);
    }
    const html = pages.filter(({ headers }) => /^text\/html/.test(headers.get('content-type') ?? ''));
    assert.ok(html.length >= 10, `${html.length} pages`);
    for (const { url, headers } of html) {
      assert.equal(headers.get('x-frame-options'), 'DENY', url);
      assert.match(headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, url);
      assert.match(headers.get('cache-control') ?? '', /no-store/, url);
    }
  });

  it('HSTS on every answer under an https issuer (a year, subdomains too), and never under an http one (a development localhost)', async () => {
    for (const path of ['/', '/developer', '/no-such-page', '/.well-known/openid-configuration']) {
      const answer = await fetch(`${server.url}${path}`, { headers: { accept: 'text/html' }, redirect: 'manual' });
      await answer.arrayBuffer();
      const hsts = answer.headers.get('strict-transport-security') ?? '';
      assert.ok(Number(/max-age=(\d+)/.exec(hsts)?.[1]) >= 31_536_000, `${path}: ${hsts}`);
      assert.match(hsts, /includeSubDomains/, path);
    }
    const local = await startServer();
    try {
      const answer = await fetch(`${local.url}/`);
      await answer.arrayBuffer();
      assert.equal(answer.headers.get('strict-transport-security'), null);
    } finally {
      await local.stop();
    }
  });

  it('every cookie set on the way through a sign-in is Secure, HttpOnly and SameSite=Lax; the session cookie is __Host- (no sibling subdomain can toss one in)', async () => {
    const agent = new Agent();
    // The browser speaks to the issuer's https URL; here the "proxy" is this rewrite to the plain http port.
    const request = agent.request.bind(agent);
    agent.request = (url: string, init?: RequestInit) => request(url.replace(ISSUER, server.url), init);
    const login = await agent.follow(`${ISSUER}/developer/sign-in`);
    assert.match(login.html, /name="password"/);
    const page = await signInSteps(agent, login, { username: 'pat', password: PASSWORD, login: 'required' });
    assert.equal(page.url, `${ISSUER}/developer`);
    assert.match(page.html, /<h1>Your apps<\/h1>/, 'the developer page read the session from its cookie');
    const names = new Set(agent.setCookies.map((line) => line.split('=')[0]!));
    for (const name of ['lk_interaction', 'lk_resume', '__Host-lk_session']) assert.ok(names.has(name), `${name} was set: ${[...names].join(', ')}`);
    assert.ok(!names.has('lk_session'), 'the session cookie is __Host- only');
    for (const line of agent.setCookies.filter((set) => set.startsWith('__Host-'))) {
      assert.match(line, /; path=\/(;|$)/, `__Host- needs Path=/: ${line.replace(/=[^;]*/, '=…')}`);
      assert.doesNotMatch(line, /; domain=/i, `__Host- has no Domain: ${line.replace(/=[^;]*/, '=…')}`);
    }
    for (const line of agent.setCookies) {
      const attributes = line.split(';').slice(1).map((a) => a.trim().toLowerCase());
      assert.ok(attributes.includes('secure'), `not Secure: ${line.replace(/=[^;]*/, '=…')}`);
      assert.ok(attributes.includes('httponly'), `not HttpOnly: ${line.replace(/=[^;]*/, '=…')}`);
      assert.ok(attributes.includes('samesite=lax'), `not SameSite=Lax: ${line.replace(/=[^;]*/, '=…')}`);
    }
  });

  it('signing out under an https issuer ends the __Host- session: the engine reads it by that name, and clears it with Secure and Path=/ (a browser ignores a __Host- cookie set without them)', async () => {
    const agent = new Agent();
    const request = agent.request.bind(agent);
    agent.request = (url: string, init?: RequestInit) => request(url.replace(ISSUER, server.url), init);
    const login = await agent.follow(`${ISSUER}/developer/sign-in`);
    assert.equal((await signInSteps(agent, login, { username: 'pat', password: PASSWORD, login: 'required' })).url, `${ISSUER}/developer`);
    const signedIn = agent.cookieHeader(server.url);
    assert.match(signedIn, /__Host-lk_session=/);
    const confirm = await agent.follow(`${ISSUER}/session/end`);
    assert.equal(confirm.status, 200, confirm.url);
    const before = agent.setCookies.length;
    const done = await agent.submit(confirm, '/session/end/confirm', { logout: 'yes' });
    assert.ok(done.status < 500, `${done.status} ${done.url}`);
    const cleared = agent.setCookies.slice(before).filter((line) => line.startsWith('__Host-lk_session=') && /expires=Thu, 01 Jan 1970|max-age=0/i.test(line));
    assert.ok(cleared.length > 0, `the session cookie is cleared: ${agent.setCookies.slice(before).map((line) => line.replace(/=[^;]*/, '=…')).join(' | ')}`);
    for (const line of cleared) {
      const attributes = line.split(';').slice(1).map((a) => a.trim().toLowerCase());
      assert.ok(attributes.includes('secure') && attributes.includes('path=/'), `cleared with Secure and Path=/: ${line}`);
    }
    // The session is gone: the developer page asks to sign in again, even with the old cookie sent.
    const after = await agent.follow(`${ISSUER}/developer`);
    assert.doesNotMatch(after.html, /<h1>Your apps<\/h1>/, `signed out: ${after.status} ${after.url}`);
    assert.match(after.html, /href="\/developer\/sign-in"/);
    const replayed = await fetch(`${server.url}/developer`, { headers: { cookie: signedIn, accept: 'text/html' }, redirect: 'manual' });
    assert.doesNotMatch(await replayed.text(), /<h1>Your apps<\/h1>/, 'the old __Host- cookie signs no one in');
  });

  it('signing "This browser" out on the account page clears its __Host- session cookie too, with Secure and Path=/, as the sign-out page does (the web surface, ninth pass)', async () => {
    const agent = new Agent();
    const request = agent.request.bind(agent);
    agent.request = (url: string, init?: RequestInit) => request(url.replace(ISSUER, server.url), init);
    const account = await signInSteps(agent, await agent.follow(`${ISSUER}/account`), { username: 'pat', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(account.url, `${ISSUER}/account`);
    const signedIn = agent.cookieHeader(server.url);
    assert.match(signedIn, /__Host-lk_session=/);
    const before = agent.setCookies.length;
    // The one session listed is this browser's ("This browser").
    const done = await agent.submit(account, '/account/sessions/sign-out', {}, `${ISSUER}/account`);
    assert.equal(done.status, 303, `${done.status} ${done.url}`);
    const set = agent.setCookies.slice(before);
    for (const name of ['__Host-lk_session', '__Host-lk_session.sig']) {
      const cleared = set.filter((line) => line.startsWith(`${name}=`) && /expires=Thu, 01 Jan 1970|max-age=0/i.test(line));
      assert.equal(cleared.length, 1, `${name} is cleared: ${set.map((line) => line.replace(/=[^;]*/, '=…')).join(' | ') || 'no Set-Cookie'}`);
      const attributes = cleared[0]!.split(';').slice(1).map((a) => a.trim().toLowerCase());
      for (const wanted of ['secure', 'path=/', 'httponly', 'samesite=lax']) assert.ok(attributes.includes(wanted), `${wanted}: ${cleared[0]}`);
      assert.ok(!attributes.some((a) => a.startsWith('domain=')), cleared[0]);
    }
    assert.doesNotMatch(agent.cookieHeader(server.url), /__Host-lk_session/, 'the browser holds no session cookie');
    const replayed = await fetch(`${server.url}/account`, { headers: { cookie: signedIn, accept: 'text/html' }, redirect: 'manual' });
    assert.equal(replayed.status, 302, 'the old cookie signs no one in');
  });

  it('a password change on the account page gives the browser its session under a new id in a cookie that is __Host-, Secure, HttpOnly and SameSite=Lax, as the sign-in set it (mutation audit, twelfth passes)', async () => {
    // Latchkey sets this cookie itself (AccountSessions.renewId), not through the engine, whose own
    // defaults would otherwise fill in what SESSION_COOKIE leaves out.
    await server.accounts.create('quinn', PASSWORD);
    const agent = new Agent();
    const request = agent.request.bind(agent);
    agent.request = (url: string, init?: RequestInit) => request(url.replace(ISSUER, server.url), init);
    const form = await signInSteps(agent, await agent.follow(`${ISSUER}/account`), { username: 'quinn', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(form.url, `${ISSUER}/account`);
    const before = agent.cookieHeader(server.url).match(/__Host-lk_session=([^;]+)/)?.[1];
    assert.ok(before, 'signed in');
    const mark = agent.setCookies.length;
    const done = await agent.submit(form, '/account/password', { current_password: PASSWORD, new_password: `${PASSWORD} changed`, confirm_password: `${PASSWORD} changed` }, `${ISSUER}/account`);
    assert.ok(done.status < 400, `${done.status} ${done.url}`);
    const renewed = agent.setCookies.slice(mark).filter((line) => line.startsWith('__Host-lk_session=') && !/expires=Thu, 01 Jan 1970|max-age=0/i.test(line));
    assert.equal(renewed.length, 1, `the session cookie is set anew: ${agent.setCookies.slice(mark).map((line) => line.replace(/=[^;]*/, '=…')).join(' | ')}`);
    assert.notEqual(renewed[0]!.match(/^__Host-lk_session=([^;]+)/)?.[1], before, 'under a new id');
    const attributes = renewed[0]!.split(';').slice(1).map((a) => a.trim().toLowerCase());
    for (const wanted of ['secure', 'path=/', 'httponly', 'samesite=lax']) assert.ok(attributes.includes(wanted), `${wanted}: ${renewed[0]!.replace(/=[^;]*/, '=…')}`);
    assert.ok(!attributes.some((a) => a.startsWith('domain=')), renewed[0]);
  });
});
