/**
 * The residuals pass of 2026-12-01: holes left open by the earlier red-team passes in "Latchkey
 * hands out more than was granted" and "some endings do not end", black box with real clients
 * (openid-client) against a running Latchkey; each test performs one attack that succeeded before
 * its fix (docs/security.md says which).
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { freePort } from '../helpers/redis.js';
import { startRelayedServer, type Relay, type RelayedServer } from '../helpers/relay.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { Upstreams } from '../../src/upstreams/registry.js';
import { isConsent, registerPublicClient, signInSteps, silentAnswers, startAuthorization } from '../helpers/sign-in.js';
import { basic, clientCredentialsToken, machineClient, RESOURCE_SERVERS, type ClientCredentials } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const TRACKER_REDIRECT = 'https://tracker.example.test/callback';
const PASSWORD = 'red team residuals passphrase';
const APP: ClientCredentials = { id: 'app', secret: 'app-secret-with-plenty-of-entropy-0123456789abcdef' };
const insecure = { execute: [oidc.allowInsecureRequests] };

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/** A DPoP proof made by hand (jose) with `key`, for a request to `htu`, bound to `token` if given. */
async function proof(key: KeyPair, htm: string, htu: string, token?: string): Promise<string> {
  return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm, htu, ...(token ? { ath: createHash('sha256').update(token).digest('base64url') } : {}) })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey) })
    .sign(key.privateKey);
}

/** Resolves once the epoch second after `second` has begun. */
async function pastSecond(second: number): Promise<void> {
  while (Math.floor(Date.now() / 1000) <= second) await new Promise((done) => setTimeout(done, 50));
}

describe('e2e: red team, residuals of "more than was granted" and "endings that do not end"', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({
      env: { REGISTRATION_OPEN: 'true' },
      clients: [{ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'] }],
    });
    await server.accounts.create('pat', PASSWORD, { email: 'pat@example.test' });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), insecure);
  });
  after(async () => {
    await server?.stop();
  });

  it('an upstream whose back-channel logout cannot be handled now (the upstream unreachable for its keys) is told when to retry: 503 with Retry-After (Back-Channel Logout 1.0 §2.8)', async () => {
    const issuer = `http://127.0.0.1:${await freePort()}`;
    await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'down', issuer, clientId: 'latchkey', clientSecret: APP.secret, scope: 'openid', displayName: 'Down Inc', linkByEmail: false, endSession: false });
    const { privateKey } = await generateKeyPair('RS256');
    const logoutToken = await new SignJWT({ sid: 'down-sid', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
      .setProtectedHeader({ alg: 'RS256', typ: 'logout+jwt' })
      .setIssuer(issuer)
      .setAudience('latchkey')
      .setIssuedAt()
      .setJti(randomUUID())
      .sign(privateKey);
    const answer = await fetch(`${server.url}/upstream/down/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: logoutToken }) });
    assert.equal(answer.status, 503, await answer.clone().text());
    assert.match(answer.headers.get('retry-after') ?? '', /^[1-9]\d*$/, 'Retry-After');
  });

  it("an app the person never allowed learns by silent prompt=none requests neither how long ago nor how strongly they signed in (max_age, acr_values, an essential acr); the app they allowed is still told login_required (OIDC Core §3.1.2.1, §3.1.2.6)", async () => {
    const { config: tracker } = await registerPublicClient(server.url, server.issuer, TRACKER_REDIRECT);

    // Pat signs in with a password at the app they use.
    const agent = new Agent();
    const { page } = await startAuthorization(agent, app, REDIRECT);
    const signedIn = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.ok(new URL(signedIn.url).searchParams.get('code'), signedIn.url);
    // More than a second since the sign-in, so that max_age=1 has passed (max_age=0 is the engine's prompt=login: login_required whoever asks).
    await pastSecond(Math.floor(Date.now() / 1000) + 1);

    // The tracker, which pat never allowed anything, weighs the sign-in silently: older than a second? a second factor?
    const probes: Record<string, Record<string, string>> = {
      'nothing more': {},
      'max_age=1': { max_age: '1' },
      'max_age=86400': { max_age: '86400' },
      'acr_values=mfa': { acr_values: 'mfa' },
      'acr_values=pwd': { acr_values: 'pwd' },
      'essential acr mfa': { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['mfa', 'phr'] } } }) },
      'essential acr pwd': { claims: JSON.stringify({ id_token: { acr: { essential: true, value: 'pwd' } } }) },
    };
    const answers = await silentAnswers(agent, tracker, TRACKER_REDIRECT, probes);
    assert.deepEqual(new Set(Object.values(answers)), new Set(['consent_required: requested scopes not granted']), `the answers weigh pat's sign-in for the tracker: ${JSON.stringify(answers, null, 1)}`);

    // The app pat allowed may still ask for a fresher or stronger sign-in, and is told it needs one.
    for (const params of [{ max_age: '1' }, { acr_values: 'mfa' }] as Record<string, string>[]) {
      const allowed = await startAuthorization(agent, app, REDIRECT, { prompt: 'none', ...params });
      assert.equal(new URL(allowed.page.url).searchParams.get('error'), 'login_required', `${JSON.stringify(params)}: ${allowed.page.url}`);
    }
    const fresh = await startAuthorization(agent, app, REDIRECT, { prompt: 'none', max_age: '86400' });
    assert.ok(new URL(fresh.page.url).searchParams.get('code'), fresh.page.url);
  });
});

