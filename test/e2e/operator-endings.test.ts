/**
 * What an operator takes away ends at once, as an attacker holding what it was given finds: a
 * client's API grant narrowed or revoked (its client_credentials tokens under the old grant), an
 * API removed (every token for it, even once an API with the identifier is back), a client secret
 * rotated (the registration access token that would read the new secret, the tokens the old secret
 * gets during its grace), a person's password set by an operator (the sessions and refresh tokens
 * got with the old one). Each was still working before (endings audit); each is performed here
 * through introspection, the revocation feed and latchkey/resource-server. A removal (a person, a
 * client) that fails half-way can be run again and then ends everything (third endings audit).
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { frontChannel } from '../helpers/front-channel.js';
import { developerSignIn } from '../helpers/developer.js';
import { latchkey, serveProcess } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { isConsent, signInSteps } from '../helpers/sign-in.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { API, basic, clientCredentialsToken, grantFeed, introspect, machineClient, OPAQUE_API, RESOURCE_SERVERS, type ClientCredentials } from '../helpers/tokens.js';
import { AccountSessions } from '../../src/accounts/sessions.js';
import type { Clients } from '../../src/registration/clients.js';
import { digestOf, secretDigestOf } from '../../src/store/record-keys.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';

const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const APP = { id: 'app', secret: 'app-client-secret-with-plenty-of-entropy-0123456789' };
const REDIRECT = 'https://app.example.test/callback';
const PASSWORD = 'operator endings test password';
/** Short, so that the cap is seen; tokens otherwise live ttl.clientCredentials (900 s). */
const SECRET_GRACE = 120;

interface FeedEntry {
  readonly type: string;
  readonly client_id?: string;
  readonly aud?: string;
  readonly revoked_at?: number;
}

