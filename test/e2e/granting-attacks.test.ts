/**
 * "Latchkey hands out more than was granted", attacked black box against one running Latchkey on
 * its own Redis: each test performs one attack over HTTP and asserts it is refused, and that the
 * honest request next to it still works. docs/security.md's threat model points here.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { launchChromium } from '../helpers/browser.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { freePort, startRedisServer } from '../helpers/redis.js';
import { isConsent, isLogin, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { API, basic, type ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const PASSWORD = 'granting attacks passphrase';
const secret = (name: string) => `${name}-secret-with-plenty-of-entropy-0123456789abcdef`;
const APP: ClientCredentials = { id: 'app', secret: secret('app') };
const OPS: ClientCredentials = { id: 'ops', secret: secret('ops') };
const RS: ClientCredentials = { id: 'rs', secret: secret('rs') };
/** A client that may request the OpenID scopes openid, offline_access and email only. */
const NARROW: ClientCredentials = { id: 'narrow', secret: secret('narrow') };
/** An app only the two-tab consent test signs in to. */
const TABS: ClientCredentials = { id: 'tabs', secret: secret('tabs') };

/** Two device clients: a public one, and a confidential one that would redeem the other's device code. */
const TV = { id: 'tv' };
const OTHER_TV: ClientCredentials = { id: 'other-tv', secret: secret('other-tv') };
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';

type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };
type Answer = { status: number; body: Record<string, string> };

/** A DPoP proof made by hand (RFC 9449 §4.2). */
async function proof(key: KeyPair, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey) })
    .sign(key.privateKey);
}
const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

