/**
 * The red team's fifth endings pass ("some endings do not end", 2026-12-02), black box: endings
 * during a store failure, endings racing what they end, and the newest features' endings. Three
 * endings a store failing in their middle left half-applied, with nothing left to run again for,
 * each refused before its fix: an operator's (`latchkey users disable`) that answered success with
 * the session's app never told; a person's sign-out everywhere that ended the session, answered
 * "Not signed out" and never told the session's second app; an upstream's logout token whose
 * ending failed so, refused as a replay when the upstream sent it again. What was tried and held
 * is listed in docs/security-passes.md ("Looked at in the fifth endings pass").
 */
import assert from 'node:assert/strict';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.js';
import { latchkey } from '../helpers/process.js';
import { keysBut } from '../helpers/redis.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { Upstreams } from '../../src/upstreams/registry.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'fifth endings pass password';
const REDIRECT = 'https://told.example.test/callback';
const TOLD = { id: 'told', secret: 'told-app-client-secret-with-plenty-of-entropy-0123456789' };
const BEE = { id: 'bee', secret: 'bee-app-client-secret-with-plenty-of-entropy-01234567890' };
const BEE_REDIRECT = 'https://bee.example.test/callback';
const UPSTREAM_SECRET = 'fifth-pass-upstream-client-secret-with-plenty-of-entropy';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

