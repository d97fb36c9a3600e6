/**
 * ID tokens carry the granted scopes' claims by default (as Keycloak and Google do), so client
 * libraries that read the ID token alone (express-openid-connect, oidc-client-ts without
 * loadUserInfo, Authlib) see the person's name and email. Configurable globally
 * (idToken.scopeClaims) and per client (id_token_scope_claims metadata). openid-client drives.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { frontChannel } from '../helpers/front-channel.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'correct horse battery staple';
const PROFILE = { name: 'Alice Liddell', given_name: 'Alice', email: 'alice@example.test', email_verified: true };

const client = (id: string, extra: Record<string, unknown> = {}) => ({
  client_id: id,
  client_secret: SECRET,
  redirect_uris: [REDIRECT],
  grant_types: ['authorization_code', 'refresh_token'],
  ...extra,
});

async function serverWith(redis: RedisServer, env: Record<string, string>): Promise<TestServer> {
  const server = await startServer({ redisUrl: redis.url, env: { REDIS_KEY_PREFIX: `lk${Math.random().toString(36).slice(2)}:`, ...env } });
  await server.accounts.create('alice', PASSWORD, PROFILE);
  return server;
}

async function idTokenClaims(server: TestServer, clientId: string, scope: string, params: Record<string, string> = {}) {
  const config = await oidc.discovery(new URL(server.issuer), clientId, SECRET, oidc.ClientSecretBasic(SECRET), {
    execute: [oidc.allowInsecureRequests],
  });
  const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'alice', password: PASSWORD, params: { scope, prompt: 'consent', ...params } });
  const tokens = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier });
  return { claims: tokens.claims()!, tokens, config };
}

describe('e2e: ID token claims of the granted scopes (openid-client)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let byDefault: TestServer;
  let switchedOff: TestServer;

  before(async () => {
    redis = await startRedisServer();
    byDefault = await serverWith(redis, {
      CLIENTS: JSON.stringify([client('web'), client('conform', { id_token_scope_claims: false })]),
    });
    switchedOff = await serverWith(redis, {
      ID_TOKEN_SCOPE_CLAIMS: 'false',
      REGISTRATION_OPEN: 'true',
      CLIENTS: JSON.stringify([client('web'), client('wants-claims', { id_token_scope_claims: true })]),
    });
  });
  after(async () => {
    await byDefault?.stop();
    await switchedOff?.stop();
    await redis?.stop();
  });

  it('by default, the ID token of a code flow with openid profile email has name and email, also after a refresh', async () => {
    const { claims, tokens, config } = await idTokenClaims(byDefault, 'web', 'openid profile email offline_access');
    assert.equal(claims.name, PROFILE.name);
    assert.equal(claims.given_name, PROFILE.given_name);
    assert.equal(claims.email, PROFILE.email);
    assert.equal(claims.email_verified, true);
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    assert.equal(refreshed.claims()!.email, PROFILE.email);
  });

  it('only the granted scopes: openid email gives email but no name', async () => {
    const { claims } = await idTokenClaims(byDefault, 'web', 'openid email');
    assert.equal(claims.email, PROFILE.email);
    assert.equal(claims.name, undefined);
  });

  it('a client registered with id_token_scope_claims: false gets sub only (userinfo still answers)', async () => {
    const { claims, tokens, config } = await idTokenClaims(byDefault, 'conform', 'openid profile email');
    assert.equal(claims.name, undefined);
    assert.equal(claims.email, undefined);
    assert.ok(claims.sub);
    // Every ID token says when the person signed in: what tells it from a signed userinfo response as an id_token_hint (patches/id-token-hints.ts).
    assert.equal(typeof claims.auth_time, 'number');
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(userinfo.email, PROFILE.email);
  });

  it('with idToken.scopeClaims off: sub only, except claims requested by name; a client may opt in', async () => {
    const off = await idTokenClaims(switchedOff, 'web', 'openid profile email');
    assert.equal(off.claims.name, undefined);
    assert.equal(off.claims.email, undefined);
    assert.equal(typeof off.claims.auth_time, 'number');
    const named = await idTokenClaims(switchedOff, 'web', 'openid profile email', { claims: JSON.stringify({ id_token: { email: null } }) });
    assert.equal(named.claims.email, PROFILE.email);
    assert.equal(named.claims.name, undefined);
    const optedIn = await idTokenClaims(switchedOff, 'wants-claims', 'openid profile email');
    assert.equal(optedIn.claims.name, PROFILE.name);
    assert.equal(optedIn.claims.email, PROFILE.email);
  });

  it('registration accepts id_token_scope_claims as a boolean and refuses anything else', async () => {
    const register = (value: unknown) =>
      fetch(`${switchedOff.url}/reg`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: [REDIRECT], id_token_scope_claims: value }),
      });
    const accepted = await register(true);
    assert.equal(accepted.status, 201);
    assert.equal(((await accepted.json()) as Record<string, unknown>).id_token_scope_claims, true);
    for (const bad of ['yes', 1, { on: true }]) {
      const refused = await register(bad);
      assert.equal(refused.status, 400, JSON.stringify(bad));
      assert.equal(((await refused.json()) as { error?: string }).error, 'invalid_client_metadata');
    }
  });
});
