/**
 * Bearer values are not in the store (RFC 6819 §5.1.4.1.3, OWASP ASVS V8.3.4): authorization codes,
 * refresh tokens and opaque access and client_credentials tokens are kept under their SHA-256
 * digest, their records without their jti, and a grant's index lists the digested keys. Flows are
 * driven with real clients (openid-client: code + PKCE with refresh; client_credentials with an
 * opaque token), then every key and value in the store is read (SCAN, and GET / HGETALL / SMEMBERS
 * / ZRANGE / LRANGE by type) and none may hold a value handed out. A record kept by its value by
 * the release before is still found, and revoked.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { basic, clientCredentialsToken, introspect, machineClient, OPAQUE_API, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';
import { AccountSessions } from '../../src/accounts/sessions.js';
import { AdapterIndexes } from '../../src/store/adapter-indexes.js';
import { digestOf } from '../../src/store/record-keys.js';
import { developerSignIn } from '../helpers/developer.js';

const REDIRECT = 'https://spa.example.test/callback';
const PASSWORD = 'correct horse battery staple';
const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const SPA = { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TV = { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] };

describe('e2e: no code or token handed out is in the store (kept under its digest)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let raw: Redis;
  let server: TestServer;
  let config: oidc.Configuration;
  let tv: oidc.Configuration;

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    server = await startServer({ redisUrl: redis.url, clients: [machineClient(MACHINE), machineClient(RS), machineClient(OPS), SPA, TV], env: { RESOURCE_SERVERS, DEVICE_FLOW_POLL_INTERVAL: '1' } });
    await server.accounts.create('alice', PASSWORD);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    config = await oidc.discovery(new URL(server.issuer), 'spa', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    tv = await oidc.discovery(new URL(server.issuer), 'tv', undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    raw?.disconnect();
    await server?.stop();
    await redis?.stop();
  });

  /** Every key in the store, with every value it holds. */
  async function everything(): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await raw.scan(cursor, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        found.push(key);
        const type = await raw.type(key);
        if (type === 'string') found.push((await raw.get(key)) ?? '');
        else if (type === 'hash') found.push(...Object.entries(await raw.hgetall(key)).flat());
        else if (type === 'set') found.push(...(await raw.smembers(key)));
        else if (type === 'zset') found.push(...(await raw.zrange(key, '0', '-1')));
        else if (type === 'list') found.push(...(await raw.lrange(key, 0, -1)));
        else if (type === 'stream') found.push(JSON.stringify(await raw.xrange(key, '-', '+')));
        else if (type === 'none') continue; // expired since the scan saw it
        else assert.fail(`key ${key} of type ${type}`);
      }
    } while (cursor !== '0');
    return found;
  }

  /** Code + PKCE (openid-client, a person by a cookie-keeping agent): the code and the tokens. */
  async function codeFlow() {
    const agent = new Agent();
    const start = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const verifier = start.verifier;
    const page = await signInSteps(agent, start.page, { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
    const code = new URL(page.url).searchParams.get('code');
    assert.ok(code, `a code, got ${page.url}`);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier });
    assert.ok(tokens.refresh_token);
    return { agent, code, tokens: { ...tokens, refresh_token: tokens.refresh_token } };
  }

  /** A device authorization (openid-client), its user code entered and confirmed and the person signed in: left at the consent page. */
  async function devicePending() {
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const consent = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'alice', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(consent), `the consent page, got ${consent.url}`);
    return { agent, device, consent };
  }

  /** The session id `agent`'s session cookie holds. */
  function sessionIdOf(agent: Agent): string {
    const cookie = agent
      .cookieHeader(server.issuer)
      .split('; ')
      .find((pair) => pair.startsWith('lk_session='));
    assert.ok(cookie, 'a session cookie');
    return cookie.slice('lk_session='.length);
  }

  /** Whether `agent`'s session still signs the person in: a prompt=none request gets a code. */
  async function signedIn(agent: Agent): Promise<boolean> {
    const { page } = await startAuthorization(agent, config, REDIRECT, { prompt: 'none' });
    const answer = new URL(page.url).searchParams;
    assert.ok(answer.has('code') || answer.get('error') === 'login_required', `a code or login_required, got ${page.url}`);
    return answer.has('code');
  }

  /** Moves the record of `value` from under its digest to under its value, as the release before kept it (and its grant's index with it). */
  async function keptByValue(model: string, value: string) {
    const [digested] = await raw.keys(`*oidc:${model}:${digestOf(value)}`);
    assert.ok(digested, 'kept under its digest');
    const record = await raw.hgetall(digested);
    const payload = JSON.parse(record.p!) as { grantId?: string };
    const legacy = digested.replace(digestOf(value), value);
    await raw.hset(legacy, { ...record, p: JSON.stringify({ ...payload, jti: value }) });
    await raw.expire(legacy, 600);
    await raw.del(digested);
    if (payload.grantId) {
      const index = digested.replace(`${model}:${digestOf(value)}`, `grant:${payload.grantId}`);
      assert.equal(await raw.srem(index, digested.slice(digested.indexOf('oidc:'))), 1, 'the grant listed it');
      await raw.sadd(index, legacy.slice(legacy.indexOf('oidc:')));
    }
  }

  it('code + PKCE with refresh, client_credentials (opaque), a browser session with an interaction pending, a device flow pending: no code, token, session id or device code is a key, a member or inside a value', async () => {
    const { agent, code, tokens } = await codeFlow();
    // The session in a pending interaction too: asked to consent again, its consent page not answered.
    const { page: consent } = await startAuthorization(agent, config, REDIRECT, { prompt: 'consent' });
    assert.ok(consent.url.includes('/interaction/'), `a pending interaction, got ${consent.url}`);
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.refresh_token);
    const opaque = await clientCredentialsToken(server.url, MACHINE, OPAQUE_API);
    assert.equal((await introspect(server.url, RS, opaque)).active, true);
    const { device, agent: approver } = await devicePending();

    const handedOut = {
      code,
      refresh: tokens.refresh_token,
      refreshed: refreshed.refresh_token,
      opaque,
      session: sessionIdOf(agent),
      'device code': device.device_code,
      "approver's session": sessionIdOf(approver),
    };
    const store = await everything();
    assert.ok(store.length > 10, 'the store holds the flows');
    for (const [name, value] of Object.entries(handedOut)) {
      const holding = store.filter((entry) => entry.includes(value));
      assert.deepEqual(holding, [], `the ${name} is in the store`);
    }
    // The approval's interaction names its device code by the digest, which any instance resolves
    // (not by what this process found it by, from its user code's index: a handle of its own).
    const interactions = await Promise.all((await raw.keys('*oidc:Interaction:*')).map(async (key) => JSON.parse((await raw.hget(key, 'p')) ?? '{}') as { deviceCode?: string }));
    assert.deepEqual(interactions.flatMap(({ deviceCode }) => (deviceCode ? [deviceCode] : [])), [digestOf(device.device_code)]);
    // Nor does a digest read there stand for its value: the record under it is not found by it
    // (a session cookie holding one: test/integration/adapter.test.ts, findByUid).
    assert.equal((await introspect(server.url, RS, digestOf(opaque))).active, false, 'a digest presented as the token');
  });

  it('a client_credentials token and a refresh token kept by their value (the release before) are still found and revoked', async () => {
    const opaque = await clientCredentialsToken(server.url, MACHINE, OPAQUE_API);
    await keptByValue('ClientCredentials', opaque);
    assert.equal((await introspect(server.url, RS, opaque)).active, true, 'found by its value');
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, opaque)).status, 200);
    assert.equal((await introspect(server.url, RS, opaque)).active, false, 'revoked');
    assert.deepEqual(await raw.keys(`*${opaque}`), []);

    // A refresh token: used once it is rotated; used again, a replay, its grant revoked with it.
    const { tokens } = await codeFlow();
    await keptByValue('RefreshToken', tokens.refresh_token);
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.refresh_token, 'rotated');
    await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token), (error: Error & { error?: string }) => error.error === 'invalid_grant');
    await assert.rejects(oidc.refreshTokenGrant(config, refreshed.refresh_token!), (error: Error & { error?: string }) => error.error === 'invalid_grant', 'the grant was revoked');
    assert.deepEqual(await raw.keys(`*${tokens.refresh_token}`), []);
  });

  it('a session kept by its id (the release before) still signs the person in, and is ended with their sessions', async () => {
    const { agent } = await codeFlow();
    const id = sessionIdOf(agent);
    const [digested] = await raw.keys(`*oidc:Session:${digestOf(id)}`);
    assert.ok(digested, 'kept under its digest');
    const record = await raw.hgetall(digested);
    const payload = JSON.parse(record.p!) as { uid: string; accountId: string; exp: number };
    const prefix = digested.slice(0, digested.indexOf('oidc:'));
    // As the release before kept it: under its id, which its uid's index and its person's index hold
    // (its expiry two minutes nearer: its next use saves it again).
    await raw.hset(`${prefix}oidc:Session:${id}`, { ...record, p: JSON.stringify({ ...payload, exp: payload.exp - 120, jti: id }) });
    await raw.expire(`${prefix}oidc:Session:${id}`, 600);
    await raw.del(digested);
    await raw.set(`${prefix}oidc:uid:${payload.uid}`, id, 'EX', 600);
    // The person's index as the release before kept it too: a plain set, listing the id.
    const index = `${prefix}oidc:sessions-ends:account:{${payload.accountId}}`;
    assert.equal(await raw.zrem(index, digestOf(id)), 1, 'the person\'s index listed its digest');
    await raw.sadd(`${prefix}oidc:sessions:account:{${payload.accountId}}`, id);
    await raw.expire(`${prefix}oidc:sessions:account:{${payload.accountId}}`, 600);

    // Found by its id (its cookie), and saved again: now under its digest, its record by id still there.
    assert.equal(await signedIn(agent), true, 'found by its id');
    const sessions = new AccountSessions(server.kv, server.providers, server.accounts);
    const live = await sessions.list(payload.accountId);
    assert.notEqual(await raw.zscore(index, digestOf(id)), null, 'saved again, under its digest');
    // Its record by id goes then: ended through an index (by its digest, not its id), its cookie must not find that.
    assert.deepEqual(await raw.keys(`*oidc:Session:${id}`), [], 'its record by id went as it was saved again');
    assert.equal(live.filter((session) => session.uid === payload.uid).length, 1, 'listed through the person\'s index, once');
    assert.equal(await sessions.endAll(payload.accountId), live.length, 'every one ended');
    assert.equal(await signedIn(agent), false, 'ended');
  });

  it('a device code kept by its value (the release before) is still found by its user code, approved and redeemed', async () => {
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    await keptByValue('DeviceCode', device.device_code);
    const [index] = await raw.keys(`*oidc:usercode:${device.user_code.replace(/\W/g, '')}`);
    assert.equal(await raw.get(index!), digestOf(device.device_code), 'its user code\'s index held its digest');
    await raw.set(index!, device.device_code, 'KEEPTTL');

    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const approved = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'alice', password: PASSWORD });
    assert.match(approved.html, /Device connected/);
    const tokens = await oidc.pollDeviceAuthorizationGrant(tv, device);
    assert.ok(tokens.access_token, 'redeemed');
    await assert.rejects(oidc.pollDeviceAuthorizationGrant(tv, device), (error: Error & { error?: string }) => error.error === 'invalid_grant', 'once');
  });

  /**
   * Whether `secret` authenticates client `id` (at the revocation endpoint, which takes the token
   * endpoint's methods and answers 200 to an authenticated client whatever the token): in a Basic
   * header (client_secret_basic) or in the body (client_secret_post).
   */
  async function authenticates(id: string, secret: string, method: 'basic' | 'post'): Promise<boolean> {
    const response = await fetch(`${server.url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(method === 'basic' ? { authorization: basic({ id, secret }) } : {}) },
      body: new URLSearchParams({ token: 'not-a-token', ...(method === 'post' ? { client_id: id, client_secret: secret } : {}) }),
    });
    const text = await response.text();
    assert.ok(response.status === 200 || response.status === 401, `${response.status} ${text}`);
    return response.status === 200;
  }

  it('no client secret handed out is in the store, whichever way it was written (RFC 7591 registration and RFC 7592 update, the admin API, Clients as the CLI uses it, a rotation, the developer page); each authenticates by its method, a digest read from the store as nobody', async () => {
    const handedOut: { name: string; id: string; secret: string; method: 'basic' | 'post' }[] = [];

    // RFC 7591, client_secret_post; then RFC 7592: read (no secret to read back), update sending the secret back (§2.2).
    const initial = await new server.provider.InitialAccessToken({ expiresIn: 600 }).save();
    const registration = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${initial}` },
      body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_post' }),
    });
    assert.equal(registration.status, 201, await registration.clone().text());
    const registered = (await registration.json()) as { client_id: string; client_secret: string; registration_client_uri: string; registration_access_token: string };
    handedOut.push({ name: 'RFC 7591', id: registered.client_id, secret: registered.client_secret, method: 'post' });
    const manage = (token: string, init: RequestInit = {}) => fetch(registered.registration_client_uri, { ...init, headers: { authorization: `Bearer ${token}`, ...init.headers } });
    const read = (await (await manage(registered.registration_access_token)).json()) as Record<string, unknown>;
    assert.equal(read.client_secret, undefined, 'RFC 7592 read: no secret');
    const update = await manage(registered.registration_access_token, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: registered.client_id, client_secret: registered.client_secret, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_post', client_name: 'Renamed' }),
    });
    assert.equal(update.status, 200, await update.clone().text());
    const updated = (await update.json()) as Record<string, unknown>;
    assert.equal(updated.client_name, 'Renamed');
    assert.equal(updated.client_secret, undefined, 'RFC 7592 update: no secret');

    // The admin API: created (a secret generated), updated with a chosen secret, rotated.
    const adminToken = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const admin = (path: string, init: RequestInit) => fetch(`${server.url}/admin${path}`, { ...init, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' } });
    const machine = { grant_types: ['client_credentials'], response_types: [], redirect_uris: [] };
    const created = await admin('/clients', { method: 'POST', body: JSON.stringify({ client_id: 'admin-made', ...machine }) });
    assert.equal(created.status, 201, await created.clone().text());
    handedOut.push({ name: 'admin API, created', id: 'admin-made', secret: ((await created.json()) as { client_secret: string }).client_secret, method: 'basic' });
    const chosen = 'an-operator-chosen-secret-of-plenty-of-entropy-0123456789';
    assert.equal((await admin('/clients', { method: 'POST', body: JSON.stringify({ client_id: 'admin-changed', ...machine }) })).status, 201);
    assert.equal((await admin('/clients/admin-changed', { method: 'PUT', body: JSON.stringify({ client_secret: chosen, token_endpoint_auth_method: 'client_secret_post', ...machine }) })).status, 200);
    handedOut.push({ name: 'admin API, updated', id: 'admin-changed', secret: chosen, method: 'post' });

    // Clients, as `latchkey clients add` uses it (a chosen secret, client_secret_basic).
    const cli = { id: 'cli-made', secret: 'a-cli-chosen-secret-with-plenty-of-entropy-0123456789' };
    await server.clients.add(machineClient(cli));
    handedOut.push({ name: 'Clients.add', ...cli, method: 'basic' });

    // The developer page: the secret shown once.
    const { agent, page } = await developerSignIn(server.issuer, 'alice', PASSWORD);
    const shown = await agent.submit(page, '/developer/apps', { name: 'Alice Reports', type: 'web', redirect_uris: 'https://alice.example.test/callback' });
    const id = /id="client-id">([^<]+)</.exec(shown.html)?.[1];
    const secret = /id="client-secret">([^<]+)</.exec(shown.html)?.[1];
    assert.ok(id && secret, 'the page shows the new app');
    handedOut.push({ name: 'developer page', id, secret, method: 'basic' });

    const store = await everything();
    for (const { name, secret: value } of handedOut) {
      assert.deepEqual(store.filter((entry) => entry.includes(value)), [], `the secret of ${name} is in the store`);
    }
    for (const { name, id: client, secret: value, method } of handedOut) {
      assert.equal(await authenticates(client, value, method), true, `${name}: its secret authenticates (client_secret_${method})`);
      assert.equal(await authenticates(client, digestOf(value), method), false, `${name}: the digest the store keeps is no secret`);
    }

    // A rotation (the admin API's; the developer page's and the CLI's go through Clients.rotateSecret too).
    const rotated = await admin('/clients/admin-made/secret', { method: 'POST', body: JSON.stringify({ previous_secret_valid_for: 0 }) });
    assert.equal(rotated.status, 200, await rotated.clone().text());
    const { client_secret: rotatedSecret } = (await rotated.json()) as { client_secret: string };
    assert.deepEqual((await everything()).filter((entry) => entry.includes(rotatedSecret)), [], 'the rotated secret is in the store');
    assert.equal(await authenticates('admin-made', rotatedSecret, 'basic'), true, 'the rotated secret authenticates');
    assert.equal(await authenticates('admin-made', handedOut[1]!.secret, 'basic'), false, 'the secret rotated out without grace does not');
  });

  it('a client whose secret the release before kept in clear still authenticates, and is kept by its digest from its next write, or at start', async () => {
    const clients = server.clients;
    const legacy = async (client: { id: string; secret: string }) => {
      await clients.add(machineClient(client));
      const [key] = await raw.keys(`*oidc:Client:${client.id}`);
      const payload = JSON.parse((await raw.hget(key!, 'p'))!) as Record<string, unknown>;
      assert.equal(payload.client_secret_digest, digestOf(client.secret), 'kept by its digest');
      const { client_secret_digest: _digest, ...rest } = payload;
      await raw.hset(key!, 'p', JSON.stringify({ ...rest, client_secret: client.secret }));
      assert.equal(await authenticates(client.id, client.secret, 'basic'), true, 'in clear: still authenticates');
      assert.equal(await authenticates(client.id, digestOf(client.secret), 'basic'), false);
    };
    const inClear = async (secret: string) => (await everything()).some((entry) => entry.includes(secret));

    const written = { id: 'legacy-written', secret: 'a-legacy-secret-kept-in-clear-with-entropy-0123456789' };
    await legacy(written);
    await clients.update(written.id, { client_name: 'Written again', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
    assert.equal(await inClear(written.secret), false, 'digested on its next write');
    assert.equal(await authenticates(written.id, written.secret, 'basic'), true, 'and still authenticates');

    const started = { id: 'legacy-started', secret: 'another-legacy-secret-kept-in-clear-with-entropy-0123' };
    await legacy(started);
    assert.equal(await new AdapterIndexes(server.kv).digestClientSecrets(), 1, 'one client digested at start');
    assert.equal(await inClear(started.secret), false, 'digested at start');
    assert.equal(await authenticates(started.id, started.secret, 'basic'), true, 'and still authenticates');
    assert.equal(await new AdapterIndexes(server.kv).digestClientSecrets(), 0, 'nothing left in clear');
  });

  it("a client secret rotated out, its grace running, is kept as its digest, and authenticates until the grace ends", async () => {
    const clients = server.clients;
    const client = { id: 'rotated', secret: 'rotated-client-secret-with-plenty-of-entropy-0123456789' };
    await clients.add(machineClient(client));
    await server.apis.grant(client.id, OPAQUE_API, { scopes: ['read'] });
    const fresh = (await clients.rotateSecret(client.id, 600)).client_secret as string;
    assert.deepEqual((await everything()).filter((entry) => entry.includes(client.secret)), [], 'the old secret is in the store');
    assert.deepEqual((await everything()).filter((entry) => entry.includes(fresh)), [], 'the new secret is in the store');
    assert.equal((await introspect(server.url, RS, await clientCredentialsToken(server.url, client, OPAQUE_API))).active, true, 'the old secret, within its grace');
    assert.equal((await introspect(server.url, RS, await clientCredentialsToken(server.url, { ...client, secret: fresh }, OPAQUE_API))).active, true, 'the new one');
  });
});
