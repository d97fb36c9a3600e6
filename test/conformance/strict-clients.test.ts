/**
 * Unmodified third-party client libraries, each with its strict defaults and no option loosened,
 * against an https issuer (TLS ended at a proxy in front of the plain port, as in production):
 * oauth4webapi and openid-client v6 through everything discovery advertises that a relying party
 * uses: PAR, DPoP (with server nonces when asked), PKCE S256, state, nonce, RFC 9207 iss, the ID
 * token checks, userinfo, refresh, introspection, revocation, JWT access tokens (RFC 9068) and the
 * end-session URL. A check fails when a library's own validation refuses an answer of ours.
 */
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair } from 'jose';
import * as oauth from 'oauth4webapi';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { addUser } from '../helpers/operator.js';
import { signInSteps } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const ISSUER = 'https://id.example.test';
const API = 'https://api.example.test';
const SPA = 'https://spa.example.test/callback';
const WEB = 'https://web.example.test/callback';
const WEB_SIGNED_OUT = 'https://web.example.test/signed-out';
const SECRET = 'strict-clients-secret-0123456789abcdef0123';
const PASSWORD = 'strict clients passphrase for alice';
const SCOPE = 'openid profile email offline_access';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('Strict client libraries (oauth4webapi, openid-client) with their defaults, end to end', function () {
  this.timeout(30_000);
  let server: TestServer;
  let sub: string;
  let webKey: Awaited<ReturnType<typeof generateKeyPair>>;
  /** Every request of the libraries goes to the server's plain port, as a TLS proxy would send it. */
  const toServer = (url: string) => url.replace(ISSUER, server.url);
  const through = (url: string | URL | Request, init?: RequestInit) => fetch(toServer(url instanceof Request ? url.url : String(url)), init);
  const options = { [oauth.customFetch]: through } as const;
  const browser = () => {
    const agent = new Agent();
    const request = agent.request.bind(agent);
    agent.request = (url: string, init?: RequestInit) => request(toServer(url), init);
    return agent;
  };

  before(async () => {
    webKey = await generateKeyPair('ES256', { extractable: true });
    server = await startServer({
      ownRedis: true,
      env: {
        ISSUER,
        RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read'], format: 'jwt', grants: [] }]),
        // Server nonces (RFC 9449 §8, §9): each library must take up the nonce it is told, at every endpoint.
        DPOP_REQUIRE_NONCE: 'true',
        REGISTRATION_OPEN: 'true',
      },
      clients: [
        { client_id: 'spa', application_type: 'web', token_endpoint_auth_method: 'none', redirect_uris: [SPA], scope: `${SCOPE} read`, grant_types: ['authorization_code', 'refresh_token'], dpop_bound_access_tokens: true },
        {
          client_id: 'web',
          redirect_uris: [WEB],
          post_logout_redirect_uris: [WEB_SIGNED_OUT],
          scope: `${SCOPE} read`,
          grant_types: ['authorization_code', 'refresh_token'],
          token_endpoint_auth_method: 'private_key_jwt',
          token_endpoint_auth_signing_alg: 'ES256',
          jwks: { keys: [{ ...(await exportJWK(webKey.publicKey)), kid: 'web-1', alg: 'ES256', use: 'sig' }] },
        },
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], scope: SCOPE },
        { client_id: 'basic', client_secret: SECRET, redirect_uris: [WEB], post_logout_redirect_uris: [WEB_SIGNED_OUT], scope: SCOPE, grant_types: ['authorization_code', 'refresh_token'] },
      ],
    });
    sub = (await addUser(server.env, 'alice', PASSWORD, { name: 'Alice Liddell', email: 'alice@example.test', email_verified: true })).sub;
  });
  after(async () => {
    await server?.stop();
  });

  /** The front channel, as a person in a browser: sign in and allow, back at the redirect URI. */
  async function front(agent: Agent, url: URL, redirectUri: string): Promise<URL> {
    const page = await signInSteps(agent, await agent.follow(url.href, {}, redirectUri), { username: 'alice', password: PASSWORD, login: 'if-shown', stopAt: redirectUri });
    assert.ok(page.url.startsWith(redirectUri), `back at the client: ${page.status} ${page.url}`);
    return new URL(page.url);
  }

  /** A request, retried once with the server's DPoP nonce when it asks for one (what the libraries' docs show). */
  async function withNonce<T>(attempt: () => Promise<T>): Promise<T> {
    try {
      return await attempt();
    } catch (error) {
      if (!oauth.isDPoPNonceError(error)) throw error;
      return attempt();
    }
  }

  /** oauth4webapi's code flow at the authorization endpoint (PKCE, state, nonce), redeemed with every check it makes. */
  async function codeFlow(as: oauth.AuthorizationServer, client: oauth.Client, auth: oauth.ClientAuth, scope: string, extra: Record<string, string> = {}) {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const url = new URL(as.authorization_endpoint!);
    const parameters = { client_id: client.client_id, redirect_uri: WEB, response_type: 'code', scope, state, nonce, ...extra };
    for (const [name, value] of Object.entries(parameters)) url.searchParams.set(name, value);
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier));
    url.searchParams.set('code_challenge_method', 'S256');
    const callback = oauth.validateAuthResponse(as, client, await front(browser(), url, WEB), state);
    const resource = extra.resource ? { additionalParameters: { resource: extra.resource } } : {};
    const response = await oauth.authorizationCodeGrantRequest(as, client, auth, callback, WEB, verifier, { ...resource, ...options });
    return oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: nonce, requireIdToken: true });
  }

  it('oauth4webapi, a public client: discovery, PAR with DPoP, PKCE, state, nonce, iss, ID token, DPoP userinfo, refresh, revocation', async () => {
    const issuer = new URL(ISSUER);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...options }));
    const client: oauth.Client = { client_id: 'spa' };
    const auth = oauth.None();
    const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const parameters = new URLSearchParams({
      redirect_uri: SPA,
      response_type: 'code',
      scope: SCOPE,
      prompt: 'consent',
      state,
      nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const pushed = await withNonce(async () =>
      oauth.processPushedAuthorizationResponse(as, client, await oauth.pushedAuthorizationRequest(as, client, auth, parameters, { DPoP, ...options })),
    );
    const url = new URL(as.authorization_endpoint!);
    url.searchParams.set('client_id', client.client_id);
    url.searchParams.set('request_uri', pushed.request_uri);
    const callback = oauth.validateAuthResponse(as, client, await front(browser(), url, SPA), state);

    const tokens = await withNonce(async () =>
      oauth.processAuthorizationCodeResponse(as, client, await oauth.authorizationCodeGrantRequest(as, client, auth, callback, SPA, verifier, { DPoP, ...options }), {
        expectedNonce: nonce,
        requireIdToken: true,
      }),
    );
    assert.equal(tokens.token_type, 'dpop');
    const claims = oauth.getValidatedIdTokenClaims(tokens)!;
    assert.equal(claims.sub, sub);

    const info = await withNonce(async () => oauth.processUserInfoResponse(as, client, claims.sub, await oauth.userInfoRequest(as, client, tokens.access_token, { DPoP, ...options })));
    assert.equal(info.name, 'Alice Liddell');

    const refreshed = await withNonce(async () => oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, tokens.refresh_token!, { DPoP, ...options })));
    assert.equal(oauth.getValidatedIdTokenClaims(refreshed)?.sub, sub);
    assert.ok(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, 'rotated');

    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, refreshed.refresh_token, options));
    const spent = await withNonce(async () => oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, auth, refreshed.refresh_token!, { DPoP, ...options }))).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(spent instanceof oauth.ResponseBodyError && spent.error === 'invalid_grant', `a revoked refresh token is invalid_grant: ${String(spent)}`);
  });

  it('oauth4webapi, a confidential client (private_key_jwt): introspection of its tokens, a JWT access token validated as RFC 9068 asks, revocation', async () => {
    const issuer = new URL(ISSUER);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...options }));
    const client: oauth.Client = { client_id: 'web' };
    const auth = oauth.PrivateKeyJwt({ key: webKey.privateKey, kid: 'web-1' });
    const tokens = await codeFlow(as, client, auth, `${SCOPE} read`, { resource: API, prompt: 'consent' });
    assert.equal(tokens.token_type, 'bearer');

    const request = new Request(`${API}/things`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    const jwt = await oauth.validateJwtAccessToken(as, request, API, options);
    assert.equal(jwt.sub, sub);
    assert.equal(jwt.client_id, 'web');

    const active = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, tokens.refresh_token!, options));
    assert.equal(active.active, true);
    assert.equal(active.client_id, 'web');

    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, auth, tokens.refresh_token!, options));
    const gone = await oauth.processIntrospectionResponse(as, client, await oauth.introspectionRequest(as, client, auth, tokens.refresh_token!, options));
    assert.equal(gone.active, false);
  });

  it('openid-client, a confidential client (client_secret_basic): PAR with DPoP, the code grant with every check, userinfo, refresh, introspection, revocation, the end-session URL', async () => {
    const config = await oidc.discovery(new URL(ISSUER), 'basic', SECRET, undefined, { [oidc.customFetch]: through as oidc.CustomFetch });
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = await oidc.buildAuthorizationUrlWithPAR(
      config,
      { redirect_uri: WEB, scope: SCOPE, prompt: 'consent', state, nonce, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' },
      { DPoP },
    );
    const agent = browser();
    const tokens = await oidc.authorizationCodeGrant(config, await front(agent, url, WEB), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true }, undefined, { DPoP });
    assert.equal(tokens.token_type, 'dpop');
    const claims = tokens.claims()!;
    assert.equal(claims.sub, sub);

    const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
    assert.equal(info.email, 'alice@example.test');

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP });
    assert.equal(refreshed.claims()?.sub, sub);

    const active = await oidc.tokenIntrospection(config, refreshed.access_token);
    assert.equal(active.active, true);
    assert.equal(active.token_type, 'DPoP');

    await oidc.tokenRevocation(config, refreshed.refresh_token!);
    assert.equal((await oidc.tokenIntrospection(config, refreshed.refresh_token!)).active, false);

    const end = oidc.buildEndSessionUrl(config, { id_token_hint: refreshed.id_token!, post_logout_redirect_uri: WEB_SIGNED_OUT, state: 'bye' });
    const confirm = await agent.follow(end.href, {}, WEB_SIGNED_OUT);
    const back = await agent.submit(confirm, '/session/end/confirm', { logout: 'yes' }, WEB_SIGNED_OUT);
    assert.equal(back.url, `${WEB_SIGNED_OUT}?state=bye`);
  });

  it('oauth4webapi: dynamic registration (RFC 7591) of a client with signed userinfo, its sign-in, and the signed userinfo verified against the JWKS; a device (RFC 8628) polling for its tokens', async () => {
    const issuer = new URL(ISSUER);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...options }));
    const registered = await oauth.processDynamicClientRegistrationResponse(
      await oauth.dynamicClientRegistrationRequest(as, { redirect_uris: [WEB], client_name: 'Strict', userinfo_signed_response_alg: 'RS256' }, options),
    );
    const client: oauth.Client = { client_id: registered.client_id, userinfo_signed_response_alg: 'RS256' };
    const auth = oauth.ClientSecretBasic(registered.client_secret as string);
    const tokens = await codeFlow(as, client, auth, 'openid profile');
    const response = await oauth.userInfoRequest(as, client, tokens.access_token, options);
    assert.match(response.headers.get('content-type') ?? '', /^application\/jwt/);
    const info = await oauth.processUserInfoResponse(as, client, oauth.getValidatedIdTokenClaims(tokens)!.sub, response);
    await oauth.validateApplicationLevelSignature(as, response, options);
    assert.equal(info.name, 'Alice Liddell');

    const tv: oauth.Client = { client_id: 'tv' };
    const device = await oauth.processDeviceAuthorizationResponse(as, tv, await oauth.deviceAuthorizationRequest(as, tv, oauth.None(), new URLSearchParams({ scope: 'openid profile' }), options));
    const agent = browser();
    const confirm = await agent.submit(await agent.follow(device.verification_uri), '/device', { user_code: device.user_code });
    const page = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'alice', password: PASSWORD, login: 'if-shown' });
    assert.match(page.html, /Device connected/);
    const granted = await oauth.processDeviceCodeResponse(as, tv, await oauth.deviceCodeGrantRequest(as, tv, oauth.None(), device.device_code, options));
    assert.equal(oauth.getValidatedIdTokenClaims(granted)?.sub, sub);
  });
});
