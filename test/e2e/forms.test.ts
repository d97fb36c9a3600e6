/**
 * Bad input on every form a person submits (login, consent, cancel, logout): a clear page with
 * the right status, never a 500 and never a redirect to somewhere unregistered.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'https://app.example.test/callback';
const SIGNED_OUT = 'https://app.example.test/bye';
const PASSWORD = 'a perfectly fine password';

describe('e2e: bad input on the pages people use', function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      env: {
        CLIENTS: JSON.stringify([
          { client_id: 'app', client_name: 'Form Test App', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT] },
        ]),
      },
    });
    await server.accounts.create('Zoë', PASSWORD);
  });
  after(() => server?.stop());

  async function loginPage(agent = new Agent()): Promise<{ agent: Agent; page: Page; verifier: string }> {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = new URL('/auth', server.url);
    url.search = new URLSearchParams({
      client_id: 'app', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    }).toString();
    const page = await agent.follow(url.href, {}, REDIRECT);
    assert.match(page.html, /name="password"/);
    return { agent, page, verifier };
  }

  it('login: missing fields ask again in words (400), keeping the username', async () => {
    const { agent, page } = await loginPage();
    const noPassword = await agent.submit(page, '/login', { username: 'Zoë', password: '' }, REDIRECT);
    assert.equal(noPassword.status, 400);
    assert.match(noPassword.html, /Enter your username and password/);
    assert.match(noPassword.html, /value="Zoë"/);
    const nothing = await agent.submit(page, '/login', {}, REDIRECT);
    assert.equal(nothing.status, 400);
  });

  it('login: unicode usernames sign in by their normalized form; odd ones are just unknown', async () => {
    const { agent, page } = await loginPage();
    const composed = await agent.submit(page, '/login', { username: 'ZOË', password: PASSWORD }, REDIRECT);
    assert.match(composed.html, /Allow access/, 'case-insensitive, composed characters');

    const second = await loginPage();
    const decomposed = await second.agent.submit(second.page, '/login', { username: 'Zoe\u0308', password: PASSWORD }, REDIRECT);
    assert.match(decomposed.html, /Allow access/, 'a decomposed ë is the same username');

    for (const username of ['👩‍💻\u202eadmin', 'a\u0000b', ' '.repeat(3), 'x'.repeat(5000)]) {
      const attempt = await loginPage();
      const answer = await attempt.agent.submit(attempt.page, '/login', { username, password: PASSWORD }, REDIRECT);
      assert.ok([400, 401].includes(answer.status), `${JSON.stringify(username.slice(0, 20))}: ${answer.status}`);
      assert.match(answer.html, /<h1>Sign in<\/h1>/);
    }
  });

  it('login: a 10 MB password gets a clear 413 page', async () => {
    const { agent, page } = await loginPage();
    const huge = await agent.submit(page, '/login', { username: 'Zoë', password: 'p'.repeat(10 * 1024 * 1024) }, REDIRECT);
    assert.equal(huge.status, 413);
    assert.match(huge.html, /too large/);
  });

  it('every form refuses a wrong or missing CSRF token (403), and one from another sign-in', async () => {
    const { agent, page } = await loginPage();
    const other = await loginPage();
    const foreignToken = other.page.html.match(/name="csrf" value="([^"]+)"/)![1]!;
    for (const csrf of ['', 'forged', foreignToken]) {
      const forged = await agent.submit(page, '/login', { username: 'Zoë', password: PASSWORD, csrf }, REDIRECT);
      assert.equal(forged.status, 403, `csrf=${csrf.slice(0, 8)}`);
      assert.match(forged.html, /not sent from this sign-in page/);
    }
    const consent = await other.agent.submit(other.page, '/login', { username: 'Zoë', password: PASSWORD }, REDIRECT);
    assert.match(consent.html, /Allow access/);
    for (const action of ['/confirm', '/abort']) {
      const forged = await other.agent.submit(consent, action, { csrf: 'forged' }, REDIRECT);
      assert.equal(forged.status, 403, action);
    }
  });

  it('an expired or unknown sign-in request gets a "sign-in expired" page, not a redirect', async () => {
    const { agent, page } = await loginPage();
    agent.clearCookies();
    const expired = await agent.submit(page, '/login', { username: 'Zoë', password: PASSWORD }, REDIRECT);
    assert.equal(expired.status, 400);
    assert.match(expired.html, /Sign-in expired/);

    const unknown = await new Agent().follow(`${server.url}/interaction/not-a-real-uid`);
    assert.equal(unknown.status, 400);
    assert.match(unknown.html, /Sign-in expired/);
  });

  it('consent for a request that is still waiting for a password is refused (400)', async () => {
    const { agent, page } = await loginPage();
    const { action, hidden } = formIn(page.html, '/login');
    const early = await agent.follow(new URL(action.replace(/\/login$/, '/confirm'), page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(hidden),
    });
    assert.equal(early.status, 400);
    assert.match(early.html, /not waiting for consent/);
  });

  it('logout: an unregistered post_logout_redirect_uri, a garbage id_token_hint and a forged xsrf get error pages', async () => {
    const agent = new Agent();
    const unregistered = await agent.follow(
      `${server.url}/session/end?client_id=app&post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}`,
    );
    assert.equal(unregistered.status, 400);
    assert.equal(unregistered.headers.get('location'), null);
    assert.match(unregistered.html, /Not signed out/);
    assert.match(unregistered.html, /post_logout_redirect_uri not registered/);

    const garbage = await agent.follow(`${server.url}/session/end?id_token_hint=not.a.jwt`);
    assert.equal(garbage.status, 400);
    assert.match(garbage.html, /id_token_hint/);

    // A signed-in person at the confirmation page; the form posted with a forged xsrf value.
    const { agent: person, page } = await loginPage();
    const consent = await person.submit(page, '/login', { username: 'Zoë', password: PASSWORD }, REDIRECT);
    await person.submit(consent, '/confirm', {}, REDIRECT);
    const confirm = await person.follow(`${server.url}/session/end?client_id=app`);
    assert.match(confirm.html, /Sign out everywhere/);
    assert.match(confirm.html, /Form Test App/);
    const forged = await person.submit(confirm, '/session/end/confirm', { logout: 'yes', xsrf: 'forged' });
    assert.equal(forged.status, 400);
    assert.match(forged.html, /<h1>/);
    const real = await person.submit(confirm, '/session/end/confirm', { logout: 'yes' });
    assert.equal(real.status, 200);
    assert.match(real.html, /You are signed out/);
  });
});
