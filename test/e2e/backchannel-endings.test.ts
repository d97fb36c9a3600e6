/**
 * Every way an operator ends a person's sessions tells the apps of those sessions that registered a
 * backchannel_logout_uri (OpenID Connect Back-Channel Logout 1.0): a logout token for the person and
 * the session's sid, signed by Latchkey. Here the ways not performed elsewhere: `latchkey users
 * passwd`, `latchkey users mfa reset` and the admin API's second-factor reset (RP-initiated logout:
 * sessions, logout-op; the account page's sign-out: account-page; disabling and removing a person:
 * disabled-person; an upstream removed and its logout token: upstreams). And what a second-factor
 * reset ends besides: the consents given in the sessions it ends (the app asks the person again).
 */
import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const PASSWORD = 'back-channel endings password';
const REDIRECT = 'https://app.example.test/callback';
const APP = { id: 'app', secret: 'app-client-secret-with-plenty-of-entropy-0123456789' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

describe('e2e: every way an operator ends a session sends its apps a logout token', function () {
  this.timeout(120_000);
  const dir = testDir();
  let redis: RedisServer;
  let receiver: LogoutReceiver;
  let server: TestServer;
  let env: Record<string, string>;
  let app: oidc.Configuration;

  before(async () => {
    [redis, receiver] = await Promise.all([startRedisServer(), startLogoutReceiver()]);
    const port = await freePort();
    const clients = [
      { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true },
      machineClient(OPS, { scope: 'admin' }),
    ];
    const settings = { redisUrl: redis.url, dir, port, env: { CLIENTS: JSON.stringify(clients), OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } };
    env = testEnv(dir, port, settings);
    server = await startServer(settings);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
    receiver?.server.close();
    await redis?.stop();
  });

  /**
   * `username` signs in to the app (with an authenticator app's code as the second factor when `withSecondFactor`);
   * the session's sid and the person's sub, as the ID token says them.
   */
  async function signedIn(username: string, withSecondFactor = false): Promise<{ sub: string; sid: string; agent: Agent }> {
    const account = await server.accounts.create(username, PASSWORD);
    // Enrolled as the account page does (begin, then a code of the step before: the sign-in's is then unused).
    const enrolled = withSecondFactor ? (await server.secondFactors.totp.begin(account.sub, username, 'test-session')).secret : undefined;
    const code = (steps: number) => TOTP.generate({ secret: Secret.fromBase32(enrolled!), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });
    if (enrolled) assert.equal(await server.secondFactors.totp.confirm(account.sub, code(-1), 'test-session'), true);
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT);
    let done = await signInSteps(agent, page, { username, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    if (enrolled) done = await agent.submit(done, '/second-factor', { method: 'totp', code: code(0) }, REDIRECT);
    done = await signInSteps(agent, done, { username, password: PASSWORD, stopAt: REDIRECT });
    assert.ok(done.url.startsWith(REDIRECT), `back at the app, got ${done.status} ${done.url}`);
    const claims = (await oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck })).claims()!;
    if (withSecondFactor) assert.ok((claims.amr as string[]).includes('mfa'), `signed in with a second factor: ${String(claims.amr)}`);
    return { sub: claims.sub, sid: String(claims.sid), agent };
  }

  /** A verified logout token for that person and session reaches the app. */
  const loggedOut = ({ sub, sid }: { sub: string; sid: string }) =>
    eventually(async () => {
      const keys = createRemoteJWKSet(new URL(app.serverMetadata().jwks_uri!));
      const payloads = await Promise.all(receiver.tokens.map(async (token) => (await jwtVerify(token, keys, { issuer: server.issuer, audience: APP.id, typ: 'logout+jwt' })).payload));
      const found = payloads.find((payload) => payload.sub === sub && payload.sid === sid);
      assert.ok(found, `no logout token for ${sub} / ${sid}`);
      assert.deepEqual(found.events, { [BACKCHANNEL_EVENT]: {} });
    });

  const admin = async (path: string) =>
    fetch(`${server.url}/admin${path}`, { method: 'POST', headers: { authorization: `Bearer ${await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin')}` } });

  it('latchkey users passwd', async () => {
    const session = await signedIn('peggy');
    const run = await latchkey(env, ['users', 'passwd', 'peggy', '--password-stdin'], 'a brand new password for peggy');
    assert.equal(run.status, 0, run.stderr);
    await loggedOut(session);
  });

  it('latchkey users mfa reset', async () => {
    const session = await signedIn('quentin', true);
    const run = await latchkey(env, ['users', 'mfa', 'reset', 'quentin']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /ended 1 session/);
    await loggedOut(session);
  });

  it("the admin API's second-factor reset", async () => {
    const session = await signedIn('rosa', true);
    assert.equal((await admin('/users/rosa/mfa/reset')).status, 200);
    await loggedOut(session);
  });

  it("an operator's ending ends the session before it tells the apps: while the app is told, the session signs no one in (Back-Channel Logout 1.0 §2.7)", async () => {
    const { agent } = await signedIn('wanda', true);
    let answer: string | null | undefined;
    receiver.onToken = async () => {
      const { page } = await startAuthorization(agent, app, REDIRECT, { prompt: 'none' });
      answer = new URL(page.url).searchParams.get('error') ?? page.url;
    };
    try {
      assert.equal((await admin('/users/wanda/mfa/reset')).status, 200);
    } finally {
      receiver.onToken = undefined;
    }
    assert.deepEqual(receiver.errors.splice(0), []);
    assert.equal(answer, 'login_required', 'the session still answered while its apps were told of its end');
  });

  it("a consent page open in a session a second-factor reset ended, confirmed after it, remembers nothing: the app asks the person again", async () => {
    const username = 'xena';
    const account = await server.accounts.create(username, PASSWORD);
    const enrolled = (await server.secondFactors.totp.begin(account.sub, username, 'test-session')).secret;
    const code = (steps: number) => TOTP.generate({ secret: Secret.fromBase32(enrolled), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });
    assert.equal(await server.secondFactors.totp.confirm(account.sub, code(-1), 'test-session'), true);
    // Whoever holds the lost device signs in with it and stops at the app's consent page.
    const holder = new Agent();
    const { page } = await startAuthorization(holder, app, REDIRECT);
    let consent = await signInSteps(holder, page, { username, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    consent = await holder.submit(consent, '/second-factor', { method: 'totp', code: code(0) }, REDIRECT);
    assert.ok(isConsent(consent), `at the consent page, got ${consent.status} ${consent.url}`);
    assert.equal((await admin(`/users/${username}/mfa/reset`)).status, 200);
    // The holder allows the app once the reset ended their session: nothing is granted, nothing remembered.
    const after = await holder.submit(consent, '/confirm', {}, REDIRECT);
    assert.ok(!after.url.startsWith(REDIRECT), `the ended session went back to the app: ${after.url}`);
    assert.ok(after.status >= 400 && after.status < 500, `an error page, not ${after.status}`);
    // The person, without a second factor now, signs in at the app.
    const agent = new Agent();
    const { page: start } = await startAuthorization(agent, app, REDIRECT);
    const next = await signInSteps(agent, start, { username, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(next), `the consent given on a page of the ended session was remembered (${next.status} ${next.url})`);
  });

  it("a second-factor reset (CLI, admin API) forgets the consents given in the sessions it ends, or in those signed out already: the app asks the person again rather than getting their codes silently", async () => {
    const cli = (username: string) => async () => assert.equal((await latchkey(env, ['users', 'mfa', 'reset', username])).status, 0);
    const api = (username: string) => async () => assert.equal((await admin(`/users/${username}/mfa/reset`)).status, 200);
    for (const [username, reset, signedOut] of [
      ['sam', cli('sam'), false],
      ['tess', api('tess'), false],
      // Signed out at Latchkey before the reset: the grant (no offline access) ended with the session, the consent stayed.
      ['uma', cli('uma'), true],
      ['vic', api('vic'), true],
    ] as const) {
      // Whoever holds the lost device signed in with it and let the app in.
      const { agent: holder } = await signedIn(username, true);
      if (signedOut) {
        const page = await holder.follow(`${server.issuer}/session/end`);
        assert.match((await holder.submit(page, '/session/end/confirm', { logout: 'yes' })).url, /\/session\/end\/success/);
      }
      await reset();
      // The person, without a second factor now, signs in at the app (a link the holder sends, say).
      const agent = new Agent();
      const { page } = await startAuthorization(agent, app, REDIRECT);
      const next = await signInSteps(agent, page, { username, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
      assert.ok(isConsent(next), `${username}: the consent given in a session the reset ended outlives it (${next.status} ${next.url})`);
    }
  });
});
