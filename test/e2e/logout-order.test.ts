/**
 * RP-initiated logout ends before it tells: by the time an app's backchannel_logout_uri receives
 * its logout token (OpenID Connect Back-Channel Logout 1.0), the session is gone and the grants the
 * sign-out revokes are revoked.
 *
 * oidc-provider's end_session_confirm posts every logout token and waits for the answers (as long
 * as the slowest app takes, up to the outbound timeout) before it revokes a grant or destroys the
 * session. Meanwhile the app told of the sign-out still held live tokens, and the browser's
 * session still signed the person in: an authorization request at another app the person had
 * consented to (prompt=none, another tab's silent renewal) got a code, and its grant, unknown to
 * the sign-out's copy of the session, outlived the sign-out with its tokens.
 *
 * Held deterministically: the app's back-channel endpoint (helpers/logout-receiver.ts) answers only when the test
 * lets it, after it looked at what it held.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { isLogin, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { API, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const PASSWORD = 'logout order passphrase';
const TOLD = { id: 'told', secret: 'told-client-secret-with-plenty-of-entropy-0123456789', redirect: 'https://told.example.test/callback' };
/** The API's own client: it introspects the API's tokens (RESOURCE_SERVERS). */
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const OTHER = { id: 'other', secret: 'other-client-secret-with-plenty-of-entropy-012345678', redirect: 'https://other.example.test/callback' };