describe('e2e: what an operator takes away ends at once (endings audit)', function () {
  this.timeout(120_000);
  const dir = testDir();
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;
  let helper: ResourceServer;
  let clients: Clients;

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    const app = { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
    const CLIENTS = JSON.stringify([machineClient(RS), machineClient(OPS, { scope: 'admin' }), app]);
    const settings = { redisUrl: redis.url, dir, port, env: { CLIENTS, RESOURCE_SERVERS, REGISTRATION_SECRET_ROTATION_GRACE: String(SECRET_GRACE) } };
    env = testEnv(dir, port, settings);
    server = await startServer(settings);
    await grantFeed(server, RS.id);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    clients = server.clients;
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret });
  });
  after(async () => {
    helper?.close();
    await server?.stop();
    await redis?.stop();
  });

  const admin = async (method: string, path: string, body?: unknown) => {
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    return fetch(`${server.url}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
  };

  async function feed(): Promise<FeedEntry[]> {
    const token = await clientCredentialsToken(server.url, RS, `${server.issuer}/revocations`, 'revocations');
    const response = await fetch(`${server.url}/revocations`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200);
    return ((await response.json()) as { entries: FeedEntry[] }).entries;
  }

  const refused = (verifier: ResourceServer, token: string) =>
    eventually(() => assert.rejects(verifier.verify(token), (error: Error) => error instanceof TokenRejected && /revoked/.test(error.message)));

  /** Until the clock's second moves past the latest revocation: tokens of that second count as issued before it. */
  const nextSecond = async () => {
    const now = Math.floor(Date.now() / 1000);
    while (Math.floor(Date.now() / 1000) <= now) await new Promise((done) => setTimeout(done, 50));
  };

  async function serviceClient(id: string): Promise<ClientCredentials> {
    const client = { id, secret: `${id}-client-secret-with-plenty-of-entropy-0123456789` };
    await clients.add(machineClient(client));
    return client;
  }

  it("an operator narrowing or revoking a client's API grant ends the tokens it got under it: introspection, the feed, latchkey/resource-server", async () => {
    const svc = await serviceClient('svc-narrowed');
    await server.apis.grant(svc.id, API, { scopes: ['read', 'write'] });
    await server.apis.grant(svc.id, OPAQUE_API, { scopes: ['read'] });
    const wide = await clientCredentialsToken(server.url, svc, API, 'read write');
    const opaque = await clientCredentialsToken(server.url, svc, OPAQUE_API, 'read');
    assert.equal((await helper.verify(wide)).client_id, svc.id);

    // The admin API's PUT takes `write` away: the token that carries it is the attacker's.
    assert.equal((await admin('PUT', `/clients/${svc.id}/grants/${encodeURIComponent(API)}`, { scopes: ['read'] })).status, 200);
    assert.deepEqual(await introspect(server.url, RS, wide), { active: false });
    await refused(helper, wide);
    const narrowing = (await feed()).find((entry) => entry.type === 'client_grant' && entry.client_id === svc.id && entry.aud === API);
    assert.ok(narrowing, 'the feed carries the narrowing');
    // What is granted now still works, from the next token on; another client's tokens are untouched.
    await nextSecond();
    assert.equal((await helper.verify(await clientCredentialsToken(server.url, svc, API, 'read'))).client_id, svc.id);
    const other = await serviceClient('svc-untouched');
    await server.apis.grant(other.id, API, { scopes: ['read'] });
    assert.equal((await helper.verify(await clientCredentialsToken(server.url, other, API, 'read'))).client_id, other.id);
    // A person's token issued to the client (under a grant) is not the client's own: not concerned,
    // though issued in the narrowing's second (and after the store began: its epoch).
    assert.equal(await server.revocations.isRevoked({ client_id: svc.id, aud: API, gid: 'a-person-grant', iat: narrowing.revoked_at }), false);

    // Revoked outright (DELETE): its opaque token there is inactive, and stays so once granted again.
    assert.equal((await admin('DELETE', `/clients/${svc.id}/grants/${encodeURIComponent(OPAQUE_API)}`)).status, 204);
    await server.apis.grant(svc.id, OPAQUE_API, { scopes: ['read'] });
    assert.deepEqual(await introspect(server.url, RS, opaque), { active: false }, 'a grant given again does not revive the token');
  });

  it('removing an API ends every token for it, and an API added again with the identifier does not bring them back', async () => {
    const STORED = 'https://removed.example.test';
    await server.apis.add({ identifier: STORED, scopes: ['read'] });
    const svc = await serviceClient('svc-of-removed-api');
    await server.apis.grant(svc.id, STORED, { scopes: ['read'] });
    const token = await clientCredentialsToken(server.url, svc, STORED, 'read');
    const storedHelper = await createResourceServer({ issuer: server.issuer, audience: STORED, clientId: RS.id, clientSecret: RS.secret });
    try {
      assert.equal((await storedHelper.verify(token)).client_id, svc.id);
      assert.equal((await admin('DELETE', `/apis/${encodeURIComponent(STORED)}`)).status, 204);
      // The same identifier again, the same grant again: the attacker's token must not come back with them.
      await server.apis.add({ identifier: STORED, scopes: ['read'] });
      await server.apis.grant(svc.id, STORED, { scopes: ['read'] });
      assert.deepEqual(await introspect(server.url, svc, token), { active: false });
      await refused(storedHelper, token);
      assert.ok((await feed()).some((entry) => entry.type === 'api' && entry.aud === STORED));
      await nextSecond();
      assert.equal((await storedHelper.verify(await clientCredentialsToken(server.url, svc, STORED, 'read'))).client_id, svc.id);
    } finally {
      storedHelper.close();
    }
  });

  it("rotating a client's secret ends its registration access token, which read the new secret before; the new one comes with the secret", async () => {
    const registered = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await new server.provider.InitialAccessToken({ expiresIn: 600 }).save()}` },
      body: JSON.stringify({ redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] }),
    });
    assert.equal(registered.status, 201);
    const stolen = (await registered.json()) as { client_id: string; registration_access_token: string; registration_client_uri: string };
    const manage = (token: string, init: RequestInit = {}) =>
      fetch(stolen.registration_client_uri, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });

    const rotation = await admin('POST', `/clients/${stolen.client_id}/secret`);
    assert.equal(rotation.status, 200);
    const rotated = (await rotation.json()) as { client_secret: string; registration_access_token?: string };
    const read = await manage(stolen.registration_access_token);
    assert.equal(read.status, 401, `the old registration access token still reads the client (and its new secret): ${read.status}`);
    const hijack = await manage(stolen.registration_access_token, { method: 'PUT', body: JSON.stringify({ client_id: stolen.client_id, redirect_uris: ['https://evil.example.test/cb'] }) });
    assert.equal(hijack.status, 401, 'nor changes its redirect URIs');

    assert.ok(rotated.registration_access_token, 'the new registration access token is handed over with the secret');
    const own = await manage(rotated.registration_access_token);
    assert.equal(own.status, 200);
    // The store keeps the secret's digest only: it is handed out once, by the rotation.
    assert.equal(((await own.json()) as { client_secret?: string }).client_secret, undefined, 'no secret read back');
  });

  it("a token got with the rotated-out secret during its grace expires when the grace ends; a client deleted by RFC 7592 takes its old secret with it", async () => {
    const svc = await serviceClient('svc-rotated');
    await server.apis.grant(svc.id, API, { scopes: ['read'] });
    const rotatedAt = Math.floor(Date.now() / 1000);
    const fresh = (await clients.rotateSecret(svc.id, SECRET_GRACE)).client_secret as string;
    // The thief still has the old secret, which works for the grace: what it gets must not outlive it.
    const thiefs = decodeJwt(await clientCredentialsToken(server.url, svc, API, 'read'));
    assert.ok(thiefs.exp! <= rotatedAt + SECRET_GRACE + 1, `the old secret's token lives ${thiefs.exp! - rotatedAt} s after the rotation, past its ${SECRET_GRACE} s grace`);
    const owners = decodeJwt(await clientCredentialsToken(server.url, { id: svc.id, secret: fresh }, API, 'read'));
    assert.equal(owners.exp! - owners.iat!, server.config.ttl.clientCredentials, 'the new secret gets the usual lifetime');

    // RFC 7592 DELETE (not the admin API) used to leave the rotated-out secret behind for a client made again with the id.
    const registered = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await new server.provider.InitialAccessToken({ expiresIn: 600 }).save()}` },
      body: JSON.stringify({ redirect_uris: [], grant_types: ['client_credentials'], response_types: [] }),
    });
    const dcr = (await registered.json()) as { client_id: string; client_secret: string };
    const { registration_access_token: rat } = await clients.rotateSecret(dcr.client_id, SECRET_GRACE);
    const deleted = await fetch(`${server.url}/reg/${dcr.client_id}`, { method: 'DELETE', headers: { authorization: `Bearer ${rat}` } });
    assert.equal(deleted.status, 204);
    await clients.add(machineClient({ id: dcr.client_id, secret: 'a-new-client-with-the-same-id-and-its-own-secret-01' }));
    const old = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: dcr.client_id, secret: dcr.client_secret }) },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    assert.equal(old.status, 401, 'the deleted client\'s old secret authenticates the new client');
  });

  it("a leaked secret: a rotation asked to keep no grace (the admin API's previous_secret_valid_for 0, the developer page's 'it may have leaked') stops the old secret at once, at every instance", async () => {
    // Another instance, which authenticated the client before the rotation.
    const other = await serveProcess({ ...env, PORT: String(await freePort()) });
    try {
      const authenticates = async (at: string, client: ClientCredentials) =>
        (
          await fetch(`${at}/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
            body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
          })
        ).status === 200;
      const svc = await serviceClient('svc-leaked');
      await server.apis.grant(svc.id, API, { scopes: ['read'] });
      assert.ok(await authenticates(other.url, svc), 'the secret works at the other instance before the rotation');

      const rotation = await admin('POST', `/clients/${svc.id}/secret`, { previous_secret_valid_for: 0 });
      assert.equal(rotation.status, 200);
      const rotated = (await rotation.json()) as { client_secret: string; previous_secret_valid_for: number };
      assert.equal(rotated.previous_secret_valid_for, 0);
      for (const at of [server.url, other.url]) {
        assert.equal(await authenticates(at, svc), false, `the leaked secret still authenticates at ${at}`);
        assert.ok(await authenticates(at, { id: svc.id, secret: rotated.client_secret }), `the new one works at ${at}`);
      }
      const longer = await admin('POST', `/clients/${svc.id}/secret`, { previous_secret_valid_for: SECRET_GRACE * 10 });
      assert.equal(((await longer.json()) as { previous_secret_valid_for: number }).previous_secret_valid_for, SECRET_GRACE, 'never a longer grace than configured');
      assert.equal((await admin('POST', `/clients/${svc.id}/secret`, { previous_secret_valid_for: 'none' })).status, 400);

      // The developer page: the owner says it may have leaked.
      const owner = await server.accounts.create('leaky', PASSWORD);
      const app = { id: 'app-leaked', secret: 'app-leaked-client-secret-with-plenty-of-entropy-01' };
      await clients.add({ ...machineClient(app), owner: owner.sub });
      await server.apis.grant(app.id, API, { scopes: ['read'] });
      const developer = await developerSignIn(server.issuer, 'leaky', PASSWORD);
      const shown = await developer.agent.submit(developer.page, `/developer/apps/${app.id}/secret`, { leaked: 'yes' });
      assert.equal(shown.status, 200);
      assert.match(shown.html, /The previous secret no longer works/);
      const fresh = /<code id="client-secret">([^<]+)<\/code>/.exec(shown.html)![1]!;
      for (const at of [server.url, other.url]) {
        assert.equal(await authenticates(at, app), false, `the developer's leaked secret still authenticates at ${at}`);
        assert.ok(await authenticates(at, { id: app.id, secret: fresh }));
      }
    } finally {
      await other.stop();
    }
  });

  it("a leaked secret rotated without grace (admin API, developer page) ends the tokens the client got for itself with it: introspection, the admin API, latchkey/resource-server", async () => {
    // Whoever holds the leaked secret got tokens with it before the rotation: for an API, and for the admin API.
    const svc = await serviceClient('svc-thief-tokens');
    await server.apis.grant(svc.id, API, { scopes: ['read'] });
    await server.apis.grant(svc.id, OPAQUE_API, { scopes: ['read'] });
    await server.apis.grant(svc.id, `${server.issuer}/admin`, { scopes: ['admin:read'] });
    const [jwt, opaque, adminToken] = [
      await clientCredentialsToken(server.url, svc, API, 'read'),
      await clientCredentialsToken(server.url, svc, OPAQUE_API, 'read'),
      await clientCredentialsToken(server.url, svc, `${server.issuer}/admin`, 'admin:read'),
    ];
    const adminReads = async () => (await fetch(`${server.url}/admin/clients`, { headers: { authorization: `Bearer ${adminToken}` } })).status;
    assert.equal((await introspect(server.url, RS, jwt)).active, true);
    assert.equal((await introspect(server.url, RS, opaque)).active, true);
    assert.equal(await adminReads(), 200);

    assert.equal((await admin('POST', `/clients/${svc.id}/secret`, { previous_secret_valid_for: 0 })).status, 200);
    assert.deepEqual(await introspect(server.url, RS, jwt), { active: false }, "the thief's JWT outlives the leaked secret's rotation");
    assert.deepEqual(await introspect(server.url, RS, opaque), { active: false }, "the thief's opaque token outlives the leaked secret's rotation");
    assert.equal(await adminReads(), 401, "the thief's admin token outlives the leaked secret's rotation");
    await refused(helper, jwt);

    // The developer page's "it may have leaked" alike.
    const owner = await server.accounts.create('leaky-tokens', PASSWORD);
    const app = { id: 'app-leaked-tokens', secret: 'app-leaked-tokens-secret-with-plenty-of-entropy-01' };
    await clients.add({ ...machineClient(app), owner: owner.sub });
    await server.apis.grant(app.id, API, { scopes: ['read'] });
    const stolen = await clientCredentialsToken(server.url, app, API, 'read');
    const developer = await developerSignIn(server.issuer, 'leaky-tokens', PASSWORD);
    assert.equal((await developer.agent.submit(developer.page, `/developer/apps/${app.id}/secret`, { leaked: 'yes' })).status, 200);
    assert.deepEqual(await introspect(server.url, RS, stolen), { active: false }, 'the token got with the secret the developer says leaked outlives its rotation');
  });

  it('a rotation without grace ends the token the client got without naming an API too, and a token got at once with the new secret works (its cutoff second passed before the answer)', async () => {
    const svc = { ...(await serviceClient('svc-no-audience')) };
    await server.apis.grant(svc.id, API, { scopes: ['read'] });
    const token = async (client: { id: string; secret: string }, body: Record<string, string>) => {
      const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}` }, body: new URLSearchParams({ grant_type: 'client_credentials', ...body }) });
      assert.equal(response.status, 200, await response.clone().text());
      return ((await response.json()) as { access_token: string }).access_token;
    };
    const unnamed = await token(svc, {});
    assert.equal((await introspect(server.url, svc, unnamed)).active, true);
    for (let round = 0; round < 3; round += 1) {
      const rotated = await admin('POST', `/clients/${svc.id}/secret`, { previous_secret_valid_for: 0 });
      assert.equal(rotated.status, 200);
      svc.secret = ((await rotated.json()) as { client_secret: string }).client_secret;
      // At once, whatever the second: the app redeployed with its new secret gets a token that works.
      const fresh = await token(svc, { resource: API, scope: 'read' });
      assert.equal((await introspect(server.url, RS, fresh)).active, true, `round ${round}: a token got with the new secret at once is ended with the old one's`);
    }
    assert.deepEqual(await introspect(server.url, svc, unnamed), { active: false }, 'the token got without resource outlives the rotation');
  });

  it('a rotation without grace that fails once the secret is written has ended the tokens got with the old secret already (they end before the secret changes)', async () => {
    const svc = await serviceClient('svc-rotation-half-way');
    await server.apis.grant(svc.id, API, { scopes: ['read'] });
    const stolen = await clientCredentialsToken(server.url, svc, API, 'read');
    assert.equal((await introspect(server.url, RS, stolen)).active, true);
    // The store fails for the endings written once the new secret is in place.
    const apis = server.apis as typeof server.apis & { endOwnTokens(id: string): Promise<void> };
    const endOwnTokens = apis.endOwnTokens.bind(apis);
    apis.endOwnTokens = async (id) => {
      const secret = (await clients.get(id))?.client_secret;
      if (typeof secret !== 'string' || secretDigestOf(secret) !== digestOf(svc.secret)) throw new Error('Connection is closed.');
      return endOwnTokens(id);
    };
    try {
      assert.ok((await admin('POST', `/clients/${svc.id}/secret`, { previous_secret_valid_for: 0 })).status >= 500, 'the rotation fails half-way');
    } finally {
      apis.endOwnTokens = endOwnTokens;
    }
    assert.deepEqual(await introspect(server.url, RS, stolen), { active: false }, 'the token got with the leaked secret outlives a rotation that failed after the write');
    await refused(helper, stolen);
  });

  it('a removal that fails half-way (a person, a client, an API, an operator grant; a person disabled) leaves it there to remove again, which ends its tokens', async () => {
    // The store refuses the revocation list's keys to this connection only: the CLI fails in the middle of the removal.
    const raw = new Redis(redis.url);
    const prefix = server.config.redis.keyPrefix;
    await raw.call('ACL', 'SETUSER', 'halfway', 'on', '>halfway-password', `~${prefix}[^r]*`, `~${prefix}r[^e]*`, `~${prefix}re[^v]*`, '&*', '+@all');
    raw.disconnect();
    const failing = { ...env, REDIS_URL: `redis://halfway:halfway-password@127.0.0.1:${redis.port}` };
    const config = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    await server.accounts.create('yolanda', PASSWORD);
    const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'yolanda', password: PASSWORD, params: { scope: 'openid read', resource: API } });
    const persons = (await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API })).access_token;
    await server.accounts.create('zelda', PASSWORD);
    const disabledFlow = await frontChannel(config, { redirectUri: REDIRECT, username: 'zelda', password: PASSWORD, params: { scope: 'openid read', resource: API } });
    const disabledPersons = (await oidc.authorizationCodeGrant(config, disabledFlow.callback, { pkceCodeVerifier: disabledFlow.verifier }, { resource: API })).access_token;
    const svc = await serviceClient('svc-removed-twice');
    await server.apis.grant(svc.id, API, { scopes: ['read'] });
    const clients = await clientCredentialsToken(server.url, svc, API, 'read');
    const granted = await serviceClient('svc-grant-revoked-twice');
    await server.apis.grant(granted.id, API, { scopes: ['read'] });
    const grantees = await clientCredentialsToken(server.url, granted, API, 'read');
    const STORED = 'https://removed-twice.example.test';
    await server.apis.add({ identifier: STORED, scopes: ['read'] });
    await server.apis.grant(granted.id, STORED, { scopes: ['read'] });
    const stored = await clientCredentialsToken(server.url, granted, STORED, 'read');

    // Each token is introspected by a client that may see it (the API's own, or the token's client for the API RS does not serve).
    assert.equal((await introspect(server.url, granted, stored)).active, true);
    for (const [args, token, introspector] of [
      // Disabling is no removal, but fails half-way alike: run again, it ends what the person holds.
      [['users', 'disable', 'zelda'], disabledPersons, RS],
      [['users', 'remove', 'yolanda'], persons, RS],
      [['clients', 'remove', svc.id], clients, RS],
      [['apis', 'revoke', '--client', granted.id, '--api', API], grantees, RS],
      [['apis', 'remove', STORED], stored, granted],
    ] as const) {
      assert.notEqual((await latchkey(failing, [...args])).status, 0, `${args.join(' ')} fails half-way`);
      const again = await latchkey(env, [...args]);
      assert.equal(again.status, 0, `${args.join(' ')} again: ${again.stderr}`);
      assert.deepEqual(await introspect(server.url, introspector, token), { active: false }, `${args.join(' ')}: the token outlives the removal`);
      if (introspector === RS) await refused(helper, token);
    }
  });

  it("an operator setting a person's password (latchkey users passwd) ends their sessions with every grant they made; --keep-sessions leaves them", async () => {
    const config = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    for (const [username, keep] of [
      ['victor', false],
      ['wendy', true],
    ] as const) {
      await server.accounts.create(username, PASSWORD);
      // The thief signed in with the stolen password twice, each time getting a refresh token with
      // offline access; the first session has ended since (offline access outlives it, by design).
      const offline = async () => {
        const flow = await frontChannel(config, { redirectUri: REDIRECT, username, password: PASSWORD, params: { scope: 'openid offline_access', prompt: 'consent' } });
        return (await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier })).refresh_token!;
      };
      const accountSessions = new AccountSessions(server.kv, server.providers, server.accounts);
      const sessionsOf = async () => accountSessions.list((await server.accounts.findByUsername(username))!.sub);
      const left = await offline();
      for (const session of await sessionsOf()) await accountSessions.end(session);
      const live = await offline();
      assert.equal((await sessionsOf()).length, 1);

      const run = await latchkey(env, ['users', 'passwd', username, '--password-stdin', ...(keep ? ['--keep-sessions'] : [])], 'a brand new password for the owner');
      assert.equal(run.status, 0, run.stderr);
      const sessions = await sessionsOf();
      const refresh = (token: string) =>
        oidc.refreshTokenGrant(config, token).then(
          () => 'refreshed',
          (error: oidc.ResponseBodyError) => error.error,
        );
      if (keep) {
        assert.equal(sessions.length, 1, '--keep-sessions keeps the session');
        assert.deepEqual([await refresh(left), await refresh(live)], ['refreshed', 'refreshed']);
      } else {
        assert.deepEqual(sessions, [], "the thief's session outlives the password it signed in with");
        assert.equal(await refresh(live), 'invalid_grant', "the thief's refresh token outlives the password");
        assert.equal(await refresh(left), 'invalid_grant', 'the refresh token of a session that ended first outlives the password');
        assert.match(run.stdout, /ended 1 session/);
      }
      // The consent given in the person's name (the thief's, perhaps, to an app of theirs) goes too:
      // the app asks again rather than getting a code from the person's next session silently.
      const agent = new Agent();
      const login = await agent.follow(oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' }).href, {}, REDIRECT);
      const password = keep ? PASSWORD : 'a brand new password for the owner';
      const next = await signInSteps(agent, login, { username, password, consent: 'stop', stopAt: REDIRECT });
      assert.equal(isConsent(next), !keep, keep ? 'with --keep-sessions the consent stays' : `the consent outlives the operator's password reset (${next.status} ${next.url})`);
    }
  });
});