describe("e2e: the red team's fifth endings pass", function () {
  this.timeout(120_000);
  let receiver: LogoutReceiver;
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    receiver = await startLogoutReceiver();
    server = await startServer({ ownRedis: true, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
    // Registered clients (kept in the store, as every client but the configuration file's).
    const clients = server.clients;
    for (const [{ id, secret }, redirect] of [[TOLD, REDIRECT], [BEE, BEE_REDIRECT]] as const) {
      await clients.add({
        client_id: id,
        client_secret: secret,
        redirect_uris: [redirect],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        backchannel_logout_uri: receiver.url,
        backchannel_logout_session_required: true,
      });
    }
    app = await oidc.discovery(new URL(server.issuer), TOLD.id, TOLD.secret, oidc.ClientSecretBasic(TOLD.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
    receiver?.server.close();
  });

  /** `username` signs in to the app: the session's sid and the person's sub, as the ID token says them. */
  async function signedIn(username: string): Promise<{ sub: string; sid: string; agent: Agent }> {
    await server.accounts.create(username, PASSWORD);
    const agent = new Agent();
    return { ...(await signedInAt(agent, app, REDIRECT, username)), agent };
  }

  /** The browser `agent` signs `username` in to the app `config` (single sign-on when it is signed in already). */
  async function signedInAt(agent: Agent, config: oidc.Configuration, redirect: string, username: string): Promise<{ sub: string; sid: string }> {
    const { page, verifier } = await startAuthorization(agent, config, redirect);
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: redirect });
    assert.ok(done.url.startsWith(redirect), `back at the app, got ${done.status} ${done.url}`);
    const claims = (await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck })).claims()!;
    return { sub: claims.sub, sid: String(claims.sid) };
  }

  /**
   * While `during` runs, the store refuses to every connection of the default user (the server's)
   * the record of the client `clientId`, and only it: what a store failing at that read does.
   */
  async function clientRefused<T>(clientId: string, during: () => Promise<T>): Promise<T> {
    const raw = new Redis(server.env.REDIS_URL!);
    try {
      await raw.call('ACL', 'SETUSER', 'default', 'resetkeys', ...keysBut(`${server.config.redis.keyPrefix}oidc:Client:${clientId}`));
      return await during();
    } finally {
      await raw.call('ACL', 'SETUSER', 'default', 'resetkeys', '~*');
      raw.disconnect();
    }
  }

  /** The logout tokens the app `audience` was sent for that person and session, verified. */
  async function logoutTokensFor({ sub, sid }: { sub: string; sid: string }, audience = TOLD.id): Promise<number> {
    const keys = createRemoteJWKSet(new URL(app.serverMetadata().jwks_uri!));
    const tokens = receiver.tokens.filter((token) => decodeJwt(token).aud === audience);
    const payloads = await Promise.all(tokens.map(async (token) => (await jwtVerify(token, keys, { issuer: server.issuer, audience, typ: 'logout+jwt' })).payload));
    const found = payloads.filter((payload) => payload.sub === sub && payload.sid === sid);
    for (const each of found) assert.deepEqual(each.events, { [BACKCHANNEL_EVENT]: {} });
    return found.length;
  }

  it("an operator's ending that cannot read the session's app from the store tells no success: run again, it ends the session and the app is sent its logout token", async () => {
    const session = await signedIn('ulla');
    // The store refuses the clients' records to this connection only (an ACL: every key but those
    // under oidc:Client:), as a failing store or master refuses a read in the middle of the ending.
    const redisUrl = new URL(server.env.REDIS_URL!);
    const raw = new Redis(redisUrl.href);
    await raw.call('ACL', 'SETUSER', 'noclients', 'on', '>noclients-password', ...keysBut(`${server.config.redis.keyPrefix}oidc:Client:`), '&*', '+@all');
    raw.disconnect();
    const failing = { ...server.env, REDIS_URL: `redis://noclients:noclients-password@${redisUrl.host}` };

    const first = await latchkey(failing, ['users', 'disable', 'ulla']);
    // Either the ending reports its failure (to be run again), or the app was told: never a
    // success that left the app signed in with nothing left to run again for.
    if (first.status === 0) {
      await eventually(async () => assert.equal(await logoutTokensFor(session), 1, `"${first.stdout.trim()}", and the app was never sent a logout token`));
      return;
    }
    const again = await latchkey(server.env, ['users', 'disable', 'ulla']);
    assert.equal(again.status, 0, again.stderr);
    await eventually(async () => assert.equal(await logoutTokensFor(session), 1, 'the app is told once the ending is run again'));
  });

  it("a sign-out everywhere (RP-initiated) whose store fails as it looks up the session's second app ends nothing: confirmed again, every app of the session is told", async () => {
    const told = await signedIn('wim');
    const bee = await oidc.discovery(new URL(server.issuer), BEE.id, BEE.secret, oidc.ClientSecretBasic(BEE.secret), { execute: [oidc.allowInsecureRequests] });
    const atBee = await signedInAt(told.agent, bee, BEE_REDIRECT, 'wim');
    const confirmation = await told.agent.follow(`${server.url}/session/end`);
    assert.match(confirmation.html, /session\/end\/confirm/);

    const first = await clientRefused(BEE.id, () => told.agent.submit(confirmation, '/session/end/confirm', { logout: 'yes' }));
    if (!/\/session\/end\/success/.test(first.url)) {
      // Refused: the person signs out again once the store answers, from the confirmation.
      const again = await told.agent.follow(`${server.url}/session/end`);
      assert.match(again.html, /session\/end\/confirm/, `the session is still there to sign out of, got ${again.status} ${again.url}`);
      assert.match((await told.agent.submit(again, '/session/end/confirm', { logout: 'yes' })).url, /\/session\/end\/success/);
    }
    await eventually(async () => {
      assert.equal(await logoutTokensFor(told), 1, 'the first app is told');
      assert.equal(await logoutTokensFor(atBee, BEE.id), 1, 'the app whose look-up failed is told once the sign-out is done');
    });
  });

  it("an upstream's logout token whose ending the store fails half-way is taken when the upstream sends it again (Back-Channel Logout 1.0 §2.8): the session it names ends and its app is told", async () => {
    const fake = await startFakeUpstream(UPSTREAM_SECRET);
    try {
      await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'fake', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: 'Fake', linkByEmail: false, endSession: false });
      Object.assign(fake.state, { sub: 'fake-person-xena', sid: 'fake-sid-xena' });
      // Xena signs in to the app through the upstream (an account made just in time).
      const agent = new Agent();
      const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { upstream: 'fake' });
      const done = isConsent(page) ? await agent.submit(page, '/confirm', {}, REDIRECT) : page;
      assert.ok(done.url.startsWith(REDIRECT), `back at the app, got ${done.status} ${done.url}`);
      const claims = (await oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck })).claims()!;
      const session = { sub: claims.sub, sid: String(claims.sid) };

      // The upstream logs that session out; the store fails in the middle (the app's record refused).
      const logoutToken = await fake.logoutToken({ sid: 'fake-sid-xena' });
      const post = () => fetch(`${server.url}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: logoutToken }) });
      const first = await clientRefused(TOLD.id, post);
      if (first.status !== 200) {
        // Not taken: the upstream sends it again (the same token, as a retry of that request).
        const again = await post();
        assert.equal(again.status, 200, `the logout token sent again: ${again.status} ${await again.text()}`);
      }
      await eventually(async () => assert.equal(await logoutTokensFor(session), 1, 'the app is told'));
      const { page: silent } = await startAuthorization(agent, app, REDIRECT, { prompt: 'none' });
      assert.equal(new URL(silent.url).searchParams.get('error'), 'login_required', `the session the upstream logged out still signs xena in: ${silent.url}`);
    } finally {
      await fake.close();
    }
  });
});
