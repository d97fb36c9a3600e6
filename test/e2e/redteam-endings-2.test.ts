/**
 * The red team's second endings pass ("some endings do not end", issue #19), black box: for cells
 * of the endings × artifacts matrix that no suite performed, the ending, then the artifact used
 * after it. Two did not end before their fix: an MCP client (a Client ID Metadata Document) whose
 * document was away was left off the account page, so the person could not withdraw what it held;
 * a secret an operator wrote with the admin API's PUT left the old secrets working and the tokens
 * got with them alive. The rest held and are pinned: the MCP client's own revocation and an
 * operator's `grants revoke --client`; codes issued before a withdrawal or a session signed out on
 * the account page, a device approved and a consent page open in it; a code for an API removed;
 * grant types narrowed; a deleted client's ID token as id_token_hint; ttl.sessionMax; a stolen
 * signing key and the admin API.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { importJWK, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import type { Clients } from '../../src/registration/clients.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent, type Page } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { adminJson, API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const PASSWORD = 'second endings pass password';
const REDIRECT = 'https://web.example.test/callback';
const SIGNED_OUT = 'https://web.example.test/bye';
const WEB = { id: 'web2', secret: 'web-two-app-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const WEB_METADATA = {
  client_id: WEB.id,
  client_secret: WEB.secret,
  redirect_uris: [REDIRECT],
  post_logout_redirect_uris: [SIGNED_OUT],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
};

describe('e2e: the red team\'s second endings pass', function () {
  this.timeout(90_000);
  let server: TestServer;
  let clients: Clients;
  let helper: ResourceServer;
  let agentSite: http.Server;
  let agentBase: string;
  /** Whether the MCP agent's metadata document is served now (its site down, or moved, when not). */
  let documentServed = true;
  let web: oidc.Configuration;

  before(async () => {
    // The MCP agent's own site: its metadata document (never cached: read at every look-up) and its redirect URI.
    agentSite = http.createServer((req, res) => {
      if (req.url === '/client.json' && documentServed) {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        return res.end(JSON.stringify({
          client_id: `${agentBase}/client.json`,
          client_name: 'Example MCP agent',
          redirect_uris: [`${agentBase}/callback`],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        }));
      }
      // Its site down (a 503; a 404 or 410 would say the document is gone, which removes the client and ends everything it holds: redteam-endings-11).
      res.writeHead(req.url === '/client.json' ? 503 : 404).end();
    });
    await new Promise<void>((resolve) => agentSite.listen(0, '127.0.0.1', resolve));
    agentBase = `http://127.0.0.1:${(agentSite.address() as AddressInfo).port}`;

    server = await startServer({
      ownRedis: true,
      clients: [machineClient(RS)],
      env: { RESOURCE_SERVERS, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1' },
    });
    for (const name of ['mia', 'noor', 'otto', 'pia', 'quin', 'sam']) await server.accounts.create(name, PASSWORD);
    await grantFeed(server, RS.id);
    clients = server.clients;
    await clients.add({ ...WEB_METADATA });
    web = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100 });
  });
  after(async () => {
    helper?.close();
    await server?.stop();
    agentSite?.closeAllConnections();
    agentSite?.close();
  });

  /** The account page, signed in in `agent` (Latchkey's own page: no consent). */
  async function accountPage(agent: Agent, username: string): Promise<Page> {
    const page = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username, password: PASSWORD, consent: 'stop' });
    assert.equal(page.url, `${server.issuer}/account`, `expected the account page, got ${page.url} (${page.status})`);
    return page;
  }

  async function token(body: Record<string, string>, auth?: { id: string; secret: string }) {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.id}:${auth.secret}`).toString('base64')}`;
    const response = await fetch(`${server.url}/token`, { method: 'POST', headers, body: new URLSearchParams(body) });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }

  /** On the person's account page (a browser of its own), signs out their one other session. */
  async function signOutOtherSession(username: string) {
    const agent = new Agent();
    const page = await accountPage(agent, username);
    const others = page.html.split('<div class="listed">').filter((block) => block.includes('name="session"') && !block.includes('This browser'));
    assert.equal(others.length, 1, page.html);
    const done = await agent.submit(page, '/sessions/sign-out', { session: others[0]!.match(/name="session" value="([^"]+)"/)![1]! });
    assert.match(done.html, /That session is signed out/);
  }

  /** The web app's sign-in up to its callback's code (not redeemed), in `agent`'s browser. */
  async function webCode(agent: Agent, username: string, params: Record<string, string> = {}) {
    const { page, verifier } = await startAuthorization(agent, web, REDIRECT, { scope: 'openid', ...params });
    const back = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: REDIRECT });
    assert.ok(back.url.startsWith(REDIRECT), `expected the callback, got ${back.url}`);
    return { callback: new URL(back.url), verifier };
  }
  const redeem = ({ callback, verifier }: { callback: URL; verifier: string }) =>
    token({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier }, WEB);

  /** Past the shortest time a read document (or a refusal) is kept (CLIENT_METADATA_DOCUMENTS_CACHE_MIN). */
  const pastCache = () => new Promise((resolve) => setTimeout(resolve, 1_500));
  const helperRefuses = (jwt: string) => eventually(() => assert.rejects(helper.verify(`Bearer ${jwt}`), TokenRejected));

  describe('an MCP client (Client ID Metadata Document): its access withdrawn, revoked, or its grants ended', () => {
    /** The agent's sign-in as `username`, consent given, for the API with offline access; its tokens. */
    async function mcpTokens(username: string) {
      const clientId = `${agentBase}/client.json`;
      const browser = new Agent();
      const verifier = oidc.randomPKCECodeVerifier();
      const url = new URL(`${server.issuer}/auth`);
      url.search = new URLSearchParams({
        client_id: clientId,
        redirect_uri: `${agentBase}/callback`,
        response_type: 'code',
        scope: 'openid offline_access read',
        resource: API,
        prompt: 'consent',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }).toString();
      const back = await signInSteps(browser, await browser.follow(url.href, {}, `${agentBase}/callback`), { username, password: PASSWORD, consent: 'required', stopAt: `${agentBase}/callback` });
      const code = new URL(back.url).searchParams.get('code');
      assert.ok(code, `expected a code, got ${back.url}`);
      const redeemed = await token({ grant_type: 'authorization_code', client_id: clientId, code, redirect_uri: `${agentBase}/callback`, code_verifier: verifier, resource: API });
      assert.equal(redeemed.status, 200, JSON.stringify(redeemed.body));
      return { clientId, access: redeemed.body.access_token!, refresh: redeemed.body.refresh_token! };
    }

    /** The agent's refresh token is refused, its JWT inactive at introspection and refused by an API verifying it locally. */
    async function assertEnded({ clientId, access, refresh }: { clientId: string; access: string; refresh: string }) {
      const refreshed = await token({ grant_type: 'refresh_token', client_id: clientId, refresh_token: refresh });
      assert.equal(refreshed.body.error, 'invalid_grant', JSON.stringify(refreshed.body));
      assert.equal((await introspect(server.url, RS, access)).active, false);
      await helperRefuses(access);
    }

    it('the account page lists it and withdrawing ends its refresh token and its JWT, at introspection and at an API verifying it locally', async () => {
      documentServed = true;
      const { clientId, access, refresh } = await mcpTokens('mia');
      assert.equal((await introspect(server.url, RS, access)).active, true);
      await helper.verify(`Bearer ${access}`);

      const agent = new Agent();
      const page = await accountPage(agent, 'mia');
      assert.match(page.html, /Example MCP agent/, 'the account page lists the MCP agent');
      assert.match((await agent.submit(page, '/apps/withdraw', { client: clientId })).html, /Access withdrawn/);

      await assertEnded({ clientId, access, refresh });
    });

    it('its own revocation of its refresh token (RFC 7009, a public client) ends the grant\'s JWT, at introspection and at an API verifying it locally (held)', async () => {
      documentServed = true;
      const { clientId, access, refresh } = await mcpTokens('mia');
      const revoked = await fetch(`${server.url}/token/revocation`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: clientId, token: refresh, token_type_hint: 'refresh_token' }),
      });
      assert.equal(revoked.status, 200);
      await assertEnded({ clientId, access, refresh });
    });

    it('an operator ending its grants (latchkey grants revoke --client <its URL>) ends its refresh token and JWT, at introspection and at an API verifying it locally (held)', async () => {
      documentServed = true;
      const { clientId, access, refresh } = await mcpTokens('pia');
      const run = await latchkey(server.env, ['grants', 'revoke', '--client', clientId]);
      assert.equal(run.status, 0, run.stderr);
      await assertEnded({ clientId, access, refresh });
    });

    it('while its document cannot be read, the account page still lists it for the person to withdraw, and nothing comes back with the document', async () => {
      documentServed = true;
      const { clientId, access, refresh } = await mcpTokens('noor');
      // The agent's site goes away for a while (down: a 503): the client is unknown meanwhile.
      documentServed = false;
      await pastCache();
      try {
        const agent = new Agent();
        const page = await accountPage(agent, 'noor');
        assert.ok(page.html.includes(clientId), `the account page lists the app by its client_id, to withdraw its access:\n${page.html.slice(page.html.indexOf('id="apps"'), page.html.indexOf('id="apps"') + 800)}`);
        const done = await agent.submit(page, '/apps/withdraw', {});
        assert.match(done.html, /Access withdrawn/);
      } finally {
        documentServed = true;
      }
      await pastCache();
      // The document is back: what the person withdrew stays withdrawn.
      await assertEnded({ clientId, access, refresh });
    });
  });

  it('a code issued before the person withdrew the app\'s access on the account page is refused after it (held)', async () => {
    const browser = new Agent();
    const pending = await webCode(browser, 'otto', { scope: 'openid offline_access', prompt: 'consent' });
    const agent = new Agent();
    const done = await agent.submit(await accountPage(agent, 'otto'), '/apps/withdraw', { client: WEB.id });
    assert.match(done.html, /Access withdrawn/);
    const redeemed = await redeem(pending);
    assert.equal(redeemed.body.error, 'invalid_grant', JSON.stringify(redeemed.body));
  });

  it('a session signed out on the account page: its code not yet redeemed and its access token end (held)', async () => {
    const phone = new Agent();
    const first = await webCode(phone, 'pia');
    const tokens = await redeem(first);
    assert.equal(tokens.status, 200);
    const pending = await webCode(phone, 'pia');
    const me = async () => (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } })).status;
    assert.equal(await me(), 200);

    await signOutOtherSession('pia');
    assert.equal(await me(), 401, 'the access token of the session signed out');
    const redeemed = await redeem(pending);
    assert.equal(redeemed.body.error, 'invalid_grant', JSON.stringify(redeemed.body));
  });

  it('a device approved without offline access in a session the person then signs out on the account page, before it polled: no tokens (held)', async () => {
    const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
    await clients.add({ client_id: 'tv2', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] });
    const started = await fetch(`${server.url}/device/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: 'tv2', scope: 'openid' }),
    });
    const device = (await started.json()) as { device_code: string; user_code: string };
    assert.ok(device.user_code, JSON.stringify(device));
    const browser = new Agent();
    const confirm = await browser.submit(await browser.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const approved = await signInSteps(browser, await browser.submit(confirm, '/device', { confirm: 'yes' }), { username: 'sam', password: PASSWORD });
    assert.match(approved.html, /Device connected/);

    await signOutOtherSession('sam');
    const polled = await token({ grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: 'tv2' });
    assert.ok(!polled.body.access_token, JSON.stringify(polled.body));
  });

  it('a consent page open in a session the person signed out on the account page, confirmed after, sends the app no code (held)', async () => {
    const thief = new Agent();
    const { page } = await startAuthorization(thief, web, REDIRECT, { scope: 'openid profile', prompt: 'consent' });
    const atConsent = await signInSteps(thief, page, { username: 'noor', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(atConsent), atConsent.url);

    await signOutOtherSession('noor');

    const confirmed = await thief.submit(atConsent, '/confirm', {}, REDIRECT);
    assert.ok(!confirmed.url.includes('code='), `no code: ${confirmed.url}`);
    assert.ok(confirmed.status < 500, `${confirmed.status} ${confirmed.url}`);
  });

  it('a code issued for an API that an operator removes (or removes and adds again) before the code is redeemed gets no token for it (held)', async () => {
    const GONE = 'https://gone.example.test';
    await server.apis.add({ identifier: GONE, scopes: ['gone:read'] });
    const before = await webCode(new Agent(), 'quin', { scope: 'openid gone:read', resource: GONE, prompt: 'consent' });
    const beforeAgain = await webCode(new Agent(), 'quin', { scope: 'openid gone:read', resource: GONE });
    await server.apis.remove(GONE);
    const redeemed = await token({ grant_type: 'authorization_code', code: before.callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: before.verifier, resource: GONE }, WEB);
    assert.ok(!redeemed.body.access_token, JSON.stringify(redeemed.body));
    await new Promise((done) => setTimeout(done, 1100)); // an API's addedAt has whole-second precision
    await server.apis.add({ identifier: GONE, scopes: ['gone:read'] });
    try {
      const again = await token({ grant_type: 'authorization_code', code: beforeAgain.callback.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: beforeAgain.verifier, resource: GONE }, WEB);
      assert.ok(!again.body.access_token, JSON.stringify(again.body));
    } finally {
      await server.apis.remove(GONE);
    }
  });

  it('an operator narrowing a client\'s grant types: a refresh token it holds, and a code issued before, are refused after (held)', async () => {
    const browser = new Agent();
    const first = await webCode(browser, 'quin', { scope: 'openid offline_access', prompt: 'consent' });
    const tokens = await redeem(first);
    assert.ok(tokens.body.refresh_token);
    const pending = await webCode(browser, 'quin', { scope: 'openid offline_access' });
    try {
      await clients.update(WEB.id, { ...WEB_METADATA, grant_types: ['authorization_code'] });
      const refreshed = await token({ grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token! }, WEB);
      assert.ok(refreshed.status >= 400 && !refreshed.body.access_token, JSON.stringify(refreshed.body));
      await clients.update(WEB.id, { ...WEB_METADATA, grant_types: ['refresh_token'], response_types: [], redirect_uris: [REDIRECT] });
      const redeemed = await redeem(pending);
      assert.ok(redeemed.status >= 400 && !redeemed.body.access_token, JSON.stringify(redeemed.body));
    } finally {
      await clients.update(WEB.id, { ...WEB_METADATA });
    }
  });

  it("a deleted client's ID token as id_token_hint: no 500 at the end-session or authorization endpoint, and no redirect to its URIs (held)", async () => {
    const id = 'gone-web';
    await clients.add({ ...WEB_METADATA, client_id: id });
    const gone = await oidc.discovery(new URL(server.issuer), id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    const browser = new Agent();
    const { page, verifier } = await startAuthorization(browser, gone, REDIRECT);
    const back = await signInSteps(browser, page, { username: 'mia', password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(gone, new URL(back.url), { pkceCodeVerifier: verifier });
    await clients.remove(id);

    const ended = await browser.follow(`${server.issuer}/session/end?${new URLSearchParams({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: SIGNED_OUT })}`, {}, SIGNED_OUT);
    assert.ok(ended.status < 500 && !ended.url.startsWith(SIGNED_OUT), `${ended.status} ${ended.url}`);
    const silent = await startAuthorization(browser, web, REDIRECT, { prompt: 'none', id_token_hint: tokens.id_token! });
    assert.ok(silent.page.status < 500, `${silent.page.status} ${silent.page.url}`);
    assert.ok(!silent.page.url.includes('code='), `no code for another client's hint: ${silent.page.url}`);
    assert.ok(!isConsent(silent.page));
  });
});

