/**
 * OpenID Connect Core §3.1.2.1 and RP-Initiated Logout §2: the authorization and end-session
 * endpoints accept POST as well as GET. A POST is answered with a 303 to the same endpoint with
 * the same parameters (so SameSite=Lax session cookies still apply), never a 307 (RFC 9700 §4.12).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';

const REDIRECT = 'https://app.example.test/callback';
const SIGNED_OUT = 'https://app.example.test/bye';
const PASSWORD = 'post methods test password';

describe('e2e: POST at the authorization and end-session endpoints', function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      env: {
        CLIENTS: JSON.stringify([
          { client_id: 'app', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT] },
        ]),
      },
    });
    await server.accounts.create('poster', PASSWORD);
  });
  after(() => server?.stop());

  const form = (params: Record<string, string>) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });

  async function authorizationParams(extra: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    return {
      verifier,
      params: {
        client_id: 'app',
        response_type: 'code',
        redirect_uri: REDIRECT,
        scope: 'openid',
        state: 'posted state',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        ...extra,
      },
    };
  }

  it('POST /auth answers 303 to GET /auth with the same parameters', async () => {
    const { params } = await authorizationParams();
    const response = await fetch(`${server.url}/auth`, { ...form(params), redirect: 'manual' });
    assert.equal(response.status, 303);
    const location = new URL(response.headers.get('location')!, server.url);
    assert.equal(location.pathname, '/auth');
    assert.deepEqual(Object.fromEntries(location.searchParams), params);
  });

  it('a POSTed authorization request signs the person in and returns a code; prompt=none then uses the session', async () => {
    const agent = new Agent();
    const first = await authorizationParams();
    const login = await agent.follow(`${server.url}/auth`, form(first.params), REDIRECT);
    assert.match(login.html, /name="password"/);
    const page = await signInSteps(agent, login, { username: 'poster', password: PASSWORD, login: 'required', consent: 'required', stopAt: REDIRECT });
    assert.equal(new URL(page.url).searchParams.get('state'), 'posted state');
    assert.ok(new URL(page.url).searchParams.get('code'));

    const silent = await authorizationParams({ prompt: 'none' });
    const again = await agent.follow(`${server.url}/auth`, form(silent.params), REDIRECT);
    assert.ok(new URL(again.url).searchParams.get('code'), again.url);
  });

  it('duplicated parameters stay duplicated (and are refused by the GET handler)', async () => {
    const { params } = await authorizationParams();
    const body = `${new URLSearchParams(params).toString()}&scope=openid`;
    const page = await new Agent().follow(`${server.url}/auth`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }, REDIRECT);
    assert.equal(new URL(page.url).searchParams.get('error'), 'invalid_request');
  });

  it('POST /session/end shows the sign-out confirmation, like GET', async () => {
    const agent = new Agent();
    const { params } = await authorizationParams();
    const login = await agent.follow(`${server.url}/auth?${new URLSearchParams(params)}`, {}, REDIRECT);
    await agent.submit(login, '/login', { username: 'poster', password: PASSWORD }, REDIRECT);
    const confirm = await agent.follow(`${server.url}/session/end`, form({ client_id: 'app', post_logout_redirect_uri: SIGNED_OUT, state: 'bye' }));
    assert.equal(confirm.status, 200);
    assert.match(confirm.html, /Sign out everywhere/);
    const done = await agent.submit(confirm, '/session/end/confirm', { logout: 'yes' }, SIGNED_OUT);
    assert.equal(new URL(done.url).searchParams.get('state'), 'bye');
  });

  it('a body that is not a form gets 400 invalid_request; an oversized one 413; neither a redirect', async () => {
    const json = await fetch(`${server.url}/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: '{"client_id":"app"}',
      redirect: 'manual',
    });
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { error: string }).error, 'invalid_request');
    const huge = await fetch(`${server.url}/session/end`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      body: `state=${'x'.repeat(200 * 1024)}`,
      redirect: 'manual',
    });
    assert.equal(huge.status, 413);
    assert.match(await huge.text(), /too large/);
  });

  it('a form that would make a URL longer than servers accept (8 KiB) gets 413, not a Location clients cannot follow', async () => {
    // 12 KiB of invalid UTF-8 fits the body limit, but re-encoded (each byte as U+FFFD, %EF%BF%BD) it is a 36 KiB URL.
    const response = await fetch(`${server.url}/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: `client_id=app&acr_values=${'%FF'.repeat(4 * 1024)}`,
      redirect: 'manual',
    });
    assert.equal(response.status, 413);
    assert.equal(response.headers.get('location'), null);
    assert.equal(((await response.json()) as { error: string }).error, 'invalid_request');
  });
});
