/**
 * The eleventh fresh-eyes passes of 2026-12-07, "some endings do not end" (docs/security-passes.md,
 * "Looked at in the eleventh fresh-eyes passes of 2026-12-07"), black box: a server restarted on the
 * same Redis with openid-client and `latchkey/resource-server` following the feed.
 *
 * Found and fixed: `accounts.mfa.required` turned on at a restart ended no access token a person's
 * sign-in got before (refreshes, codes and device codes of a weaker sign-in were refused at the token
 * endpoint, but the access tokens stayed good to their `exp` at introspection, userinfo and every
 * API), where a client's own `require_mfa` raised ends them (RevocationList.revokeRaised); the same
 * class, `pkce.required` turned from `public` to `all` at a restart left a confidential client's
 * sign-in begun without PKCE to end in a code, and such a code to be redeemed. And a consent page
 * open while an operator removed its API and added it again gave a code for the new API.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent } from '../helpers/agent.js';
import { serverRestarts } from '../helpers/restarts.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import type { TestServer } from '../helpers/server.js';
import { acceptedBy, API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const PASSWORD = 'eleventh endings pass test password';
const REDIRECT = 'https://eleventh.example.test/callback';
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const SECRET = 'eleventh-web-secret-with-plenty-of-entropy-0123456789';
/** A configured app; a stored one (the admin API's) is added beside it. */
const web = (id: string) => ({ client_id: id, client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email offline_access read write' });

describe('e2e: eleventh fresh-eyes pass, endings that do not end', function () {
  this.timeout(90_000);
  const restarts = serverRestarts('test');
  let helper: ResourceServer | undefined;
  afterEach(() => helper?.close());

  const start = (mfaRequired: boolean, env: Record<string, string> = {}): Promise<TestServer> =>
    restarts.start({ clients: [machineClient(RS), machineClient(MACHINE), web('configured')], env: { RESOURCE_SERVERS, ACCOUNTS_MFA_REQUIRED: String(mfaRequired), ...env } });

  /** An API following the feed, started now (it reads what is on the list). */
  async function api(server: TestServer): Promise<ResourceServer> {
    helper?.close();
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    await helper.sync();
    return helper;
  }

  /** `username`'s tokens at app `clientId` (a second factor when `totp` is given): a JWT for the API and, refreshed without it, an opaque one for userinfo. */
  async function tokensOf(server: TestServer, clientId: string, username: string, totp?: string) {
    const config = await oidc.discovery(new URL(server.issuer), clientId, SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const started = await startAuthorization(agent, config, REDIRECT, { scope: 'openid email offline_access read', resource: API });
    let page = await signInSteps(agent, started.page, { username, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    if (totp) page = await agent.submit(page, '/second-factor', { method: 'totp', code: TOTP.generate({ secret: Secret.fromBase32(totp) }) }, REDIRECT);
    if (isConsent(page)) page = await agent.submit(page, '/confirm', {}, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: started.verifier, expectedState: oidc.skipStateCheck }, { resource: API });
    const opaque = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    return { config, jwt: tokens.access_token, opaque: opaque.access_token, refresh: opaque.refresh_token! };
  }

  const userinfo = async (server: TestServer, token: string) => (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${token}` } })).status;

  it('a consent page open while an operator removes its API and adds it again under the same identifier, confirmed after: no code, nothing remembered for the new API (the page was the removed one’s)', async () => {
    const server = await start(false);
    await server.accounts.create('opal', PASSWORD);
    const NOTES = 'https://notes.eleventh.example.test';
    await server.apis.add({ identifier: NOTES, scopes: ['read'] });
    const config = await oidc.discovery(new URL(server.issuer), 'configured', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const started = await startAuthorization(agent, config, REDIRECT, { scope: 'openid read', resource: NOTES });
    const consent = await signInSteps(agent, started.page, { username: 'opal', password: PASSWORD, stopAt: REDIRECT, consent: 'stop' });
    assert.ok(isConsent(consent), `${consent.status} ${consent.url}`);

    await server.apis.remove(NOTES);
    await server.apis.add({ identifier: NOTES, scopes: ['read'] });
    const confirmed = await agent.submit(consent, '/confirm', {}, REDIRECT);
    assert.ok(!confirmed.url.startsWith(REDIRECT) || !new URL(confirmed.url).searchParams.get('code'), `no code for the new API: ${confirmed.url}`);
    const silent = await startAuthorization(agent, config, REDIRECT, { scope: 'openid read', resource: NOTES, prompt: 'none' });
    assert.equal(new URL(silent.page.url).searchParams.get('error'), 'consent_required', `nothing remembered for the new API: ${silent.page.url}`);
  });

  it('pkce.required turned from public to all at a restart: a confidential client’s sign-in begun without PKCE before gets no code after, and its code issued without PKCE before is not redeemed after (RFC 9700 §2.1.1)', async () => {
    let server = await start(false, { PKCE_REQUIRED: 'public' });
    await server.accounts.create('opal', PASSWORD, { email: 'opal@example.test' });
    /** A sign-in of the configured app without PKCE, left at the consent page (or finished, `finish`). */
    async function withoutPkce(finish: boolean) {
      const config = await oidc.discovery(new URL(server.issuer), 'configured', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
      const agent = new Agent();
      const first = await agent.follow(oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid email', state: 'kept' }).href, {}, REDIRECT);
      const page = await signInSteps(agent, first, { username: 'opal', password: PASSWORD, stopAt: REDIRECT, consent: finish ? 'required' : 'stop' });
      assert.equal(isConsent(page), !finish, `${page.status} ${page.url}`);
      return { config, agent, page };
    }
    const pending = await withoutPkce(false);
    const finished = await withoutPkce(true);
    assert.ok(new URL(finished.page.url).searchParams.get('code'), finished.page.url);

    server = await start(false, { PKCE_REQUIRED: 'all' });
    const resumed = await pending.agent.submit(pending.page, '/confirm', {}, REDIRECT);
    const answer = new URL(resumed.url).searchParams;
    assert.equal(answer.get('code'), null, `the sign-in begun without PKCE: ${resumed.url}`);
    assert.equal(answer.get('error'), 'invalid_request', resumed.url);
    await assert.rejects(
      oidc.authorizationCodeGrant(finished.config, new URL(finished.page.url), { expectedState: 'kept' }),
      (error: unknown) => (error as { error?: string }).error === 'invalid_grant',
      'the code issued without PKCE before',
    );
  });

  it('accounts.mfa.required turned on at a restart ends the access tokens people got before, at every client (introspection, userinfo, latchkey/resource-server); a client’s own tokens stay, and a restart with it still on ends nothing more', async () => {
    let server = await start(false);
    await grantFeed(server, RS.id);
    await server.clients.add(web('stored'));
    await server.accounts.create('opal', PASSWORD, { email: 'opal@example.test' });
    await server.accounts.create('pike', PASSWORD, { email: 'pike@example.test' });
    const pike = (await server.accounts.findByUsername('pike'))!;
    const { secret } = await server.secondFactors.totp.begin(pike.sub, 'pike', 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(pike.sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'test-session'), true);
    const before = {
      configured: await tokensOf(server, 'configured', 'opal'),
      stored: await tokensOf(server, 'stored', 'opal'),
      strong: await tokensOf(server, 'stored', 'pike', secret),
    };
    assert.equal(decodeJwt(before.configured.jwt).acr, 'pwd');
    assert.equal(decodeJwt(before.strong.jwt).acr, 'mfa');
    const own = await clientCredentialsToken(server.url, MACHINE);
    for (const { jwt } of Object.values(before)) assert.equal(await acceptedBy(await api(server), jwt), true);

    // The operator requires a second factor everywhere and restarts.
    server = await start(true);
    const following = await api(server);
    for (const [name, { jwt, opaque }] of Object.entries(before)) {
      assert.equal((await introspect(server.url, RS, jwt)).active, false, `${name}: the JWT of before at introspection`);
      assert.equal(await acceptedBy(following, jwt), false, `${name}: the JWT of before at latchkey/resource-server`);
      assert.equal(await userinfo(server, opaque), 401, `${name}: the opaque token of before at userinfo`);
    }
    assert.equal((await introspect(server.url, RS, own)).active, true, "a client's own token is no person's sign-in");
    assert.equal(await acceptedBy(following, own), true);
    // A password-only sign-in's refresh token is refused (as before); one with the second factor refreshes.
    await assert.rejects(oidc.refreshTokenGrant(before.configured.config, before.configured.refresh, { resource: API }), (error: unknown) => (error as { error?: string }).error === 'invalid_grant');
    const refreshed = await oidc.refreshTokenGrant(before.strong.config, before.strong.refresh, { resource: API });
    assert.equal(await acceptedBy(following, refreshed.access_token), true, 'a token got after the restart');

    // Started again with it still on: what was got since stays good.
    server = await start(true);
    assert.equal((await introspect(server.url, RS, refreshed.access_token)).active, true, 'a second restart with the same setting ends nothing more');
    assert.equal(await acceptedBy(await api(server), refreshed.access_token), true);
  });
});