describe('e2e: the red team\'s second endings pass, at ttl.sessionMax', function () {
  this.timeout(60_000);
  const SESSION_MAX = 10;
  let server: TestServer;
  let web: oidc.Configuration;

  before(async () => {
    // Not 3 s, nor 6: the end is whole seconds after the sign-in's second (2 to 3 s after it), in which the
    // code's exchange, the second code and userinfo had to be done on a loaded runner (several times slower).
    server = await startServer({ clients: [{ ...WEB_METADATA }], env: { TTL_SESSION: '3600', TTL_SESSION_MAX: String(SESSION_MAX) } });
    await server.accounts.create('rei', PASSWORD);
    web = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => server?.stop());

  it('a session that reached its maximum lifetime: its opaque access token and a code issued in it, not yet redeemed, end with it (held)', async () => {
    const browser = new Agent();
    const first = await startAuthorization(browser, web, REDIRECT);
    const back = await signInSteps(browser, first.page, { username: 'rei', password: PASSWORD, stopAt: REDIRECT });
    const signedIn = Date.now();
    const tokens = await oidc.authorizationCodeGrant(web, new URL(back.url), { pkceCodeVerifier: first.verifier });
    const second = await startAuthorization(browser, web, REDIRECT);
    assert.ok(second.page.url.includes('code='), `single sign-on gives a second code: ${second.page.url}`);
    const me = async () => (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status;
    assert.equal(await me(), 200);

    // Past the session's maximum lifetime (SESSION_MAX s after its sign-in, which was before `signedIn`).
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, signedIn + SESSION_MAX * 1000 + 500 - Date.now())));
    assert.equal(await me(), 401, 'the access token ended with its session');
    assert.deepEqual(await introspect(server.url, WEB, tokens.access_token), { active: false });
    await assert.rejects(oidc.authorizationCodeGrant(web, new URL(second.page.url), { pkceCodeVerifier: second.verifier }), (error: { error?: string }) => error.error === 'invalid_grant');
  });
});

