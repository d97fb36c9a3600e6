/**
 * A second red-team pass at "Latchkey hands out more than was granted", black box: pushed requests
 * and what the browser adds beside their request_uri, Client ID Metadata Document clients and their
 * consents, the claims parameter, refreshes that narrow and widen again. Each test performs one
 * attack with real clients (openid-client) against a running Latchkey; the one that succeeded before
 * its fix (a pushed request raced in two browsers answered invalid_grant) says so in docs/security.md.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, isLogin, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { API, basic, type ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const LEDGER = 'https://ledger.example.test';
const OTHER_REDIRECT = 'https://app.example.test/other';
const PASSWORD = 'red team granted two passphrase';
const APP: ClientCredentials = { id: 'app', secret: 'app-secret-with-plenty-of-entropy-0123456789abcdef' };
const RS: ClientCredentials = { id: 'rs', secret: 'rs-secret-with-plenty-of-entropy-0123456789abcdef' };
const insecure = { execute: [oidc.allowInsecureRequests] };
type Answer = { status: number; body: Record<string, string> };

describe('e2e: red team, second pass, Latchkey hands out more than was granted', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let documents: http.Server;
  let base: string;
  const served = new Map<string, string>();

  const token = async (client: ClientCredentials, params: Record<string, string>): Promise<Answer> => {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
      body: new URLSearchParams(params),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: {
        // The documents are served from loopback over http: allowed only with private networks.
        OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
        RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read', 'write'], format: 'jwt', grants: [{ client_id: RS.id, introspect: true }] }, { identifier: LEDGER, scopes: ['read', 'write'], format: 'opaque' }]),
      },
      clients: [
        { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT, OTHER_REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
        { client_id: RS.id, client_secret: RS.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
      ],
    });
    documents = http.createServer((req, res) => {
      const body = served.get(req.url ?? '/');
      res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' }).end(body);
    });
    await new Promise<void>((resolve) => documents.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(documents.address() as AddressInfo).port}`;
    await server.accounts.create('pat', PASSWORD, { email: 'pat@example.test' });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), insecure);
  });
  after(async () => {
    await server?.stop();
    documents?.closeAllConnections();
    documents?.close();
  });

  /** What `agent` gets back at the app from a silent (prompt=none) request of `config`'s client: the code, or the error. */
  async function silently(agent: Agent, config: oidc.Configuration, redirect: string, params: Record<string, string>) {
    const { page, verifier } = await startAuthorization(agent, config, redirect, { prompt: 'none', ...params });
    assert.ok(page.url.startsWith(redirect), `back at the app: ${page.url}`);
    const back = new URL(page.url);
    return { code: back.searchParams.get('code'), error: back.searchParams.get('error'), verifier };
  }

  /** `params` pushed by the app (RFC 9126 §2.1) with PKCE; the request_uri and the verifier. */
  async function push(params: Record<string, string>): Promise<{ requestUri: string; verifier: string }> {
    const verifier = oidc.randomPKCECodeVerifier();
    const pushed = await fetch(`${server.url}/request`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(APP) },
      body: new URLSearchParams({ client_id: APP.id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 'pushed', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...params }),
    });
    assert.equal(pushed.status, 201, await pushed.clone().text());
    return { requestUri: ((await pushed.json()) as { request_uri: string }).request_uri, verifier };
  }
  const withRequestUri = (requestUri: string, query: Record<string, string>) => `${server.url}/auth?${new URLSearchParams({ client_id: APP.id, request_uri: requestUri, ...query })}`;

  it("a pushed request is the whole request: claims, scope, redirect_uri, code_challenge, resource, login_hint, response_mode or nonce added beside its request_uri in the browser change nothing of what is asked, shown, sent or issued (RFC 9126 §4)", async () => {
    const { requestUri, verifier } = await push({});
    const injectedVerifier = oidc.randomPKCECodeVerifier();
    const agent = new Agent();
    const login = await agent.follow(withRequestUri(requestUri, {
      scope: 'openid email profile offline_access read',
      claims: JSON.stringify({ userinfo: { email: null }, id_token: { email: null, name: null } }),
      redirect_uri: OTHER_REDIRECT,
      login_hint: 'pat',
      code_challenge: await oidc.calculatePKCECodeChallenge(injectedVerifier),
      code_challenge_method: 'S256',
      resource: API,
      response_mode: 'fragment',
      nonce: 'injected',
    }), {}, 'https://app.example.test/');
    assert.ok(isLogin(login), login.url);
    assert.doesNotMatch(login.html, /value="pat"/, 'the login_hint added in the browser does not fill in the login form');
    const consent = await signInSteps(agent, login, { username: 'pat', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(consent), consent.url);
    assert.deepEqual(consent.html.match(/<li>[^<]*<\/li>/g), ['<li>Know who you are (your account identifier)</li>'], 'the consent page asks what was pushed only');
    const done = await agent.submit(consent, '/confirm', {}, 'https://app.example.test/');
    assert.ok(done.url.startsWith(`${REDIRECT}?`), `the pushed redirect_uri, in the query: ${done.url}`);
    const back = new URL(done.url);
    assert.equal(back.searchParams.get('state'), 'pushed');
    const code = back.searchParams.get('code')!;

    const injected = await token(APP, { grant_type: 'authorization_code', code, redirect_uri: OTHER_REDIRECT, code_verifier: injectedVerifier });
    assert.equal(injected.body.error, 'invalid_grant', 'the code_challenge added in the browser does not bind the code');
    const tokens = await token(APP, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    assert.equal(tokens.body.scope, 'openid');
    assert.equal(tokens.body.refresh_token, undefined);
    const idToken = decodeJwt(tokens.body.id_token!);
    assert.deepEqual([idToken.email, idToken.name, idToken.nonce], [undefined, undefined, undefined], JSON.stringify(idToken));
    const userinfo = (await (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } })).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(userinfo), ['sub']);
    // Spent: the request_uri does not start a second sign-in.
    const again = await agent.follow(withRequestUri(requestUri, {}), {}, 'https://app.example.test/');
    assert.equal(again.status, 400, again.url);
  });

  it("what a pushed request demands is not loosened beside its request_uri: a pushed max_age=0, prompt=login, acr_values or essential acr still asks for a sign-in, and a pushed scope or claim not yet allowed still shows the consent page, whatever max_age or prompt=none the browser adds (RFC 9126 §4, OIDC Core §3.1.2.1)", async () => {
    const agent = new Agent();
    await signInSteps(agent, (await startAuthorization(agent, app, REDIRECT)).page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    const demands: Record<string, string>[] = [
      { max_age: '0' },
      { prompt: 'login' },
      { acr_values: 'mfa' },
      { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['mfa'] } } }) },
    ];
    const asks: Record<string, string>[] = [{ scope: 'openid email' }, { claims: JSON.stringify({ userinfo: { email: null } }) }];
    for (const [pushed, expected] of [...demands.map((d) => [d, isLogin] as const), ...asks.map((a) => [a, isConsent] as const)]) {
      for (const added of [{ max_age: '3600' }, { prompt: 'none' }] as Record<string, string>[]) {
        const { requestUri } = await push(pushed);
        const page = await agent.follow(withRequestUri(requestUri, added), {}, REDIRECT);
        assert.ok(expected(page), `pushed ${JSON.stringify(pushed)}, added ${JSON.stringify(added)}: ${page.url}`);
      }
    }
  });

  it("a request_uri begun in two browsers gives one code: the sign-in finished second, after the first or at the same moment, gets invalid_request_uri (RFC 9126 §7.3)", async () => {
    // Finished together, the second loses the race to the store (its check read the request unspent) as often as not: ten tries.
    for (const together of [false, ...Array<boolean>(10).fill(true)]) {
      const { requestUri } = await push({});
      const [first, second] = [new Agent(), new Agent()];
      const pages = [await first.follow(withRequestUri(requestUri, {}), {}, REDIRECT), await second.follow(withRequestUri(requestUri, {}), {}, REDIRECT)];
      assert.ok(pages.every(isLogin), 'each browser is asked to sign in');
      const finish = (agent: Agent, index: number) => signInSteps(agent, pages[index]!, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
      const done = together ? await Promise.all([finish(first, 0), finish(second, 1)]) : [await finish(first, 0), await finish(second, 1)];
      const answers = done.map((page) => new URL(page.url).searchParams);
      assert.equal(answers.filter((answer) => answer.get('code')).length, 1, `together: ${together}: ${done.map((page) => page.url).join(' ')}`);
      assert.deepEqual(answers.map((answer) => answer.get('error')).filter(Boolean), ['invalid_request_uri'], done.map((page) => page.url).join(' '));
    }
  });

  it("the claims parameter gets nothing the person did not allow: a claim asked by name beyond the consented scopes is consent_required, and an acr value asked voluntarily is not stated unless performed (OIDC Core §5.5, §5.5.1.1)", async () => {
    const agent = new Agent();
    await signInSteps(agent, (await startAuthorization(agent, app, REDIRECT)).page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    for (const claims of [{ userinfo: { email: null } }, { id_token: { email: { essential: true } } }, { userinfo: { name: null }, id_token: { email_verified: null } }]) {
      const answer = await silently(agent, app, REDIRECT, { claims: JSON.stringify(claims) });
      assert.deepEqual([answer.code, answer.error], [null, 'consent_required'], JSON.stringify(claims));
    }
    const essential = await silently(agent, app, REDIRECT, { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['mfa'] } } }) });
    assert.equal(essential.error, 'login_required');
    for (const acr of [{ value: 'mfa' }, { values: ['mfa', 'phr'] }]) {
      const { code, verifier } = await silently(agent, app, REDIRECT, { claims: JSON.stringify({ id_token: { acr } }) });
      assert.ok(code, JSON.stringify(acr));
      const tokens = await token(APP, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
      assert.equal(decodeJwt(tokens.body.id_token!).acr, 'pwd', `${JSON.stringify(acr)}: the acr performed`);
    }
  });

  it("a refresh narrowed, then widened again, regains at most what was granted: the original scopes come back, a scope never granted, or an API scope granted at another API, is refused (RFC 6749 §6, RFC 8707 §2.2)", async () => {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid offline_access email read', resource: API, prompt: 'consent' });
    const back = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    const issued = await token(APP, { grant_type: 'authorization_code', code: new URL(back.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
    assert.equal(issued.body.scope, 'openid offline_access email');
    const narrowed = await token(APP, { grant_type: 'refresh_token', refresh_token: issued.body.refresh_token!, scope: 'openid offline_access' });
    assert.equal(narrowed.body.scope, 'openid offline_access');
    const regained = await token(APP, { grant_type: 'refresh_token', refresh_token: narrowed.body.refresh_token!, scope: 'openid offline_access email' });
    assert.equal(regained.body.scope, 'openid offline_access email', JSON.stringify(regained.body));
    const refreshToken = regained.body.refresh_token!;
    const wider: [string, Record<string, string>][] = [
      ['invalid_scope', { scope: 'openid offline_access email profile' }],
      ['invalid_scope', { scope: 'openid address' }],
      ['invalid_scope', { resource: API, scope: 'read write' }],
      ['invalid_scope', { resource: API, scope: 'write' }],
      // Another API with a scope of the same name: the person allowed `read` at one API only.
      ['invalid_target', { resource: LEDGER, scope: 'read' }],
    ];
    for (const [error, params] of wider) {
      const answer = await token(APP, { grant_type: 'refresh_token', refresh_token: refreshToken, ...params });
      assert.deepEqual([answer.status, answer.body.error], [400, error], `${JSON.stringify(params)}: ${JSON.stringify(answer.body)}`);
    }
    const api = await token(APP, { grant_type: 'refresh_token', refresh_token: refreshToken, resource: API });
    assert.equal(api.body.scope, 'read', 'the API scope granted, no more');
    assert.equal(decodeJwt(api.body.access_token!).scope, 'read');
    // Nor does a silent request get that scope at the other API from the consent given at the first.
    assert.equal((await silently(agent, app, REDIRECT, { scope: 'openid read', resource: LEDGER })).error, 'consent_required');
  });

  it("a Client ID Metadata Document client gets its own consent only: consent to one document is not another's on the same host, a scope its document lists is still asked, and no document gets client_credentials (CIMD §Security)", async () => {
    const redirect = 'http://127.0.0.1:9/callback';
    const document = (path: string, extra: Record<string, unknown> = {}) => {
      served.set(path, JSON.stringify({ client_id: `${base}${path}`, client_name: 'Agent', redirect_uris: [redirect], token_endpoint_auth_method: 'none', ...extra }));
      return `${base}${path}`;
    };
    const configOf = (id: string) => oidc.discovery(new URL(server.issuer), id, { token_endpoint_auth_method: 'none' }, oidc.None(), insecure);
    const allowed = document('/allowed.json', { scope: 'openid email' });
    const sibling = document('/sibling.json');
    const agent = new Agent();
    const first = await startAuthorization(agent, await configOf(allowed), redirect);
    const signedIn = await signInSteps(agent, first.page, { username: 'pat', password: PASSWORD, consent: 'required', stopAt: redirect });
    assert.ok(new URL(signedIn.url).searchParams.get('code'), signedIn.url);
    // Consented to, it is still asked at every request, as its code goes to a loopback listener (RFC 8252 §8.6: redteam-protocol).
    assert.equal((await silently(agent, await configOf(allowed), redirect, {})).error, 'interaction_required', 'the document consented to');
    assert.equal((await silently(agent, await configOf(sibling), redirect, {})).error, 'consent_required', 'another document on the same host');
    assert.equal((await silently(agent, await configOf(allowed), redirect, { scope: 'openid email' })).error, 'consent_required', 'a scope its document lists, not consented');

    const machine = document('/machine.json', { grant_types: ['authorization_code', 'client_credentials'], scope: 'openid read' });
    for (const clientId of [allowed, machine]) {
      const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, resource: API, scope: 'read' }) });
      assert.equal(((await response.json()) as { error?: string }).error, 'unauthorized_client', clientId);
    }
  });
});
