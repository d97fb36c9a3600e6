/**
 * Endings by time end at the time given, on every endpoint alike (fresh-eyes passes of 2026-12-06,
 * docs/security-passes.md). oidc-provider read what it had stored itself with the 15 s of clock
 * tolerance meant for clients' clocks, so an opaque access token worked at userinfo for 15 s after
 * introspection called it inactive, a grant past its end gave silent codes the token endpoint then
 * refused, an initial access token registered clients after its `expires_at`, and the issuer's
 * introspection called a JWT access token active past its `exp` (patches/exact-expiry.ts,
 * patches/jwt-access-tokens.ts).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, introspect, machineClient } from '../helpers/tokens.js';

const PASSWORD = 'exact expiry test password';
const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const INTROSPECTOR = { id: 'api', secret: 'api-client-secret-with-plenty-of-entropy-0123456' };
/**
 * Lifetimes short enough to wait out, long enough for a sign-in on a loaded machine to finish inside
 * them (an exp is whole seconds: a token of 6 s may live a little over 5).
 */
const ACCESS_TTL = 6;
const GRANT_TTL = 10;

/** Waits until the epoch second `exp` has come, and a little more (well inside the 15 s the engine allowed). */
const pastExp = (exp: number) => sleep(Math.max(0, exp * 1000 - Date.now()) + 1_200);

describe('e2e: what ends by time ends at its time, on every endpoint', function () {
  this.timeout(60_000);
  let server: TestServer;
  let web: oidc.Configuration;

  before(async () => {
    const resourceServers = JSON.stringify([
      { identifier: API, scopes: ['read'], format: 'jwt', accessTokenTTL: ACCESS_TTL, grants: [{ client_id: MACHINE.id, scopes: ['read'] }, { client_id: INTROSPECTOR.id, introspect: true }] },
    ]);
    const clients = [
      { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid profile' },
      machineClient(MACHINE),
      machineClient(INTROSPECTOR),
    ];
    server = await startServer({ ownRedis: true, clients, env: { RESOURCE_SERVERS: resourceServers, TTL_ACCESS_TOKEN: String(ACCESS_TTL), TTL_GRANT: String(GRANT_TTL), TTL_REFRESH_TOKEN: String(GRANT_TTL) } });
    await server.accounts.create('ines', PASSWORD);
    web = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => server?.stop());

  async function signIn(agent: Agent) {
    const { page, verifier } = await startAuthorization(agent, web, REDIRECT, { scope: 'openid profile' });
    const done = await signInSteps(agent, page, { username: 'ines', password: PASSWORD, stopAt: REDIRECT });
    return oidc.authorizationCodeGrant(web, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
  }

  it('an opaque access token is refused at userinfo from its exp, as introspection calls it inactive (the engine took it for 15 s more)', async () => {
    const tokens = await signIn(new Agent());
    const { exp } = await introspect(server.url, WEB, tokens.access_token);
    assert.equal(typeof exp, 'number');
    const userinfo = () => fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } }).then((response) => response.status);
    assert.equal(await userinfo(), 200, 'before its exp');
    await pastExp(exp as number);
    assert.deepEqual(await introspect(server.url, WEB, tokens.access_token), { active: false });
    assert.equal(await userinfo(), 401, 'past its exp');
  });

  it('past the grant’s end the app’s silent request is told consent_required, not given a code the token endpoint refuses', async () => {
    const agent = new Agent();
    const started = Date.now();
    await signIn(agent);
    // The grant was saved during the sign-in: past started + its lifetime, it has ended.
    await pastExp(Math.ceil(started / 1000) + GRANT_TTL);
    const silent = await startAuthorization(agent, web, REDIRECT, { scope: 'openid profile', prompt: 'none' });
    const answer = new URL(silent.page.url).searchParams;
    assert.equal(answer.get('code'), null, `a code from an ended grant: ${silent.page.url}`);
    assert.equal(answer.get('error'), 'consent_required');
  });

  it('the issuer’s introspection calls a JWT access token inactive from its exp', async () => {
    const token = await clientCredentialsToken(server.url, MACHINE, API, 'read');
    const active = await introspect(server.url, INTROSPECTOR, token);
    assert.equal(active.active, true);
    await pastExp(active.exp as number);
    assert.deepEqual(await introspect(server.url, INTROSPECTOR, token), { active: false });
  });

  it('an initial access token registers no client from its expiry on', async () => {
    const value = await new server.provider.InitialAccessToken({ expiresIn: 2 }).save();
    // Its exp is 2 s after the second it was saved in, at the latest this one's (not read back: on a
    // loaded machine it may have ended already).
    await pastExp(Math.floor(Date.now() / 1000) + 2);
    const response = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${value}` },
      body: JSON.stringify({ redirect_uris: ['https://late.example.test/callback'] }),
    });
    assert.equal(response.status, 401, await response.text());
  });
});
