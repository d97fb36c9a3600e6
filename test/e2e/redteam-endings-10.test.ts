/**
 * Red team, tenth endings pass (docs/security-passes.md, "Looked at in the tenth endings pass").
 *
 * A client defined in the configuration (CLIENTS) and changed by editing it and restarting went
 * through no write, so it ended less than the same change made through the admin API, CLI or RFC
 * 7592: narrowed, its people's JWTs carrying the scope taken were accepted by an API following the
 * feed; made public, its people's access tokens lived on and their consents stayed; removed, its
 * JWTs lived on at such an API, and put back, its refresh tokens refreshed and nobody was asked
 * again; its secret replaced, the tokens it got for itself stayed active. The first start with the
 * new configuration now ends what the write would (client-endings.ts configuredClientsChanged), once.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent } from '../helpers/agent.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { acceptedBy, API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const PASSWORD = 'tenth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const ROTATED = { id: 'machine', secret: 'machine-client-secret-rotated-with-entropy-456789' };
const SECRET = 'web-client-secret-with-plenty-of-entropy-0123456789';
const web = (id: string, extra: Record<string, unknown> = {}) => ({
  client_id: id,
  client_secret: SECRET,
  redirect_uris: [REDIRECT],
  grant_types: ['authorization_code', 'refresh_token'],
  scope: 'openid offline_access read write',
  ...extra,
});
const publicWeb = (id: string) => {
  const { client_secret: _secret, ...rest } = web(id, { token_endpoint_auth_method: 'none' });
  return rest;
};

describe('e2e: red team, tenth endings pass: a configured client changed across a restart ends what the same write ends', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let dir: string;
  let port: number;
  let server: TestServer | undefined;
  let helper: ResourceServer | undefined;
  let other: TestServer | undefined;

  before(async () => {
    redis = await startRedisServer();
    dir = testDir();
    port = await freePort();
  });
  after(async () => {
    helper?.close();
    await other?.stop();
    await server?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** (Re)starts the server with these configured clients, beside the resource server's and the machine's. */
  async function start(clients: Record<string, unknown>[], machine = MACHINE): Promise<TestServer> {
    helper?.close();
    helper = undefined;
    await server?.stop();
    server = await startServer({ redisUrl: redis.url, dir, port, clients: [machineClient(RS), machineClient(machine), ...clients], env: { RESOURCE_SERVERS } });
    return server;
  }

  /** An API following the feed, started now (it reads what is on the list). */
  async function api(): Promise<ResourceServer> {
    helper?.close();
    helper = await createResourceServer({ issuer: server!.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    await helper.sync();
    return helper;
  }

  const confidential = (id: string) => oidc.discovery(new URL(server!.issuer), id, SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  const publicClient = (id: string) => oidc.discovery(new URL(server!.issuer), id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });

  /** A sign-in (consent asked) at `config`'s client in `agent`'s browser: its tokens, for the API (a JWT) or for userinfo (opaque). */
  async function signIn(config: oidc.Configuration, agent: Agent, scope: string, resource?: string) {
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope, prompt: 'consent', ...(resource ? { resource } : {}) });
    const done = await signInSteps(agent, page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT });
    return oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, resource ? { resource } : undefined);
  }

  /** Whether an authorization request without `prompt` in `agent`'s (signed-in) browser is shown the consent page. */
  async function asksConsent(config: oidc.Configuration, agent: Agent, scope: string): Promise<boolean> {
    const { page } = await startAuthorization(agent, config, REDIRECT, { scope });
    const shown = await signInSteps(agent, page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT, consent: 'stop' });
    if (!isConsent(shown)) assert.ok(shown.url.startsWith(REDIRECT), `expected the consent page or a code, got ${shown.status} ${shown.url}`);
    return isConsent(shown);
  }

  const userinfo = async (token: string) => (await fetch(`${server!.url}/me`, { headers: { authorization: `Bearer ${token}` } })).status;
  const refreshStatus = async (clientId: string, refreshToken: string, secret?: string) => {
    const response = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, ...(secret ? { client_secret: secret } : {}) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('narrowed in the configuration (a scope taken from its `scope`), then restarted: its people’s JWTs carrying the scope are refused at latchkey/resource-server, as after the admin API’s PUT; those within what it keeps are not', async () => {
    const started = await start([web('narrowed')]);
    await started.accounts.create('rhea', PASSWORD);
    await grantFeed(started, RS.id);
    const agent = new Agent();
    const config = await confidential('narrowed');
    const kept = (await signIn(config, agent, 'openid read', API)).access_token;
    const wide = (await signIn(config, agent, 'openid offline_access read write', API)).access_token;
    assert.ok(String(decodeJwt(wide).scope).split(' ').includes('write'));
    assert.equal(await acceptedBy(await api(), wide), true);

    await start([web('narrowed', { scope: 'openid offline_access read' })]);
    const after = await api();
    // Before the fix: true, for the token's whole lifetime (introspection refused it already).
    assert.equal(await acceptedBy(after, wide), false, 'a JWT carrying the scope taken away in the configuration, at an API that follows the feed');
    assert.equal(await acceptedBy(after, kept), true, 'a JWT within what the client keeps');
    assert.equal((await introspect(server!.url, RS, wide)).active, false);

    // Restarted again with the same configuration: nothing more is ended (once).
    const again = (await signIn(await confidential('narrowed'), agent, 'openid read', API)).access_token;
    await start([web('narrowed', { scope: 'openid offline_access read' })]);
    assert.equal(await acceptedBy(await api(), again), true, 'a token issued after the change survives a restart with the same configuration');
  });

  it('made public in the configuration, then restarted: the access tokens it got while confidential (opaque at userinfo, JWT at the feed) end, its refresh token too, and its people are asked to consent again', async () => {
    await start([web('notes')]);
    const agent = new Agent();
    const config = await confidential('notes');
    const opaque = (await signIn(config, agent, 'openid offline_access')).access_token;
    const tokens = await signIn(config, agent, 'openid offline_access read', API);
    assert.equal(await userinfo(opaque), 200);
    assert.equal(await acceptedBy(await api(), tokens.access_token), true);
    assert.equal(await asksConsent(config, agent, 'openid offline_access'), false, 'the consent is remembered while confidential');

    await start([publicWeb('notes')]);
    // Before the fix: 200 and true, for their lifetime.
    assert.equal(await userinfo(opaque), 401, 'an opaque access token got while confidential, at userinfo');
    assert.equal(await acceptedBy(await api(), tokens.access_token), false, 'a JWT got while confidential, at an API that follows the feed');
    assert.equal((await refreshStatus('notes', tokens.refresh_token!)).status, 400, 'its refresh token, with the client_id alone');
    // Before the fix: the consent given to the confidential client was taken as given to the public one.
    assert.equal(await asksConsent(await publicClient('notes'), agent, 'openid offline_access'), true, 'its people are asked again');
  });

  it('removed from the configuration, then restarted: its JWTs end at the feed; put back, its refresh tokens are refused and its people are asked again, as for a client deleted and made again', async () => {
    await start([web('gone')]);
    const agent = new Agent();
    const tokens = await signIn(await confidential('gone'), agent, 'openid offline_access read', API);
    assert.equal(await acceptedBy(await api(), tokens.access_token), true);

    await start([]);
    // Before the fix: true, for the token's whole lifetime.
    assert.equal(await acceptedBy(await api(), tokens.access_token), false, 'a JWT of a client removed from the configuration, at an API that follows the feed');

    await start([web('gone')]);
    const config = await confidential('gone');
    // Before the fix: 200 (its grants lived on while it was gone) and no consent page.
    const refreshed = await refreshStatus('gone', tokens.refresh_token!, SECRET);
    assert.equal(refreshed.status, 400, JSON.stringify(refreshed.body));
    assert.equal(await asksConsent(config, agent, 'openid offline_access'), true, 'its people are asked again');
    assert.equal(await acceptedBy(await api(), tokens.access_token), false);
  });

  it('its secret replaced in the configuration, then restarted: the tokens it got for itself with the old one end (introspection and the feed), as for a rotation without grace; new ones work', async () => {
    await start([]);
    const own = await clientCredentialsToken(server!.url, MACHINE, API, 'read');
    assert.equal((await introspect(server!.url, RS, own)).active, true);

    await start([], ROTATED);
    // Before the fix: active and accepted, for the token's whole lifetime.
    assert.equal((await introspect(server!.url, RS, own)).active, false, 'its own token got with the replaced secret, at introspection');
    assert.equal(await acceptedBy(await api(), own), false, 'and at an API that follows the feed');
    const fresh = await clientCredentialsToken(server!.url, ROTATED, API, 'read');
    assert.equal(await acceptedBy(helper!, fresh), true);
  });

  it('a rolling restart: an instance still running the old configuration does not undo the ending; one started next with the new configuration ends nothing more; two started at once end it once', async () => {
    await start([web('rolling')]);
    const agent = new Agent();
    const wide = (await signIn(await confidential('rolling'), agent, 'openid offline_access read write', API)).access_token;
    // A second instance of the deployment (one issuer), started with the same configuration.
    other = await startServer({ redisUrl: redis.url, clients: [machineClient(RS), machineClient(MACHINE), web('rolling')], env: { RESOURCE_SERVERS, ISSUER: server!.issuer } });

    // The first restarts with the client narrowed; the second still runs the old configuration.
    const narrowed = [web('rolling', { scope: 'openid offline_access read' })];
    await start(narrowed);
    assert.equal((await introspect(other.url, RS, wide)).active, false, 'the instance still running the old configuration refuses the ended token too');
    const after = (await signIn(await confidential('rolling'), agent, 'openid read', API)).access_token;

    // The second restarts with the new configuration: the change is recorded already, nothing more ends.
    await other.stop();
    other = await startServer({ redisUrl: redis.url, clients: [machineClient(RS), machineClient(MACHINE), ...narrowed], env: { RESOURCE_SERVERS, ISSUER: server!.issuer } });
    assert.equal(await acceptedBy(await api(), after), true, 'a token issued after the change, once the rolling restart is done');
    assert.equal(await acceptedBy(helper!, wide), false);

    // Both restart at once with the client made public: each may end it; what it got before ends, and both serve.
    const opaque = (await signIn(await confidential('rolling'), agent, 'openid offline_access')).access_token;
    const issuer = server!.issuer;
    helper?.close();
    helper = undefined;
    await Promise.all([server!.stop(), other.stop()]);
    server = undefined;
    other = undefined;
    const clients = [machineClient(RS), machineClient(MACHINE), { ...publicWeb('rolling'), scope: 'openid offline_access read' }];
    [server, other] = await Promise.all([
      startServer({ redisUrl: redis.url, dir, port, clients, env: { RESOURCE_SERVERS } }),
      startServer({ redisUrl: redis.url, clients, env: { RESOURCE_SERVERS, ISSUER: issuer } }),
    ]);
    assert.equal(await userinfo(opaque), 401);
    assert.equal((await fetch(`${other.url}/me`, { headers: { authorization: `Bearer ${opaque}` } })).status, 401);
  });
});