describe('attacks: Latchkey hands out no more than was granted (black box)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;

  const token = async (client: ClientCredentials, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Answer> => {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client), ...headers },
      body: new URLSearchParams(params),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  /** What introspection answers `caller` about `accessToken`. */
  const introspection = async (caller: ClientCredentials, accessToken: string): Promise<Record<string, unknown>> =>
    (await (await fetch(`${server.url}/token/introspection`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(caller) },
      body: new URLSearchParams({ token: accessToken }),
    })).json()) as Record<string, unknown>;

  /** An operator's admin API writes of client `clientId` (POST makes it, with APP's secret), each with its `scope` metadata. */
  async function operatorWrites(clientId: string): Promise<(method: string, path: string, scope: string) => Promise<Response>> {
    const ops = (await token(OPS, { grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' })).body.access_token!;
    return (method, path, scope) =>
      fetch(`${server.url}/admin/clients${path}`, {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ops}` },
        body: JSON.stringify({ ...(method === 'POST' && { client_id: clientId, client_secret: APP.secret }), redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope }),
      });
  }

  /** A person's code flow through `app` in `agent` (consent given), and the code redeemed for `resource`. */
  async function personTokens(agent: Agent, params: Record<string, string>, resource: string): Promise<Answer> {
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, params);
    let current: Page = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    if (isConsent(current)) current = await agent.submit(current, '/confirm', {}, REDIRECT);
    const code = new URL(current.url).searchParams.get('code');
    assert.ok(code, `a code: ${current.url}`);
    return token(APP, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource });
  }

  before(async () => {
    server = await startServer({
      ownRedis: true,
      cheapHashing: true,
      env: {
        REGISTRATION_OPEN: 'true',
        RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read', 'write'], format: 'jwt', grants: [{ client_id: RS.id, introspect: true }] }]),
      },
      clients: [
        { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
        { client_id: OPS.id, client_secret: OPS.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
        { client_id: RS.id, client_secret: RS.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
        { client_id: NARROW.id, client_secret: NARROW.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access email' },
        { client_id: TABS.id, client_secret: TABS.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'] },
        { client_id: TV.id, application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: [DEVICE_CODE] },
        { client_id: OTHER_TV.id, client_secret: OTHER_TV.secret, application_type: 'native', redirect_uris: [], response_types: [], grant_types: [DEVICE_CODE] },
        { client_id: 'narrow-tv', application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: [DEVICE_CODE], scope: 'openid email' },
      ],
    });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.apis.grant(RS.id, `${server.issuer}/revocations`, { scopes: ['revocations'] });
    await server.accounts.create('pat', PASSWORD, { email: 'pat@example.test', name: 'Pat' });
    // The other person at a shared browser (two-tab tests).
    await server.accounts.create('robin', PASSWORD, { email: 'robin@example.test', name: 'Robin' });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => server?.stop());

  it('a DPoP-bound token for the admin API or the revocation feed, stolen and presented as a Bearer token (or with a proof by another key, or a replayed proof), is refused; with its own proof it works (RFC 9449 §7.1)', async () => {
    const key = await generateKeyPair('ES256', { extractable: true });
    const thief = await generateKeyPair('ES256', { extractable: true });
    const privileged = [
      { client: OPS, resource: `${server.issuer}/admin`, scope: 'admin', url: `${server.issuer}/admin/users` },
      { client: RS, resource: `${server.issuer}/revocations`, scope: 'revocations', url: `${server.issuer}/revocations` },
    ];
    for (const { client, resource, scope, url } of privileged) {
      const issued = await token(client, { grant_type: 'client_credentials', resource, scope }, { dpop: await proof(key, { htm: 'POST', htu: `${server.issuer}/token` }) });
      assert.equal(issued.status, 200, JSON.stringify(issued.body));
      assert.equal(issued.body.token_type, 'DPoP', resource);
      const bound = issued.body.access_token!;
      const call = (authorization: string, dpop?: string) => fetch(url, { headers: { authorization, ...(dpop ? { dpop } : {}) } });

      const asBearer = await call(`Bearer ${bound}`);
      assert.equal(asBearer.status, 401, `${url}: a DPoP-bound token as a Bearer token`);
      assert.match(asBearer.headers.get('www-authenticate') ?? '', /^DPoP /);
      assert.equal(((await asBearer.json()) as { error: string }).error, 'invalid_token');
      assert.equal((await call(`DPoP ${bound}`)).status, 401, `${url}: the DPoP scheme without a proof`);
      assert.equal((await call(`DPoP ${bound}`, await proof(thief, { htm: 'GET', htu: url, ath: ath(bound) }))).status, 401, `${url}: a proof by another key`);
      assert.equal((await call(`DPoP ${bound}`, await proof(key, { htm: 'GET', htu: `${server.issuer}/elsewhere`, ath: ath(bound) }))).status, 401, `${url}: a proof for another URL`);

      const genuine = await proof(key, { htm: 'GET', htu: url, ath: ath(bound) });
      assert.equal((await call(`DPoP ${bound}`, genuine)).status, 200, `${url}: with its key's proof`);
      assert.equal((await call(`DPoP ${bound}`, genuine)).status, 401, `${url}: the same proof again (replay)`);

      // A bearer token is not passed off as a DPoP one either.
      const plain = (await token(client, { grant_type: 'client_credentials', resource, scope })).body.access_token!;
      assert.equal((await call(`DPoP ${plain}`, await proof(key, { htm: 'GET', htu: url, ath: ath(plain) }))).status, 401, `${url}: a bearer token with the DPoP scheme`);
      assert.equal((await call(`Bearer ${plain}`)).status, 200, `${url}: a bearer token as a Bearer token`);
    }
    assert.ok(decodeJwt((await token(RS, { grant_type: 'client_credentials', resource: `${server.issuer}/revocations`, scope: 'revocations' }, { dpop: await proof(key, { htm: 'POST', htu: `${server.issuer}/token` }) })).body.access_token!).cnf);
  });

  it("an API cannot take a scope name that means something else here (an OpenID Connect scope, a privileged API's): refused at the admin API; one stored before is read without it, so a person's consent to their email address is never the API's `email` (RFC 8707 §2, OIDC Core §5.4)", async () => {
    const ops = (await token(OPS, { grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' })).body.access_token!;
    const addApi = (identifier: string, scopes: string[]) =>
      fetch(`${server.url}/admin/apis`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ops}` }, body: JSON.stringify({ identifier, scopes }) });
    for (const reserved of ['openid', 'email', 'profile', 'phone', 'address', 'offline_access', 'admin', 'admin:read', 'revocations']) {
      const identifier = `https://reserved-${reserved.replace(':', '-')}.example.test`;
      const refused = await addApi(identifier, ['mail:send', reserved]);
      assert.equal(refused.status, 400, `${reserved}: ${refused.status}`);
      const body = (await refused.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_request');
      assert.match(body.error_description, new RegExp(`"${reserved}" is reserved`));
      assert.equal(await server.apis.find(identifier), undefined, `${reserved}: nothing stored`);
    }
    assert.equal((await addApi('https://own-names.example.test', ['mail:email'])).status, 201, 'a scope named for the API is taken');

    // An API stored with `email` before such scopes were refused (as an older version wrote it).
    const MAIL = 'https://mail.example.test';
    await server.kv.set(`api:${MAIL}`, JSON.stringify({ identifier: MAIL, scopes: ['email', 'mail:read'], format: 'jwt', addedAt: Math.floor(Date.now() / 1000) - 60 }));
    await server.kv.addToSet('apis', MAIL);
    assert.deepEqual((await server.apis.find(MAIL))?.scopes, ['mail:read'], 'read without the reserved scope');
    assert.deepEqual(await server.apis.reservedScopesIgnored(), [{ identifier: MAIL, scopes: ['email'] }], 'what serve warns of at start');
    await assert.rejects(server.apis.grant(OPS.id, MAIL, { scopes: ['email'] }), /has no scope email/, 'nor granted to a client as the API\'s');
    // The person allows the app their email address (and the API's mail:read): the API's token carries only mail:read.
    const person = await personTokens(new Agent(), { scope: 'openid email mail:read', resource: MAIL }, MAIL);
    assert.equal(person.status, 200, JSON.stringify(person.body));
    assert.equal(decodeJwt(person.body.access_token!).scope, 'mail:read', 'consent to the email address is not consent to the API\'s email');
    assert.equal(person.body.scope, 'mail:read');
    // A grant stored with it then (as an older version wrote it) gives the rest, never it.
    await server.kv.set(`api-grants:${RS.id}`, JSON.stringify({ ...JSON.parse((await server.kv.get(`api-grants:${RS.id}`)) ?? '{}'), [MAIL]: { scopes: ['email', 'mail:read'] } }));
    assert.equal((await token(RS, { grant_type: 'client_credentials', resource: MAIL, scope: 'mail:read' })).status, 200);
    const asked = await token(RS, { grant_type: 'client_credentials', resource: MAIL, scope: 'email' });
    assert.equal(asked.body.error, 'invalid_scope', JSON.stringify(asked.body));
    await server.apis.revoke(RS.id, MAIL);
    await server.kv.del([`api:${MAIL}`]);
    await server.kv.removeFromSet('apis', MAIL);
    await server.apis.remove('https://own-names.example.test');
  });

  it('an API removed and added again under the same identifier is another API: a refresh token, a remembered consent or a session\'s grant for the removed one gets nothing at the new one (RFC 8707 §2, RFC 6749 §6)', async () => {
    const NOTES = 'https://notes.example.test';
    await server.apis.add({ identifier: NOTES, scopes: ['notes:read'] });
    const agent = new Agent();
    const first = await personTokens(agent, { scope: 'openid offline_access notes:read', resource: NOTES }, NOTES);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(decodeJwt(first.body.access_token!).aud, NOTES);
    const refreshToken = first.body.refresh_token!;

    // The operator removes the API; later someone adds an API under the same identifier.
    await server.apis.remove(NOTES);
    await new Promise((done) => setTimeout(done, 1100)); // addedAt has whole-second precision
    await server.apis.add({ identifier: NOTES, scopes: ['notes:read'] });

    const named = await token(APP, { grant_type: 'refresh_token', refresh_token: refreshToken, resource: NOTES });
    assert.equal(named.status, 400, `the refresh token of the removed API, naming it: ${JSON.stringify(named.body)}`);
    assert.equal(named.body.error, 'invalid_target');
    const implied = await token(APP, { grant_type: 'refresh_token', refresh_token: refreshToken, scope: 'notes:read' });
    assert.equal(implied.status, 400, `the refresh token of the removed API, its own resource implied: ${JSON.stringify(implied.body)}`);
    assert.equal(implied.body.error, 'invalid_target');
    // Neither refusal spent the token: it still refreshes what it is still good for (userinfo).
    const userinfo = await token(APP, { grant_type: 'refresh_token', refresh_token: refreshToken });
    assert.equal(userinfo.status, 200, JSON.stringify(userinfo.body));
    assert.equal(decodeJwt(userinfo.body.id_token!).aud, APP.id);

    // The same browser (its session's grant) and a new sign-in (the remembered consent) are asked again.
    const silent = await startAuthorization(agent, app, REDIRECT, { scope: 'openid notes:read', resource: NOTES, prompt: 'none' });
    assert.equal(new URL(silent.page.url).searchParams.get('error'), 'consent_required', `SSO without asking: ${silent.page.url}`);
    for (const browser of [agent, new Agent()]) {
      const { page } = await startAuthorization(browser, app, REDIRECT, { scope: 'openid notes:read', resource: NOTES });
      const shown = await signInSteps(browser, page, { username: 'pat', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
      assert.ok(isConsent(shown), `the person is asked again: ${shown.status} ${shown.url}`);
      assert.match(shown.html, /notes:read/);
    }
    // Asked and given again, the new API's tokens are issued.
    const again = await personTokens(new Agent(), { scope: 'openid offline_access notes:read', resource: NOTES }, NOTES);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal((await token(APP, { grant_type: 'refresh_token', refresh_token: again.body.refresh_token!, resource: NOTES })).status, 200);
  });

  it("a token's scope lists only what that token is good for: a userinfo token the OpenID scopes, an API's token that API's scopes, in the token response, at introspection and in the JWT (RFC 6749 §5.1, RFC 7662 §2.2, RFC 9068 §2.2.3, RFC 8707 §2.2)", async () => {
    const sorted = (scope: string | undefined) => (scope ?? '').split(' ').filter(Boolean).sort().join(' ');
    const introspected = async (client: ClientCredentials, accessToken: string) => {
      const response = await fetch(`${server.url}/token/introspection`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
        body: new URLSearchParams({ token: accessToken }),
      });
      return (await response.json()) as Record<string, unknown>;
    };
    const agent = new Agent();
    const asked = { scope: 'openid offline_access email read', resource: API, prompt: 'consent' };
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, asked);
    const consent = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(consent), `${consent.status} ${consent.url}`);
    // The API's scope is asked for once, as the API's; it is no OpenID scope of the grant.
    assert.match(consent.html, /Act on https:\/\/api\.example\.test with: read/);
    assert.doesNotMatch(consent.html, /Use the &quot;read&quot; permission/);
    const callback = new URL((await agent.submit(consent, '/confirm', {}, REDIRECT)).url);

    // The code redeemed for userinfo (no resource) with openid-client: the OpenID scopes only.
    const forUserinfo = await oidc.authorizationCodeGrant(app, callback, { pkceCodeVerifier: verifier });
    assert.equal(sorted(forUserinfo.scope), 'email offline_access openid', 'the token response');
    assert.equal(sorted((await introspected(APP, forUserinfo.access_token)).scope as string), 'email offline_access openid', 'introspection by its client');
    const sub = forUserinfo.claims()!.sub;
    assert.equal(forUserinfo.claims()!.email, 'pat@example.test', 'the ID token still carries the consented claims');
    assert.equal((await oidc.fetchUserInfo(app, forUserinfo.access_token, sub)).email, 'pat@example.test', 'userinfo still answers');

    // A refresh for userinfo: the same; for the API: its scope only, in the answer, the JWT and at the API's introspection.
    const refreshed = await oidc.refreshTokenGrant(app, forUserinfo.refresh_token!);
    assert.equal(sorted(refreshed.scope), 'email offline_access openid');
    assert.equal(refreshed.claims()!.sub, sub);
    const forApi = await oidc.refreshTokenGrant(app, refreshed.refresh_token!, { resource: API });
    assert.equal(forApi.scope, 'read', 'the token response');
    const jwt = decodeJwt(forApi.access_token);
    assert.equal(jwt.scope, 'read', 'the JWT');
    assert.equal(jwt.aud, API);
    assert.equal((await introspected(RS, forApi.access_token)).scope, 'read', "introspection by the API's introspector");
    // Asking for the API's scope without naming the API gets a userinfo token, and the answer says so (RFC 6749 §5.1).
    const mixed = await token(APP, { grant_type: 'refresh_token', refresh_token: forApi.refresh_token!, scope: 'openid read' });
    assert.equal(mixed.status, 200, JSON.stringify(mixed.body));
    assert.equal(mixed.body.scope, 'openid');
    assert.equal((await introspected(APP, mixed.body.access_token!)).scope, 'openid');

    // A code redeemed for the API (single sign-on, consent remembered): its scope only, and a valid ID token next to it.
    const again = await startAuthorization(agent, app, REDIRECT, { scope: 'openid read', resource: API });
    assert.ok(again.page.url.startsWith(REDIRECT), `single sign-on: ${again.page.url}`);
    const codeForApi = await oidc.authorizationCodeGrant(app, new URL(again.page.url), { pkceCodeVerifier: again.verifier }, { resource: API });
    assert.equal(codeForApi.scope, 'read');
    assert.equal(decodeJwt(codeForApi.access_token).scope, 'read');
    assert.equal(codeForApi.claims()!.sub, sub);
    // Asked without the API, its scope is dropped from the request: the code's token is for userinfo only.
    const unnamed = await startAuthorization(agent, app, REDIRECT, { scope: 'openid read' });
    assert.ok(unnamed.page.url.startsWith(REDIRECT), `single sign-on: ${unnamed.page.url}`);
    const codeUnnamed = await oidc.authorizationCodeGrant(app, new URL(unnamed.page.url), { pkceCodeVerifier: unnamed.verifier });
    assert.equal(codeUnnamed.scope, 'openid');
    // Asked again with prompt=consent and nothing new: the page lists what confirming gives the app
    // (what it asks for again), not only "Sign you in"; what it does not ask for again is not listed.
    const reasked = await startAuthorization(agent, app, REDIRECT, { scope: 'openid email read', resource: API, prompt: 'consent' });
    assert.ok(isConsent(reasked.page), reasked.page.url);
    assert.match(reasked.page.html, /See your email address/);
    assert.match(reasked.page.html, /Act on https:\/\/api\.example\.test with: read/);
    assert.doesNotMatch(reasked.page.html, /offline access|Sign you in/);
    // With nothing left, nothing is issued.
    const nothing = await startAuthorization(agent, app, REDIRECT, { scope: 'read' });
    assert.equal(new URL(nothing.page.url).searchParams.get('error'), 'access_denied', nothing.page.url);
  });

  it('the claims parameter gets a client no claim of a scope it may not request: not asked at consent, not in the ID token, not at userinfo, not after a refresh (OIDC Core §5.5, RFC 7591 §2 scope)', async () => {
    const narrow = await oidc.discovery(new URL(server.issuer), NARROW.id, NARROW.secret, oidc.ClientSecretBasic(NARROW.secret), { execute: [oidc.allowInsecureRequests] });
    // `name` is profile's claim, which the client may not request; `email` is its own scope's.
    const claims = JSON.stringify({ id_token: { name: { essential: true }, email: null }, userinfo: { name: null, given_name: null, email: null } });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, narrow, REDIRECT, { scope: 'openid offline_access', claims, prompt: 'consent' });
    const consent = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(consent), `${consent.status} ${consent.url}`);
    assert.match(consent.html, /See these details about you: email</);
    const callback = new URL((await agent.submit(consent, '/confirm', {}, REDIRECT)).url);
    const tokens = await oidc.authorizationCodeGrant(narrow, callback, { pkceCodeVerifier: verifier });
    const idToken = tokens.claims()!;
    assert.equal(idToken.name, undefined, `no profile claim in the ID token: ${JSON.stringify(idToken)}`);
    assert.equal(idToken.email, 'pat@example.test', 'a claim of a scope it may request, asked by name and consented');
    const userinfo = await oidc.fetchUserInfo(narrow, tokens.access_token, idToken.sub);
    assert.equal(userinfo.name, undefined, `no profile claim at userinfo: ${JSON.stringify(userinfo)}`);
    assert.equal(userinfo.given_name, undefined);
    assert.equal(userinfo.email, 'pat@example.test');
    const refreshed = await oidc.refreshTokenGrant(narrow, tokens.refresh_token!);
    assert.equal(refreshed.claims()!.name, undefined, 'nor after a refresh');

    // A claim given by name while the client could ask for its scope stops with the scope: an operator narrows the client.
    const ops = (await token(OPS, { grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' })).body.access_token!;
    const write = (method: string, path: string, scope: string) =>
      fetch(`${server.url}/admin/clients${path}`, {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ops}` },
        body: JSON.stringify({ ...(method === 'POST' && { client_id: 'namer', client_secret: NARROW.secret }), redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope }),
      });
    assert.equal((await write('POST', '', 'openid offline_access profile')).status, 201);
    const namer = await oidc.discovery(new URL(server.issuer), 'namer', NARROW.secret, oidc.ClientSecretBasic(NARROW.secret), { execute: [oidc.allowInsecureRequests] });
    const named = await startAuthorization(agent, namer, REDIRECT, { scope: 'openid offline_access', claims, prompt: 'consent' });
    const given = new URL((await signInSteps(agent, named.page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT })).url);
    const before = await oidc.authorizationCodeGrant(namer, given, { pkceCodeVerifier: named.verifier });
    assert.equal(before.claims()!.name, 'Pat', 'allowed and consented: given');
    assert.equal((await write('PUT', '/namer', 'openid offline_access')).status, 200);
    const after = await oidc.refreshTokenGrant(namer, before.refresh_token!);
    assert.equal(after.claims()!.name, undefined, `no longer in the ID token: ${JSON.stringify(after.claims())}`);
    assert.equal((await oidc.fetchUserInfo(namer, after.access_token, after.claims()!.sub)).name, undefined, 'nor at userinfo');

    // The honest request next to it: a client that may request any scope gets the claim it asked by name.
    const open = new Agent();
    const asked = await startAuthorization(open, app, REDIRECT, { scope: 'openid', claims, prompt: 'consent' });
    const allowed = new URL((await signInSteps(open, asked.page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT })).url);
    assert.equal((await oidc.authorizationCodeGrant(app, allowed, { pkceCodeVerifier: asked.verifier })).claims()!.name, 'Pat');
  });

  it("client_credentials gets no OpenID scope: a client acting for itself has no person's openid, email or profile, and its token says so (RFC 6749 §4.4, §5.1)", async () => {
    const introspected = (accessToken: string) => introspection(RS, accessToken);
    for (const scope of ['openid', 'openid email profile', 'offline_access']) {
      const asked = await token(RS, { grant_type: 'client_credentials', scope });
      assert.equal(asked.status, 400, `scope=${scope}: ${JSON.stringify(asked.body)} ${asked.body.access_token ? JSON.stringify(await introspected(asked.body.access_token)) : ''}`);
      assert.equal(asked.body.error, 'invalid_scope');
      const forApi = await token(RS, { grant_type: 'client_credentials', resource: `${server.issuer}/revocations`, scope: `revocations ${scope}` });
      assert.equal(forApi.status, 400, `with an API: ${JSON.stringify(forApi.body)}`);
      assert.equal(forApi.body.error, 'invalid_scope');
    }
    // What it was granted, it gets.
    const granted = await token(RS, { grant_type: 'client_credentials', resource: `${server.issuer}/revocations`, scope: 'revocations' });
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    assert.equal(granted.body.scope, 'revocations');
  });

  it("client_credentials without resource or scope gets a token that is good nowhere: no audience, refused at userinfo, the admin API and the feed, inactive to an API's introspector (RFC 8707 §2, RFC 7662 §4)", async () => {
    // ops holds the admin grant and rs the feed's (neither as a default API), so each could hope its bare token passes.
    for (const client of [OPS, RS]) {
      const bare = await token(client, { grant_type: 'client_credentials' });
      assert.equal(bare.status, 200, JSON.stringify(bare.body));
      assert.equal(bare.body.scope, undefined, 'no scope');
      const accessToken = bare.body.access_token!;
      for (const url of [`${server.url}/me`, `${server.url}/admin/users`, `${server.url}/revocations`]) {
        const used = await fetch(url, { headers: { authorization: `Bearer ${accessToken}` } });
        assert.equal(used.status, 401, `${client.id} at ${url}`);
      }
      const introspect = (caller: ClientCredentials) => introspection(caller, accessToken);
      const own = await introspect(client);
      assert.equal(own.active, true, 'its own client learns of it');
      assert.equal(own.aud, undefined, `no audience: ${JSON.stringify(own)}`);
      assert.equal(own.scope, undefined);
      // rs serves as the API (introspect granted): a token without audience is not one meant for it.
      if (client !== RS) assert.deepEqual(await introspect(RS), { active: false }, "an API's introspector is told nothing");
    }
  });

  it("client_credentials at an API with scopes needs one of them granted: a client granted only introspection there, or whose every scope there an operator revoked, gets no token for it, not even one without scope that an API checking only aud would take; its earlier tokens end (RFC 8707 §2, RFC 6749 §4.4, RFC 7662 §4)", async () => {
    const LEDGER = 'https://ledger-cc.example.test';
    const SCOPELESS = 'https://scopeless-cc.example.test';
    await server.apis.add({ identifier: LEDGER, scopes: ['l:read', 'l:write'], format: 'opaque' });
    await server.apis.add({ identifier: SCOPELESS });
    await server.apis.grant(OPS.id, LEDGER, { scopes: ['l:read'] });
    await server.apis.grant(RS.id, LEDGER, { scopes: [], introspect: true });
    await server.apis.grant(OPS.id, SCOPELESS, { scopes: [] });

    // The API's own introspector was granted to serve as it, not to call it.
    const serving = await token(RS, { grant_type: 'client_credentials', resource: LEDGER });
    assert.equal(serving.status, 400, `introspection only: ${JSON.stringify(serving.body)}`);
    assert.equal(serving.body.error, 'invalid_scope');

    // A client holding a scope there gets tokens, with it or without naming one.
    const withScope = await token(OPS, { grant_type: 'client_credentials', resource: LEDGER, scope: 'l:read' });
    const bare = await token(OPS, { grant_type: 'client_credentials', resource: LEDGER });
    assert.equal(withScope.status, 200, JSON.stringify(withScope.body));
    assert.equal(bare.status, 200, JSON.stringify(bare.body));
    assert.equal((await introspection(RS, bare.body.access_token!)).active, true, 'a token of a client granted there');

    // The operator takes its every scope there (the grant itself stays, with nothing in it).
    await server.apis.revoke(OPS.id, LEDGER, ['l:read']);
    const after = await token(OPS, { grant_type: 'client_credentials', resource: LEDGER });
    assert.equal(after.status, 400, `every scope revoked: ${JSON.stringify(after.body)}`);
    assert.equal(after.body.error, 'invalid_scope');
    for (const earlier of [withScope, bare]) {
      assert.deepEqual(await introspection(RS, earlier.body.access_token!), { active: false }, `an earlier token (scope ${String(earlier.body.scope)})`);
    }

    // An API with no scopes at all is reached by the grant alone (docs/register-your-app.md: APIs and client grants).
    const scopeless = await token(OPS, { grant_type: 'client_credentials', resource: SCOPELESS });
    assert.equal(scopeless.status, 200, JSON.stringify(scopeless.body));
  });

  it("a person's token for an API needs a scope the person granted there: naming an API without asking any of its scopes the client may have gets no token for it, where the consent page never mentioned the API (RFC 8707 §2, RFC 6749 §3.3)", async () => {
    const NOTES = 'https://notes-scopeless.example.test';
    const SCOPELESS = 'https://scopeless.example.test';
    await server.apis.add({ identifier: NOTES, scopes: ['n:read'] });
    await server.apis.add({ identifier: SCOPELESS });
    const narrow = await oidc.discovery(new URL(server.issuer), NARROW.id, NARROW.secret, oidc.ClientSecretBasic(NARROW.secret), { execute: [oidc.allowInsecureRequests] });
    // No API scope asked (any client), only one the client may not request (a runtime API's, outside its
    // scope metadata), or an API that has no scopes for anyone to ask.
    for (const { config, client, scope, resource } of [
      { config: app, client: APP, scope: 'openid offline_access', resource: API },
      { config: narrow, client: NARROW, scope: 'openid offline_access n:read', resource: NOTES },
      { config: app, client: APP, scope: 'openid offline_access', resource: SCOPELESS },
    ]) {
      const agent = new Agent();
      const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope, resource, prompt: 'consent' });
      const consent = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
      assert.ok(isConsent(consent), `${consent.status} ${consent.url}`);
      assert.doesNotMatch(consent.html, /Act on/, 'the person is not asked about the API');
      const code = new URL((await agent.submit(consent, '/confirm', {}, REDIRECT)).url).searchParams.get('code')!;
      const forApi = await token(client, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource });
      assert.equal(forApi.status, 400, `${client.id}: a token for ${resource}: ${JSON.stringify(forApi.body)} ${forApi.body.access_token ? JSON.stringify(decodeJwt(forApi.body.access_token)) : ''}`);
      assert.equal(forApi.body.error, 'invalid_target');

      // The same sign-in redeemed for userinfo works, and its refresh token gets nothing for the API either, without being spent.
      const again = await startAuthorization(agent, config, REDIRECT, { scope, resource });
      const code2 = new URL(again.page.url).searchParams.get('code')!;
      const forUserinfo = await token(client, { grant_type: 'authorization_code', code: code2, redirect_uri: REDIRECT, code_verifier: again.verifier });
      assert.equal(forUserinfo.status, 200, JSON.stringify(forUserinfo.body));
      const refused = await token(client, { grant_type: 'refresh_token', refresh_token: forUserinfo.body.refresh_token!, resource });
      assert.equal(refused.status, 400, `refresh for ${resource}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.error, 'invalid_target');
      const still = await token(client, { grant_type: 'refresh_token', refresh_token: forUserinfo.body.refresh_token! });
      assert.equal(still.status, 200, `the refused refresh did not spend the token: ${JSON.stringify(still.body)}`);
    }
    // Asked and granted, the API's token is issued (the honest request).
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid read', resource: API, prompt: 'consent' });
    const granted = new URL((await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT })).url);
    const issued = await token(APP, { grant_type: 'authorization_code', code: granted.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, resource: API });
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    assert.equal(issued.body.scope, 'read');
  });

  it("a client cannot undo an operator's change to it with its registration access token: after an operator narrowed its scope, grant types and redirect URIs, RFC 7592 no longer answers it (RFC 7592 §2, RFC 7591 §2)", async () => {
    const registered = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: [REDIRECT, 'https://app.example.test/other'], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], scope: 'openid email profile' }),
    });
    assert.equal(registered.status, 201);
    const client = (await registered.json()) as Record<string, string>;
    const management = (method: string, metadata?: Record<string, unknown>) =>
      fetch(client.registration_client_uri!, {
        method,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${client.registration_access_token}` },
        ...(metadata && { body: JSON.stringify({ client_id: client.client_id, ...metadata }) }),
      });
    assert.equal((await management('GET')).status, 200, 'before: the client reads itself');

    // The operator narrows it.
    const ops = (await token(OPS, { grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' })).body.access_token!;
    const narrowed = { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid' };
    const put = await fetch(`${server.url}/admin/clients/${encodeURIComponent(client.client_id!)}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ops}` },
      body: JSON.stringify(narrowed),
    });
    assert.equal(put.status, 200, await put.clone().text());

    // The client puts back what the operator took.
    const undone = await management('PUT', { redirect_uris: [REDIRECT, 'https://app.example.test/other'], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], scope: 'openid email profile' });
    assert.equal(undone.status, 401, `RFC 7592 update after the operator's: ${undone.status} ${await undone.clone().text()}`);
    assert.equal((await management('GET')).status, 401, 'nor does it read itself');
    const now = (await (await fetch(`${server.url}/admin/clients/${encodeURIComponent(client.client_id!)}`, { headers: { authorization: `Bearer ${ops}` } })).json()) as Record<string, unknown>;
    assert.equal(now.scope, 'openid');
    assert.deepEqual(now.grant_types, ['authorization_code']);
    assert.deepEqual(now.redirect_uris, [REDIRECT]);
    // The operator's change stands, and the client's secret still authenticates it.
    const cc = await token({ id: client.client_id!, secret: client.client_secret! }, { grant_type: 'client_credentials' });
    assert.equal(cc.body.error, 'unauthorized_client', JSON.stringify(cc.body));
  });

  it('a client cannot point Latchkey at plain http for its keys or its back-channel logout, at registration or by RFC 7592 update (RFC 7591 §2, RFC 9700 §2.6, Back-Channel Logout §2.2)', async () => {
    const register = (metadata: Record<string, unknown>) =>
      fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT], ...metadata }) });
    const keysElsewhere = { token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'http://keys.example.test/jwks' };
    const logoutInClear = { backchannel_logout_uri: 'http://rp.example.test/logout' };
    for (const metadata of [keysElsewhere, logoutInClear]) {
      const refused = await register(metadata);
      assert.equal(refused.status, 400, JSON.stringify(metadata));
      assert.equal(((await refused.json()) as { error: string }).error, 'invalid_client_metadata');
    }
    const registered = await register({});
    assert.equal(registered.status, 201);
    const client = (await registered.json()) as Record<string, string>;
    let accessToken = client.registration_access_token!;
    const update = async (metadata: Record<string, unknown>) => {
      const response = await fetch(client.registration_client_uri!, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
        body: JSON.stringify({ client_id: client.client_id, redirect_uris: [REDIRECT], ...metadata }),
      });
      const body = (await response.json()) as Record<string, string>;
      accessToken = body.registration_access_token ?? accessToken;
      return { status: response.status, body };
    };
    for (const metadata of [keysElsewhere, logoutInClear]) {
      const refused = await update(metadata);
      assert.equal(refused.status, 400, `RFC 7592 update to ${JSON.stringify(metadata)}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.error, 'invalid_client_metadata');
    }
    const https = await update({ backchannel_logout_uri: 'https://rp.example.test/logout' });
    assert.equal(https.status, 200, JSON.stringify(https.body));
  });

  it('a client cannot have Latchkey connect to a loopback or private address for it: no sector_identifier_uri is taken, and its jwks_uri or backchannel_logout_uri there is never connected to (RFC 7591 §5, RFC 9700 §4.16, OIDC Core §8.1)', async () => {
    // A listener where a registrant should not reach: any TCP connection counts.
    let connections = 0;
    const listener = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((done) => listener.listen(0, '127.0.0.1', done));
    const inside = `127.0.0.1:${(listener.address() as AddressInfo).port}`;
    try {
      const register = async (metadata: Record<string, unknown>) => {
        const response = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT], ...metadata }) });
        return { status: response.status, body: (await response.json()) as Record<string, string> };
      };
      // Pairwise subjects are not offered: a sector identifier is refused, fetched nowhere.
      for (const sector of [`https://${inside}/sector`, 'https://sector.example.test/uris.json']) {
        const refused = await register({ sector_identifier_uri: sector });
        assert.equal(refused.status, 400, `${sector}: ${JSON.stringify(refused.body)}`);
        assert.equal(refused.body.error, 'invalid_client_metadata');
        assert.match(refused.body.error_description!, /pairwise subjects are not offered/);
      }
      assert.equal(connections, 0, 'no connection for a sector identifier');

      // Keys "on loopback" (allowed for development): the token endpoint fetches them only where private networks are allowed.
      const keyed = await register({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `http://${inside}/jwks`, backchannel_logout_uri: `http://${inside}/logout` });
      assert.equal(keyed.status, 201, JSON.stringify(keyed.body));
      const clientId = keyed.body.client_id!;
      const { privateKey } = await generateKeyPair('ES256');
      const assertion = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setIssuer(clientId).setSubject(clientId)
        .setAudience(server.issuer).setIssuedAt().setExpirationTime('1m').setJti(randomUUID()).sign(privateKey);
      const asked = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
      });
      assert.equal(asked.status, 401, 'no keys, no client');
      assert.equal(connections, 0, 'no connection for its jwks_uri');

      // Its back-channel logout: a person signs in through it and out again.
      const config = await oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      const agent = new Agent();
      const { page } = await startAuthorization(agent, config, REDIRECT);
      const back = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
      assert.ok(new URL(back.url).searchParams.get('code'), back.url);
      let out = await agent.follow(`${server.url}/session/end?client_id=${clientId}`);
      if (out.html.includes('session/end/confirm')) out = await agent.submit(out, 'session/end/confirm', { logout: 'yes' });
      assert.ok(out.status < 500, `${out.status}`);
      await new Promise((done) => setTimeout(done, 200));
      assert.equal(connections, 0, 'no connection for its backchannel_logout_uri');
    } finally {
      listener.close();
    }
  });

  it('the developer page: an app type that names no type (constructor, __proto__, toString) is refused with the form, never a 500, and registers nothing', async () => {
    const agent = new Agent();
    let page: Page = await signInSteps(agent, await agent.follow(`${server.issuer}/developer/sign-in`), { username: 'pat', password: PASSWORD, login: 'required' });
    assert.match(page.html, /Your apps/);
    for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const answer = await agent.submit(page, '/developer/apps', { name: `App ${type}`, type, redirect_uris: 'https://pat.example.test/callback' });
      assert.equal(answer.status, 400, `type=${type}: ${answer.status}`);
      assert.match(answer.html, /Choose what kind of app this is/);
      page = answer;
    }
    page = await agent.follow(`${server.issuer}/developer`);
    assert.doesNotMatch(page.html, /App (constructor|__proto__|toString|hasOwnProperty)/);
  });

  it("a refresh gives no more than the client may request now: once an operator narrowed its scope metadata, the person's earlier consent to more is not refreshed into tokens, ID tokens or userinfo (RFC 6749 §6, OIDC Core §5.4)", async () => {
    const write = await operatorWrites('mailer');
    assert.equal((await write('POST', '', 'openid offline_access email profile read')).status, 201);
    const mailer = await oidc.discovery(new URL(server.issuer), 'mailer', APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, mailer, REDIRECT, { scope: 'openid offline_access email profile', prompt: 'consent' });
    let current: Page = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    if (isConsent(current)) current = await agent.submit(current, '/confirm', {}, REDIRECT);
    const client = { id: 'mailer', secret: APP.secret };
    const first = await token(client, { grant_type: 'authorization_code', code: new URL(current.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
    assert.equal(decodeJwt(first.body.id_token!).email, 'pat@example.test', 'consented and allowed: the email is given');

    // The operator takes email and profile away from what the app may ask.
    assert.equal((await write('PUT', '/mailer', 'openid offline_access read')).status, 200);
    const asked = await token(client, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token!, scope: 'openid email' });
    assert.equal(asked.status, 400, `asking for email again: ${JSON.stringify(asked.body)}`);
    assert.equal(asked.body.error, 'invalid_scope');
    const refreshed = await token(client, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token! });
    assert.equal(refreshed.status, 200, `the refused request did not spend the token: ${JSON.stringify(refreshed.body)}`);
    assert.equal(refreshed.body.scope, 'openid offline_access', 'the answer says what is left');
    const idToken = decodeJwt(refreshed.body.id_token!);
    assert.equal(idToken.email, undefined, 'no email in the ID token');
    assert.equal(idToken.name, undefined, 'no profile in the ID token');
    const userinfo = (await (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${refreshed.body.access_token}` } })).json()) as Record<string, unknown>;
    assert.equal(userinfo.email, undefined, `no email at userinfo: ${JSON.stringify(userinfo)}`);
    assert.equal(userinfo.name, undefined);
    assert.ok(userinfo.sub);
  });

  it("offline access an operator took from a client ends with it: its refresh tokens refresh no more (nor rotate into new ones) and introspect inactive, and so once it may no longer use the refresh_token grant; given back, they work again (OIDC Core §11, RFC 6749 §6, RFC 7662 §2.2)", async () => {
    const write = await operatorWrites('keeper');
    const grantTypes = async (types: string[], scope: string) =>
      fetch(`${server.url}/admin/clients/keeper`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${(await token(OPS, { grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' })).body.access_token!}` },
        body: JSON.stringify({ redirect_uris: [REDIRECT], grant_types: types, scope }),
      });
    assert.equal((await write('POST', '', 'openid offline_access email')).status, 201);
    const keeper = await oidc.discovery(new URL(server.issuer), 'keeper', APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    const client = { id: 'keeper', secret: APP.secret };
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, keeper, REDIRECT, { scope: 'openid offline_access email', prompt: 'consent' });
    let current: Page = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    if (isConsent(current)) current = await agent.submit(current, '/confirm', {}, REDIRECT);
    const first = await token(client, { grant_type: 'authorization_code', code: new URL(current.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
    assert.ok(first.body.refresh_token, JSON.stringify(first.body));
    const refreshToken = first.body.refresh_token!;

    // The operator takes offline_access away from what the app may ask: a new request asking it is refused.
    assert.equal((await write('PUT', '/keeper', 'openid email')).status, 200);
    for (const scope of [undefined, 'openid email', 'openid']) {
      const refreshed = await token(client, { grant_type: 'refresh_token', refresh_token: refreshToken, ...(scope && { scope }) });
      assert.equal(refreshed.status, 400, `scope ${String(scope)}: no refresh, and no new refresh token: ${JSON.stringify(refreshed.body)}`);
      assert.equal(refreshed.body.error, 'invalid_grant');
    }
    assert.deepEqual(await introspection(client, refreshToken), { active: false }, 'the refresh token at introspection');

    // Nor may it use the refresh_token grant (offline_access back in its scope).
    assert.equal((await grantTypes(['authorization_code'], 'openid offline_access email')).status, 200);
    assert.deepEqual(await introspection(client, refreshToken), { active: false }, 'without the refresh_token grant');

    // Given back, the refused requests spent nothing: the refresh token works again.
    assert.equal((await grantTypes(['authorization_code', 'refresh_token'], 'openid offline_access email')).status, 200);
    assert.equal((await introspection(client, refreshToken)).active, true);
    const again = await token(client, { grant_type: 'refresh_token', refresh_token: refreshToken });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.scope, 'openid offline_access email');
    assert.ok(again.body.refresh_token);
  });

  it("a client that may no longer use client_credentials loses the tokens it got with it: taken from its grant types by an operator (admin API) or by itself (RFC 7592), or the client made public, its tokens end at introspection, the admin API and the feed; given back, new ones work, the old stay dead (RFC 6749 §4.4, RFC 7662 §2.2)", async () => {
    const ops = (await token(OPS, { grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' })).body.access_token!;
    const admin = (method: string, path: string, body: Record<string, unknown>) =>
      fetch(`${server.url}/admin/clients${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${ops}` }, body: JSON.stringify(body) });
    /** A client's own tokens at an API (JWT), the admin API (opaque) and the feed, each granted by an operator; and checks that each works or not. */
    const ownTokens = async (client: ClientCredentials) => {
      const got = await Promise.all([
        token(client, { grant_type: 'client_credentials', resource: API, scope: 'read' }),
        token(client, { grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin:read' }),
        token(client, { grant_type: 'client_credentials', resource: `${server.issuer}/revocations`, scope: 'revocations' }),
      ]);
      for (const answer of got) assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const [api, adminToken, feedToken] = got.map((answer) => answer.body.access_token!) as [string, string, string];
      return async (): Promise<Record<string, boolean>> => ({
        'introspected by the API': (await introspection(RS, api)).active === true,
        'introspected by its client': (await introspection(client, adminToken)).active === true,
        'at the admin API': (await fetch(`${server.issuer}/admin/users`, { headers: { authorization: `Bearer ${adminToken}` } })).status === 200,
        'at the feed': (await fetch(`${server.issuer}/revocations`, { headers: { authorization: `Bearer ${feedToken}` } })).status === 200,
      });
    };
    const grantAll = async (clientId: string) => {
      await server.apis.grant(clientId, API, { scopes: ['read'] });
      await server.apis.grant(clientId, `${server.issuer}/admin`, { scopes: ['admin:read'] });
      await server.apis.grant(clientId, `${server.issuer}/revocations`, { scopes: ['revocations'] });
    };
    const working = { 'introspected by the API': true, 'introspected by its client': true, 'at the admin API': true, 'at the feed': true };
    const ended = { 'introspected by the API': false, 'introspected by its client': false, 'at the admin API': false, 'at the feed': false };

    // An operator takes client_credentials from a service's grant types (admin API).
    const SERVICE = { id: 'cron', secret: secret('cron') };
    const machine = { redirect_uris: [], response_types: [], grant_types: ['client_credentials'] };
    assert.equal((await admin('POST', '', { client_id: SERVICE.id, client_secret: SERVICE.secret, ...machine })).status, 201);
    await grantAll(SERVICE.id);
    const service = await ownTokens(SERVICE);
    assert.deepEqual(await service(), working);
    assert.equal((await admin('PUT', `/${SERVICE.id}`, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'] })).status, 200);
    assert.deepEqual(await service(), ended, 'client_credentials taken by an operator');
    // Given back: new tokens work (issued in a later second than the ending), the old stay dead.
    await new Promise((done) => setTimeout(done, 1100));
    assert.equal((await admin('PUT', `/${SERVICE.id}`, machine)).status, 200);
    assert.deepEqual(await (await ownTokens(SERVICE))(), working, 'given back: new tokens');
    assert.deepEqual(await service(), ended, 'given back: the old ones stay dead');

    // A client registered by RFC 7591 and granted by an operator drops client_credentials itself (RFC 7592).
    const registered = (await (await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...machine, client_name: 'Self-service' }) })).json()) as Record<string, string>;
    const SELF = { id: registered.client_id!, secret: registered.client_secret! };
    await grantAll(SELF.id);
    const own = await ownTokens(SELF);
    const update = await fetch(`${server.url}/reg/${SELF.id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${registered.registration_access_token}` },
      body: JSON.stringify({ client_id: SELF.id, client_secret: SELF.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], response_types: ['code'] }),
    });
    assert.equal(update.status, 200, await update.text());
    assert.deepEqual(await own(), ended, 'client_credentials dropped by the client itself');

    // An operator makes a service a public client (which client_credentials is not for: refused with it).
    const PUBLIC = { id: 'cron-public', secret: secret('cron-public') };
    assert.equal((await admin('POST', '', { client_id: PUBLIC.id, client_secret: PUBLIC.secret, ...machine })).status, 201);
    await grantAll(PUBLIC.id);
    const publicTokens = await ownTokens(PUBLIC);
    assert.equal((await admin('PUT', `/${PUBLIC.id}`, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'], token_endpoint_auth_method: 'none' })).status, 200);
    const after = await publicTokens();
    assert.deepEqual({ ...after, 'introspected by its client': false }, ended, 'made public');
  });

  it("a confidential client made public loses what it holds on people's behalf: a refresh token or access token it got while it authenticated (one leaked from its server, useless without its secret) is no key once the client has no secret; what it gets as a public client works (RFC 9700 §4.14.2, RFC 6749 §6, §10.4)", async () => {
    const ops = (await token(OPS, { grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' })).body.access_token!;
    const metadata = { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access email' };
    const admin = (method: string, path: string, body: Record<string, unknown>) =>
      fetch(`${server.url}/admin/clients${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${ops}` }, body: JSON.stringify(body) });
    assert.equal((await admin('POST', '', { client_id: 'lender', client_secret: APP.secret, ...metadata })).status, 201);
    const lender = await oidc.discovery(new URL(server.issuer), 'lender', APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    /** A person's code flow through the client as `config` is, redeemed by `redeem`. */
    const signIn = async (config: oidc.Configuration, redeem: (params: Record<string, string>) => Promise<Answer>) => {
      const agent = new Agent();
      const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access email', prompt: 'consent' });
      let current: Page = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
      if (isConsent(current)) current = await agent.submit(current, '/confirm', {}, REDIRECT);
      const answer = await redeem({ grant_type: 'authorization_code', code: new URL(current.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
      assert.ok(answer.body.refresh_token, JSON.stringify(answer.body));
      return answer.body;
    };
    /** A token request as a public client: its client_id and nothing to prove it. */
    const asPublic = async (params: Record<string, string>): Promise<Answer> => {
      const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'lender', ...params }) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    const userinfo = async (accessToken: string) => (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status;
    const confidential = await signIn(lender, (params) => token({ id: 'lender', secret: APP.secret }, params));
    // While the client authenticates, its refresh token is nothing without the secret.
    assert.equal((await asPublic({ grant_type: 'refresh_token', refresh_token: confidential.refresh_token! })).body.error, 'invalid_client');

    // The operator makes it a public client (its server gone, say, the app now a browser app).
    assert.equal((await admin('PUT', '/lender', { ...metadata, token_endpoint_auth_method: 'none' })).status, 200);
    const leaked = await asPublic({ grant_type: 'refresh_token', refresh_token: confidential.refresh_token! });
    assert.equal(leaked.status, 400, `a refresh token got while the client authenticated, presented with its client_id alone: ${JSON.stringify(leaked.body)}`);
    assert.equal(leaked.body.error, 'invalid_grant');
    assert.equal(await userinfo(confidential.access_token!), 401, 'its access token, got while the client authenticated');

    // What it gets as a public client (a later second than the change) works, and rotates.
    await new Promise((done) => setTimeout(done, 1100));
    const publicConfig = await oidc.discovery(new URL(server.issuer), 'lender', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const fresh = await signIn(publicConfig, asPublic);
    assert.equal(await userinfo(fresh.access_token!), 200);
    const refreshed = await asPublic({ grant_type: 'refresh_token', refresh_token: fresh.refresh_token! });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));

    // The same when the client makes itself public (RFC 7592).
    const registered = (await (await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...metadata, response_types: ['code'], client_name: 'Self-service' }) })).json()) as Record<string, string>;
    const own = { id: registered.client_id!, secret: registered.client_secret! };
    const self = await oidc.discovery(new URL(server.issuer), own.id, own.secret, oidc.ClientSecretBasic(own.secret), { execute: [oidc.allowInsecureRequests] });
    const held = await signIn(self, (params) => token(own, params));
    const update = await fetch(`${server.url}/reg/${own.id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${registered.registration_access_token}` },
      body: JSON.stringify({ client_id: own.id, ...metadata, response_types: ['code'], token_endpoint_auth_method: 'none' }),
    });
    assert.equal(update.status, 200, await update.text());
    const byItself = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: own.id, grant_type: 'refresh_token', refresh_token: held.refresh_token! }) });
    assert.equal(byItself.status, 400, 'made public by itself (RFC 7592)');
    assert.equal(((await byItself.json()) as Record<string, string>).error, 'invalid_grant');
  });

  it("a token issued before an operator narrowed its client introspects inactive: no resource server is told the token holds a scope the client may no longer have (RFC 7662 §2.2, RFC 6749 §3.3)", async () => {
    const write = await operatorWrites('reader');
    assert.equal((await write('POST', '', 'openid offline_access email read')).status, 201);
    const reader = await oidc.discovery(new URL(server.issuer), 'reader', APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    const client = { id: 'reader', secret: APP.secret };
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, reader, REDIRECT, { scope: 'openid offline_access email read', resource: API, prompt: 'consent' });
    let current: Page = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    if (isConsent(current)) current = await agent.submit(current, '/confirm', {}, REDIRECT);
    const forApi = await token(client, { grant_type: 'authorization_code', code: new URL(current.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, resource: API });
    assert.equal(forApi.body.scope, 'read', JSON.stringify(forApi.body));
    const forUserinfo = await token(client, { grant_type: 'refresh_token', refresh_token: forApi.body.refresh_token! });
    assert.equal(forUserinfo.body.scope, 'openid offline_access email', JSON.stringify(forUserinfo.body));
    const held = [
      { caller: RS, accessToken: forApi.body.access_token!, what: "the API's JWT, at the API" },
      { caller: client, accessToken: forApi.body.access_token!, what: "the API's JWT, at its client" },
      { caller: client, accessToken: forUserinfo.body.access_token!, what: 'the userinfo token, at its client' },
    ];
    for (const { caller, accessToken, what } of held) assert.equal((await introspection(caller, accessToken)).active, true, what);

    // The operator takes email and the API's read away from what the app may ask.
    assert.equal((await write('PUT', '/reader', 'openid offline_access')).status, 200);
    for (const { caller, accessToken, what } of held) {
      const answer = await introspection(caller, accessToken);
      assert.deepEqual(answer, { active: false }, `${what} after the narrowing: ${JSON.stringify(answer)}`);
    }
    // What the client may still have: its refresh token is still good (introspected active), the
    // refresh narrows, and the new access token introspects active.
    assert.equal((await introspection(client, forUserinfo.body.refresh_token!)).active, true, 'the refresh token');
    const narrowed = await token(client, { grant_type: 'refresh_token', refresh_token: forUserinfo.body.refresh_token! });
    assert.equal(narrowed.body.scope, 'openid offline_access', JSON.stringify(narrowed.body));
    const answer = await introspection(client, narrowed.body.access_token!);
    assert.equal(answer.active, true, JSON.stringify(answer));
    assert.equal(answer.scope, 'openid offline_access');

    // A client not narrowed keeps its tokens active, a runtime API's scope (`latchkey apis add`) among them.
    const LEDGER = 'https://ledger-unnarrowed.example.test';
    await server.apis.add({ identifier: LEDGER, scopes: ['l:read'], format: 'opaque' });
    const ledgerClient = { id: 'ledgered', secret: APP.secret };
    assert.equal((await (await operatorWrites(ledgerClient.id))('POST', '', 'openid l:read')).status, 201);
    const ledgered = await oidc.discovery(new URL(server.issuer), ledgerClient.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    const asked = await startAuthorization(agent, ledgered, REDIRECT, { scope: 'openid l:read', resource: LEDGER });
    let back: Page = await signInSteps(agent, asked.page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    if (isConsent(back)) back = await agent.submit(back, '/confirm', {}, REDIRECT);
    const forLedger = await token(ledgerClient, { grant_type: 'authorization_code', code: new URL(back.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: asked.verifier, resource: LEDGER });
    assert.equal(forLedger.body.scope, 'l:read', JSON.stringify(forLedger.body));
    const ledgerAnswer = await introspection(ledgerClient, forLedger.body.access_token!);
    assert.equal(ledgerAnswer.active, true, JSON.stringify(ledgerAnswer));
  });

  it("a userinfo token issued before an operator took openid (or email) from its client reads userinfo no more, as it introspects inactive; put back, the old token stays refused at both, as the feed says (OIDC Core §5.3, RFC 7662 §2.2)", async () => {
    const write = await operatorWrites('profiled');
    assert.equal((await write('POST', '', 'openid email')).status, 201);
    const profiled = await oidc.discovery(new URL(server.issuer), 'profiled', APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    const client = { id: 'profiled', secret: APP.secret };
    const signIn = async () => {
      const agent = new Agent();
      const { page, verifier } = await startAuthorization(agent, profiled, REDIRECT, { scope: 'openid email', prompt: 'consent' });
      let current: Page = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
      if (isConsent(current)) current = await agent.submit(current, '/confirm', {}, REDIRECT);
      const answer = await token(client, { grant_type: 'authorization_code', code: new URL(current.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
      assert.equal(answer.body.scope, 'openid email', JSON.stringify(answer.body));
      return answer.body.access_token!;
    };
    const userinfo = (accessToken: string) => fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
    for (const [taken, left] of [['openid', 'email'], ['email', 'openid']] as const) {
      const accessToken = await signIn();
      assert.equal((await userinfo(accessToken)).status, 200);
      // The operator takes one of them from what the app may ask.
      assert.equal((await write('PUT', '/profiled', left)).status, 200);
      const refused = await userinfo(accessToken);
      assert.equal(refused.status, 401, `${taken} taken: ${refused.status} ${await refused.text()}`);
      assert.match(refused.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
      assert.deepEqual(await introspection(client, accessToken), { active: false });
      // Given back: the token from before stays ended, at userinfo and introspection alike.
      assert.equal((await write('PUT', '/profiled', 'openid email')).status, 200);
      assert.equal((await userinfo(accessToken)).status, 401, `${taken} put back`);
      assert.deepEqual(await introspection(client, accessToken), { active: false }, `${taken} put back`);
      // A token got after works.
      assert.equal((await userinfo(await signIn())).status, 200);
    }
  });

  /** The admin API's clients, as an operator calls it. */
  const operator = async (method: string, path: string, metadata: Record<string, unknown>) => {
    const ops = (await token(OPS, { grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' })).body.access_token!;
    const response = await fetch(`${server.url}/admin/clients${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${ops}` }, body: JSON.stringify(metadata) });
    assert.ok(response.ok, `${method} /admin/clients${path}: ${response.status} ${await response.clone().text()}`);
  };

  it('a request begun before an operator narrowed its client is held to the client as it is now: no code to a redirect URI removed meanwhile, no scope taken away granted at the resume after sign-in or at a device\'s approval (RFC 6749 §3.1.2.4, RFC 9700 §4.1, RFC 8628 §3.3)', async () => {
    const LOST = 'https://lost.example.test/callback';
    const wide = { grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access email profile' };
    await operator('POST', '', { client_id: 'held', client_secret: APP.secret, redirect_uris: [REDIRECT, LOST], ...wide });
    const held = await oidc.discovery(new URL(server.issuer), 'held', APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    const begin = async (redirectUri: string) => {
      const agent = new Agent();
      const { page } = await startAuthorization(agent, held, redirectUri, { scope: 'openid email profile', prompt: 'consent' });
      assert.ok(isLogin(page), `${page.status} ${page.url}`);
      return { agent, page };
    };

    // Sign-ins waiting at the login page while the operator removes a redirect URI (its domain lost), then email and profile.
    const atLost = await begin(LOST);
    const atKept = await begin(REDIRECT);
    await operator('PUT', '/held', { client_secret: APP.secret, redirect_uris: [REDIRECT], ...wide });
    const lost = await signInSteps(atLost.agent, atLost.page, { username: 'pat', password: PASSWORD, stopAt: 'https://' });
    assert.ok(!lost.url.startsWith('https://'), `nothing is sent to the removed redirect URI: ${lost.url}`);
    assert.equal(lost.status, 400);
    assert.match(lost.html, /invalid_redirect_uri|redirect_uri/);
    await operator('PUT', '/held', { client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: wide.grant_types, scope: 'openid offline_access' });
    const narrowed = await signInSteps(atKept.agent, atKept.page, { username: 'pat', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.ok(!isConsent(narrowed), 'the person is not asked for what the client may no longer have');
    const answer = new URL(narrowed.url);
    assert.ok(narrowed.url.startsWith(REDIRECT), narrowed.url);
    assert.equal(answer.searchParams.get('error'), 'invalid_scope', narrowed.url);
    assert.equal(answer.searchParams.get('code'), null);

    // Pushed authorization requests required since the sign-in began (RFC 9126 §6): the front-channel request stops.
    await operator('PUT', '/held', { client_secret: APP.secret, redirect_uris: [REDIRECT], ...wide });
    const front = await begin(REDIRECT);
    await operator('PUT', '/held', { client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: wide.grant_types, scope: 'openid email profile', require_pushed_authorization_requests: true });
    const unpushed = new URL((await signInSteps(front.agent, front.page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT })).url);
    assert.equal(unpushed.searchParams.get('error'), 'invalid_request', unpushed.href);
    assert.equal(unpushed.searchParams.get('code'), null);
    await operator('PUT', '/held', { client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: wide.grant_types, scope: 'openid offline_access' });

    // A device code asked for email and profile, approved after the operator took them away.
    const DEVICE = 'urn:ietf:params:oauth:grant-type:device_code';
    const tv = { application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: [DEVICE, 'refresh_token'] };
    await operator('POST', '', { client_id: 'held-tv', ...tv, scope: wide.scope });
    const form = (params: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: 'held-tv', ...params }) });
    const started = (await (await fetch(`${server.url}/device/auth`, form({ scope: 'openid offline_access email profile' }))).json()) as Record<string, string>;
    await operator('PUT', '/held-tv', { ...tv, scope: 'openid offline_access' });
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.user_code! });
    const approved = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'pat', password: PASSWORD, consent: 'stop' });
    assert.ok(!isConsent(approved), 'the person is not asked for what the device may no longer have');
    const polled = await fetch(`${server.url}/token`, form({ grant_type: DEVICE, device_code: started.device_code! }));
    const body = (await polled.json()) as Record<string, string>;
    assert.equal(polled.status, 400, `the device gets no tokens: ${JSON.stringify(body)}`);
    assert.equal(body.error, 'invalid_scope');

    // The honest requests next to them, begun after the change: what the client may still have.
    const again = await startAuthorization(atKept.agent, held, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const code = new URL((await signInSteps(atKept.agent, again.page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT })).url).searchParams.get('code');
    assert.ok(code, 'a code for what is left');
    const issued = await token({ id: 'held', secret: APP.secret }, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: again.verifier });
    assert.equal(issued.body.scope, 'openid offline_access', JSON.stringify(issued.body));
    const device = (await (await fetch(`${server.url}/device/auth`, form({ scope: 'openid offline_access' }))).json()) as Record<string, string>;
    const entered = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code! });
    await signInSteps(agent, await agent.submit(entered, '/device', { confirm: 'yes' }), { username: 'pat', password: PASSWORD });
    const tokens = (await (await fetch(`${server.url}/token`, form({ grant_type: DEVICE, device_code: device.device_code! }))).json()) as Record<string, string>;
    assert.equal(tokens.scope, 'openid offline_access', JSON.stringify(tokens));
  });

  it('a code issued before an operator narrowed its client gets only what the client may have now: none for a redirect URI removed meanwhile, no scope or refresh token taken away (RFC 6749 §4.1.3, §5.2, RFC 9700 §4.1)', async () => {
    const LOST = 'https://lost-code.example.test/callback';
    const client = { id: 'coded', secret: APP.secret };
    const wide = { client_secret: client.secret, redirect_uris: [REDIRECT, LOST], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access email profile' };
    await operator('POST', '', { client_id: client.id, ...wide });
    const coded = await oidc.discovery(new URL(server.issuer), client.id, client.secret, oidc.ClientSecretBasic(client.secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const codeAt = async (redirectUri: string) => {
      const { page, verifier } = await startAuthorization(agent, coded, redirectUri, { scope: 'openid offline_access email profile', prompt: 'consent' });
      const back = new URL((await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: redirectUri })).url);
      assert.ok(back.searchParams.get('code'), back.href);
      return (extra: Record<string, string> = {}) => token(client, { grant_type: 'authorization_code', code: back.searchParams.get('code')!, redirect_uri: redirectUri, code_verifier: verifier, ...extra });
    };

    // A code waiting to be redeemed while the operator removes a redirect URI, then one while email,
    // profile and offline access are taken. (A redirect URI taken away ends every code of the client
    // issued before, as its sign-ins in progress: endings-twelfth; a scope taken away does not.)
    const atLost = await codeAt(LOST);
    await operator('PUT', `/${client.id}`, { ...wide, redirect_uris: [REDIRECT] });
    const lost = await atLost();
    assert.equal(lost.status, 400, `the code sent to the removed redirect URI gets no tokens: ${JSON.stringify(lost.body)}`);
    assert.equal(lost.body.error, 'invalid_grant');
    const atKept = await codeAt(REDIRECT);
    await operator('PUT', `/${client.id}`, { ...wide, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid' });
    const narrowed = await atKept();
    assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
    assert.equal(narrowed.body.scope, 'openid', 'the answer says what is left');
    assert.equal(narrowed.body.refresh_token, undefined, 'no refresh token');
    const idToken = decodeJwt(narrowed.body.id_token!);
    assert.equal(idToken.email, undefined);
    const introspected = await introspection(client, narrowed.body.access_token!);
    assert.equal(introspected.scope, 'openid', `introspection: ${JSON.stringify(introspected)}`);
  });

  it('a remembered consent covers what was asked, no more: prompt=none asking more scopes, an API\'s scope or more claims gets consent_required, offline_access is dropped; the code gets no API it was not asked for and no wider scope; an API\'s token is refused at userinfo and introspects without the person\'s claims (OIDC Core §3.1.2.6, §11, RFC 8707 §2.2)', async () => {
    // Someone who consented to this app's openid and email only.
    await server.accounts.create('quinn', PASSWORD, { email: 'quinn@example.test', name: 'Quinn' });
    const agent = new Agent();
    const first = await startAuthorization(agent, app, REDIRECT, { scope: 'openid email' });
    assert.ok((await signInSteps(agent, first.page, { username: 'quinn', password: PASSWORD, consent: 'required', stopAt: REDIRECT })).url.startsWith(REDIRECT));
    const silently = (params: Record<string, string>) => startAuthorization(agent, app, REDIRECT, { scope: 'openid email', ...params, prompt: 'none' });
    const asksMore: Record<string, string>[] = [{ scope: 'openid email profile' }, { scope: 'openid email read', resource: API }, { claims: JSON.stringify({ userinfo: { name: null } }) }, { claims: JSON.stringify({ id_token: { name: { essential: true } } }) }];
    for (const more of asksMore) {
      const { page } = await silently(more);
      assert.equal(new URL(page.url).searchParams.get('error'), 'consent_required', `${JSON.stringify(more)}: ${page.url}`);
    }
    const offline = await silently({ scope: 'openid email offline_access' });
    const redeemed = await token(APP, { grant_type: 'authorization_code', code: new URL(offline.page.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: offline.verifier });
    assert.equal(redeemed.body.scope, 'openid email', 'offline_access not asked at consent is dropped');
    assert.equal(redeemed.body.refresh_token, undefined);

    // At the exchange: an API the request did not name, or wider scope, gets nothing more.
    const exchange = async (extra: Record<string, string>) => {
      const { page, verifier } = await silently({});
      return token(APP, { grant_type: 'authorization_code', code: new URL(page.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier, ...extra });
    };
    assert.equal((await exchange({ resource: API, scope: 'read' })).body.error, 'invalid_target');
    const wider = await exchange({ scope: 'openid email profile' });
    assert.equal(wider.status, 200, JSON.stringify(wider.body));
    assert.equal(wider.body.scope, 'openid email');
    assert.equal(decodeJwt(wider.body.id_token!).name, undefined);

    // An API's token: not at userinfo; its API's introspection tells no claim of the person.
    const forApi = await personTokens(new Agent(), { scope: 'openid email read', resource: API }, API);
    assert.equal(forApi.body.scope, 'read');
    assert.equal((await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${forApi.body.access_token}` } })).status, 401);
    const introspected = await introspection(RS, forApi.body.access_token!);
    assert.equal(introspected.active, true);
    assert.deepEqual(Object.keys(introspected).filter((claim) => ['email', 'username', 'name', 'email_verified'].includes(claim)), []);
  });

  it("an /interaction/<uid> page sent to a signed-in person is not theirs to complete: the page and its forms are refused in their browser, and the attacker's request gets nothing (login CSRF, interaction fixation)", async () => {
    const victim = new Agent();
    const own = await startAuthorization(victim, app, REDIRECT);
    assert.ok((await signInSteps(victim, own.page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT })).url.startsWith(REDIRECT));
    const attacker = new Agent();
    const { page: lure } = await startAuthorization(attacker, app, REDIRECT, { prompt: 'login' });
    assert.ok(lure.url.includes('/interaction/'), lure.url);

    const opened = await victim.follow(lure.url, {}, REDIRECT);
    assert.equal(opened.status, 400, 'the page in the victim\'s browser');
    assert.match(opened.html, /another sign-in request|expired or was already completed/);
    // Its forms (their CSRF token is the attacker's to copy) posted from the victim's browser.
    for (const [form, fields] of [['/login', { username: 'pat', password: PASSWORD }], ['/abort', {}]] as const) {
      const sent = await victim.submit(lure, form, fields, REDIRECT);
      assert.equal(sent.status, 400, `${form} from the victim's browser`);
      assert.ok(!sent.url.startsWith(REDIRECT), `${form}: no code`);
    }
    // The attacker's request is still at its login page: nobody signed in there.
    const still = await attacker.follow(lure.url, {}, REDIRECT);
    assert.ok(isLogin(still), `${still.status} ${still.url}`);
  });

  it("RP-initiated logout sends no one to another client's post-logout redirect URI: with client_id, with id_token_hint, or alone (OIDC RP-Initiated Logout §3, RFC 9700 §4.11)", async () => {
    const registered = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['https://other.example.test/cb'], post_logout_redirect_uris: ['https://other.example.test/out'] }) });
    assert.equal(registered.status, 201);
    const other = ((await registered.json()) as { client_id: string }).client_id;
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT);
    const back = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    const idToken = (await oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: verifier })).id_token!;
    const elsewhere = 'https://other.example.test/out';
    /** Where RP-initiated logout with `params` ends, the sign-out confirmed if asked. */
    const logout = async (params: Record<string, string>) => {
      let page = await agent.follow(`${server.url}/session/end?${new URLSearchParams({ ...params, post_logout_redirect_uri: elsewhere })}`, {}, elsewhere);
      if (page.html.includes('session/end/confirm')) page = await agent.submit(page, 'session/end/confirm', { logout: 'yes' }, elsewhere);
      return page;
    };
    for (const params of [{ client_id: APP.id }, { id_token_hint: idToken }, { id_token_hint: idToken, client_id: other }, {}] as Record<string, string>[]) {
      const ended = await logout(params);
      assert.ok(!ended.url.startsWith(elsewhere), `${Object.keys(params).join('+') || 'alone'}: ${ended.status} ${ended.url}`);
    }
    assert.ok((await logout({ client_id: other })).url.startsWith(elsewhere), 'the client whose URI it is goes there');
  });

  it('one token names one API: several resources at once are refused, for client_credentials and at a refresh, even when each is granted (RFC 8707 §2, §2.2)', async () => {
    const FIRST = 'https://first-of-two.example.test';
    const SECOND = 'https://second-of-two.example.test';
    await server.apis.add({ identifier: FIRST, scopes: ['f:read'] });
    await server.apis.add({ identifier: SECOND, scopes: ['s:read'] });
    await server.apis.grant(OPS.id, FIRST, { scopes: ['f:read'] });
    await server.apis.grant(OPS.id, SECOND, { scopes: ['s:read'] });
    const both = (params: [string, string][]) => new URLSearchParams([...params, ['resource', FIRST], ['resource', SECOND]]);
    for (const scope of ['f:read s:read', 'f:read', undefined]) {
      const asked = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(OPS) },
        body: both([['grant_type', 'client_credentials'], ...(scope ? [['scope', scope] as [string, string]] : [])]),
      });
      assert.equal(asked.status, 400, `scope ${String(scope)}: ${await asked.text()}`);
    }
    // Each alone is granted.
    assert.equal((await token(OPS, { grant_type: 'client_credentials', resource: FIRST, scope: 'f:read' })).status, 200);
    assert.equal((await token(OPS, { grant_type: 'client_credentials', resource: SECOND, scope: 's:read' })).status, 200);
    // A person's refresh token for one API asks for it and another at once.
    const PERSONAL = 'https://person-first.example.test';
    await server.apis.add({ identifier: PERSONAL, scopes: ['p:read'] });
    const person = await personTokens(new Agent(), { scope: 'openid offline_access p:read', resource: PERSONAL }, PERSONAL);
    assert.equal(person.status, 200, JSON.stringify(person.body));
    const refresh = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(APP) },
      body: new URLSearchParams([['grant_type', 'refresh_token'], ['refresh_token', person.body.refresh_token!], ['resource', PERSONAL], ['resource', FIRST]]),
    });
    assert.equal(refresh.status, 400, await refresh.text());
  });

  it("a code or device code exchanged for a resource that is refused is not spent by it: the corrected request gets the tokens; presented again after that, it is refused and what it issued ends; a wrong code_verifier or client is refused as before (RFC 8707 §2, RFC 6749 §4.1.2, §5.2, RFC 8628 §3.4)", async () => {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid read', resource: API });
    let current: Page = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    if (isConsent(current)) current = await agent.submit(current, '/confirm', {}, REDIRECT);
    const code = new URL(current.url).searchParams.get('code')!;
    const exchange = (extra: Record<string, string>, client: ClientCredentials = APP) => token(client, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, ...extra });
    // A wrong code_verifier, and another client, are refused by oidc-provider before it consumes the code (its choice, kept).
    const refusals: [Record<string, string>, string][] = [
      [{ resource: 'https://unknown.example.test' }, 'invalid_target'],
      [{ resource: `${server.issuer}/admin` }, 'invalid_target'],
      [{ resource: API, code_verifier: oidc.randomPKCECodeVerifier() }, 'invalid_grant'],
    ];
    for (const [extra, error] of refusals) {
      const refused = await exchange(extra);
      assert.equal(refused.status, 400, JSON.stringify(extra));
      assert.equal(refused.body.error, error, `${JSON.stringify(extra)}: ${JSON.stringify(refused.body)}`);
    }
    const stolen = await exchange({ resource: API }, NARROW);
    assert.equal(stolen.body.error, 'invalid_grant', 'another client');
    const honest = await exchange({ resource: API });
    assert.equal(honest.status, 200, `the corrected request: ${JSON.stringify(honest.body)}`);
    assert.equal(decodeJwt(honest.body.access_token!).aud, API);
    assert.equal((await introspection(RS, honest.body.access_token!)).active, true);
    const replayed = await exchange({ resource: API });
    assert.equal(replayed.body.error, 'invalid_grant', 'the code presented again');
    assert.equal((await introspection(RS, honest.body.access_token!)).active, false, 'what the code issued ends with its replay');
    assert.equal((await exchange({ resource: 'https://unknown.example.test' })).body.error, 'invalid_grant', 'spent: refused as a replay whatever it asks');

    // A device code, the same way.
    const post = async (path: string, params: Record<string, string>) => {
      const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    const started = await post('/device/auth', { client_id: TV.id, scope: 'openid read', resource: API });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.body.user_code! });
    const approved = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'pat', password: PASSWORD });
    assert.match(approved.html, /Device connected/, `${approved.status} ${approved.url}`);
    const redeem = (resource: string) => post('/token', { grant_type: DEVICE_CODE, device_code: started.body.device_code!, client_id: TV.id, resource });
    const wrong = await redeem('https://unknown.example.test');
    assert.equal(wrong.body.error, 'invalid_target', JSON.stringify(wrong.body));
    const device = await redeem(API);
    assert.equal(device.status, 200, `the corrected request: ${JSON.stringify(device.body)}`);
    assert.equal(decodeJwt(device.body.access_token!).aud, API);
    assert.equal((await redeem(API)).body.error, 'invalid_grant', 'the device code presented again');
    assert.equal((await introspection(RS, device.body.access_token!)).active, false, 'what the device code issued ends with its replay');
  });

  it("a device code is redeemed only by the client it was issued to: another client gets invalid_grant, before and after the person's approval (RFC 8628 §3.4, RFC 6749 §5.2)", async () => {
    const post = async (path: string, params: Record<string, string>, headers: Record<string, string> = {}) => {
      const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    const started = await post('/device/auth', { client_id: TV.id, scope: 'openid email' });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const { device_code: deviceCode, user_code: userCode } = started.body;
    const stolen = () => post('/token', { grant_type: DEVICE_CODE, device_code: deviceCode! }, { authorization: basic(OTHER_TV) });
    const before = await stolen();
    assert.equal(before.status, 400);
    assert.equal(before.body.error, 'invalid_grant', JSON.stringify(before.body));

    // The person approves at /device: types the code, confirms, signs in and allows.
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: userCode! });
    const approved = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'pat', password: PASSWORD });
    assert.match(approved.html, /Device connected/, `${approved.status} ${approved.url}`);
    const after = await stolen();
    assert.equal(after.status, 400, JSON.stringify(after.body));
    assert.equal(after.body.error, 'invalid_grant');
    const own = await post('/token', { grant_type: DEVICE_CODE, device_code: deviceCode!, client_id: TV.id });
    assert.equal(own.status, 200, `its own client: ${JSON.stringify(own.body)}`);
    assert.equal(decodeJwt(own.body.id_token!).aud, TV.id, 'its ID token is for its own client alone');
  });

  it("the device confirmation page lists everything the device asks for: an API's scopes named with the API, and claims asked by name; never a claim the client may not have (RFC 8628 §3.3, §5.4; OIDC Core §5.5)", async () => {
    const post = async (params: Record<string, string>) => {
      const response = await fetch(`${server.url}/device/auth`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    const confirmation = async (params: Record<string, string>) => {
      const started = await post(params);
      assert.equal(started.status, 200, JSON.stringify(started.body));
      const agent = new Agent();
      const page = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.body.user_code! });
      assert.match(page.html, /Connect /, `${page.status} ${page.url}`);
      return { agent, page, started };
    };
    // A device that says "openid" and asks, besides, for an API's scope and the person's name by the claims parameter.
    const claims = JSON.stringify({ userinfo: { name: null }, id_token: { email: { essential: true } } });
    const { agent, page, started } = await confirmation({ client_id: TV.id, scope: 'openid read', resource: API, claims });
    assert.match(page.html, /Act on https:\/\/api\.example\.test with: read/, 'the API is named with its scope');
    assert.doesNotMatch(page.html, /Use the &quot;read&quot; permission/, 'not a bare scope name');
    assert.match(page.html, /See these details about you: [^<]*\bname\b/, 'the claims asked by name');
    assert.match(page.html, /See these details about you: [^<]*\bemail\b/);
    // What the person was shown is what the device gets, no more.
    await signInSteps(agent, await agent.submit(page, '/device', { confirm: 'yes' }), { username: 'pat', password: PASSWORD });
    const tokens = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: DEVICE_CODE, device_code: started.body.device_code!, client_id: TV.id, resource: API }) });
    const body = (await tokens.json()) as Record<string, string>;
    assert.equal(tokens.status, 200, JSON.stringify(body));
    assert.equal(body.scope, 'read');

    // A device client allowed "openid email" only: a claim of profile asked by name is never given, so not listed either.
    const narrow = await confirmation({ client_id: 'narrow-tv', scope: 'openid', claims: JSON.stringify({ userinfo: { name: null, email: null } }) });
    assert.match(narrow.page.html, /See these details about you: email</, 'profile\'s name is beyond what the client may have');
  });

  it("the claims parameter's value, values and essential assert nothing the account does not have: the ID token and userinfo give the account's own values (or none), a claim asked for one member only is not given at the other, and an acr asked at userinfo raises nothing (OIDC Core §5.5.1)", async () => {
    const claims = JSON.stringify({
      id_token: { email: { essential: true, value: 'someone-else@example.test' }, email_verified: { essential: true, value: true }, phone_number: { essential: true, value: '+15550100' }, acr: { values: ['phr'] } },
      userinfo: { name: { essential: true, values: ['Somebody Else'] }, acr: { essential: true, value: 'phr' }, auth_time: { essential: true } },
    });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid', claims, prompt: 'consent' });
    const consent = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(consent), `${consent.status} ${consent.url}`);
    const callback = new URL((await agent.submit(consent, '/confirm', {}, REDIRECT)).url);
    const tokens = await oidc.authorizationCodeGrant(app, callback, { pkceCodeVerifier: verifier });
    const idToken = tokens.claims()!;
    assert.equal(idToken.email, 'pat@example.test', `the account's own address: ${JSON.stringify(idToken)}`);
    assert.notEqual(idToken.email_verified, true, 'not verified because asked');
    assert.equal(idToken.phone_number, undefined, 'no value the account does not have');
    assert.notEqual(idToken.acr, 'phr', 'the acr of the password sign-in, not the one asked');
    assert.equal(idToken.name, undefined, 'name was asked for userinfo only');
    const userinfo = await oidc.fetchUserInfo(app, tokens.access_token, idToken.sub);
    assert.equal(userinfo.name, 'Pat', `the account's own name: ${JSON.stringify(userinfo)}`);
    assert.equal(userinfo.email, undefined, 'email was asked for the ID token only');
    assert.notEqual(userinfo.acr, 'phr');
  });

  it("a consent page left open while the browser signs out and signs in as someone else grants nothing when sent: no grant or remembered consent for the page's person, nothing for the new one, a clear page and no code (Chromium, two tabs; OIDC Core §3.1.2.4)", async function () {
    // Chromium and two sign-ins: 25–40 s at a load of 20 on two cores, near the file's minute.
    this.timeout(180_000);
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      const codes: string[] = [];
      // The app's redirect URI is not served: each redirect to it is recorded and answered here.
      await context.route(`${REDIRECT}**`, async (route) => {
        codes.push(new URL(route.request().url()).searchParams.get('code') ?? '');
        await route.fulfill({ status: 200, contentType: 'text/plain', body: 'app' });
      });
      // An app nobody consented to before, so that a consent remembered by this test would show.
      const tabs = await oidc.discovery(new URL(server.issuer), TABS.id, TABS.secret, oidc.ClientSecretBasic(TABS.secret), { execute: [oidc.allowInsecureRequests] });
      const authorize = (params: Record<string, string> = {}) =>
        oidc.buildAuthorizationUrl(tabs, { redirect_uri: REDIRECT, scope: 'openid email', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', ...params }).href;
      const signIn = async (tab: import('playwright-core').Page, username: string) => {
        await tab.fill('input[name="username"]', username);
        await tab.fill('input[name="password"]', PASSWORD);
        await tab.click('button:has-text("Sign in")');
      };
      // Pat's tab: signed in, at the consent page of a new app scope (prompt=consent asks even if remembered).
      const pats = await context.newPage();
      await pats.goto(authorize({ prompt: 'consent' }));
      await signIn(pats, 'pat');
      await pats.waitForSelector('button:has-text("Allow")');
      assert.match(await pats.content(), /pat/);
      // And Pat's account page, in a third tab (single sign-on: no sign-in asked).
      const account = await context.newPage();
      await account.goto(`${server.url}/account`);
      await account.waitForSelector('#current_password');
      // Another tab: signs out, then Robin signs in and leaves at his own consent page.
      const other = await context.newPage();
      await other.goto(`${server.url}/session/end`);
      // The sign-out's own page, not the load state (which the page before already has: the goto
      // below could cut the POST short, and Robin's sign-in found Pat still signed in).
      await Promise.all([other.waitForURL(/\/session\/end\/success/), other.click('button:has-text("Sign out everywhere")')]);
      await other.goto(authorize({ prompt: 'consent' }));
      await signIn(other, 'robin');
      await other.waitForSelector('button:has-text("Allow")');
      // Pat's page is sent now.
      const answer = pats.waitForResponse((response) => response.url().includes('/confirm'));
      await pats.click('button:has-text("Allow")');
      const response = await answer;
      // The answer's page by its URL: the consent page before it is loaded already, and its content could be read instead.
      await pats.waitForURL((url) => url.pathname.endsWith('/confirm'));
      assert.equal(response.status(), 400, 'a clear page, not a 500');
      assert.match(await pats.content(), /expired|another|signed/i);
      assert.deepEqual(codes, [], 'no code for anyone');
      // Pat's account page changes nobody's password now (Robin's is the same passphrase, to tempt it).
      await account.fill('#current_password', PASSWORD);
      await account.fill('#new_password', 'a brand new passphrase of pat');
      await account.fill('#confirm_password', 'a brand new passphrase of pat');
      const changed = account.waitForResponse((response) => response.request().method() === 'POST');
      await account.click('button:has-text("Change password")');
      assert.equal((await changed).status(), 403, 'the form of the signed-out session is refused');
      for (const username of ['pat', 'robin']) {
        assert.ok(await server.accounts.verify(username, PASSWORD), `${username}'s password unchanged`);
      }
      // Nothing remembered for Pat: a fresh browser signing in as Pat is asked again.
      const fresh = await browser.newContext();
      await fresh.route(`${REDIRECT}**`, (route) => route.fulfill({ status: 200, body: 'app' }));
      const again = await fresh.newPage();
      await again.goto(authorize());
      await signIn(again, 'pat');
      await again.waitForSelector('button:has-text("Allow")');
      // Robin's own page still works for Robin, and for Robin only.
      await other.click('button:has-text("Allow")');
      await other.waitForURL(`${REDIRECT}**`);
      assert.equal(codes.length, 1);
    } finally {
      await browser.close();
    }
  });

  it("a device confirmation page left open while the browser signs out and signs in as someone else approves nothing when sent: the device is approved for no one, and the answer is a page, not a 500 (Chromium, two tabs; RFC 8628 §3.3)", async function () {
    // Chromium and two sign-ins: 25–40 s at a load of 20 on two cores, near the file's minute.
    this.timeout(180_000);
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      await context.route(`${REDIRECT}**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'app' }));
      const signIn = async (tab: import('playwright-core').Page, username: string) => {
        await tab.fill('input[name="username"]', username);
        await tab.fill('input[name="password"]', PASSWORD);
        await tab.click('button:has-text("Sign in")');
        await tab.waitForLoadState();
        if (await tab.locator('button:has-text("Allow")').count()) await tab.click('button:has-text("Allow")');
      };
      const authorize = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }).href;
      // Robin let the TV in once before (a remembered consent), so an approval in his name would need no page.
      const before = await (await fetch(`${server.url}/device/auth`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: TV.id, scope: 'openid' }) })).json() as Record<string, string>;
      const robins = await context.newPage();
      await robins.goto(before.verification_uri_complete!);
      await robins.click('button[type=submit]');
      await robins.click('button[name=confirm]');
      await signIn(robins, 'robin');
      await robins.waitForSelector('text=Device connected');
      await robins.goto(`${server.url}/session/end`);
      await robins.click('button:has-text("Sign out everywhere")');
      await robins.waitForLoadState();

      // Pat, signed in, at the confirmation of a new device code.
      const pats = await context.newPage();
      await pats.goto(authorize);
      await signIn(pats, 'pat');
      await pats.waitForURL(`${REDIRECT}**`);
      const device = await (await fetch(`${server.url}/device/auth`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: TV.id, scope: 'openid' }) })).json() as Record<string, string>;
      await pats.goto(device.verification_uri_complete!);
      await pats.click('button[type=submit]');
      await pats.waitForSelector('button[name=confirm]');
      // Another tab signs out, and Robin signs in.
      const other = await context.newPage();
      await other.goto(`${server.url}/session/end`);
      // The sign-out's own page, not the load state (which the page before already has: the goto
      // below could cut the POST short, and Robin's sign-in found Pat still signed in).
      await Promise.all([other.waitForURL(/\/session\/end\/success/), other.click('button:has-text("Sign out everywhere")')]);
      await other.goto(authorize);
      await signIn(other, 'robin');
      await other.waitForURL(`${REDIRECT}**`);
      // Pat's confirmation is sent now.
      const answer = pats.waitForResponse((response) => response.request().method() === 'POST');
      await pats.click('button[name=confirm]');
      const status = (await answer).status();
      await pats.waitForLoadState();
      const text = await pats.locator('body').innerText();
      assert.ok(status < 500, `no 500: ${status}`);
      assert.doesNotMatch(text, /Device connected/, `approved from Pat's page: ${text}`);
      const polled = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: DEVICE_CODE, device_code: device.device_code!, client_id: TV.id }) });
      const body = (await polled.json()) as Record<string, string>;
      assert.equal(body.error, 'authorization_pending', `the device got nothing: ${JSON.stringify(body)} after ${status}: ${text}`);
    } finally {
      await browser.close();
    }
  });

  it("the account page lists what each app holds: an API's scopes named with the API, and the details about the person it was allowed by name (docs/people.md: Apps with access)", async () => {
    await server.accounts.create('rue', PASSWORD, { email: 'rue@example.test', name: 'Rue' });
    const agent = new Agent();
    const claims = JSON.stringify({ userinfo: { name: null } });
    const { page } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid read', resource: API, claims });
    const consent = await signInSteps(agent, page, { username: 'rue', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.match(consent.html, /See these details about you: name/);
    assert.ok((await agent.submit(consent, '/confirm', {}, REDIRECT)).url.startsWith(REDIRECT));
    const account = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'rue', password: PASSWORD, consent: 'stop' });
    assert.equal(account.url, `${server.issuer}/account`, `${account.status} ${account.url}`);
    const listed = account.html.match(/<strong><bdi>app<\/bdi><\/strong>(?:\s*<span class="hint">.*?<\/span>)?\s*<p class="hint">([^<]*)</)?.[1] ?? '';
    assert.match(listed, /act on https:\/\/api\.example\.test with: read/, `the API is named: ${listed}`);
    assert.match(listed, /see these details about you: name/, `the claim given by name: ${listed}`);
    assert.doesNotMatch(listed, /use the &quot;read&quot; permission/);
  });

  it("an id_token_hint names who is to sign in: another person signing in at the login page gets the app login_required, never a code or an ID token of theirs; the hinted person gets theirs (OIDC Core §3.1.2.1 id_token_hint, §3.1.2.6)", async () => {
    await server.accounts.create('sam', PASSWORD, { email: 'sam@example.test', name: 'Sam' });
    // Sam's ID token, as the app holds it (sam signed in to it before).
    const before = new Agent();
    const first = await startAuthorization(before, app, REDIRECT, { scope: 'openid' });
    const signedIn = new URL((await signInSteps(before, first.page, { username: 'sam', password: PASSWORD, stopAt: REDIRECT })).url);
    const samTokens = await oidc.authorizationCodeGrant(app, signedIn, { pkceCodeVerifier: first.verifier });
    const samIdToken = samTokens.id_token!;
    const samSub = samTokens.claims()!.sub;

    // The app asks to sign Sam in again (a re-authentication before a sensitive action); pat, at the same browser, signs in instead.
    const browser = new Agent();
    const hinted = await startAuthorization(browser, app, REDIRECT, { scope: 'openid', id_token_hint: samIdToken, prompt: 'login' });
    assert.ok(isLogin(hinted.page), `${hinted.page.status} ${hinted.page.url}`);
    const answer = await signInSteps(browser, hinted.page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(answer.url.startsWith(REDIRECT), `back at the app: ${answer.status} ${answer.url}`);
    const params = new URL(answer.url).searchParams;
    assert.equal(params.get('code'), null, 'no code for someone the hint does not name');
    assert.equal(params.get('error'), 'login_required', answer.url);

    // Without prompt=login (no session in this browser: the login page), the same.
    const fresh = new Agent();
    const again = await startAuthorization(fresh, app, REDIRECT, { scope: 'openid', id_token_hint: samIdToken });
    const other = new URL((await signInSteps(fresh, again.page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT })).url).searchParams;
    assert.equal(other.get('code'), null);
    assert.equal(other.get('error'), 'login_required');

    // A sub asked for by value (claims parameter, OIDC Core §5.5.1): the same, where pat was sent back to the login page for ever.
    const byValue = new Agent();
    const claimed = await startAuthorization(byValue, app, REDIRECT, { scope: 'openid', claims: JSON.stringify({ id_token: { sub: { value: samSub } } }) });
    const notSam = new URL((await signInSteps(byValue, claimed.page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT })).url);
    assert.equal(notSam.searchParams.get('error'), 'login_required', notSam.href);

    // The honest request next to it: Sam signs in and the app gets Sam's code.
    const own = new Agent();
    const asked = await startAuthorization(own, app, REDIRECT, { scope: 'openid', id_token_hint: samIdToken });
    const back = new URL((await signInSteps(own, asked.page, { username: 'sam', password: PASSWORD, stopAt: REDIRECT })).url);
    assert.ok(back.searchParams.get('code'), back.href);
    assert.equal((await oidc.authorizationCodeGrant(app, back, { pkceCodeVerifier: asked.verifier })).claims()!.sub, samSub);

    // The device flow, the same: a device hinting Sam (its own ID token of Sam) approved by pat gets no tokens.
    const device = async (params: Record<string, string>, username: string) => {
      const post = async (path: string, body: Record<string, string>) => {
        const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: TV.id, ...body }) });
        return (await response.json()) as Record<string, string>;
      };
      const started = await post('/device/auth', { scope: 'openid', ...params });
      assert.ok(started.user_code, JSON.stringify(started));
      const agent = new Agent();
      const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: started.user_code });
      await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username, password: PASSWORD });
      return post('/token', { grant_type: DEVICE_CODE, device_code: started.device_code! });
    };
    const samOnTv = (await device({}, 'sam')).id_token!;
    assert.equal(decodeJwt(samOnTv).sub, samSub);
    const approvedByPat = await device({ id_token_hint: samOnTv }, 'pat');
    assert.equal(approvedByPat.access_token, undefined, JSON.stringify(approvedByPat));
    // A device is told only the token endpoint's codes (RFC 8628 §3.5): access_denied, the reason first in its description.
    assert.equal(approvedByPat.error, 'access_denied', JSON.stringify(approvedByPat));
    assert.match(approvedByPat.error_description ?? '', /^login_required\b/, JSON.stringify(approvedByPat));
    assert.equal(decodeJwt((await device({ id_token_hint: samOnTv }, 'sam')).id_token!).sub, samSub, 'Sam approving it: Sam\'s tokens');
  });

  it("a login_hint naming someone else is not answered with the signed-in person: the login page (login_required for prompt=none), never a code or an ID token of whoever the browser holds; a hint naming the session's person, by username or email, signs in silently (OIDC Core §3.1.2.1 login_hint, §3.1.2.6)", async () => {
    await server.accounts.create('tess', PASSWORD, { email: 'tess@example.test', email_verified: true, name: 'Tess' });
    await server.accounts.create('uma', PASSWORD, { email: 'uma@example.test', email_verified: true, name: 'Uma' });
    // Tess signed in at this browser (a shared computer, say); an app asks to sign Uma in.
    const browser = new Agent();
    const first = await startAuthorization(browser, app, REDIRECT, { scope: 'openid email' });
    const signedIn = new URL((await signInSteps(browser, first.page, { username: 'tess', password: PASSWORD, stopAt: REDIRECT })).url);
    const tessSub = (await oidc.authorizationCodeGrant(app, signedIn, { pkceCodeVerifier: first.verifier })).claims()!.sub;

    const silent = await startAuthorization(browser, app, REDIRECT, { scope: 'openid email', login_hint: 'uma', prompt: 'none' });
    const silentAnswer = new URL(silent.page.url).searchParams;
    assert.equal(silentAnswer.get('code'), null, `no code of Tess's for a request naming Uma: ${silent.page.url}`);
    assert.equal(silentAnswer.get('error'), 'login_required', silent.page.url);

    for (const hint of ['uma', 'uma@example.test', 'UMA@Example.test']) {
      const asked = await startAuthorization(browser, app, REDIRECT, { scope: 'openid email', login_hint: hint });
      assert.ok(isLogin(asked.page), `${hint}: the login page, not Tess's code: ${asked.page.status} ${asked.page.url}`);
      assert.match(asked.page.html, new RegExp(`value="${hint}"`), `${hint}: pre-filled`);
    }
    // Uma signs in there: Uma's code and ID token.
    const asked = await startAuthorization(browser, app, REDIRECT, { scope: 'openid email', login_hint: 'uma' });
    // (The engine ends Tess's session first: a self-submitting form to its sign-out, then the resume.)
    const switched = await signInSteps(browser, asked.page, { username: 'uma', password: PASSWORD, stopAt: REDIRECT });
    const uma = new URL((await signInSteps(browser, await browser.submit(switched, '', {}, REDIRECT), { username: 'uma', password: PASSWORD, stopAt: REDIRECT })).url);
    const umaClaims = (await oidc.authorizationCodeGrant(app, uma, { pkceCodeVerifier: asked.verifier })).claims()!;
    assert.equal(umaClaims.email, 'uma@example.test');
    assert.notEqual(umaClaims.sub, tessSub);

    // The honest request next to it: a hint naming the session's person (username or email, any case) signs in silently.
    for (const hint of ['uma', 'Uma@example.test']) {
      const own = await startAuthorization(browser, app, REDIRECT, { scope: 'openid email', login_hint: hint, prompt: 'none' });
      const back = new URL(own.page.url);
      assert.ok(back.searchParams.get('code'), `${hint}: ${back.href}`);
      assert.equal((await oidc.authorizationCodeGrant(app, back, { pkceCodeVerifier: own.verifier })).claims()!.sub, umaClaims.sub);
    }

    // A device asking for Tess, confirmed at /device in this browser (Uma's session): the login page, not Uma's approval.
    const started = (await (await fetch(`${server.url}/device/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: TV.id, scope: 'openid', login_hint: 'tess' }),
    })).json()) as Record<string, string>;
    assert.ok(started.user_code, JSON.stringify(started));
    const confirm = await browser.submit(await browser.follow(`${server.issuer}/device`), '/device', { user_code: started.user_code });
    const afterConfirm = await browser.submit(confirm, '/device', { confirm: 'yes' });
    assert.ok(isLogin(afterConfirm), `the login page for a device asking for Tess: ${afterConfirm.status} ${afterConfirm.url}`);
    assert.match(afterConfirm.html, /value="tess"/);
  });

  it("registration takes no identity or credential the registrant chooses: a client_id (another client's, a first-party page's), a client_secret or a software_statement are not taken, and RFC 7592 answers no client with another client's registration access token (RFC 7591 §3.2.1, §2.3, RFC 7592 §3)", async () => {
    const register = async (extra: Record<string, unknown>) => {
      const response = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['https://registrant.example.test/cb'], ...extra }) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    const chosenSecret = 'a-secret-the-registrant-chose-0123456789abcdefgh';
    for (const extra of [{ client_id: APP.id }, { client_id: 'developer' }, { client_secret: chosenSecret }, { software_statement: 'eyJhbGciOiJub25lIn0.eyJzY29wZSI6ImFkbWluIiwiY2xpZW50X2lkIjoiYXBwIn0.' }]) {
      const made = await register(extra);
      if (made.status !== 201) {
        assert.equal(made.status, 400, JSON.stringify(made.body));
        continue;
      }
      assert.ok(![APP.id, 'developer', 'account'].includes(made.body.client_id!), `${JSON.stringify(extra)}: ${made.body.client_id}`);
      assert.notEqual(made.body.client_secret, chosenSecret);
      assert.equal(made.body.scope, undefined, 'no scope from a statement');
    }
    // APP itself is unchanged: its own secret still authenticates (invalid_grant, not invalid_client).
    assert.equal((await token(APP, { grant_type: 'refresh_token', refresh_token: 'none' })).body.error, 'invalid_grant');

    const first = (await register({})).body;
    const second = (await register({})).body;
    const read = await fetch(`${server.url}/reg/${second.client_id}`, { headers: { authorization: `Bearer ${first.registration_access_token}` } });
    assert.equal(read.status, 401, 'read with another client\'s token');
    const update = await fetch(`${server.url}/reg/${second.client_id}`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${first.registration_access_token}` }, body: JSON.stringify({ client_id: second.client_id, redirect_uris: ['https://attacker.example.test/cb'] }) });
    assert.equal(update.status, 401, 'update with another client\'s token');
    const own = await fetch(`${server.url}/reg/${second.client_id}`, { headers: { authorization: `Bearer ${second.registration_access_token}` } });
    assert.deepEqual(((await own.json()) as { redirect_uris: string[] }).redirect_uris, ['https://registrant.example.test/cb'], 'its redirect URIs are its own');
  });

  it("a refresh that narrows the scope narrows the claims with it: its ID token and userinfo give no claim of a scope left out, and introspection says the narrowed scope (RFC 6749 §6, OIDC Core §5.4, §12.2)", async () => {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid offline_access email profile', prompt: 'consent' });
    const back = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    const issued = await token(APP, { grant_type: 'authorization_code', code: new URL(back.url).searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier });
    assert.equal(decodeJwt(issued.body.id_token!).email, 'pat@example.test');
    const narrowed = await token(APP, { grant_type: 'refresh_token', refresh_token: issued.body.refresh_token!, scope: 'openid offline_access' });
    assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
    assert.equal(narrowed.body.scope, 'openid offline_access');
    const idToken = decodeJwt(narrowed.body.id_token!);
    assert.deepEqual([idToken.email, idToken.email_verified, idToken.name], [undefined, undefined, undefined], JSON.stringify(idToken));
    const userinfo = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${narrowed.body.access_token}` } });
    assert.deepEqual(Object.keys((await userinfo.json()) as Record<string, unknown>), ['sub']);
    assert.equal((await introspection(APP, narrowed.body.access_token!)).scope, 'openid offline_access');
  });

  it("an API that no longer offers a scope is told no token still holds it: once an operator took a scope out of a configured API (or the API out of the configuration) and restarted, a person's access token issued before with it introspects inactive, opaque or JWT; refreshes give what is left (RFC 7662 §2.2, RFC 8707 §2)", async () => {
    const LEDGER = 'https://ledger.example.test';
    const RETIRED = 'https://retired.example.test';
    const redis = await startRedisServer();
    const [dir, port] = [testDir(), await freePort()];
    const start = (apis: Record<string, unknown>[]) =>
      startServer({
        redisUrl: redis.url,
        dir,
        port,
        env: { RESOURCE_SERVERS: JSON.stringify(apis) },
        clients: [
          { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
          { client_id: RS.id, client_secret: RS.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
        ],
      });
    const introspector = [{ client_id: RS.id, introspect: true }];
    let running = await start([
      { identifier: LEDGER, scopes: ['read', 'write'], format: 'opaque', grants: introspector },
      { identifier: RETIRED, scopes: ['read'], format: 'jwt', grants: introspector },
    ]);
    try {
      await running.accounts.create('pat', PASSWORD);
      const ask = async (url: string, client: ClientCredentials, params: Record<string, string>) => {
        const response = await fetch(`${running.url}${url}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) }, body: new URLSearchParams(params) });
        return (await response.json()) as Record<string, string>;
      };
      const client = await oidc.discovery(new URL(running.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
      const agent = new Agent();
      const personTokens = async (resource: string) => {
        const { page, verifier } = await startAuthorization(agent, client, REDIRECT, { scope: 'openid offline_access read write', resource });
        const back = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
        const code = new URL(back.url).searchParams.get('code');
        assert.ok(code, back.url);
        return ask('/token', APP, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource });
      };
      const wide = await personTokens(LEDGER);
      assert.equal(wide.scope, 'read write', JSON.stringify(wide));
      const readOnly = await ask('/token', APP, { grant_type: 'refresh_token', refresh_token: wide.refresh_token!, resource: LEDGER, scope: 'read' });
      const retired = await personTokens(RETIRED);
      assert.equal(decodeJwt(retired.access_token!).aud, RETIRED);
      for (const issued of [wide, readOnly, retired]) assert.equal((await ask('/token/introspection', RS, { token: issued.access_token! })).active, true);

      // The operator takes `write` out of the ledger and the retired API out of the configuration.
      await running.stop();
      running = await start([{ identifier: LEDGER, scopes: ['read'], format: 'opaque', grants: introspector }]);
      for (const caller of [RS, APP]) {
        assert.deepEqual(await ask('/token/introspection', caller, { token: wide.access_token! }), { active: false }, 'a token holding the scope taken away');
        assert.deepEqual(await ask('/token/introspection', caller, { token: retired.access_token! }), { active: false }, 'a token for an API no longer configured');
      }
      const kept = await ask('/token/introspection', RS, { token: readOnly.access_token! });
      assert.equal(kept.active, true, 'a token within what the API offers now');
      assert.equal(kept.scope, 'read');
      const refreshed = await ask('/token', APP, { grant_type: 'refresh_token', refresh_token: readOnly.refresh_token!, resource: LEDGER });
      assert.equal(refreshed.scope, 'read', JSON.stringify(refreshed));
      assert.equal((await ask('/token/introspection', RS, { token: refreshed.access_token! })).active, true);
    } finally {
      await running.stop();
      await redis.stop();
    }
  });
});
