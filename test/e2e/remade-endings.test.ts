/**
 * Something removed and made again with the same identifier starts clean: a client deleted and
 * added again by an operator with the same client_id (another app, perhaps) inherits nothing its
 * predecessor was given. Its deletion forgets every consent and ends every grant and token, but what
 * a request in flight wrote meanwhile (a consent confirmed exactly then, a refresh) may outlive it:
 * here whatever of the predecessor the deletion removed is put back once it is done (a Redis
 * DUMP/RESTORE of the keys it deleted, all but the client's own record and the revocation list), and
 * the client added again must not be given any of it. A consent page of the predecessor still open
 * must not give the new client a code either. Nor does the deletion's own revocation entry refuse
 * what the new client, or an API added again, gets in the second of the deletion.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import type { Clients } from '../../src/registration/clients.js';
import { Agent } from '../helpers/agent.js';
import { frontChannel } from '../helpers/front-channel.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const APP = { id: 'remade', secret: 'remade-app-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const PASSWORD = 'remade endings test password';
const METADATA = { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] };

describe('e2e: a client or API removed and added again with the same identifier inherits nothing', function () {
  this.timeout(60_000);
  const dir = testDir();
  let redis: RedisServer;
  let raw: Redis;
  let server: TestServer;
  let clients: Clients;
  let app: oidc.Configuration;

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    const port = await freePort();
    server = await startServer({ redisUrl: redis.url, dir, port, env: { CLIENTS: JSON.stringify([machineClient(RS)]), RESOURCE_SERVERS } });
    await grantFeed(server, RS.id);
    clients = server.clients;
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  afterEach(async () => {
    if (await clients.get(APP.id)) await clients.remove(APP.id);
  });
  after(async () => {
    raw?.disconnect();
    await server?.stop();
    await redis?.stop();
  });

  /** prompt=none with the browser's session: back at the app with a code, or the error. */
  async function silentSignIn(agent: Agent): Promise<string> {
    const back = new URL((await startAuthorization(agent, app, REDIRECT, { prompt: 'none' })).page.url);
    return back.searchParams.get('error') ?? (back.searchParams.get('code') ? 'code' : `? ${back.href}`);
  }

  /** Every key there is now, with what it holds and how long it lives (DUMP, PTTL). */
  async function snapshot(): Promise<Map<string, { dump: Buffer; ttl: number }>> {
    const keys = await raw.keys('*');
    const entries = await Promise.all(keys.map(async (key) => [key, { dump: (await raw.dumpBuffer(key))!, ttl: await raw.pttl(key) }] as const));
    return new Map(entries.filter(([, { dump }]) => dump !== null));
  }

  /** Puts back what the deletion removed: what requests in flight may have written after its endings. Not the client's record, nor the revocation list. */
  async function restoreRemoved(before: Map<string, { dump: Buffer; ttl: number }>) {
    const prefix = server.config.redis.keyPrefix;
    for (const [key, { dump, ttl }] of before) {
      if (key.startsWith(`${prefix}revoked:`) || key === `${prefix}oidc:Client:${APP.id}` || key === `${prefix}oidc:clients`) continue;
      if (await raw.exists(key)) continue;
      await raw.restore(key, ttl > 0 ? ttl : 0, dump);
    }
  }

  it("a consent, grant, refresh and access tokens of the deleted client that outlived its deletion give the client added again nothing", async () => {
    await clients.add({ ...METADATA });
    await server.accounts.create('ann', PASSWORD);
    const flow = await frontChannel(app, { redirectUri: REDIRECT, username: 'ann', password: PASSWORD, params: { scope: 'openid offline_access read', resource: API, prompt: 'consent' } });
    const tokens = await oidc.authorizationCodeGrant(app, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API });
    const opaque = await oidc.refreshTokenGrant(app, tokens.refresh_token!);
    assert.ok(decodeJwt(tokens.access_token).gid, 'a JWT under a grant');
    assert.equal(await silentSignIn(flow.agent), 'code', 'the consent is remembered');

    const kept = await snapshot();
    await clients.remove(APP.id);
    await restoreRemoved(kept);
    // An operator adds a client with the id again (the same secret and redirect URI: whoever held the old one's tokens may use them).
    await clients.add({ ...METADATA });

    assert.equal(await silentSignIn(flow.agent), 'consent_required', "the deleted client's remembered consent does not let the new one in");
    const other = new Agent();
    const fresh = await signInSteps(other, (await startAuthorization(other, app, REDIRECT, { scope: 'openid' })).page, { username: 'ann', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.ok(!fresh.url.startsWith(REDIRECT), `a new sign-in is asked for consent (${fresh.url})`);
    for (const [what, token] of [
      ['the JWT access token', tokens.access_token],
      ['the opaque access token', opaque.access_token],
      ['the refresh token', opaque.refresh_token!],
    ] as const) {
      assert.equal((await introspect(server.url, APP, token)).active, false, `${what} is inactive to the new client`);
    }
    assert.equal((await introspect(server.url, RS, tokens.access_token)).active, false, 'the JWT is inactive to its API');
    assert.equal((await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${opaque.access_token}` } })).status, 401, 'userinfo refuses the opaque token');
    await assert.rejects(oidc.refreshTokenGrant(app, opaque.refresh_token!), (error: { error?: string }) => error.error === 'invalid_grant');

    // The new client's own sign-in works, at once.
    const own = await frontChannel(app, { redirectUri: REDIRECT, username: 'ann', password: PASSWORD, params: { scope: 'openid offline_access' } });
    const ownTokens = await oidc.authorizationCodeGrant(app, own.callback, { pkceCodeVerifier: own.verifier });
    assert.equal((await introspect(server.url, APP, ownTokens.access_token)).active, true);
    assert.ok((await oidc.refreshTokenGrant(app, ownTokens.refresh_token!)).access_token);
  });

  it("a consent page of the deleted client, confirmed once a client has the id again, gives the new client no code", async () => {
    await clients.add({ ...METADATA });
    await server.accounts.create('bob', PASSWORD);
    const agent = new Agent();
    const { page } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid offline_access' });
    const consent = await signInSteps(agent, page, { username: 'bob', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(consent), `${consent.status} ${consent.url}`);
    await clients.remove(APP.id);
    await clients.add({ ...METADATA });
    const confirmed = await agent.submit(consent, '/confirm', {}, REDIRECT);
    assert.ok(!confirmed.url.startsWith(REDIRECT), `the new client got a code from the old one's page: ${confirmed.url}`);
    assert.equal(confirmed.status, 400);
    assert.equal(await silentSignIn(agent), 'consent_required', 'nothing was remembered for the new client');
  });

  it("a client added again in the second of its predecessor's deletion: its own tokens are not refused with the predecessor's", async () => {
    await clients.add(machineClient(APP));
    // Early in a second, so that the deletion, the addition and the token usually share it.
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
    await clients.remove(APP.id);
    await clients.add(machineClient(APP));
    await server.apis.grant(APP.id, API, { scopes: ['read'] });
    const token = await clientCredentialsToken(server.url, APP, API, 'read');
    assert.equal((await introspect(server.url, RS, token)).active, true, "the new client's token is not refused by its predecessor's client entry");
  });

  it("an API added again in the second of its removal: the tokens for it are not refused with the removed one's", async () => {
    const identifier = 'https://remade-api.example.test';
    await clients.add(machineClient(APP));
    await server.apis.add({ identifier, scopes: ['read'] });
    await server.apis.grant(APP.id, identifier, { scopes: ['read'] });
    const old = await clientCredentialsToken(server.url, APP, identifier, 'read');
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
    await server.apis.remove(identifier);
    await server.apis.add({ identifier, scopes: ['read'] });
    await server.apis.grant(APP.id, identifier, { scopes: ['read'] });
    const token = await clientCredentialsToken(server.url, APP, identifier, 'read');
    assert.equal((await introspect(server.url, APP, token)).active, true, "the new API's token is not refused by the removed one's entry");
    assert.equal((await introspect(server.url, APP, old)).active, false, "the removed API's token stays refused");
    await server.apis.remove(identifier);
  });
});