describe('e2e: the red team\'s second endings pass, a stolen signing key', function () {
  this.timeout(60_000);
  const OPS = { id: 'ops', secret: 'ops-admin-client-secret-with-plenty-of-entropy-012' };
  let server: TestServer;

  before(async () => {
    server = await startServer({ clients: [machineClient(OPS)] });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
  });
  after(async () => server?.stop());

  it("forges no admin API token, before or after the key is revoked: the admin API's tokens are opaque, and one revoked key ends none of them (held)", async () => {
    const admin = `${server.issuer}/admin`;
    const issued = await clientCredentialsToken(server.url, OPS, admin, 'admin');
    assert.equal(issued.split('.').length, 1, 'an opaque token');
    const stolen = server.keys.ring.current!;
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ iss: server.issuer, aud: admin, sub: OPS.id, client_id: OPS.id, scope: 'admin', iat: now, exp: now + 600, jti: randomUUID() })
      .setProtectedHeader({ alg: 'RS256', kid: stolen.kid, typ: 'at+jwt' })
      .sign(await importJWK(stolen.jwk, 'RS256'));
    const call = async (token: string) => (await fetch(`${server.url}/admin/clients`, { headers: { authorization: `Bearer ${token}` } })).status;
    assert.equal(await call(issued), 200);
    assert.equal(await call(forged), 401, 'a JWT signed with our key is no admin token');
    await server.revocations.revokeKey(stolen.kid, 60);
    assert.equal(await call(forged), 401);
    assert.equal(await call(issued), 200, 'the operator keeps the admin API through the key revocation');
  });
});