describe('e2e: red team residuals, a person\'s token request in flight across an ending (two instances, one through a relay)', function () {
  this.timeout(120_000);
  const OPS: ClientCredentials = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
  const RS: ClientCredentials = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
  const LENDER: ClientCredentials = { id: 'lender', secret: 'lender-secret-with-plenty-of-entropy-0123456789abcdef' };
  const METADATA = { redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access email' };
  let relayed: RelayedServer;
  let relay: Relay;
  let server: TestServer;
  /** Instance B: the same issuer and keys, on Redis directly. */
  let other: TestServer;

  before(async () => {
    relayed = await startRelayedServer({ CLIENTS: JSON.stringify([machineClient(OPS), machineClient(RS)]), RESOURCE_SERVERS });
    ({ relay, server } = relayed);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    other = await startServer({ dir: dirname(relayed.env.KEYS_DIR!), port: await freePort(), redisUrl: relayed.env.REDIS_URL!, env: { CLIENTS: relayed.env.CLIENTS!, RESOURCE_SERVERS, ISSUER: server.issuer } });
    await server.accounts.create('pat', PASSWORD, { email: 'pat@example.test' });
  });
  after(async () => {
    await other?.stop();
    await relayed?.stop();
  });

  /** An operator's call to the admin API's clients at instance B. */
  async function admin(method: string, path: string, body: Record<string, unknown>): Promise<Response> {
    const token = await clientCredentialsToken(other.url, OPS, `${server.issuer}/admin`, 'admin');
    return fetch(`${other.url}/admin/clients${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  /** A token request of `params` at instance A, as `client` if given, else with the lender's client_id alone; with `dpop`, a DPoP proof. */
  async function token(params: Record<string, string>, client?: ClientCredentials, dpop?: string): Promise<{ status: number; body: Record<string, string> }> {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(client && { authorization: basic(client) }), ...(dpop && { dpop }) },
      body: new URLSearchParams({ ...(!client && { client_id: LENDER.id }), ...params }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }

  it("a confidential client made public (admin API at another instance) while a person's code is redeemed in flight: neither the access token nor the refresh token that redemption gets outlives the change (the refresh token is no key with the client_id alone) (RFC 9700 §4.14.2)", async () => {
    assert.equal((await admin('POST', '', { client_id: LENDER.id, client_secret: LENDER.secret, ...METADATA })).status, 201);
    const lender = await oidc.discovery(new URL(server.issuer), LENDER.id, LENDER.secret, oidc.ClientSecretBasic(LENDER.secret), insecure);
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, lender, REDIRECT, { scope: 'openid offline_access email', prompt: 'consent' });
    let current = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    if (isConsent(current)) current = await agent.submit(current, '/confirm', {}, REDIRECT);
    const code = new URL(current.url).searchParams.get('code')!;

    // The client redeems the code with a DPoP proof, held at the proof's replay check (taken as the code is found, before it is spent): it has read the client and the code.
    const key = await generateKeyPair('ES256');
    const dpop = await proof(key, 'POST', `${server.issuer}/token`);
    const held = await relay.hold(
      (chunk) => chunk.includes('dpop-proof:'),
      () => token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier }, LENDER, dpop),
    );
    // The operator makes the client public (its server gone): what it holds on people's behalf ends.
    assert.equal((await admin('PUT', `/${LENDER.id}`, { ...METADATA, token_endpoint_auth_method: 'none' })).status, 200);
    // The ending's mark is of this second or an earlier one; the redemption goes on in a later one.
    await pastSecond(Math.floor(Date.now() / 1000));
    const redeemed = await held.release();
    assert.notEqual(redeemed.status, 503, 'the held request timed out: nothing was tried');
    if (redeemed.status !== 200) return; // refused: nothing outlives the change
    const { access_token: accessToken, refresh_token: refreshToken } = redeemed.body;
    const userinfo = `${server.issuer}/me`;
    const me = await fetch(`${server.url}/me`, { headers: { authorization: `DPoP ${accessToken}`, dpop: await proof(key, 'GET', userinfo, accessToken) } });
    assert.equal(me.status, 401, 'the access token the redemption in flight got works at userinfo');
    const leaked = await token({ grant_type: 'refresh_token', refresh_token: refreshToken! }, undefined, await proof(key, 'POST', `${server.issuer}/token`));
    assert.equal(leaked.body.error, 'invalid_grant', `the refresh token the redemption in flight got, with the client_id alone: ${JSON.stringify(leaked.body)}`);
  });
});

describe('e2e: red team residuals, refresh token reuse with ttl.refreshReuseGrace > 0', function () {
  this.timeout(60_000);
  /** ttl.refreshReuseGrace, seconds. */
  const GRACE = 5;
  const WEB: ClientCredentials = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789' };
  let server: TestServer;
  let web: oidc.Configuration;

  before(async () => {
    server = await startServer({
      // A window a loaded machine does not overrun between the two parallel refreshes (1 s was, in
      // refresh-reuse-grace.test.ts: the second was taken for reuse and revoked the grant).
      env: { TTL_REFRESH_REUSE_GRACE: String(GRACE) },
      clients: [{ client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] }],
    });
    await server.accounts.create('pat', PASSWORD);
    web = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), insecure);
  });
  after(async () => {
    await server?.stop();
  });

  const refresh = async (refreshToken: string) => {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });
    return { status: response.status, body: (await response.json()) as { access_token?: string; refresh_token?: string; error?: string } };
  };

  it('a rotated refresh token presented again after the window (a theft signal) ends every line the window let grow: each sibling, their successors and every access token of the grant (held; RFC 9700 §4.14.2)', async () => {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, web, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    let current = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: REDIRECT });
    if (isConsent(current)) current = await agent.submit(current, '/confirm', {}, REDIRECT);
    const first = await oidc.authorizationCodeGrant(web, new URL(current.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    const original = first.refresh_token!;

    // Within the window: the client's refresh and its retry (two tabs) each get a line, and each line rotates on.
    const lines = await Promise.all([refresh(original), refresh(original)]);
    for (const line of lines) assert.equal(line.status, 200, JSON.stringify(line.body));
    const successors = await Promise.all(lines.map((line) => refresh(line.body.refresh_token!)));
    for (const successor of successors) assert.equal(successor.status, 200, JSON.stringify(successor.body));
    const rotatedAt = Math.floor(Date.now() / 1000);

    // After the window the thief (or anyone) presents the original again: the grant ends.
    await pastSecond(rotatedAt + GRACE);
    const late = await refresh(original);
    assert.equal(late.body.error, 'invalid_grant', JSON.stringify(late.body));
    // Access tokens first, then the successors' refresh tokens (the lines' own were rotated: presenting them would be reuse itself).
    const alive: string[] = [];
    const accessTokens = { first: first.access_token, ...Object.fromEntries([...lines, ...successors].map((answer, i) => [`${i < 2 ? 'line' : 'successor'} ${i % 2}`, answer.body.access_token])) };
    for (const [name, accessToken] of Object.entries(accessTokens)) {
      if ((await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status === 200) alive.push(`${name}'s access token`);
    }
    for (const [i, successor] of successors.entries()) if ((await refresh(successor.body.refresh_token!)).status === 200) alive.push(`successor ${i}'s refresh token`);
    assert.deepEqual(alive, [], 'what outlives the theft signal');
  });
});
