/**
 * Deleting a client ends everything it held, whichever way it is removed: RFC 7592 DELETE with its
 * registration access token, the admin API, the developer page, the CLI. The attack: keep using
 * what the client was given after it is gone, a person's JWT access token and refresh token, the
 * client's own client_credentials JWT and opaque token, and (for an id an operator may reuse) the
 * same tokens once a client with the same id exists again.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { frontChannel } from '../helpers/front-channel.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { API, basic, clientCredentialsToken, grantFeed, introspect, machineClient, OPAQUE_API, RESOURCE_SERVERS, type ClientCredentials } from '../helpers/tokens.js';
import type { Clients } from '../../src/registration/clients.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';

const REDIRECT = 'https://app.example.test/callback';
const PASSWORD = 'client deletion test password';
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'];

interface Armed {
  readonly client: ClientCredentials;
  readonly config: oidc.Configuration;
  readonly person: { access_token: string; refresh_token: string };
  readonly ownJwt: string;
  readonly ownOpaque: string;
}

interface FeedEntry {
  readonly type: string;
  readonly client_id?: string;
  readonly revoked_at?: number;
}

describe('e2e: deleting a client ends its grants and tokens, whichever way it is removed', function () {
  this.timeout(120_000);
  const dir = testDir();
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;
  let helper: ResourceServer;
  let clients: Clients;
  let alice: string;

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    const CLIENTS = JSON.stringify([machineClient(RS), machineClient(OPS, { scope: 'admin' })]);
    const settings = { redisUrl: redis.url, dir, port, env: { CLIENTS, RESOURCE_SERVERS } };
    env = testEnv(dir, port, settings);
    server = await startServer(settings);
    await grantFeed(server, RS.id);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    alice = (await server.accounts.create('alice', PASSWORD)).sub;
    clients = server.clients;
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret });
  });
  after(async () => {
    helper?.close();
    await server?.stop();
    await redis?.stop();
  });

  const metadata = (id: string, secret: string, extra: Record<string, unknown> = {}) => ({
    client_id: id,
    client_secret: secret,
    redirect_uris: [REDIRECT],
    grant_types: GRANT_TYPES,
    response_types: ['code'],
    ...extra,
  });

  /** What an attacker holding the client's tokens has: a person's tokens and the client's own. */
  async function arm(client: ClientCredentials): Promise<Armed> {
    // An operator grants the client its own API access (client_credentials), as a service would have.
    await server.apis.grant(client.id, API, { scopes: ['read'] });
    await server.apis.grant(client.id, OPAQUE_API, { scopes: ['read'] });
    const config = await oidc.discovery(new URL(server.issuer), client.id, client.secret, oidc.ClientSecretBasic(client.secret), {
      execute: [oidc.allowInsecureRequests],
    });
    const flow = await frontChannel(config, {
      redirectUri: REDIRECT,
      username: 'alice',
      password: PASSWORD,
      params: { scope: 'openid offline_access read', resource: API, prompt: 'consent' },
    });
    const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API });
    const armed = {
      client,
      config,
      person: { access_token: tokens.access_token, refresh_token: tokens.refresh_token! },
      ownJwt: await clientCredentialsToken(server.url, client),
      ownOpaque: await clientCredentialsToken(server.url, client, OPAQUE_API, 'read'),
    };
    // The API's introspector sees what is meant for its API; a refresh token only its own client may introspect (RFC 7662 §4).
    for (const token of [armed.person.access_token, armed.ownJwt, armed.ownOpaque]) {
      assert.equal((await introspect(server.url, RS, token)).active, true, 'live before the deletion');
    }
    assert.equal((await introspect(server.url, client, armed.person.refresh_token)).active, true, 'live before the deletion');
    assert.equal((await helper.verify(armed.person.access_token)).client_id, client.id);
    assert.equal((await helper.verify(armed.ownJwt)).client_id, client.id);
    return armed;
  }

  async function feed(): Promise<FeedEntry[]> {
    const token = await clientCredentialsToken(server.url, RS, `${server.issuer}/revocations`, 'revocations');
    const response = await fetch(`${server.url}/revocations`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200);
    return ((await response.json()) as { entries: FeedEntry[] }).entries;
  }

  /** The refresh token at the token endpoint, with the client's own credentials: the error code. */
  async function refreshError(armed: Armed): Promise<string | undefined> {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(armed.client) },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: armed.person.refresh_token, resource: API }),
    });
    assert.notEqual(response.status, 200, 'the refresh token still works');
    return ((await response.json()) as { error?: string }).error;
  }

  /** Every token is dead: at introspection (asked by another, authorised client), at the helper, at the token endpoint. */
  async function assertEnded(armed: Armed) {
    const { person, ownJwt, ownOpaque } = armed;
    for (const [name, token] of Object.entries({ 'person JWT': person.access_token, 'refresh token': person.refresh_token, 'own JWT': ownJwt, 'own opaque': ownOpaque })) {
      assert.deepEqual(await introspect(server.url, RS, token), { active: false }, name);
    }
    for (const token of [person.access_token, ownJwt]) {
      await eventually(() => assert.rejects(helper.verify(token), (error: Error) => error instanceof TokenRejected && /revoked/.test(error.message)));
    }
  }

  /**
   * After the deletion: everything ended, the feed says so; then a client made again with the same
   * id (an operator may reuse one) does not bring the old tokens back, and its new tokens work.
   */
  async function assertDeleted(armed: Armed, extra: Record<string, unknown> = {}) {
    const { client } = armed;
    await assertEnded(armed);
    assert.equal(await refreshError(armed), 'invalid_client', 'the client is gone');
    const entry = (await feed()).findLast((line) => line.type === 'client' && line.client_id === client.id);
    assert.ok(entry?.revoked_at, 'the feed carries the deletion');

    await clients.add(metadata(client.id, client.secret, extra));
    assert.deepEqual(await server.apis.grantsOf(client.id), {}, 'the operator grants went with the client');
    // The person's consent went too: the client made with the id (maybe another app) asks again.
    const agent = new Agent();
    const { page } = await startAuthorization(agent, armed.config, REDIRECT, { scope: 'openid offline_access read', resource: API });
    const shown = await signInSteps(agent, page, { username: 'alice', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(shown), `the deleted client's remembered consent let the new one skip the consent page: ${shown.status} ${shown.url}`);
    assert.equal(await refreshError(armed), 'invalid_grant', 'the old refresh token does not come back with the id');
    await assertEnded(armed);
    // Tokens issued in the second of the deletion count as issued before it.
    while (Math.floor(Date.now() / 1000) <= entry.revoked_at) await new Promise((done) => setTimeout(done, 50));
    await server.apis.grant(client.id, API, { scopes: ['read'] });
    await server.apis.grant(client.id, OPAQUE_API, { scopes: ['read'] });
    const fresh = await clientCredentialsToken(server.url, client);
    assert.ok(decodeJwt(fresh).iat! > entry.revoked_at);
    assert.equal((await introspect(server.url, RS, fresh)).active, true, 'a new token of the new client works');
    assert.equal((await helper.verify(fresh)).client_id, client.id);
    assert.equal((await introspect(server.url, RS, await clientCredentialsToken(server.url, client, OPAQUE_API, 'read'))).active, true);
  }

  it('RFC 7592 DELETE with its registration access token; the token does not manage a client made again with the id', async () => {
    const registered = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await new server.provider.InitialAccessToken({ expiresIn: 600 }).save()}` },
      body: JSON.stringify({ redirect_uris: [REDIRECT], grant_types: GRANT_TYPES, response_types: ['code'] }),
    });
    assert.equal(registered.status, 201, await registered.clone().text());
    const body = (await registered.json()) as { client_id: string; client_secret: string; registration_access_token: string; registration_client_uri: string };
    const armed = await arm({ id: body.client_id, secret: body.client_secret });

    const manage = (init: RequestInit = {}) =>
      fetch(body.registration_client_uri, { ...init, headers: { authorization: `Bearer ${body.registration_access_token}` } });
    assert.equal((await manage({ method: 'DELETE' })).status, 204);
    await assertDeleted(armed);
    assert.equal((await manage()).status, 401, 'the registration access token died with its client');
  });

  it('the admin API: DELETE /admin/clients/:id', async () => {
    const client = { id: 'deleted-by-admin', secret: 'deleted-by-admin-secret-with-plenty-of-entropy-01' };
    await clients.add(metadata(client.id, client.secret));
    const armed = await arm(client);
    const adminToken = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const removed = await fetch(`${server.url}/admin/clients/${client.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(removed.status, 204);
    await assertDeleted(armed);
  });

  it('a self-registered client deleted by an operator: its registration access token does not manage a client made again with the id', async () => {
    const registered = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await new server.provider.InitialAccessToken({ expiresIn: 600 }).save()}` },
      body: JSON.stringify({ redirect_uris: [REDIRECT], grant_types: GRANT_TYPES, response_types: ['code'] }),
    });
    const body = (await registered.json()) as { client_id: string; client_secret: string; registration_access_token: string; registration_client_uri: string };
    const manage = () => fetch(body.registration_client_uri, { headers: { authorization: `Bearer ${body.registration_access_token}` } });
    assert.equal((await manage()).status, 200);
    const adminToken = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const removed = await fetch(`${server.url}/admin/clients/${body.client_id}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(removed.status, 204);
    await clients.add(metadata(body.client_id, 'a-new-secret-for-the-same-id-with-plenty-of-entropy'));
    assert.equal((await manage()).status, 401);
  });

  it("a removal that fails before the client's registration access tokens are ended leaves the client there, to remove again, which ends them", async () => {
    // The store refuses the index of registration access tokens (oidc:rat:…) to this connection only.
    const raw = new Redis(redis.url);
    const prefix = server.config.redis.keyPrefix;
    const spelled = 'oidc:rat:';
    const allowed = [...spelled].map((char, at) => `~${prefix}${spelled.slice(0, at)}[^${char}]*`);
    await raw.call('ACL', 'SETUSER', 'norat', 'on', '>norat-password', ...allowed, '&*', '+@all');
    raw.disconnect();
    const failing = { ...env, REDIS_URL: `redis://norat:norat-password@127.0.0.1:${redis.port}` };

    const registered = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await new server.provider.InitialAccessToken({ expiresIn: 600 }).save()}` },
      body: JSON.stringify({ redirect_uris: [REDIRECT], grant_types: GRANT_TYPES, response_types: ['code'] }),
    });
    const body = (await registered.json()) as { client_id: string; registration_access_token: string; registration_client_uri: string };
    const manage = () => fetch(body.registration_client_uri, { headers: { authorization: `Bearer ${body.registration_access_token}` } });
    assert.notEqual((await latchkey(failing, ['clients', 'remove', body.client_id])).status, 0, 'the removal fails half-way');
    const again = await latchkey(env, ['clients', 'remove', body.client_id]);
    assert.equal(again.status, 0, `removed again: ${again.stderr}`);
    await clients.add(metadata(body.client_id, 'a-new-secret-for-the-same-id-with-plenty-of-entropy'));
    assert.equal((await manage()).status, 401, 'the registration access token manages the client made again with the id');
  });

  it('the developer page: its owner deletes the app', async () => {
    const client = { id: 'app-deleted-on-the-page', secret: 'app-deleted-on-the-page-secret-with-entropy-0123' };
    await clients.add(metadata(client.id, client.secret, { owner: alice }));
    const armed = await arm(client);

    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(`${server.issuer}/developer/sign-in`), { username: 'alice', password: PASSWORD });
    assert.match(page.html, new RegExp(client.id), 'the app is listed on its owner\'s page');
    const after = await agent.submit(page, `/developer/apps/${client.id}/delete`, {});
    assert.equal(after.status, 200);
    assert.doesNotMatch(after.html, new RegExp(client.id), 'gone from the page');
    await assertDeleted(armed, { owner: alice });
  });

  it('the CLI: latchkey clients remove', async () => {
    const client = { id: 'deleted-by-cli', secret: 'deleted-by-cli-secret-with-plenty-of-entropy-0123' };
    await clients.add(metadata(client.id, client.secret));
    const armed = await arm(client);
    const run = await latchkey(env, ['clients', 'remove', client.id]);
    assert.equal(run.status, 0, run.stderr);
    await assertDeleted(armed);
  });

  it("another client's tokens are untouched by a deletion", async () => {
    const bystander = { id: 'bystander', secret: 'bystander-secret-with-plenty-of-entropy-0123456789' };
    await clients.add(metadata(bystander.id, bystander.secret));
    const armed = await arm(bystander);
    const doomed = { id: 'doomed', secret: 'doomed-secret-with-plenty-of-entropy-0123456789ab' };
    await clients.add(metadata(doomed.id, doomed.secret));
    await clients.remove(doomed.id);
    for (const token of [armed.person.access_token, armed.ownJwt, armed.ownOpaque]) {
      assert.equal((await introspect(server.url, RS, token)).active, true);
    }
    assert.equal((await introspect(server.url, bystander, armed.person.refresh_token)).active, true);
    await helper.sync();
    await helper.verify(armed.ownJwt);
    const refreshed = await oidc.refreshTokenGrant(armed.config, armed.person.refresh_token, { resource: API });
    assert.ok(refreshed.access_token);
    // The token endpoint with the deleted client's secret: it is gone.
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(doomed) },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
    });
    assert.equal(response.status, 401);
  });
});
