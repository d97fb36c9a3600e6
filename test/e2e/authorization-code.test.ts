/**
 * The authorization code flow with PKCE, driven by openid-client as the relying party and a
 * cookie-keeping HTTP agent as the person (the login and consent pages are real; the browser
 * tests run in Chromium elsewhere).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isLogin, signInSteps } from '../helpers/sign-in.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'web-app-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'correct horse battery staple';

interface Flow {
  readonly callback: URL;
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
}

describe('e2e: authorization code + PKCE with openid-client', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let server: TestServer;
  let config: oidc.Configuration;
  let sub: string;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({
      redisUrl: redis.url,
      env: {
        CLIENTS: JSON.stringify([
          {
            client_id: 'web',
            client_secret: SECRET,
            client_name: 'Example Web App',
            redirect_uris: [REDIRECT],
            grant_types: ['authorization_code', 'refresh_token'],
          },
        ]),
      },
    });
    ({ sub } = await server.accounts.create('alice', PASSWORD, { name: 'Alice Liddell', email: 'alice@example.test', email_verified: true }));
    config = await oidc.discovery(new URL(server.issuer), 'web', SECRET, oidc.ClientSecretBasic(SECRET), {
      execute: [oidc.allowInsecureRequests],
    });
  });

  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  /** Runs the front channel: authorization request → login → consent → back at the redirect URI. */
  async function signIn(agent: Agent, scope = 'openid profile email offline_access', extra: Record<string, string> = {}): Promise<Flow> {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope,
      state,
      nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      prompt: 'consent',
      ...extra,
    });
    let page: Page = await agent.follow(url.href, {}, REDIRECT);
    if (isLogin(page)) assert.match(page.html, /Example Web App/);
    page = await signInSteps(agent, page, { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(page.url.startsWith(REDIRECT), `expected a redirect to the client, got ${page.url} ${page.status}`);
    return { callback: new URL(page.url), verifier, state, nonce };
  }

  function redeem(flow: Flow) {
    return oidc.authorizationCodeGrant(config, flow.callback, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
    });
  }

  it('signs a person in: RS256 ID token with nonce, userinfo claims by scope, iss on the response (RFC 9207)', async () => {
    const flow = await signIn(new Agent());
    assert.equal(flow.callback.searchParams.get('iss'), server.issuer);
    const tokens = await redeem(flow);
    const claims = tokens.claims()!;
    assert.equal(claims.sub, sub);
    assert.equal(claims.nonce, flow.nonce);
    assert.equal(claims.aud, 'web');
    assert.ok(tokens.refresh_token, 'offline_access with consent yields a refresh token');
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, sub);
    assert.equal(userinfo.name, 'Alice Liddell');
    assert.equal(userinfo.email, 'alice@example.test');
    assert.equal(userinfo.email_verified, true);
  });

  it('releases only the claims of the granted scopes', async () => {
    const tokens = await redeem(await signIn(new Agent(), 'openid email'));
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, sub);
    assert.equal(userinfo.email, 'alice@example.test');
    assert.equal(userinfo.name, undefined);
  });

  it('rotates refresh tokens, and a reused one revokes the whole grant (RFC 9700 §4.14.2)', async () => {
    const tokens = await redeem(await signIn(new Agent()));
    const rotated = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    assert.ok(rotated.refresh_token);
    assert.notEqual(rotated.refresh_token, tokens.refresh_token);

    await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_grant');
      return true;
    });
    // The rotated token and the access tokens of the grant died with it.
    await assert.rejects(oidc.refreshTokenGrant(config, rotated.refresh_token!), oidc.ResponseBodyError);
    assert.equal((await oidc.tokenIntrospection(config, rotated.access_token)).active, false);
  });

  it('refuses a replayed code and revokes what the first redemption issued (RFC 6749 §4.1.2)', async () => {
    const flow = await signIn(new Agent());
    const tokens = await redeem(flow);
    await assert.rejects(redeem(flow), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_grant');
      return true;
    });
    assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).active, false);
    await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!), oidc.ResponseBodyError);
  });

  it('refuses a code redeemed with the wrong PKCE verifier', async () => {
    const flow = await signIn(new Agent());
    await assert.rejects(redeem({ ...flow, verifier: oidc.randomPKCECodeVerifier() }), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_grant');
      return true;
    });
  });

  it('answers prompt=none silently for a signed-in person and with login_required for a new one', async () => {
    const agent = new Agent();
    await redeem(await signIn(agent, 'openid'));
    const silent = await signIn(agent, 'openid', { prompt: 'none' });
    assert.ok(silent.callback.searchParams.get('code'));

    const stranger = new Agent();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      prompt: 'none',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const page = await stranger.follow(url.href, {}, REDIRECT);
    assert.equal(new URL(page.url).searchParams.get('error'), 'login_required');
  });

  it('a wrong password shows the login page again with a message, and no redirect', async () => {
    const agent = new Agent();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const login = await agent.follow(url.href, {}, REDIRECT);
    const retry = await agent.submit(login, '/login', { username: 'alice', password: 'not the password' }, REDIRECT);
    assert.equal(retry.status, 401);
    assert.match(retry.html, /do not match/);
    assert.match(retry.html, /name="password"/);
  });

  it('cancel returns access_denied to the client', async () => {
    const agent = new Agent();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      state: 'xyz',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const login = await agent.follow(url.href, {}, REDIRECT);
    const back = await agent.submit(login, '/abort', {}, REDIRECT);
    const params = new URL(back.url).searchParams;
    assert.equal(params.get('error'), 'access_denied');
    assert.equal(params.get('state'), 'xyz');
  });
});
