/**
 * The authorization model for APIs, attacked over HTTP: a client gets an API's scopes with
 * client_credentials only where an operator granted them; self-service (developer page) and
 * dynamically registered apps start with none; the admin API and the revocation feed take only
 * client_credentials tokens of granted clients, re-checking the grant at every call; introspection
 * tells a client only about its own tokens and tokens meant for an API it serves as.
 */
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { createResourceServer, TokenRejected } from '../../src/resource-server/index.js';
import { Agent, type Page } from '../helpers/agent.js';
import { frontChannel } from '../helpers/front-channel.js';
import { latchkey, serveProcess } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';
import { API, basic, OPAQUE_API, tokenEndpoint, type ClientCredentials } from '../helpers/tokens.js';

const PASSWORD = 'api grants passphrase for people';
const REDIRECT = 'https://ops-console.example.test/callback';
const secret = (name: string) => `${name}-secret-with-plenty-of-entropy-0123456789abcdef`;
const SERVICE: ClientCredentials = { id: 'billing', secret: secret('billing') };
const OTHER: ClientCredentials = { id: 'reports', secret: secret('reports') };
const RS: ClientCredentials = { id: 'api-server', secret: secret('api-server') };
const OPS: ClientCredentials = { id: 'ops', secret: secret('ops') };
/** An operator's client that people sign in through, with the admin scopes in its metadata. */
const CONSOLE: ClientCredentials = { id: 'console', secret: secret('console') };
const machine = ({ id, secret: clientSecret }: ClientCredentials) => ({
  client_id: id,
  client_secret: clientSecret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
});

interface TokenAnswer {
  readonly status: number;
  readonly body: { access_token?: string; scope?: string; error?: string; error_description?: string; token_type?: string };
}

/** Until the clock's second moves on: tokens issued in the second of a revocation count as issued before it. */
async function nextSecond(): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  while (Math.floor(Date.now() / 1000) <= now) await new Promise((done) => setTimeout(done, 50));
}