describe("e2e: the red team's second endings pass, a client's secret replaced by an operator", function () {
  this.timeout(60_000);
  const OPS = { id: 'ops', secret: 'ops-admin-client-secret-with-plenty-of-entropy-012' };
  let server: TestServer;
  let helper: ResourceServer;
  let adminToken: string;

  before(async () => {
    server = await startServer({ clients: [machineClient(OPS), machineClient(RS)], env: { RESOURCE_SERVERS } });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await grantFeed(server, RS.id);
    adminToken = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100 });
  });
  after(async () => {
    helper?.close();
    await server?.stop();
  });

  const admin = (method: string, path: string, body?: unknown) => adminJson(server.url, adminToken, method, path, body);
  const ownToken = async (id: string, secret: string) => {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  it('a new secret written with the admin API (PUT with client_secret) ends what the old one got, as a rotation without grace does, and the secret in its grace with it', async () => {
    const metadata = { grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' };
    const made = await admin('POST', '/clients', { client_id: 'leaky', ...metadata });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    await server.apis.grant('leaky', API, { scopes: ['read'] });
    const first = made.body.client_secret!;
    // A rotation with the configured grace: the first secret keeps working for a day.
    const rotated = await admin('POST', '/clients/leaky/secret');
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const second = rotated.body.client_secret!;
    // A thief holding the first secret got a token with it meanwhile; the operator, told that both leaked, writes a secret of their own.
    const stolen = (await ownToken('leaky', first)).body.access_token!;
    const kept = (await ownToken('leaky', second)).body.access_token!;
    assert.equal((await introspect(server.url, RS, stolen)).active, true);
    const replaced = await admin('PUT', '/clients/leaky', { ...metadata, client_secret: 'an-operator-chosen-secret-with-plenty-of-entropy-0123' });
    assert.equal(replaced.status, 200, JSON.stringify(replaced.body));

    for (const [which, secret] of [['the first secret (in its grace)', first], ['the second secret', second]] as const) {
      assert.equal((await ownToken('leaky', secret)).status, 401, `${which} no longer authenticates`);
    }
    for (const [which, token] of [['got with the first secret', stolen], ['got with the second secret', kept]] as const) {
      assert.deepEqual(await introspect(server.url, RS, token), { active: false }, `the token ${which}`);
      await helperRefuses(token);
    }
    assert.equal((await ownToken('leaky', 'an-operator-chosen-secret-with-plenty-of-entropy-0123')).status, 200, 'the new secret works');
  });

  const helperRefuses = (jwt: string) => eventually(() => assert.rejects(helper.verify(`Bearer ${jwt}`), TokenRejected));
});
