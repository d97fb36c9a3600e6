/**
 * The red team's fourth pass at "Latchkey hands out more than was granted" (2026-12-02), black box:
 * what the engine checks only when a request arrives, held to the client as it is now when the
 * request is picked up again. It drops `offline_access` from a request of a client that may not use
 * the refresh_token grant, and never again: a sign-in begun, or a code issued, before an operator took
 * the refresh_token grant from the client carried offline access all the same (the consent page
 * asked the person for it, the token answer said it, and the tokens outlived the person's sign-out,
 * with no refresh token to show for it). It asks PKCE of a public client's request, and never again:
 * a sign-in a confidential client began without PKCE (pkce.required: public), resumed after an
 * operator made the client public, got a code redeemed with the client_id alone. Each succeeded
 * before its fix; the rest of the pass held: docs/security-passes.md lists what was tried.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, isLogin, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { basic, type ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const PASSWORD = 'red team granted four passphrase';
const OPS: ClientCredentials = { id: 'ops', secret: 'ops-secret-with-plenty-of-entropy-0123456789abcdef' };
const OFFLINE_WORDS = /offline access/i;
type Answer = { status: number; body: Record<string, string> };

describe('e2e: red team, fourth pass, Latchkey hands out more than was granted', function () {
  this.timeout(60_000);
  let server: TestServer;

  const post = async (path: string, params: Record<string, string>, client: ClientCredentials): Promise<Answer> => {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
      body: new URLSearchParams(params),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  /** The admin API's clients, as an operator calls it. */
  const operator = async (method: string, path: string, metadata: Record<string, unknown>) => {
    const ops = (await post('/token', { grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' }, OPS)).body.access_token!;
    const response = await fetch(`${server.url}/admin/clients${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${ops}` }, body: JSON.stringify(metadata) });
    assert.ok(response.ok, `${method} /admin/clients${path}: ${response.status} ${await response.clone().text()}`);
  };

  before(async () => {
    server = await startServer({
      ownRedis: true,
      clients: [{ client_id: OPS.id, client_secret: OPS.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] }],
    });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.accounts.create('pat', PASSWORD, {});
  });
  after(() => server?.stop());

  /** A confidential web client an operator makes with the refresh_token grant, and its openid-client configuration. */
  async function offlineClient(id: string): Promise<{ client: ClientCredentials; config: oidc.Configuration; registered: Record<string, unknown> }> {
    const client = { id, secret: `${id}-secret-with-plenty-of-entropy-0123456789abcdef` };
    const registered = { client_secret: client.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
    await operator('POST', '', { client_id: id, ...registered });
    return { client, registered, config: await oidc.discovery(new URL(server.issuer), id, client.secret, oidc.ClientSecretBasic(client.secret), { execute: [oidc.allowInsecureRequests] }) };
  }

  /** Signs the agent's browser out everywhere (RP-initiated logout without a client, confirmed). */
  async function signOut(agent: Agent): Promise<void> {
    const page = await agent.follow(`${server.url}/session/end`);
    const done = await agent.submit(page, '/session/end/confirm', { logout: 'yes' });
    assert.equal(done.status, 200, done.url);
  }

  /** Whether an access token still works after its person signed out: introspection by its client, and userinfo. */
  async function stillWorks(client: ClientCredentials, accessToken: string): Promise<{ active: unknown; userinfo: number }> {
    const introspected = await post('/token/introspection', { token: accessToken }, client);
    const userinfo = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
    return { active: introspected.body.active, userinfo: userinfo.status };
  }

  const listed = (page: Page) => page.html.match(/<li>[^<]*<\/li>/g) ?? [];

  /**
   * Redeems `code` as `client`: its answer must say no offline access (and give no refresh token), and
   * its access token must work while the person is signed in and end with their sign-out in `agent`.
   */
  async function redeemedWithoutOfflineAccess(agent: Agent, client: ClientCredentials, code: string, verifier: string): Promise<void> {
    const tokens = await post('/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, client);
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    assert.equal(tokens.body.scope, 'openid', 'the answer says no offline access');
    assert.equal(tokens.body.refresh_token, undefined);
    assert.deepEqual(await stillWorks(client, tokens.body.access_token!), { active: true, userinfo: 200 }, 'the access token works while the person is signed in');
    await signOut(agent);
    assert.deepEqual(await stillWorks(client, tokens.body.access_token!), { active: false, userinfo: 401 }, 'the access token ends with the sign-out, as one of any grant without offline access');
  }

  it("a sign-in begun before an operator took the refresh_token grant from its client gets no offline access: the consent page does not ask for it, the code and its tokens do not carry it, and they end with the person's sign-out (OIDC Core §11, RFC 6749 §6, RFC 9700 §4.14.2)", async () => {
    const { client, config, registered } = await offlineClient('held-offline');
    // The baseline: while the client may use the refresh_token grant, the same sign-in is offline access.
    const baseline = new Agent();
    const first = await startAuthorization(baseline, config, REDIRECT, { scope: 'openid offline_access' });
    const asked = await signInSteps(baseline, first.page, { username: 'pat', password: PASSWORD, consent: 'stop' });
    assert.ok(listed(asked).some((item) => OFFLINE_WORDS.test(item)), `the consent page asks for offline access: ${listed(asked).join(' ')}`);
    const allowed = await baseline.submit(asked, '/confirm', {}, REDIRECT);
    const offline = await post('/token', { grant_type: 'authorization_code', code: new URL(allowed.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: first.verifier }, client);
    assert.equal(offline.body.scope, 'openid offline_access', JSON.stringify(offline.body));
    assert.equal(typeof offline.body.refresh_token, 'string');

    // Another person's browser (the baseline's consent is pat's; a fresh browser asks again) begins a sign-in,
    // and waits at the login page while the operator takes the refresh_token grant away.
    await server.accounts.create('robin', PASSWORD, {});
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access' });
    assert.ok(isLogin(page), page.url);
    await operator('PUT', `/${client.id}`, { ...registered, grant_types: ['authorization_code'] });
    const consent = await signInSteps(agent, page, { username: 'robin', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(consent), consent.url);
    assert.deepEqual(listed(consent).filter((item) => OFFLINE_WORDS.test(item)), [], `the consent page does not ask for offline access the client may no longer have: ${listed(consent).join(' ')}`);
    const back = await agent.submit(consent, '/confirm', {}, REDIRECT);
    await redeemedWithoutOfflineAccess(agent, client, new URL(back.url).searchParams.get('code')!, verifier);
  });

  it("a code issued with offline access before an operator took the refresh_token grant from its client is redeemed without it: the answer does not say offline_access and its tokens end with the person's sign-out (RFC 6749 §4.1.3, §5.1, OIDC Core §11)", async () => {
    const { client, config, registered } = await offlineClient('coded-offline');
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access' });
    const back = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    const code = new URL(back.url).searchParams.get('code');
    assert.ok(code, back.url);

    // The code waits to be redeemed while the operator takes the refresh_token grant away.
    await operator('PUT', `/${client.id}`, { ...registered, grant_types: ['authorization_code'] });
    await redeemedWithoutOfflineAccess(agent, client, code, verifier);
  });

  it("a device code asked with offline access and approved after an operator took the refresh_token grant from its client gets none: the person is not asked for it, the device's tokens do not carry it and end with the sign-out of the browser that approved them (RFC 8628 §3.3, §3.5, OIDC Core §11)", async () => {
    const DEVICE = 'urn:ietf:params:oauth:grant-type:device_code';
    const registered = { application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: [DEVICE, 'refresh_token'] };
    await operator('POST', '', { client_id: 'offline-tv', ...registered });
    const device = async (params: Record<string, string>) => {
      const response = await fetch(`${server.url}${params.grant_type ? '/token' : '/device/auth'}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'offline-tv', ...params }) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    const started = await device({ scope: 'openid offline_access' });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    // The code waits on the device's screen while the operator takes the refresh_token grant away.
    await operator('PUT', '/offline-tv', { ...registered, grant_types: [DEVICE] });
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.body.user_code! });
    const consent = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'pat', password: PASSWORD, consent: 'stop' });
    assert.deepEqual(listed(consent).filter((item) => OFFLINE_WORDS.test(item)), [], `the person is not asked for offline access the device may no longer have: ${listed(consent).join(' ')}`);
    if (isConsent(consent)) await agent.submit(consent, '/confirm', {});
    const tokens = await device({ grant_type: DEVICE, device_code: started.body.device_code! });
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    assert.equal(tokens.body.scope, 'openid', 'the answer says no offline access');
    assert.equal(tokens.body.refresh_token, undefined);
    const userinfo = () => fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } }).then((response) => response.status);
    assert.equal(await userinfo(), 200, 'the access token works while the person is signed in');
    await signOut(agent);
    assert.equal(await userinfo(), 401, "the access token ends with the sign-out of the browser that approved it, as one of any grant without offline access");
  });
});

describe('e2e: red team, fourth pass, a code to a client made public while its sign-in was under way (pkce.required: public)', function () {
  this.timeout(60_000);
  let server: TestServer;

  const post = async (path: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> => {
    const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { PKCE_REQUIRED: 'public' },
      clients: [{ client_id: OPS.id, client_secret: OPS.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] }],
    });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.accounts.create('pat', PASSWORD, {});
  });
  after(() => server?.stop());

  it("a sign-in begun without PKCE by a confidential client that an operator makes public meanwhile gets no code: a public client's code is bound by PKCE (RFC 9700 §2.1.1, RFC 7636 §4.4.1)", async () => {
    const client = { id: 'flipped', secret: 'flipped-secret-with-plenty-of-entropy-0123456789abcdef' };
    const registered = { client_id: client.id, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
    const ops = (await post('/token', { grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' }, { authorization: basic(OPS) })).body.access_token!;
    const admin = (method: string, path: string, body: Record<string, unknown>) =>
      fetch(`${server.url}/admin/clients${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${ops}` }, body: JSON.stringify(body) });
    assert.equal((await admin('POST', '', { ...registered, client_secret: client.secret })).status, 201);

    // A confidential client may leave PKCE out (pkce.required: public): its sign-in waits at the login page.
    const agent = new Agent();
    const request = `${server.url}/auth?${new URLSearchParams({ client_id: client.id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 'flip' })}`;
    const page = await agent.follow(request, {}, REDIRECT);
    assert.ok(isLogin(page), `a confidential client's request without code_challenge is taken: ${page.url}`);
    // The operator makes the client public (its server gone, the app now a browser one).
    const made = await admin('PUT', `/${client.id}`, { ...registered, token_endpoint_auth_method: 'none' });
    assert.equal(made.status, 200, await made.text());

    const back = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    const answer = new URL(back.url).searchParams;
    const code = answer.get('code');
    if (code) {
      // What a code without PKCE gives a public client: tokens for whoever holds the code and the client_id.
      const redeemed = await post('/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: client.id });
      assert.fail(`a code without PKCE for a public client (${back.url}); redeemed with its client_id alone: ${redeemed.status} ${Object.keys(redeemed.body).join(' ')}`);
    }
    assert.equal(answer.get('error'), 'invalid_request', back.url);
    assert.match(answer.get('error_description') ?? '', /PKCE/);
  });
});
