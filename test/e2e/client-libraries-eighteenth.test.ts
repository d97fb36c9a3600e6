/**
 * The eighteenth pass at unmodified third-party client libraries (docs/security-passes.md,
 * "Looked at in the eighteenth passes: unmodified third-party client libraries (h5)").
 *
 * oidc-spa (10.2) keeps tokens in memory only, so every page load restores the session by a silent
 * request (`prompt=none`, in an iframe when the app is on Latchkey's site), asking for the scopes it
 * was given, `offline_access` among them. The engine drops `offline_access` from any request whose
 * prompt lacks `consent`, so after the first reload such an app held no refresh token, though the
 * person had consented to offline access for it and that consent was remembered: it could renew
 * only by another frame (never from a page of another site) or a full-page redirect. OIDC Core
 * section 11 lets "other conditions for processing the request permitting offline access" stand
 * in for prompt=consent, which Latchkey already reads as a remembered consent
 * (patches/offline-access.ts); a silent request is now held to the same reading. These requests are
 * what oidc-spa (and oidc-client-ts's signinSilent in a frame) send, replayed with openid-client,
 * and pushed first (RFC 9126).
 *
 * openid-client 6's buildAuthorizationUrlWithJAR sends a request object as RFC 9101 section 5 has
 * it: every parameter in the object, only `client_id` and `request` beside it. Latchkey refuses
 * request objects (request_not_supported), and answered such a request with its "Invalid sign-in
 * request" page, the app never told why: the redirect URI was in the object alone. It is now read
 * from the object for the refusal, as `response_mode` and `state` were (patches/refused-request-objects.ts),
 * and held to the client's registered ones as a redirect URI beside the object is.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'https://app.example/';
const CLIENT = { client_id: 'spa', token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], redirect_uris: [REDIRECT] };
const NO_REFRESH = { ...CLIENT, client_id: 'no-refresh', grant_types: ['authorization_code'] };

describe('e2e: unmodified client libraries (eighteenth pass)', function () {
  this.timeout(30_000);
  let server: TestServer;
  const configs: Record<string, oidc.Configuration> = {};

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true, clients: [CLIENT, NO_REFRESH] });
    await server.accounts.create('alice', PASSWORD);
    for (const client of [CLIENT, NO_REFRESH]) {
      configs[client.client_id] = await oidc.discovery(new URL(server.issuer), client.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    }
  });
  after(async () => {
    await server?.stop();
  });

  it("a request object as openid-client 6 sends it (RFC 9101: client_id and request alone) is refused request_not_supported at the redirect URI the object names, with its state; one naming a redirect URI the client did not register gets the error page", async () => {
    const { privateKey } = await oidc.randomDPoPKeyPair('ES256');
    const jar = (redirect: string) => oidc.buildAuthorizationUrlWithJAR(configs.spa!, { redirect_uri: redirect, scope: 'openid', state: 'jar-state', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }, { key: privateKey });
    const url = await jar(REDIRECT);
    assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request']);
    const answer = await fetch(url, { redirect: 'manual' });
    assert.equal(answer.status, 303);
    const told = new URL(answer.headers.get('location')!);
    assert.equal(`${told.origin}${told.pathname}`, REDIRECT);
    assert.equal(told.searchParams.get('error'), 'request_not_supported');
    assert.equal(told.searchParams.get('state'), 'jar-state');
    assert.equal(told.searchParams.get('iss'), server.issuer);

    const elsewhere = await fetch(await jar('https://attacker.example/'), { redirect: 'manual' });
    assert.equal(elsewhere.status, 400);
    assert.equal(elsewhere.headers.get('location'), null);
  });

  /** The tokens a request of `client` with `params` ends in at `agent`'s browser (signing in and allowing when asked). */
  const tokensOf = async (agent: Agent, client: string, params: Record<string, string>) => {
    const { page, verifier } = await startAuthorization(agent, configs[client]!, REDIRECT, params);
    const landed = page.url.startsWith(REDIRECT) ? page : await signInSteps(agent, page, { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(landed.url.startsWith(`${REDIRECT}?code=`), landed.url);
    return oidc.authorizationCodeGrant(configs[client]!, new URL(landed.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
  };

  it('a silent request (prompt=none) asking offline_access, which the person consented to for the app, gets its refresh token; without that consent, or for a client without the refresh_token grant, it does not, and a marker sent by the client gives nothing', async () => {
    const agent = new Agent();
    // Signed in with openid only: no offline consent yet. A silent request asking it gets a code without one.
    assert.equal((await tokensOf(agent, 'spa', {})).refresh_token, undefined);
    const beforeConsent = await tokensOf(agent, 'spa', { prompt: 'none', scope: 'openid offline_access' });
    assert.equal(beforeConsent.refresh_token, undefined, 'no offline access the person did not allow');
    assert.equal(beforeConsent.scope, 'openid');

    // The person allows offline access (the consent page asks), as at oidc-spa's first sign-in.
    const first = await tokensOf(agent, 'spa', { scope: 'openid offline_access' });
    assert.ok(first.refresh_token, 'the interactive sign-in gets its refresh token');

    // The page reloads: oidc-spa's silent restoration asks the same scopes with prompt=none.
    const restored = await tokensOf(agent, 'spa', { prompt: 'none', scope: 'openid offline_access' });
    assert.ok(restored.refresh_token, 'the silent request gets the refresh token the person allowed');
    assert.equal(restored.scope, 'openid offline_access');
    const refreshed = await oidc.refreshTokenGrant(configs.spa!, restored.refresh_token!);
    assert.ok(refreshed.access_token);

    // The same silent request pushed first (RFC 9126), as oidc-client-ts and @axa-fr/oidc-client can.
    const verifier = oidc.randomPKCECodeVerifier();
    const pushed = await oidc.buildAuthorizationUrlWithPAR(configs.spa!, { redirect_uri: REDIRECT, scope: 'openid offline_access', prompt: 'none', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const landed = await agent.follow(pushed.href, {}, REDIRECT);
    const pushedTokens = await oidc.authorizationCodeGrant(configs.spa!, new URL(landed.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    assert.ok(pushedTokens.refresh_token, 'a pushed silent request too');

    // Not asked: not given. The marker sent by the client itself, without the scope, adds nothing.
    const notAsked = await tokensOf(agent, 'spa', { prompt: 'none', scope: 'openid', latchkey_offline_if_granted: '1' });
    assert.equal(notAsked.refresh_token, undefined);
    assert.equal(notAsked.scope, 'openid');

    // A client without the refresh_token grant gets no refresh token, silently or not.
    await tokensOf(agent, 'no-refresh', { prompt: 'consent', scope: 'openid offline_access' });
    const other = await tokensOf(agent, 'no-refresh', { prompt: 'none', scope: 'openid offline_access' });
    assert.equal(other.refresh_token, undefined);
  });
});
