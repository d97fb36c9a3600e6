/**
 * RFC 9700 (Best Current Practice for OAuth 2.0 Security), the authorization server's side: the
 * requirements that the OpenID plans do not already check elsewhere in this suite. docs/security.md
 * maps every requirement of RFC 9700 §2 and §4 to its test, here or in the other files.
 */
import assert from 'node:assert/strict';
import { generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { formIn, type Page } from '../helpers/agent.js';
import { Agent, ALICE, callbackParams, isConsent, isLogin, RelyingParty, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'rfc9700-client-secret-with-plenty-of-entropy-0123456';
const API = 'https://api.example.test';
const OTHER_API = 'https://other-api.example.test';

describe('RFC 9700 OAuth 2.0 Security BCP (authorization server)', function () {
  this.timeout(60_000);
  let op: Op;
  let web: RelyingParty;
  let spa: RelyingParty;
  let alice: Agent;

  before(async () => {
    op = await startOp({
      ownProcess: true,
      people: [ALICE],
      env: {
        LOG_LEVEL: 'debug',
        RESOURCE_SERVERS: JSON.stringify([
          { identifier: API, scopes: ['read'], format: 'jwt', grants: [{ client_id: 'web', scopes: ['read'] }] },
          { identifier: OTHER_API, scopes: ['read'], format: 'jwt', grants: [{ client_id: 'web', scopes: ['read'] }] },
        ]),
      },
      clients: [
        webClient('web', SECRET, { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] }),
        { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['https://spa.example.test/callback'], grant_types: ['authorization_code', 'refresh_token'] },
      ],
    });
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    spa = await RelyingParty.create(op, 'spa');
    alice = new Agent();
    await web.redeem(await web.signIn(alice, ALICE));
  });
  after(() => op?.stop());

  const basic = `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`;

  /** The pages a person sees in a sign-in, a sign-out and an error, fetched fresh. */
  async function personPages(): Promise<Record<string, { page: Page; headers: Headers }>> {
    const agent = new Agent();
    const login = (await web.authorize(agent, { scope: 'openid email' })).page;
    const consent = await agent.submit(login, '/login', { username: ALICE.username, password: ALICE.password }, web.redirectUri);
    const error = await agent.follow(`${op.metadata.authorization_endpoint!}?client_id=nobody&response_type=code`);
    const logout = await agent.follow(op.metadata.end_session_endpoint!);
    const developer = await agent.follow(`${op.issuer}/developer`);
    // The account page of a person signed in (alice signed in to the web app in before()).
    const account = await alice.follow(`${op.issuer}/account`);
    assert.match(account.html, /<h1>Your account<\/h1>/);
    const formPost = await (await web.authorize(alice, { response_mode: 'form_post' })).page;
    // prompt=select_account's chooser, for a person signed in.
    const chooser = (await web.authorize(alice, { prompt: 'select_account' })).page;
    assert.match(chooser.html, /<h1>Choose an account<\/h1>/);
    const pages = { login, consent, error, logout, developer, account, 'account chooser': chooser, 'form_post response': formPost };
    return Object.fromEntries(Object.entries(pages).map(([name, page]) => [name, { page, headers: page.headers }]));
  }

  it('a pushed authorization request (PAR) gets no exemption from exact redirect URI matching (RFC 9700 §4.1.3, RFC 9126 §2.4)', async () => {
    const push = async (redirectUri: string) => {
      const response = await fetch(op.metadata.pushed_authorization_request_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic },
        body: new URLSearchParams({
          client_id: 'web',
          response_type: 'code',
          scope: 'openid',
          redirect_uri: redirectUri,
          code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
          code_challenge_method: 'S256',
        }),
      });
      return { status: response.status, body: (await response.json()) as { error?: string; error_description?: string; request_uri?: string } };
    };
    const registered = await push(web.redirectUri);
    assert.equal(registered.status, 201, 'a pushed request with the registered URI is accepted');
    assert.ok(registered.body.request_uri);
    const unregistered = await push('https://evil.example/callback');
    assert.equal(unregistered.status, 400);
    assert.ok(['invalid_redirect_uri', 'invalid_request'].includes(String(unregistered.body.error)), unregistered.body.error);
    assert.match(unregistered.body.error_description ?? '', /redirect_uri/);
    assert.equal(unregistered.body.request_uri, undefined);
  });

  it('response_mode=form_post posts the code to the registered redirect URI only (RFC 9700 §4.2.4, §4.3.1; OAuth 2.0 Form Post Response Mode)', async () => {
    const flow = await web.authorize(alice, { response_mode: 'form_post' });
    assert.equal(flow.page.status, 200);
    const form = formIn(flow.page.html, web.redirectUri);
    assert.equal(form.action, web.redirectUri);
    assert.ok(form.hidden.code);
    assert.equal(form.hidden.state, flow.state);
    assert.equal(form.hidden.iss, op.issuer);
    assert.match(flow.page.headers.get('cache-control') ?? '', /no-store/);
  });

  it('every page a person sees forbids framing: X-Frame-Options DENY and CSP frame-ancestors none (RFC 9700 §4.16)', async () => {
    for (const [name, { headers }] of Object.entries(await personPages())) {
      assert.equal(headers.get('x-frame-options'), 'DENY', name);
      assert.match(headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, name);
    }
  });

  it("those pages' CSP allows no inline or third-party script and loads nothing from elsewhere (RFC 9700 §4.16, §4.2.4)", async () => {
    for (const [name, { headers }] of Object.entries(await personPages())) {
      const csp = headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'none'/, name);
      const scripts = /script-src ([^;]*)/.exec(csp)?.[1] ?? '';
      assert.doesNotMatch(scripts, /unsafe-inline|unsafe-eval|\*|https?:/, `${name}: ${scripts}`);
    }
  });

  it('pages suppress the Referer: Referrer-Policy no-referrer (RFC 9700 §4.2.4)', async () => {
    for (const [name, { headers, page }] of Object.entries(await personPages())) {
      assert.equal(headers.get('referrer-policy'), 'no-referrer', name);
      if (name !== 'form_post response') assert.match(page.html, /<meta name="referrer" content="no-referrer">/, name);
    }
  });

  it('the authorization pages link to no other site and include no third-party resources (RFC 9700 §4.2.4)', async () => {
    const origin = new URL(op.issuer).origin;
    for (const [name, { page }] of Object.entries(await personPages())) {
      if (name === 'form_post response') continue; // its one form goes to the registered redirect URI, checked above
      for (const [, , url] of page.html.matchAll(/\b(href|src|action)="([^"]*)"/g)) {
        const target = new URL(url!.replace(/&amp;/g, '&'), page.url);
        assert.equal(target.origin, origin, `${name}: ${url}`);
      }
    }
  });

  it('a POST that carried credentials is answered by 303, never 307 or 308 (RFC 9700 §2.1, §4.12)', async () => {
    const agent = new Agent();
    const login = (await web.authorize(agent, { scope: 'openid profile' })).page;
    const post = (page: Page, action: string, fields: Record<string, string>) => {
      const form = formIn(page.html, action);
      return agent.request(new URL(form.action, page.url).href, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...form.hidden, ...fields }),
      });
    };
    const afterLogin = await post(login, '/login', { username: ALICE.username, password: ALICE.password });
    assert.equal(afterLogin.status, 303, 'after the password');
    const consent = await agent.follow(new URL(afterLogin.headers.get('location')!, login.url).href, {}, web.redirectUri);
    assert.ok(isConsent(consent));
    assert.equal((await post(consent, '/confirm', {})).status, 303, 'after consent');
    const cancelAgent = new Agent();
    const cancelPage = (await web.authorize(cancelAgent, {})).page;
    assert.ok(isLogin(cancelPage));
    const form = formIn(cancelPage.html, '/abort');
    const aborted = await cancelAgent.request(new URL(form.action, cancelPage.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form.hidden),
    });
    assert.equal(aborted.status, 303, 'after cancel');
    const posted = await agent.request(op.metadata.authorization_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: web.redirectUri }),
    });
    assert.equal(posted.status, 303, 'POST at the authorization endpoint');
  });

  it('CORS is not offered at the authorization endpoint (RFC 9700 §2.6)', async () => {
    const origin = 'https://spa.example.test';
    const preflight = await fetch(op.metadata.authorization_endpoint!, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'GET' } });
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
    const get = await fetch(`${op.metadata.authorization_endpoint!}?client_id=web`, { headers: { origin }, redirect: 'manual' });
    assert.equal(get.headers.get('access-control-allow-origin'), null);
  });

  it("CORS at the token, revocation and userinfo endpoints: a public client's own pages (its redirect URIs' origins) only, userinfo any client's pages, never another origin nor a confidential client's token request", async () => {
    const { token_endpoint: token, revocation_endpoint: revocation, userinfo_endpoint: userinfo } = op.metadata;
    const form = (url: string, origin: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(url, { method: 'POST', headers: { origin, 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(body) });
    const allowed = (answer: Response) => answer.headers.get('access-control-allow-origin');
    const spaOrigin = 'https://spa.example.test';
    const webOrigin = 'https://web.example.test';
    const elsewhere = 'https://elsewhere.example.test';
    const code = { grant_type: 'authorization_code', client_id: 'spa', code: 'not-a-code', redirect_uri: spa.redirectUri, code_verifier: 'v'.repeat(43) };
    // The public client from its page: the answer (an error here) is readable by its page.
    const fromSpa = await form(token!, spaOrigin, code);
    assert.equal(allowed(fromSpa), spaOrigin);
    assert.equal(((await fromSpa.json()) as { error: string }).error, 'invalid_grant');
    assert.equal(allowed(await form(revocation!, spaOrigin, { client_id: 'spa', token: 'not-a-token' })), spaOrigin);
    // Another origin, for the public client: refused, and nothing it may read.
    for (const url of [token!, revocation!]) {
      const fromElsewhere = await form(url, elsewhere, url === token ? code : { client_id: 'spa', token: 'not-a-token' });
      assert.equal(allowed(fromElsewhere), null, url);
      assert.equal(fromElsewhere.status, 400, url);
    }
    // A confidential client's token request from a page, even its own: refused (its secret belongs on its server).
    const confidential = await form(token!, webOrigin, { grant_type: 'client_credentials' }, { authorization: basic });
    assert.equal(allowed(confidential), null);
    assert.equal(confidential.status, 400);
    // userinfo: the page of the client the access token was issued to (confidential or not), and no other.
    const { access_token: accessToken } = await web.redeem(await web.signIn(alice, ALICE));
    const me = (origin: string) => fetch(userinfo!, { headers: { origin, authorization: `Bearer ${accessToken}` } });
    const fromWeb = await me(webOrigin);
    assert.equal(fromWeb.status, 200);
    assert.equal(allowed(fromWeb), webOrigin);
    assert.equal(allowed(await me(elsewhere)), null);
    // The policy is Latchkey's, stated: the engine asks on the console for its default to be changed.
    assert.deepEqual(op.logs.filter((line) => line.includes('clientBasedCORS')), []);
  });

  it("the OP's own forms refuse a request without their CSRF token: login, consent and cancel → 403 (RFC 9700 §4.7, RFC 6819 §4.4.1.8)", async () => {
    const agent = new Agent();
    const login = (await web.authorize(agent, { scope: 'openid profile email' })).page;
    for (const action of ['/login', '/abort']) {
      const forged = await agent.submit(login, action, { username: ALICE.username, password: ALICE.password, csrf: '' }, web.redirectUri);
      assert.equal(forged.status, 403, action);
    }
    const consent = await agent.submit(login, '/login', { username: ALICE.username, password: ALICE.password }, web.redirectUri);
    assert.ok(isConsent(consent));
    assert.equal((await agent.submit(consent, '/confirm', { csrf: 'forged' }, web.redirectUri)).status, 403);
    const attacker = new Agent();
    assert.equal((await attacker.submit(consent, '/confirm', {}, web.redirectUri)).status, 400, "another browser cannot post this person's consent");
  });

  it('no page forwards the browser to a URL taken from a query parameter (RFC 9700 §2.1, §4.11.2)', async () => {
    const evil = 'https://evil.example/';
    const origin = new URL(op.issuer).origin;
    const tries = [
      `/developer/sign-in?redirect_uri=${encodeURIComponent(evil)}&next=${encodeURIComponent(evil)}`,
      `/developer/callback?next=${encodeURIComponent(evil)}&return_to=${encodeURIComponent(evil)}`,
      `/developer?redirect=${encodeURIComponent(evil)}`,
      `/session/end?post_logout_redirect_uri=${encodeURIComponent(evil)}`,
      `/auth?client_id=nobody&response_type=code&redirect_uri=${encodeURIComponent(evil)}`,
      `/auth?client_id=web&response_type=code&redirect_uri=${encodeURIComponent(evil)}&scope=openid`,
      `/interaction/unknown?return_to=${encodeURIComponent(evil)}`,
      `/?url=${encodeURIComponent(evil)}`,
    ];
    for (const path of tries) {
      const agent = new Agent();
      const page = await agent.follow(new URL(path, op.issuer).href, {}, 'https://evil.example');
      assert.ok(!page.url.startsWith(evil), `${path} led to ${page.url}`);
      assert.ok(new URL(page.url).origin === origin || page.url.startsWith(web.redirectUri), `${path} led to ${page.url}`);
    }
  });

  it('access tokens are audience-restricted: one resource per token, unknown resources refused (RFC 9700 §2.3, §4.10.2, RFC 8707 §2)', async () => {
    const token = async (resource: string) => {
      const response = await fetch(op.metadata.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'read' }),
      });
      return { status: response.status, body: (await response.json()) as { access_token?: string; error?: string } };
    };
    const { body } = await token(API);
    const claims = JSON.parse(Buffer.from(body.access_token!.split('.')[1]!, 'base64url').toString()) as { aud: string | string[] };
    assert.deepEqual([claims.aud].flat(), [API]);
    const unknown = await token('https://unknown.example.test');
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error, 'invalid_target');
  });

  it("a client's own token is told apart from a person's: sub is the client_id and there is no grant (RFC 9700 §4.15.1, RFC 9068 §2.2)", async () => {
    const machine = await oidc.clientCredentialsGrant(web.config, { resource: API, scope: 'read' });
    const own = JSON.parse(Buffer.from(machine.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(own.sub, 'web');
    assert.equal(own.client_id, 'web');
    assert.equal(own.gid, undefined);
    const flow = await web.signIn(alice, ALICE, { resource: API, scope: 'openid read', prompt: 'consent' });
    const tokens = await oidc.authorizationCodeGrant(web.config, new URL(flow.page.url), { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: API });
    const persons = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(persons.sub, op.subs.alice);
    assert.notEqual(persons.sub, persons.client_id);
    assert.equal(typeof persons.gid, 'string');
  });

  it('refresh tokens stay bound to the resource consented: another resource → refused (RFC 9700 §4.14.2, RFC 8707 §2.2)', async () => {
    const flow = await web.signIn(alice, ALICE, { resource: API, scope: 'openid offline_access read', prompt: 'consent' });
    const tokens = await oidc.authorizationCodeGrant(web.config, new URL(flow.page.url), { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce }, { resource: API });
    const response = await fetch(op.metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, resource: OTHER_API }),
    });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: string }).error, 'invalid_target');
    const same = await oidc.refreshTokenGrant(web.config, tokens.refresh_token!, { resource: API });
    assert.ok(same.access_token);
  });

  it("a public client's DPoP-bound refresh token needs the same key's proof (RFC 9700 §2.2.2, §4.14.2; RFC 9449 §5)", async () => {
    const key = await generateKeyPair('ES256', { extractable: true });
    const other = await generateKeyPair('ES256', { extractable: true });
    const flow = await spa.signIn(alice, ALICE, { scope: 'openid offline_access', prompt: 'consent' });
    const tokens = await oidc.authorizationCodeGrant(spa.config, new URL(flow.page.url), { pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce }, undefined, {
      DPoP: oidc.getDPoPHandle(spa.config, key),
    });
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    await assert.rejects(oidc.refreshTokenGrant(spa.config, tokens.refresh_token!), oidc.ResponseBodyError, 'without a proof');
    await assert.rejects(oidc.refreshTokenGrant(spa.config, tokens.refresh_token!, undefined, { DPoP: oidc.getDPoPHandle(spa.config, other) }), oidc.ResponseBodyError, "another key's proof");
    const refreshed = await oidc.refreshTokenGrant(spa.config, tokens.refresh_token!, undefined, { DPoP: oidc.getDPoPHandle(spa.config, key) });
    assert.ok(refreshed.access_token, "the bound key's proof works");
  });

  it('no credential ever reaches the logs: passwords, codes, access, refresh and ID tokens, client secrets (RFC 9700 §4.9.3, RFC 6819 §5.1.4.1)', async () => {
    const agent = new Agent();
    const wrong = (await web.authorize(agent, {})).page;
    const wrongPassword = 'a wrong password that must not be logged';
    await agent.submit(wrong, '/login', { username: ALICE.username, password: wrongPassword }, web.redirectUri);
    const flow = await web.signIn(new Agent(), ALICE, { scope: 'openid offline_access', prompt: 'consent' });
    const code = callbackParams(flow).get('code')!;
    const tokens = await web.redeem(flow);
    const refreshed = await oidc.refreshTokenGrant(web.config, tokens.refresh_token!);
    await oidc.fetchUserInfo(web.config, refreshed.access_token, oidc.skipSubjectCheck);
    await oidc.tokenIntrospection(web.config, refreshed.access_token);
    await fetch(`${op.metadata.userinfo_endpoint!}?access_token=${refreshed.access_token}`);
    await fetch(op.metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`web:${SECRET}-wrong`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: web.redirectUri, code_verifier: flow.verifier }),
    });
    await oidc.tokenRevocation(web.config, refreshed.refresh_token!);
    assert.ok(op.logs.some((line) => line.includes('"request"')), 'the server does log requests');
    const secrets: Record<string, string> = {
      password: ALICE.password,
      'wrong password': wrongPassword,
      code,
      'access token': tokens.access_token,
      'refresh token': tokens.refresh_token!,
      'ID token': tokens.id_token!,
      'rotated access token': refreshed.access_token,
      'rotated refresh token': refreshed.refresh_token!,
      'client secret': SECRET,
      'PKCE verifier': flow.verifier,
      nonce: flow.nonce,
    };
    for (const [what, secret] of Object.entries(secrets)) {
      const leaked = op.logs.find((line) => line.includes(secret));
      assert.equal(leaked, undefined, `the ${what} was logged`);
    }
  });
});
