/**
 * The whole server on a 3-master Redis Cluster, and on Redis Sentinel, as the README says it runs:
 * real clients (openid-client, plain fetch) through the flows people and apps use, and after each
 * ending a check that what it ends no longer works. The store's Kv layer has its own Cluster and
 * Sentinel tests (test/integration/kv.test.ts, sentinel.test.ts); this pins the server's use of it:
 * no command of any flow spans slots (CROSSSLOT), none answers 500, no ending is half-applied, and
 * every key is laid out as the store says (TTLs, the revocation list in one slot).
 */
import assert from 'node:assert/strict';
import { Cluster, Redis } from 'ioredis';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { allKeys } from '../helpers/backends.js';
import { eventually } from '../helpers/eventually.js';
import { frontChannel } from '../helpers/front-channel.js';
import { latchkey } from '../helpers/process.js';
import { startRedisCluster, startRedisSentinel } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { API, basic, clientCredentialsToken, grantFeed, introspect, machineClient, OPAQUE_API, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';
import { GRANT_CLAIM } from '../../src/revocation/list.js';
import { digestOf } from '../../src/store/record-keys.js';
import { freePort } from '../helpers/redis.js';
import { createLogger } from '../../src/ops/logger.js';

const PASSWORD = 'cluster endings test password';
const REDIRECT = 'https://app.example.test/callback';
const SIGNED_OUT = 'https://app.example.test/bye';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const APP = { id: 'app', secret: 'app-client-secret-with-plenty-of-entropy-0123456789' };
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const insecure = { execute: [oidc.allowInsecureRequests] };

interface LogLine {
  readonly level: number;
  readonly msg?: string;
  readonly status?: number;
  readonly path?: string;
  readonly err?: { message?: string };
}

/** A Redis topology the server runs on: its settings, and a client of ours to look at what was written. */
interface Topology {
  readonly settings: Record<string, string>;
  readonly raw: Redis | Cluster;
  stop(): Promise<void>;
}

const topologies: { readonly name: string; readonly cluster: boolean; start(): Promise<Topology> }[] = [
  {
    name: 'a 3-master Redis Cluster',
    cluster: true,
    async start() {
      const cluster = await startRedisCluster(3);
      const raw = new Cluster(cluster.nodes);
      return {
        settings: { REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: cluster.nodes.map(({ host, port }) => `${host}:${port}`).join(',') },
        raw,
        stop: async () => {
          raw.disconnect();
          await cluster.stop();
        },
      };
    },
  },
  {
    name: 'Redis Sentinel (a master, a replica, three sentinels)',
    cluster: false,
    async start() {
      const group = await startRedisSentinel();
      const raw = new Redis(group.masterPort, '127.0.0.1');
      return {
        settings: { REDIS_MODE: 'sentinel', REDIS_SENTINELS: group.sentinels.join(','), REDIS_SENTINEL_NAME: group.masterName },
        raw,
        stop: async () => {
          raw.disconnect();
          await group.stop();
        },
      };
    },
  },
];

for (const topology of topologies) describe(`e2e: the whole server on ${topology.name}`, function () {
  this.timeout(120_000);
  const dir = testDir();
  const lines: LogLine[] = [];
  let store: Topology;
  let raw: Redis | Cluster;
  let server: TestServer;
  let env: Record<string, string>;
  let app: oidc.Configuration;

  before(async () => {
    store = await topology.start();
    raw = store.raw;
    const clients = [
      {
        client_id: APP.id,
        client_secret: APP.secret,
        redirect_uris: [REDIRECT],
        post_logout_redirect_uris: [SIGNED_OUT],
        grant_types: ['authorization_code', 'refresh_token'],
      },
      machineClient(MACHINE),
      machineClient(RS),
      { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [] },
    ];
    const port = await freePort();
    const settings = {
      dir,
      port,
      env: {
        ...store.settings,
        CLIENTS: JSON.stringify(clients),
        RESOURCE_SERVERS,
      },
    };
    env = testEnv(dir, port, settings);
    server = await startServer({
      ...settings,
      // Every line the server logs from warn up, and every request line (info), to look for Redis errors and 500s.
      logger: createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }),
    });
    await grantFeed(server, RS.id);
    for (const name of ['alice', 'bob', 'carol', 'dora', 'erin']) await server.accounts.create(name, PASSWORD);
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), insecure);
  });
  after(async () => {
    await server?.stop();
    await store?.stop();
  });
  afterEach(function () {
    // Nothing a flow did met a Redis error or a server bug (a CROSSSLOT reply is no outage: it would be a 500).
    const bad = lines.filter((line) => line.level >= 50 || (line.status ?? 0) >= 500 || /CROSSSLOT|ReplyError|MOVED|TRYAGAIN/.test(JSON.stringify(line)));
    lines.length = 0;
    assert.deepEqual(bad, [], `${this.currentTest?.title}: errors in the server's log`);
  });

  const feed = async () => {
    const token = await clientCredentialsToken(server.url, RS, `${server.issuer}/revocations`, 'revocations');
    const response = await fetch(`${server.url}/revocations`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200);
    return ((await response.json()) as { entries: { type: string; gid?: string; jti?: string; sub?: string }[] }).entries;
  };
  const userinfo = async (token: string) => (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${token}` } })).status;
  const refreshError = async (config: oidc.Configuration, refreshToken: string, params: Record<string, string> = { resource: API }) =>
    oidc.refreshTokenGrant(config, refreshToken, params).then(
      () => 'tokens',
      (error: Error) => (error instanceof oidc.ResponseBodyError ? error.error : error.message),
    );
  /** The code flow as a person (sign-in and consent), code + PKCE at the token endpoint. */
  async function signIn(username: string, scope = 'openid offline_access read', agent = new Agent()) {
    const flow = await frontChannel(app, { redirectUri: REDIRECT, username, password: PASSWORD, params: { scope, resource: API }, agent });
    const tokens = await oidc.authorizationCodeGrant(app, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API });
    return { agent, tokens };
  }
  /** A prompt=none request of the app in `agent`'s browser: its error, or 'code'. */
  const silent = async (agent: Agent) => {
    const answer = new URL((await startAuthorization(agent, app, REDIRECT, { prompt: 'none' })).page.url);
    return answer.searchParams.get('error') ?? (answer.searchParams.get('code') ? 'code' : answer.href);
  };

  it('code + PKCE, refresh with rotation; a rotated refresh token presented again revokes the grant (JWT on the feed, every token dead)', async () => {
    const { tokens } = await signIn('alice');
    assert.equal((await introspect(server.url, RS, tokens.access_token)).active, true);
    const rotated = await oidc.refreshTokenGrant(app, tokens.refresh_token!, { resource: API });
    assert.notEqual(rotated.refresh_token, tokens.refresh_token, 'rotated');
    assert.equal(await refreshError(app, tokens.refresh_token!), 'invalid_grant', 'the spent refresh token is refused');
    assert.equal(await refreshError(app, rotated.refresh_token!), 'invalid_grant', 'reuse revoked the grant: its newest refresh token too');
    for (const token of [tokens.access_token, rotated.access_token]) assert.deepEqual(await introspect(server.url, RS, token), { active: false });
    const gid = String(decodeJwt(tokens.access_token)[GRANT_CLAIM]);
    assert.ok((await feed()).some((entry) => entry.type === 'grant' && entry.gid === gid), 'the grant is on the feed');
  });

  it('client_credentials, JWT and opaque: introspection, RFC 7009 revocation, the feed', async () => {
    const jwt = await clientCredentialsToken(server.url, MACHINE, API);
    const opaque = await clientCredentialsToken(server.url, MACHINE, OPAQUE_API, 'read');
    for (const token of [jwt, opaque]) {
      assert.equal((await introspect(server.url, RS, token)).active, true);
      assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200);
      assert.deepEqual(await introspect(server.url, RS, token), { active: false });
    }
    const { jti } = decodeJwt(jwt);
    assert.ok((await feed()).some((entry) => entry.type === 'jti' && entry.jti === jti), 'the JWT is on the feed');
  });

  it('RP-initiated logout: the session is gone, its tokens (no offline access) inactive, and the app asks again', async () => {
    const { agent, tokens } = await signIn('bob', 'openid read');
    assert.equal(await silent(agent), 'code', 'signed in');
    const page = await agent.follow(`${server.issuer}/session/end?${new URLSearchParams({ id_token_hint: tokens.id_token!, post_logout_redirect_uri: SIGNED_OUT })}`);
    const done = await agent.submit(page, '/session/end/confirm', { logout: 'yes' }, SIGNED_OUT);
    assert.ok(done.url.startsWith(SIGNED_OUT), `back at the app: ${done.status} ${done.url}`);
    assert.equal(await silent(agent), 'login_required', 'the session is gone');
    assert.deepEqual(await introspect(server.url, RS, tokens.access_token), { active: false });
  });

  it("withdrawing an app's access on the account page: refresh refused, tokens inactive, consent asked again", async () => {
    const { agent, tokens } = await signIn('carol');
    const refreshed = await oidc.refreshTokenGrant(app, tokens.refresh_token!);
    assert.equal(await userinfo(refreshed.access_token), 200);
    const account: Page = await agent.follow(`${server.issuer}/account`);
    assert.match(account.html, /Apps with access/);
    const done = await agent.submit(account, '/apps/withdraw', {});
    assert.match(done.html, /Access withdrawn/);
    assert.equal(await refreshError(app, refreshed.refresh_token!), 'invalid_grant');
    assert.deepEqual(await introspect(server.url, RS, tokens.access_token), { active: false });
    assert.equal(await userinfo(refreshed.access_token), 401);
    const { page: asked } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid offline_access read', resource: API });
    const again = await signInSteps(agent, asked, { username: 'carol', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(again), `consent is asked again: ${again.url}`);
  });

  it('the device flow, then the person disabled with the CLI: sessions, refresh and access tokens all end', async () => {
    const tv = await oidc.discovery(new URL(server.issuer), 'tv', { token_endpoint_auth_method: 'none' }, oidc.None(), insecure);
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid offline_access' });
    const agent = new Agent();
    const entry = await agent.follow(`${server.issuer}/device`);
    const confirm = await agent.submit(entry, '/device', { user_code: device.user_code });
    const approved = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'dora', password: PASSWORD });
    assert.match(approved.html, /Device connected|connected/i, `approved: ${approved.status} ${approved.url}`);
    const tokens = await oidc.pollDeviceAuthorizationGrant(tv, device);
    assert.equal(await userinfo(tokens.access_token), 200);
    const app2 = await signIn('dora', 'openid offline_access read', agent);

    const run = await latchkey(env, ['users', 'disable', 'dora']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(await userinfo(tokens.access_token), 401);
    assert.equal(await refreshError(tv, tokens.refresh_token!, {}), 'invalid_grant');
    assert.equal(await refreshError(app, app2.tokens.refresh_token!), 'invalid_grant');
    assert.deepEqual(await introspect(server.url, RS, app2.tokens.access_token), { active: false });
    assert.equal(await silent(agent), 'login_required', 'her session ended');
  });

  it('dynamic registration (RFC 7591) and management (RFC 7592); deleting the client ends its tokens', async () => {
    const iat = await new server.provider.InitialAccessToken({ expiresIn: 600 }).save();
    const registered = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${iat}` },
      body: JSON.stringify({ redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] }),
    });
    assert.equal(registered.status, 201, await registered.clone().text());
    const body = (await registered.json()) as { client_id: string; client_secret: string; registration_access_token: string; registration_client_uri: string };
    const manage = (init: RequestInit = {}) => fetch(body.registration_client_uri, { ...init, headers: { authorization: `Bearer ${body.registration_access_token}`, ...init.headers } });
    assert.equal((await manage()).status, 200);
    const config = await oidc.discovery(new URL(server.issuer), body.client_id, body.client_secret, oidc.ClientSecretBasic(body.client_secret), insecure);
    const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'erin', password: PASSWORD, params: { scope: 'openid offline_access' } });
    const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier });
    assert.equal(await userinfo(tokens.access_token), 200);

    assert.equal((await manage({ method: 'DELETE' })).status, 204);
    assert.equal(await userinfo(tokens.access_token), 401);
    const refused = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: body.client_id, secret: body.client_secret }) },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }),
    });
    assert.equal(((await refused.json()) as { error: string }).error, 'invalid_client');
    assert.equal((await manage()).status, 401, 'the registration access token went with its client');
  });

  it('key rotation with the CLI (--now --revoke-current): what the old key signed is refused, the next key signs', async () => {
    const current = server.keys.ring.current!.kid;
    const signed = await clientCredentialsToken(server.url, MACHINE);
    assert.equal(decodeProtectedHeader(signed).kid, current);
    const run = await latchkey(env, ['keys', 'rotate', '--now', '--revoke-current']);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(await introspect(server.url, RS, signed), { active: false });
    await eventually(async () => assert.notEqual(decodeProtectedHeader(await clientCredentialsToken(server.url, MACHINE)).kid, current), 100);
    assert.equal((await introspect(server.url, RS, await clientCredentialsToken(server.url, MACHINE))).active, true);
  });

  /** The port of the master that holds `key` (with its key prefix). */
  async function masterOf(key: string): Promise<number> {
    const slot = Number(await (raw as Cluster).cluster('KEYSLOT', key));
    const ranges = (await (raw as Cluster).cluster('SLOTS')) as unknown as [number, number, [string, number]][];
    return ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
  }

  if (topology.cluster) it("a client removal that one master fails half-way (its registration access token's) is run again and ends the token: the index is not lost with the others' part", async () => {
    // A client whose registration access token lives on another master than the index that lists it.
    type Registered = { client_id: string; registration_access_token: string; registration_client_uri: string };
    let registered: Registered | undefined;
    let tokenMaster = 0;
    for (let tries = 0; tries < 20 && !registered; tries += 1) {
      const response = await fetch(`${server.url}/reg`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await new server.provider.InitialAccessToken({ expiresIn: 600 }).save()}` },
        body: JSON.stringify({ redirect_uris: [REDIRECT] }),
      });
      const body = (await response.json()) as Registered;
      tokenMaster = await masterOf(`lk:oidc:RegistrationAccessToken:${digestOf(body.registration_access_token)}`);
      if (tokenMaster !== (await masterOf(`lk:oidc:rat:client:${body.client_id}`))) registered = body;
    }
    assert.ok(registered, 'a registration access token on another master than its index');
    const manage = () => fetch(registered.registration_client_uri, { headers: { authorization: `Bearer ${registered.registration_access_token}` } });
    assert.equal((await manage()).status, 200);

    // That master refuses the server registration access tokens' keys (as one failing over refuses
    // everything): the removal fails there, and only there.
    const master = new Redis(tokenMaster, '127.0.0.1');
    const clients = server.clients;
    try {
      const spelled = 'lk:oidc:Reg';
      await master.call('ACL', 'SETUSER', 'default', 'resetkeys', ...[...spelled].map((char, at) => `~${spelled.slice(0, at)}[^${char}]*`));
      await assert.rejects(clients.remove(registered.client_id), /NOPERM/);
    } finally {
      await master.call('ACL', 'SETUSER', 'default', 'resetkeys', '~*');
      master.disconnect();
    }
    // The operator runs the removal again, and later makes a client with the same id.
    await clients.remove(registered.client_id);
    await clients.add({ client_id: registered.client_id, client_secret: 'a-new-secret-for-the-same-id-with-plenty-of-entropy', redirect_uris: [REDIRECT] });
    assert.equal((await manage()).status, 401, "the removed client's registration access token manages the client made again with the id");
    // The refusal was the test's: it is no server error.
    lines.length = 0;
  });

  it('every key is laid out as the store says: a TTL unless durable data, the revocation list in its one slot', async () => {
    const keys = await allKeys(raw);
    assert.ok(keys.length > 0);
    // Durable: people, clients (with their registration access tokens, which live as long as they do, and the configured ones as last started with), keys, APIs (the configured ones as last started with), grants, and whether accounts.mfa.required was on at the last start (mfa-everywhere).
    const durable = /^lk:(oidc:(Client:|clients$|RegistrationAccessToken:|rat:client:)|configured-(clients|apis)$|mfa-everywhere$|account|accounts|user|keys?|keyring|apis?|grants?:|upstream)/;
    const untimed: string[] = [];
    for (const key of keys) if (!durable.test(key) && (await raw.ttl(key)) === -1) untimed.push(key);
    assert.deepEqual(untimed, [], 'keys without a TTL');
    assert.deepEqual(keys.filter((key) => key.startsWith('lk:revoked:') && !key.startsWith('lk:revoked:{rv}:')), [], 'revocation keys outside the {rv} slot');
  });
});
