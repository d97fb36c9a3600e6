/**
 * A third-party relying party (openid-client v6, as written for a real deployment: no
 * allowInsecureRequests) against an https issuer, through today's security changes: the sign-in
 * resumes only in the browser that started it (the __Host-lk_flow_<uid> cookie), redirect_uri at
 * the token endpoint, refreshed ID tokens without a nonce, 32-character secrets. Its whole life:
 * discovery, code + PKCE + nonce, userinfo, refresh, revocation, end session.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { InMemoryWebStorage, OidcClient, WebStorageStateStore, type RefreshState } from 'oidc-client-ts';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const ISSUER = 'https://id.example.test';
const REDIRECT = 'https://rp.example.test/callback';
const SIGNED_OUT = 'https://rp.example.test/signed-out';
const SPA_REDIRECT = 'https://spa.example.test/callback';
const SECRET = 'rp-secret-rp-secret-rp-secret-rp-secret-0123456789';
const PASSWORD = 'correct horse battery staple';

describe('openid-client v6 and oidc-client-ts against an https issuer: discovery, code + PKCE, userinfo, refresh, revocation, end session', function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    // TLS ends at a proxy: requests to the issuer's https URL go to the plain http port.
    server = await startServer({
      env: { ISSUER },
      clients: [
        { client_id: 'spa', application_type: 'web', token_endpoint_auth_method: 'none', redirect_uris: [SPA_REDIRECT], post_logout_redirect_uris: [SPA_REDIRECT], scope: 'openid profile offline_access', grant_types: ['authorization_code', 'refresh_token'] },
        { client_id: 'rp', client_secret: SECRET, redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT], scope: 'openid profile email offline_access', grant_types: ['authorization_code', 'refresh_token'] },
      ],
    });
    await server.accounts.create('alice', PASSWORD, { name: 'Alice' });
  });
  after(async () => {
    await server?.stop();
  });

  const toServer = (url: string) => url.replace(ISSUER, server.url);

  it('works as a relying party written for production sees it, the browser-bound resume included', async () => {
    const fetchThrough: oidc.CustomFetch = (url, options) => fetch(toServer(url), options as RequestInit);
    const config = await oidc.discovery(new URL(ISSUER), 'rp', SECRET, undefined, { [oidc.customFetch]: fetchThrough });
    assert.equal(config.serverMetadata().issuer, ISSUER);

    const browser = new Agent();
    const request = browser.request.bind(browser);
    browser.request = (url: string, init?: RequestInit) => request(toServer(url), init);

    const nonce = oidc.randomNonce();
    const state = oidc.randomState();
    const start = await startAuthorization(browser, config, REDIRECT, { scope: 'openid profile email offline_access', prompt: 'consent', nonce, state });
    const verifier = start.verifier;
    const page = await signInSteps(browser, start.page, { username: 'alice', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.ok(page.url.startsWith(REDIRECT), `back at the app: ${page.status} ${page.url}`);
    assert.ok(browser.setCookies.some((line) => line.startsWith('__Host-lk_flow_')), 'the sign-in was bound to this browser');

    const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state, idTokenExpected: true });
    const claims = tokens.claims()!;
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.nonce, nonce);
    assert.ok(tokens.refresh_token, 'offline_access gives a refresh token');

    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(info.name, 'Alice');

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    assert.equal(refreshed.claims()?.sub, claims.sub);
    assert.equal(refreshed.claims()?.nonce, undefined, 'a refreshed ID token carries no nonce');
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'rotated');

    await oidc.tokenRevocation(config, refreshed.refresh_token!);
    await assert.rejects(oidc.refreshTokenGrant(config, refreshed.refresh_token!), (error: oidc.ResponseBodyError) => error.error === 'invalid_grant');

    const end = oidc.buildEndSessionUrl(config, { id_token_hint: refreshed.id_token!, post_logout_redirect_uri: SIGNED_OUT, state: 'bye' });
    const confirm = await browser.follow(end.href, {}, SIGNED_OUT);
    const back = await browser.submit(confirm, '/session/end/confirm', { logout: 'yes' }, SIGNED_OUT);
    assert.equal(back.url, `${SIGNED_OUT}?state=bye`);
    const again = await browser.follow(oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }).href, {}, REDIRECT);
    assert.match(again.html, /name="password"/, 'signed out: the login page again');
  });

  it('oidc-client-ts as a single-page app (public client): sign-in, refresh, userinfo, revocation, sign-out request', async () => {
    const realFetch = globalThis.fetch;
    // The library calls the global fetch; the page's https issuer is served on the plain http port.
    globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => realFetch(toServer(input instanceof Request ? input.url : String(input)), init)) as typeof fetch;
    try {
      const spa = new OidcClient({
        authority: ISSUER,
        client_id: 'spa',
        redirect_uri: SPA_REDIRECT,
        post_logout_redirect_uri: SPA_REDIRECT,
        scope: 'openid profile offline_access',
        stateStore: new WebStorageStateStore({ store: new InMemoryWebStorage() }),
      });
      const signIn = await spa.createSigninRequest({ request_type: 'si:r', prompt: 'consent' });
      const browser = new Agent();
      const request = browser.request.bind(browser);
      browser.request = (url: string, init?: RequestInit) => request(toServer(url), init);
      const page = await signInSteps(browser, await browser.follow(signIn.url, {}, SPA_REDIRECT), { username: 'alice', password: PASSWORD, login: 'if-shown', stopAt: SPA_REDIRECT });
      assert.ok(page.url.startsWith(SPA_REDIRECT), `back at the app: ${page.status} ${page.url}`);
      const signedIn = await spa.processSigninResponse(page.url);
      assert.equal(signedIn.profile.name, 'Alice', 'userinfo loaded');
      assert.ok(signedIn.refresh_token);

      const renewed = await spa.useRefreshToken({ state: { refresh_token: signedIn.refresh_token!, id_token: signedIn.id_token, session_state: signedIn.session_state, scope: signedIn.scope, profile: signedIn.profile } as RefreshState });
      assert.equal(renewed.profile.sub, signedIn.profile.sub, 'the refreshed ID token is accepted (same sub, no nonce expected)');
      assert.notEqual(renewed.refresh_token, signedIn.refresh_token);

      await spa.revokeToken(renewed.refresh_token!, 'refresh_token');
      await assert.rejects(spa.useRefreshToken({ state: { refresh_token: renewed.refresh_token!, id_token: renewed.id_token, session_state: null, profile: renewed.profile } as RefreshState }), /invalid_grant|grant request is invalid/);

      const signOut = await spa.createSignoutRequest({ id_token_hint: renewed.id_token, state: 'bye' });
      const confirm = await browser.follow(signOut.url, {}, SPA_REDIRECT);
      const back = await browser.submit(confirm, '/session/end/confirm', { logout: 'yes' }, SPA_REDIRECT);
      assert.ok(back.url.startsWith(SPA_REDIRECT), back.url);
      await spa.processSignoutResponse(back.url);
    } finally {
      globalThis.fetch = realFetch;
    }
  });
});