describe('e2e: RP-initiated logout ends the session and its grants before any app is told', function () {
  this.timeout(60_000);
  const dir = testDir();
  let redis: RedisServer;
  let receiver: LogoutReceiver;
  let server: TestServer;
  let told: oidc.Configuration;
  let other: oidc.Configuration;

  before(async () => {
    [redis, receiver] = await Promise.all([startRedisServer(), startLogoutReceiver()]);
    const clients = [
      {
        client_id: TOLD.id,
        client_secret: TOLD.secret,
        redirect_uris: [TOLD.redirect],
        grant_types: ['authorization_code', 'refresh_token'],
        backchannel_logout_uri: receiver.url,
        backchannel_logout_session_required: true,
      },
      { client_id: OTHER.id, client_secret: OTHER.secret, redirect_uris: [OTHER.redirect], grant_types: ['authorization_code', 'refresh_token'] },
      machineClient(RS),
    ];
    const env = { CLIENTS: JSON.stringify(clients), RESOURCE_SERVERS, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' };
    server = await startServer({ dir, port: await freePort(), redisUrl: redis.url, env });
    const discover = ({ id, secret }: { id: string; secret: string }) =>
      oidc.discovery(new URL(server.issuer), id, secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    [told, other] = await Promise.all([discover(TOLD), discover(OTHER)]);
  });
  after(async () => {
    await server?.stop();
    receiver?.server.close();
    await redis?.stop();
  });

  /** `agent` signs `username` in at `config`'s app (consenting if asked); the app's tokens. */
  async function signIn(agent: Agent, config: oidc.Configuration, redirect: string, username: string, params: Record<string, string> = {}) {
    const { page, verifier } = await startAuthorization(agent, config, redirect, params);
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: redirect });
    assert.ok(done.url.startsWith(redirect), `back at the app, got ${done.status} ${done.url}`);
    return oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, params.resource ? { resource: params.resource } : undefined);
  }

  const userinfoStatus = async (accessToken: string) =>
    (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status;

  /**
   * Signs out at Latchkey, everywhere (the confirmation's "yes") or, with `onlyOf`, of that app only,
   * with `whileTold` run at the app's back-channel endpoint.
   */
  async function signOutEverywhere(agent: Agent, whileTold: () => Promise<void>, onlyOf?: string) {
    let toldOnce = false;
    receiver.onToken = async () => {
      toldOnce = true;
      await whileTold();
    };
    try {
      const page = await agent.follow(`${server.issuer}/session/end${onlyOf ? `?client_id=${onlyOf}` : ''}`);
      const done = await agent.submit(page, '/session/end/confirm', onlyOf ? {} : { logout: 'yes' });
      assert.match(done.url, /\/session\/end\/success/);
    } finally {
      receiver.onToken = undefined;
    }
    assert.ok(toldOnce, 'the app was sent a logout token');
    assert.deepEqual(receiver.errors.splice(0), []);
  }

  it('the app told of the sign-out finds the tokens it holds revoked already (Back-Channel Logout 1.0 §2.7)', async () => {
    const username = 'lorna';
    await server.accounts.create(username, PASSWORD);
    const agent = new Agent();
    const tokens = await signIn(agent, told, TOLD.redirect, username);
    const api = await signIn(agent, told, TOLD.redirect, username, { scope: 'openid read', resource: API });
    assert.equal(await userinfoStatus(tokens.access_token), 200);
    assert.equal((await introspect(server.url, RS, api.access_token)).active, true);
    await signOutEverywhere(agent, async () => {
      assert.equal(await userinfoStatus(tokens.access_token), 401, 'the access token still worked when the app was told');
      assert.equal((await introspect(server.url, RS, api.access_token)).active, false, "the API's token was still active when the app was told");
    });
    assert.equal(await userinfoStatus(tokens.access_token), 401);
  });

  it('signing out of the one app: that app, told, finds its tokens revoked already; the session goes on for the others', async () => {
    const username = 'oskar';
    await server.accounts.create(username, PASSWORD);
    const agent = new Agent();
    const tokens = await signIn(agent, told, TOLD.redirect, username);
    await signOutEverywhere(agent, async () => {
      assert.equal(await userinfoStatus(tokens.access_token), 401, 'the access token still worked when the app was told');
    }, TOLD.id);
    // Still signed in at Latchkey: the other app (consented to now) gets a code without the login page.
    const { page, verifier } = await startAuthorization(agent, other, OTHER.redirect);
    assert.ok(!isLogin(page), 'signing out of one app signed the browser out of Latchkey');
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: OTHER.redirect });
    assert.ok(done.url.startsWith(OTHER.redirect), `back at the other app, got ${done.status} ${done.url}`);
    assert.ok(await oidc.authorizationCodeGrant(other, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }));
  });

  it('offline access still outlives the sign-out, as by design: its refresh token refreshes when the app is told and after', async () => {
    const username = 'nadia';
    await server.accounts.create(username, PASSWORD);
    const agent = new Agent();
    const tokens = await signIn(agent, told, TOLD.redirect, username, { scope: 'openid offline_access', prompt: 'consent' });
    assert.ok(tokens.refresh_token, 'offline access was granted');
    let refreshToken = tokens.refresh_token;
    await signOutEverywhere(agent, async () => {
      refreshToken = (await oidc.refreshTokenGrant(told, refreshToken)).refresh_token ?? refreshToken;
    });
    assert.ok((await oidc.refreshTokenGrant(told, refreshToken)).access_token);
  });

  it('a sign-in at another app from the same browser while the apps are being told gets no code, and nothing outlives the sign-out', async () => {
    const username = 'marek';
    await server.accounts.create(username, PASSWORD);
    // The person let the other app in once, elsewhere: the consent is remembered.
    const asked = { scope: 'openid read', resource: API };
    await signIn(new Agent(), other, OTHER.redirect, username, asked);
    const agent = new Agent();
    await signIn(agent, told, TOLD.redirect, username);
    let late: oidc.TokenEndpointResponse | undefined;
    await signOutEverywhere(agent, async () => {
      // Another tab's silent renewal at the other app, while the sign-out waits for the told app.
      const { page, verifier } = await startAuthorization(agent, other, OTHER.redirect, { ...asked, prompt: 'none' });
      assert.ok(page.url.startsWith(OTHER.redirect), `back at the other app, got ${page.status} ${page.url}`);
      const answer = new URL(page.url);
      if (answer.searchParams.has('code')) {
        late = await oidc.authorizationCodeGrant(other, answer, { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, { resource: API });
      } else {
        assert.equal(answer.searchParams.get('error'), 'login_required');
      }
    });
    if (late) {
      // What a code got in that window must at least have ended with the sign-out: a JWT for the API
      // does not expire with the session (its resource server verifies it locally), its grant must go.
      assert.equal((await introspect(server.url, RS, late.access_token)).active, false, 'a sign-in made while the sign-out was telling the apps outlived it');
    }
    // The browser is signed out.
    const { page } = await startAuthorization(agent, other, OTHER.redirect, { prompt: 'none' });
    assert.equal(new URL(page.url).searchParams.get('error'), 'login_required');
  });
});