describe('e2e: APIs and operator grants (client_credentials, privileged APIs, introspection)', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;
  /** The settings' own variables (APIs, clients), for another instance on the same store. */
  let settingsEnv: Record<string, string>;
  const dir = testDir();
  let admin: string;
  let feed: string;

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    const settings = {
      redisUrl: redis.url,
      dir,
      port,
      env: {
        REGISTRATION_OPEN: 'true',
        RESOURCE_SERVERS: JSON.stringify([
          // The operator (mistakenly) names a public client as an introspector too: it proves nothing.
          { identifier: API, scopes: ['read', 'write', 'delete'], format: 'jwt', grants: [{ client_id: RS.id, introspect: true }, { client_id: 'spa', introspect: true }] },
          { identifier: OPAQUE_API, scopes: ['read'], format: 'opaque' },
        ]),
        CLIENTS: JSON.stringify([
          machine(SERVICE),
          machine(OTHER),
          machine(RS),
          machine(OPS),
          { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['http://localhost:5173/cb'], grant_types: ['authorization_code'] },
          {
            client_id: CONSOLE.id,
            client_secret: CONSOLE.secret,
            redirect_uris: [REDIRECT],
            grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
            scope: 'openid offline_access admin admin:read revocations read',
          },
        ]),
      },
    };
    env = testEnv(dir, port, settings);
    settingsEnv = settings.env;
    server = await startServer(settings);
    admin = `${server.issuer}/admin`;
    feed = `${server.issuer}/revocations`;
    await server.accounts.create('olga', PASSWORD);
    await server.apis.grant(OPS.id, admin, { scopes: ['admin'] });
    await server.apis.grant(SERVICE.id, API, { scopes: ['read', 'write'] });
    await server.apis.grant(OTHER.id, API, { scopes: ['read'] });
    await server.apis.grant(OTHER.id, OPAQUE_API, { scopes: ['read'] });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  async function token(client: ClientCredentials, params: Record<string, string>): Promise<TokenAnswer> {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic(client) },
      body: new URLSearchParams({ grant_type: 'client_credentials', ...params }),
    });
    return { status: response.status, body: (await response.json()) as TokenAnswer['body'] };
  }
  function assertRefused(answer: TokenAnswer, error: 'invalid_scope' | 'invalid_target', what: string) {
    assert.equal(answer.status, 400, `${what}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.error, error, what);
    assert.equal(answer.body.access_token, undefined, what);
  }
  const adminCall = (path: string, bearer: string, init: RequestInit = {}) =>
    fetch(`${server.url}/admin${path}`, { ...init, headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}`, ...init.headers } });
  const feedCall = (bearer: string) => fetch(`${server.url}/revocations`, { headers: { authorization: `Bearer ${bearer}` } });
  /**
   * What the server asked Redis while `action` ran, as MONITOR prints it (on the test's own
   * redis-server; a raw socket: ioredis's monitor mode loses its place under load).
   */
  async function redisCommandsDuring<T>(action: () => Promise<T>): Promise<{ result: T; commands: string }> {
    const socket = createConnection(redis.port, '127.0.0.1');
    let seen = '';
    await new Promise<void>((done, fail) => {
      socket.once('error', fail);
      socket.on('data', (chunk) => {
        seen += String(chunk);
        if (seen.startsWith('+OK\r\n')) done();
      });
      socket.write('MONITOR\r\n');
    });
    try {
      const result = await action();
      // Redis wrote each command to the monitor before answering it.
      await new Promise((done) => setImmediate(done));
      return { result, commands: seen.slice('+OK\r\n'.length) };
    } finally {
      socket.destroy();
    }
  }
  const introspect = async (caller: ClientCredentials, value: string) => (await tokenEndpoint(server.url, '/token/introspection', caller, value)).body as Record<string, unknown>;

  describe('self-service apps start with no API scopes', () => {
    it('a dynamically registered app asking for an API and its scopes gets invalid_scope, even with the scopes in its metadata', async () => {
      const registered = await fetch(`${server.url}/reg`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'read write' }),
      });
      assert.equal(registered.status, 201, await registered.clone().text());
      const { client_id: id, client_secret: clientSecret } = (await registered.json()) as { client_id: string; client_secret: string };
      const app = { id, secret: clientSecret };
      assertRefused(await token(app, { resource: API, scope: 'read' }), 'invalid_scope', 'DCR app, one scope');
      assertRefused(await token(app, { resource: API, scope: 'read write' }), 'invalid_scope', 'DCR app, two scopes');
      assertRefused(await token(app, { resource: API }), 'invalid_scope', 'DCR app, the API without scopes');
      assertRefused(await token(app, { resource: OPAQUE_API, scope: 'read' }), 'invalid_scope', 'DCR app, opaque API');
      assertRefused(await token(app, { scope: 'read' }), 'invalid_scope', 'DCR app, an API scope without resource');
      assertRefused(await token(app, { resource: admin, scope: 'admin' }), 'invalid_scope', 'DCR app, admin API');
      assertRefused(await token(app, { resource: feed, scope: 'revocations' }), 'invalid_scope', 'DCR app, the feed');
      assertRefused(await token(app, { resource: 'https://unknown.example.test', scope: 'read' }), 'invalid_target', 'DCR app, unknown API');
      for (const scope of ['admin', 'admin:read', 'revocations']) {
        const privileged = await fetch(`${server.url}/reg`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope }),
        });
        assert.equal(privileged.status, 400, scope);
        assert.match(((await privileged.json()) as { error_description: string }).error_description, /granted only by an operator/);
      }
    });

    it("an app people sign in to, granted an API and the admin API by an operator who is told it cannot use them, cannot give itself client_credentials with RFC 7592 to use them, nor a public one make itself authenticate; an operator's change, or a client without a grant, may (RFC 7592 §2.2)", async () => {
      const registered = await fetch(`${server.url}/reg`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'Notes', redirect_uris: ['https://notes.example.test/callback'] }),
      });
      assert.equal(registered.status, 201, await registered.clone().text());
      const made = (await registered.json()) as { client_id: string; client_secret: string; registration_access_token: string; registration_client_uri: string; grant_types: string[] };
      assert.ok(!made.grant_types.includes('client_credentials'), 'an app people sign in to');
      const app = { id: made.client_id, secret: made.client_secret };
      // Each update that is taken rotates the registration access token (registrationManagement).
      let registrationToken = made.registration_access_token;
      const update = async (grantTypes: string[]) => {
        const answer = await fetch(made.registration_client_uri, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${registrationToken}` },
          body: JSON.stringify({ client_id: made.client_id, client_name: 'Notes', redirect_uris: ['https://notes.example.test/callback'], grant_types: grantTypes }),
        });
        if (answer.status === 200) registrationToken = ((await answer.clone().json()) as { registration_access_token: string }).registration_access_token;
        return answer;
      };
      // `latchkey apis grant` says to stderr that such a client cannot use these scopes (unauthorized_client).
      await server.apis.grant(app.id, API, { scopes: ['read'] });
      await server.apis.grant(app.id, admin, { scopes: ['admin:read'] });
      assert.equal((await token(app, { resource: API, scope: 'read' })).body.error, 'unauthorized_client');
      const gained = await update(['authorization_code', 'refresh_token', 'client_credentials']);
      assert.equal(gained.status, 400, await gained.clone().text());
      const refusal = (await gained.json()) as { error: string; error_description: string };
      assert.equal(refusal.error, 'invalid_client_metadata');
      assert.match(refusal.error_description, /client_credentials.*operator/);
      for (const [resource, scope] of [[API, 'read'], [admin, 'admin:read']] as const) {
        assert.equal((await token(app, { resource, scope })).body.error, 'unauthorized_client', `${resource}: the grant stays unusable`);
      }
      const read = (await (await fetch(made.registration_client_uri, { headers: { authorization: `Bearer ${registrationToken}` } })).json()) as { grant_types: string[] };
      assert.deepEqual(read.grant_types, ['authorization_code', 'refresh_token'], 'nothing was written');
      // Its other changes go on as before.
      assert.equal((await update(['authorization_code'])).status, 200, 'narrowing itself');
      // An operator adds the grant type: then the grant is used.
      const operator = (await token(OPS, { resource: admin, scope: 'admin' })).body.access_token!;
      const changed = await adminCall(`/clients/${encodeURIComponent(app.id)}`, operator, {
        method: 'PUT',
        body: JSON.stringify({ client_name: 'Notes', redirect_uris: ['https://notes.example.test/callback'], grant_types: ['authorization_code', 'client_credentials'] }),
      });
      assert.equal(changed.status, 200, await changed.text());
      assert.equal((await token(app, { resource: API, scope: 'read' })).status, 200, "the operator's change");
      // Without a grant, the grant type is the client's own business, as at registration.
      const other = await fetch(`${server.url}/reg`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: 'Jots', redirect_uris: ['https://jots.example.test/callback'] }),
      });
      const jots = (await other.json()) as { client_id: string; registration_access_token: string; registration_client_uri: string };
      const own = await fetch(jots.registration_client_uri, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${jots.registration_access_token}` },
        body: JSON.stringify({ client_id: jots.client_id, client_name: 'Jots', redirect_uris: ['https://jots.example.test/callback'], grant_types: ['authorization_code', 'client_credentials'] }),
      });
      assert.equal(own.status, 200, `no grant held: taken (${await own.clone().text()})`);
      // A public app named in a grant (only the configuration can: the CLI and the admin API refuse
      // a public client; the store's grant stands for it here) cannot make itself authenticate.
      const spa = (await (
        await fetch(`${server.url}/reg`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_name: 'Sketch', redirect_uris: ['https://sketch.example.test/callback'], token_endpoint_auth_method: 'none' }),
        })
      ).json()) as { client_id: string; registration_access_token: string; registration_client_uri: string };
      await server.apis.grant(spa.client_id, API, { scopes: [], introspect: true });
      const confidential = await fetch(spa.registration_client_uri, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${spa.registration_access_token}` },
        body: JSON.stringify({ client_id: spa.client_id, client_name: 'Sketch', redirect_uris: ['https://sketch.example.test/callback'], token_endpoint_auth_method: 'client_secret_basic' }),
      });
      assert.equal(confidential.status, 400, await confidential.clone().text());
      assert.match(((await confidential.json()) as { error_description: string }).error_description, /^token_endpoint_auth_method: a public client holding an operator/);
      await server.apis.revoke(spa.client_id, API);
      await server.apis.revoke(app.id, API);
      await server.apis.revoke(app.id, admin);
      await nextSecond();
    });

    it('an app registered on the developer page gets invalid_scope for the API, the admin API and the feed', async () => {
      const agent = new Agent();
      let page: Page = await signInSteps(agent, await agent.follow(`${server.issuer}/developer/sign-in`), { username: 'olga', password: PASSWORD, login: 'required' });
      assert.match(page.html, /Your apps/);
      page = await agent.submit(page, '/developer/apps', { name: 'Olga Reports', type: 'web', redirect_uris: 'https://olga.example.test/callback' });
      const id = /id="client-id">([^<]+)</.exec(page.html)?.[1];
      const clientSecret = /id="client-secret">([^<]+)</.exec(page.html)?.[1];
      assert.ok(id && clientSecret, 'the page shows the new client');
      const app = { id, secret: clientSecret };
      assert.equal((await token(app, {})).status, 200, 'the app authenticates and may use client_credentials');
      assertRefused(await token(app, { resource: API, scope: 'read' }), 'invalid_scope', 'developer app, read');
      assertRefused(await token(app, { resource: API, scope: 'write' }), 'invalid_scope', 'developer app, write');
      assertRefused(await token(app, { resource: admin, scope: 'admin' }), 'invalid_scope', 'developer app, admin API');
      assertRefused(await token(app, { resource: feed, scope: 'revocations' }), 'invalid_scope', 'developer app, the feed');
    });
  });

  describe('a granted client gets exactly its grant', () => {
    it('its granted scopes, each and together; anything beyond is refused, never narrowed', async () => {
      const both = await token(SERVICE, { resource: API, scope: 'read write' });
      assert.equal(both.status, 200);
      assert.equal(both.body.scope, 'read write');
      const claims = decodeJwt(both.body.access_token!);
      assert.equal(claims.aud, API);
      assert.equal(claims.scope, 'read write');
      assert.equal((await token(SERVICE, { resource: API, scope: 'read' })).body.scope, 'read');
      assertRefused(await token(SERVICE, { resource: API, scope: 'read delete' }), 'invalid_scope', 'a scope of the API not granted');
      assertRefused(await token(SERVICE, { resource: API, scope: 'admin' }), 'invalid_scope', 'a scope the API does not have');
      assertRefused(await token(SERVICE, { resource: OPAQUE_API, scope: 'read' }), 'invalid_scope', 'another API');
      assertRefused(await token(SERVICE, { resource: admin, scope: 'admin' }), 'invalid_scope', 'the admin API');
      assertRefused(await token(SERVICE, { scope: 'read' }), 'invalid_scope', 'an API scope without resource (no default API)');
      const none = await token(SERVICE, { resource: API });
      assert.equal(none.status, 200);
      assert.equal(decodeJwt(none.body.access_token!).scope, undefined, 'no scope asked, none given');
    });

    it('revoking a grant: the next token request is refused; granting again restores it', async () => {
      await server.apis.grant(OTHER.id, API, { scopes: ['write'] });
      assert.equal((await token(OTHER, { resource: API, scope: 'write' })).status, 200);
      await server.apis.revoke(OTHER.id, API, ['write']);
      assertRefused(await token(OTHER, { resource: API, scope: 'write' }), 'invalid_scope', 'a revoked scope');
      assert.equal((await token(OTHER, { resource: API, scope: 'read' })).status, 200, 'the rest of the grant holds');
      await server.apis.revoke(OTHER.id, API);
      assertRefused(await token(OTHER, { resource: API, scope: 'read' }), 'invalid_scope', 'a revoked grant');
      await server.apis.grant(OTHER.id, API, { scopes: ['read'] });
      assert.equal((await token(OTHER, { resource: API, scope: 'read' })).status, 200);
      // Tokens issued in the second of a revocation count as issued before it: the next tests' start after.
      await nextSecond();
    });
  });

  describe('the admin API and the revocation feed are privileged', () => {
    it('a granted client reaches the admin API; revoking the grant ends access with the token it holds, which a new grant does not revive', async () => {
      const held = (await token(OPS, { resource: admin, scope: 'admin' })).body.access_token!;
      assert.equal((await adminCall('/clients', held)).status, 200);
      await server.apis.revoke(OPS.id, admin);
      assert.equal((await adminCall('/clients', held)).status, 401, 'the grant is checked at every call');
      assertRefused(await token(OPS, { resource: admin, scope: 'admin' }), 'invalid_scope', 'no new admin token');
      await server.apis.grant(OPS.id, admin, { scopes: ['admin:read'] });
      assert.equal((await adminCall('/clients', held)).status, 401, 'the token held across the revocation stays refused (it may be a thief\'s)');
      await nextSecond();
      const reader = (await token(OPS, { resource: admin, scope: 'admin:read' })).body.access_token!;
      assert.equal((await adminCall('/clients', reader)).status, 200, 'admin:read granted: a new token reads');
      assert.equal((await adminCall('/users', reader, { method: 'POST', body: '{"username":"x","password":"xxxxxxxxxx"}' })).status, 403, 'but does not write');
      await server.apis.grant(OPS.id, admin, { scopes: ['admin'] });
      const writer = (await token(OPS, { resource: admin, scope: 'admin' })).body.access_token!;
      await server.apis.revoke(OPS.id, admin, ['admin']);
      assert.equal((await adminCall('/clients', writer)).status, 401, 'a token carrying a scope taken away is refused whole');
      assert.equal((await adminCall('/clients', reader)).status, 200, 'a token within what is still granted works');
      await server.apis.grant(OPS.id, admin, { scopes: ['admin'] });
      await nextSecond();
    });

    it('the feed: only clients granted it; revoking the grant refuses the feed token it holds', async () => {
      assertRefused(await token(RS, { resource: feed, scope: 'revocations' }), 'invalid_scope', 'not granted the feed');
      await server.apis.grant(RS.id, feed, { scopes: ['revocations'] });
      const held = (await token(RS, { resource: feed, scope: 'revocations' })).body.access_token!;
      assert.equal((await feedCall(held)).status, 200);
      await server.apis.revoke(RS.id, feed);
      assert.equal((await feedCall(held)).status, 401);
      await server.apis.grant(RS.id, feed, { scopes: ['revocations'] });
      assert.equal((await feedCall(held)).status, 401, 'a new grant does not revive the token held across the revocation');
      await nextSecond();
      assert.equal((await feedCall((await token(RS, { resource: feed, scope: 'revocations' })).body.access_token!)).status, 200);
    });

    it("a person's tokens through an operator's client with the admin scopes registered never reach the admin API or the feed", async () => {
      // Even with an operator's client_credentials grant for the client itself.
      await server.apis.grant(CONSOLE.id, admin, { scopes: ['admin'] });
      await server.apis.grant(CONSOLE.id, feed, { scopes: ['revocations'] });
      const own = (await token(CONSOLE, { resource: admin, scope: 'admin' })).body.access_token!;
      assert.equal((await adminCall('/clients', own)).status, 200, "the client's own token works (the baseline)");

      const config = await oidc.discovery(new URL(server.issuer), CONSOLE.id, CONSOLE.secret, oidc.ClientSecretBasic(CONSOLE.secret), { execute: [oidc.allowInsecureRequests] });
      for (const resource of [admin, feed]) {
        const agent = new Agent();
        const url = oidc.buildAuthorizationUrl(config, {
          redirect_uri: REDIRECT,
          scope: 'openid admin revocations',
          resource,
          code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
          code_challenge_method: 'S256',
        });
        const answer = await agent.follow(url.href, {}, REDIRECT);
        const returned = new URL(answer.url);
        assert.ok(answer.url.startsWith(REDIRECT), `the authorization request for ${resource} is refused before sign-in`);
        assert.equal(returned.searchParams.get('error'), 'invalid_target', resource);
        assert.equal(returned.searchParams.get('code'), null);
      }

      // A person's tokens without a resource (admin scope in the grant) and for an ordinary API.
      const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'olga', password: PASSWORD, params: { scope: 'openid offline_access admin admin:read revocations', prompt: 'consent' } });
      const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier });
      const forApi = await frontChannel(config, { redirectUri: REDIRECT, username: 'olga', password: PASSWORD, params: { scope: 'openid read', resource: API, prompt: 'consent' } });
      const apiTokens = await oidc.authorizationCodeGrant(config, forApi.callback, { pkceCodeVerifier: forApi.verifier }, { resource: API });
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      for (const [what, bearer] of Object.entries({ 'access token': tokens.access_token, 'API access token': apiTokens.access_token, 'refreshed access token': refreshed.access_token, 'ID token': tokens.id_token!, 'refresh token': tokens.refresh_token! })) {
        const adminStatus = (await adminCall('/users', bearer, { method: 'POST', body: '{"username":"mallory","password":"mallory password"}' })).status;
        assert.ok([401, 403].includes(adminStatus), `${what} at the admin API: ${adminStatus}`);
        assert.ok([401, 403].includes((await adminCall('/clients', bearer)).status), `${what} reads nothing`);
        const feedStatus = (await feedCall(bearer)).status;
        assert.ok([401, 403].includes(feedStatus), `${what} at the feed: ${feedStatus}`);
      }
      assert.equal(await server.accounts.findByUsername('mallory'), undefined);
      // A refresh asking for the privileged APIs is refused without spending the token.
      for (const resource of [admin, feed]) {
        await assert.rejects(oidc.refreshTokenGrant(config, refreshed.refresh_token!, { resource }), (error: Error) => error instanceof oidc.ResponseBodyError && error.error === 'invalid_target');
      }
    });
  });

  describe('introspection (RFC 7662 §4)', () => {
    it("client A learns nothing about client B's tokens, opaque or JWT; the API's introspector and the owner do", async () => {
      const jwt = (await token(OTHER, { resource: API, scope: 'read' })).body.access_token!;
      const opaque = (await token(OTHER, { resource: OPAQUE_API, scope: 'read' })).body.access_token!;
      assert.throws(() => decodeJwt(opaque));
      for (const [what, value] of Object.entries({ jwt, opaque })) {
        assert.deepEqual(await introspect(SERVICE, value), { active: false }, `another client, ${what}`);
        assert.deepEqual(await introspect(OPS, value), { active: false }, `an admin client, ${what}`);
        assert.equal((await introspect(OTHER, value)).active, true, `the owner, ${what}`);
      }
      const seen = await introspect(RS, jwt);
      assert.equal(seen.active, true, 'the client an operator made the API introspector');
      assert.equal(seen.client_id, OTHER.id);
      assert.deepEqual(await introspect(RS, opaque), { active: false }, "the introspector of one API learns nothing of another API's tokens");
      const asPublic = await fetch(`${server.url}/token/introspection`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ token: jwt, client_id: 'spa' }),
      });
      assert.deepEqual(await asPublic.json(), { active: false }, 'a public client named as introspector: its client_id is not authentication');
    });

    it("revoking a client's grant makes its tokens under that grant inactive at introspection at once (opaque and JWT)", async () => {
      await server.apis.grant(OTHER.id, API, { scopes: ['write'] });
      const jwt = (await token(OTHER, { resource: API, scope: 'read write' })).body.access_token!;
      const readOnly = (await token(OTHER, { resource: API, scope: 'read' })).body.access_token!;
      const opaque = (await token(OTHER, { resource: OPAQUE_API, scope: 'read' })).body.access_token!;
      assert.equal((await introspect(RS, jwt)).active, true);
      await server.apis.revoke(OTHER.id, API, ['write']);
      assert.deepEqual(await introspect(RS, jwt), { active: false }, 'a token carrying a revoked scope');
      assert.deepEqual(await introspect(OTHER, jwt), { active: false }, '... for its own client too');
      assert.equal((await introspect(RS, readOnly)).active, true, 'a token within what is still granted');
      assert.equal((await introspect(OTHER, opaque)).active, true);
      await server.apis.revoke(OTHER.id, OPAQUE_API);
      assert.deepEqual(await introspect(OTHER, opaque), { active: false }, 'an opaque token whose grant is revoked');
      await server.apis.grant(OTHER.id, OPAQUE_API, { scopes: ['read'] });
    });

    it("a person's tokens: the API's introspector sees the access token for its API; other clients and tokens without that audience stay inactive", async () => {
      const config = await oidc.discovery(new URL(server.issuer), CONSOLE.id, CONSOLE.secret, oidc.ClientSecretBasic(CONSOLE.secret), { execute: [oidc.allowInsecureRequests] });
      const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'olga', password: PASSWORD, params: { scope: 'openid offline_access read', resource: API, prompt: 'consent' } });
      const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API });
      const seen = await introspect(RS, tokens.access_token);
      assert.equal(seen.active, true);
      assert.equal(seen.sub, server.accounts && (await server.accounts.findByUsername('olga'))!.sub);
      assert.deepEqual(await introspect(SERVICE, tokens.access_token), { active: false });
      assert.deepEqual(await introspect(RS, tokens.refresh_token!), { active: false }, 'a refresh token has no audience: only its client learns of it');
      assert.equal((await introspect(CONSOLE, tokens.refresh_token!)).active, true);
    });
    it("a person's API token at userinfo: 401 invalid_token with the Bearer challenge, saying which audience it is for and which token userinfo takes; an ID token there keeps the plain refusal", async () => {
      const config = await oidc.discovery(new URL(server.issuer), CONSOLE.id, CONSOLE.secret, oidc.ClientSecretBasic(CONSOLE.secret), { execute: [oidc.allowInsecureRequests] });
      const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'olga', password: PASSWORD, params: { scope: 'openid read', resource: API, prompt: 'consent' } });
      const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API });
      const userinfo = (token: string) => fetch(config.serverMetadata().userinfo_endpoint!, { headers: { authorization: `Bearer ${token}` } });
      const expected = `this access token is for ${API}; userinfo takes a token asked for without resource`;
      const refused = await userinfo(tokens.access_token);
      assert.equal(refused.status, 401);
      assert.deepEqual(await refused.json(), { error: 'invalid_token', error_description: expected });
      assert.equal(refused.headers.get('www-authenticate'), `Bearer realm="${server.issuer}", error="invalid_token", error_description="${expected}"`);
      // What a library reports of it (openid-client reads the challenge).
      await assert.rejects(oidc.fetchUserInfo(config, tokens.access_token, oidc.skipSubjectCheck), (error: oidc.WWWAuthenticateChallengeError) => error.cause[0]?.parameters.error_description === expected);
      // Signed by us, but not an access token: no audience named.
      const idToken = await userinfo(tokens.id_token!);
      assert.equal(idToken.status, 401);
      assert.deepEqual(await idToken.json(), { error: 'invalid_token', error_description: 'invalid token provided' });
      // A client's own opaque token (client_credentials) is named so too (fifth fresh-eyes passes: it got the bare refusal); one we do not hold keeps it.
      const own = (await token(OTHER, { resource: OPAQUE_API, scope: 'read' })).body.access_token!;
      const ownExpected = `this access token is a client's own (client_credentials) for ${OPAQUE_API}; userinfo takes a token a person's sign-in gave`;
      const refusedOwn = await userinfo(own);
      assert.equal(refusedOwn.status, 401);
      assert.deepEqual(await refusedOwn.json(), { error: 'invalid_token', error_description: ownExpected });
      assert.equal(refusedOwn.headers.get('www-authenticate'), `Bearer realm="${server.issuer}", error="invalid_token", error_description="${ownExpected}"`);
      assert.deepEqual(await (await userinfo(`${own.slice(0, -4)}AAAA`)).json(), { error: 'invalid_token', error_description: 'invalid token provided' });
    });

    it("a public client learns nothing at introspection, not even of its own tokens: whoever holds one of its tokens (leaked in a log, say) is not told whose it is or what it is for, by naming its public client_id (RFC 7662 §2.1, §4); discovery lists no `none` for introspection, and revocation still takes it (RFC 7009 §5)", async () => {
      const config = await oidc.discovery(new URL(server.issuer), 'spa', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      const flow = await frontChannel(config, { redirectUri: 'http://localhost:5173/cb', username: 'olga', password: PASSWORD, params: { scope: 'openid read', resource: API, prompt: 'consent' } });
      const forApi = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API });
      const again = await frontChannel(config, { redirectUri: 'http://localhost:5173/cb', username: 'olga', password: PASSWORD, params: { scope: 'openid' }, agent: flow.agent });
      const forUserinfo = await oidc.authorizationCodeGrant(config, again.callback, { pkceCodeVerifier: again.verifier });
      const asPublic = async (value: string) => {
        const response = await fetch(`${server.url}/token/introspection`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams({ token: value, client_id: 'spa' }) });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      };
      for (const [what, value] of Object.entries({ jwt: forApi.access_token, opaque: forUserinfo.access_token })) {
        assert.deepEqual(await asPublic(value), { status: 200, body: { active: false } }, what);
      }
      // The API's own introspector, which authenticates, is told.
      assert.equal((await introspect(RS, forApi.access_token)).active, true);
      const discovery = (await (await fetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<string, string[]>;
      assert.ok(!discovery.introspection_endpoint_auth_methods_supported!.includes('none'));
      assert.ok(discovery.revocation_endpoint_auth_methods_supported!.includes('none'));
      await oidc.tokenRevocation(config, forUserinfo.access_token);
      assert.equal((await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${forUserinfo.access_token}` } })).status, 401, 'revoked by its public client');
    });
  });

  describe('runtime APIs: the CLI and the admin API, seen by the server at once', () => {
    const ledger = 'https://ledger-two.example.test';

    it('latchkey apis add / grant --default / revoke / remove, and a default API for client_credentials without resource', async () => {
      const run = async (...args: string[]) => {
        const result = await latchkey(env, ['apis', ...args]);
        assert.equal(result.status, 0, result.stderr);
        return result.stdout;
      };
      const added = JSON.parse(await run('add', ledger, '--scope', 'entries:read', '--scope', 'entries:write', '--access-token-ttl', '300')) as { identifier: string; scopes: string[] };
      assert.deepEqual(added.scopes, ['entries:read', 'entries:write']);
      assertRefused(await token(SERVICE, { resource: ledger, scope: 'entries:read' }), 'invalid_scope', 'added, not granted');
      await run('grant', '--client', SERVICE.id, '--api', ledger, '--scope', 'entries:read', '--default');

      // The server keeps grants in memory, invalidated by Redis: the CLI's write reached it, and
      // from the second request on the grant is not read from Redis (so the revocation below
      // meets a cached grant).
      const grantsRead = (commands: string) => commands.includes(`api-grants:${SERVICE.id}"`);
      const { result: explicit, commands: first } = await redisCommandsDuring(() => token(SERVICE, { resource: ledger, scope: 'entries:read' }));
      assert.equal(explicit.status, 200);
      assert.equal(grantsRead(first), true, 'read once after the write');
      const { result: again, commands: second } = await redisCommandsDuring(() => token(SERVICE, { resource: ledger, scope: 'entries:read' }));
      assert.equal(again.status, 200);
      assert.equal(grantsRead(second), false, `then kept:\n${second}`);
      const defaulted = await token(SERVICE, { scope: 'entries:read' });
      assert.equal(defaulted.status, 200, JSON.stringify(defaulted.body));
      const claims = decodeJwt(defaulted.body.access_token!);
      assert.equal(claims.aud, ledger, 'without resource: a JWT for the default API');
      assert.equal(claims.scope, 'entries:read');
      assert.equal(claims.exp! - claims.iat!, 300);
      assertRefused(await token(SERVICE, { scope: 'entries:write' }), 'invalid_scope', 'the default API, a scope not granted');

      const listed = JSON.parse(await run('list')) as { identifier: string; source: string }[];
      assert.deepEqual(Object.fromEntries(listed.map((api) => [api.identifier, api.source])), { [admin]: 'builtin', [feed]: 'builtin', [API]: 'config', [OPAQUE_API]: 'config', [ledger]: 'store' });

      await run('revoke', '--client', SERVICE.id, '--api', ledger);
      assertRefused(await token(SERVICE, { resource: ledger, scope: 'entries:read' }), 'invalid_scope', 'revoked from the CLI');
      const fallback = await token(SERVICE, {});
      assert.equal(fallback.status, 200);
      assert.equal(fallback.body.access_token!.split('.').length, 1, 'no default any more: an opaque token with no audience');

      await server.apis.grant(SERVICE.id, ledger, { scopes: ['entries:read'] });
      await run('remove', ledger);
      assertRefused(await token(SERVICE, { resource: ledger, scope: 'entries:read' }), 'invalid_target', 'removed API');
      await server.apis.add({ identifier: ledger, scopes: ['entries:read'] });
      assertRefused(await token(SERVICE, { resource: ledger, scope: 'entries:read' }), 'invalid_scope', 're-added: the old grants are gone');
      await server.apis.remove(ledger);
    });

    it('the CLI refuses a grant to an unknown client, an API lifetime beyond the bound, a reserved scope name, and removing a configured API, in one line', async () => {
      const runs = [
        ['grant', '--client', 'nobody', '--api', API, '--scope', 'read'],
        ['add', 'https://long.example.test', '--access-token-ttl', '86400'],
        // A scope named like an OpenID Connect scope would mean two things (a person's consent to their email address, the API's email).
        ['add', 'https://mail.example.test', '--scope', 'mail:read', '--scope', 'email'],
        ['remove', API],
      ];
      for (const args of runs) {
        const result = await latchkey(env, ['apis', ...args]);
        assert.equal(result.status, 1, args.join(' '));
        // One line of error, after the line that says which store the CLI acted on.
        const errors = result.stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
        assert.equal(errors.length, 1, `${args.join(' ')}: ${result.stderr}`);
        assert.doesNotMatch(errors[0]!, /--help/, 'not a usage error');
      }
    });

    it('the CLI names the APIs there are when granting at an unknown one, and refuses to show the grants of an unknown client', async () => {
      const oneError = async (args: string[]) => {
        const result = await latchkey(env, ['apis', ...args]);
        assert.equal(result.status, 1, args.join(' '));
        const errors = result.stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
        assert.equal(errors.length, 1, result.stderr);
        return errors[0]!;
      };
      // The resource-server example of docs/resource-servers.md, copied with its example issuer.
      const unknownApi = await oneError(['grant', '--client', SERVICE.id, '--api', 'https://id.example.com/revocations', '--scope', 'revocations']);
      assert.equal(unknownApi, `latchkey: no API https://id.example.com/revocations; the APIs are ${[admin, feed, API, OPAQUE_API].sort((a, b) => a.localeCompare(b)).join(', ')}`);
      assert.equal(await oneError(['grants', '--client', 'nobody']), 'latchkey: no client "nobody" (and no grants held by it)');
      const held = await latchkey(env, ['apis', 'grants', '--client', SERVICE.id]);
      assert.equal(held.status, 0, held.stderr);
      assert.ok(Object.keys(JSON.parse(held.stdout) as object).length > 0);
    });

    it('the admin API: add an API, grant and revoke through it; bad input is a 4xx', async () => {
      const ops = (await token(OPS, { resource: admin, scope: 'admin' })).body.access_token!;
      const encoded = encodeURIComponent(ledger);
      const created = await adminCall('/apis', ops, { method: 'POST', body: JSON.stringify({ identifier: ledger, scopes: ['entries:read'], format: 'opaque' }) });
      assert.equal(created.status, 201, await created.clone().text());
      assert.equal((await adminCall('/apis', ops, { method: 'POST', body: JSON.stringify({ identifier: ledger }) })).status, 409);
      assert.equal((await adminCall('/apis', ops, { method: 'POST', body: JSON.stringify({ identifier: 'https://x.example.test', accessTokenTTL: 999999 }) })).status, 400);
      assert.equal((await adminCall('/apis', ops, { method: 'POST', body: '[]' })).status, 400);

      const put = await adminCall(`/clients/${SERVICE.id}/grants/${encoded}`, ops, { method: 'PUT', body: JSON.stringify({ scopes: ['entries:read'] }) });
      assert.equal(put.status, 200, await put.clone().text());
      assert.deepEqual(((await (await adminCall(`/clients/${SERVICE.id}/grants`, ops)).json()) as Record<string, unknown>)[ledger], { scopes: ['entries:read'] });
      const issued = await token(SERVICE, { resource: ledger, scope: 'entries:read' });
      assert.equal(issued.status, 200);
      assert.equal((await introspect(SERVICE, issued.body.access_token!)).aud, ledger);

      assert.equal((await adminCall(`/clients/${SERVICE.id}/grants/${encoded}`, ops, { method: 'PUT', body: JSON.stringify({ scopes: ['entries:write'] }) })).status, 400, 'a scope the API lacks');
      assert.equal((await adminCall(`/clients/nobody/grants/${encoded}`, ops, { method: 'PUT', body: JSON.stringify({ scopes: [] }) })).status, 404);
      assert.equal((await adminCall(`/clients/spa/grants/${encoded}`, ops, { method: 'PUT', body: JSON.stringify({ scopes: ['entries:read'] }) })).status, 400, 'a public client holds no grant');
      assert.equal((await adminCall(`/clients/${SERVICE.id}/grants/${encodeURIComponent('https://nowhere.example.test')}`, ops, { method: 'PUT', body: JSON.stringify({ scopes: [] }) })).status, 404);
      assert.equal((await adminCall(`/clients/${SERVICE.id}/grants/${encoded}`, ops, { method: 'PUT', body: JSON.stringify({ scopes: 'entries:read' }) })).status, 400);

      assert.equal((await adminCall(`/clients/${SERVICE.id}/grants/${encoded}`, ops, { method: 'DELETE' })).status, 204);
      assertRefused(await token(SERVICE, { resource: ledger, scope: 'entries:read' }), 'invalid_scope', 'revoked through the admin API');
      assert.equal((await adminCall(`/apis/${encoded}`, ops, { method: 'DELETE' })).status, 204);
      assert.equal((await adminCall(`/apis/${encodeURIComponent(API)}`, ops, { method: 'DELETE' })).status, 409, 'a configured API stays');

      const reader = (await token(OPS, { resource: admin, scope: 'admin' })).body.access_token!;
      await server.apis.revoke(OPS.id, admin);
      assert.equal((await adminCall('/apis', reader, { method: 'POST', body: JSON.stringify({ identifier: 'https://sneaky.example.test' }) })).status, 401);
      await server.apis.grant(OPS.id, admin, { scopes: ['admin'] });
      await nextSecond();
    });
  });

  describe('latchkey/resource-server with a granted client', () => {
    it('reads the feed with the operator-granted client and accepts a granted token; without the feed grant it does not start', async () => {
      await server.apis.grant(RS.id, feed, { scopes: ['revocations'] });
      const helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret });
      try {
        const granted = (await token(SERVICE, { resource: API, scope: 'write' })).body.access_token!;
        assert.equal((await helper.verify(`Bearer ${granted}`, { scopes: ['write'] })).client_id, SERVICE.id);
        const readOnly = (await token(OTHER, { resource: API, scope: 'read' })).body.access_token!;
        await assert.rejects(helper.verify(readOnly, { scopes: ['write'] }), (error: Error) => error instanceof TokenRejected && error.code === 'insufficient_scope');
      } finally {
        helper.close();
      }
      await assert.rejects(createResourceServer({ issuer: server.issuer, audience: API, clientId: OTHER.id, clientSecret: OTHER.secret }), /invalid_scope|feed/);
    });

    it('started before Latchkey answers (docker compose, a reboot), it waits for it and then starts, instead of failing its start', async () => {
      const port = await freePort();
      // From a directory of its own: the CLI below then acts for this instance's issuer, not the running one's.
      const laterEnv = testEnv(testDir(), port, { redisUrl: redis.url, env: settingsEnv });
      // The feed of the instance to come, granted before it answers (the CLI, on the same store).
      const granted = await latchkey(laterEnv, ['apis', 'grant', '--client', RS.id, '--api', `${laterEnv.ISSUER}/revocations`, '--scope', 'revocations']);
      assert.equal(granted.status, 0, granted.stderr);
      const tries: Error[] = [];
      const pending = createResourceServer({ issuer: `http://localhost:${port}`, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: (error) => tries.push(error) });
      // It found nothing there, and waits (before the fix its start failed at once).
      await Promise.race([
        pending.then(() => undefined, () => undefined),
        (async () => {
          while (!tries.length) await new Promise((resolve) => setTimeout(resolve, 100));
        })(),
      ]);
      assert.equal(tries.length, 1, 'it waits for Latchkey, saying so, rather than failing its start');
      // Another instance, on the same store, comes up at the issuer's address.
      const later = await serveProcess(laterEnv);
      try {
        const helper = await pending;
        try {
          const issued = await fetch(`${later.url}/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(SERVICE) },
            body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
          });
          const { access_token: granted } = (await issued.json()) as { access_token: string };
          assert.equal((await helper.verify(`Bearer ${granted}`, { scopes: ['read'] })).client_id, SERVICE.id);
        } finally {
          helper.close();
        }
      } finally {
        await later.stop();
      }
      assert.match(tries[0]!.message, /^discovery: cannot reach .*; trying again in 1 s$/);
    });
  });
});
