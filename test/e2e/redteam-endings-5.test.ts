/**
 * The red team's fifth endings pass ("some endings do not end", 2026-12-02), black box: endings
 * during a store failure, endings racing what they end, and the newest features' endings. What
 * was tried and held is listed in docs/security.md ("Looked at in the fifth endings pass").
 */
import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { Clients } from '../../src/registration/clients.js';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.js';
import { latchkey } from '../helpers/process.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'fifth endings pass password';
const REDIRECT = 'https://told.example.test/callback';
const TOLD = { id: 'told', secret: 'told-app-client-secret-with-plenty-of-entropy-0123456789' };
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

describe("e2e: the red team's fifth endings pass", function () {
  this.timeout(120_000);
  let receiver: LogoutReceiver;
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    receiver = await startLogoutReceiver();
    server = await startServer({ ownRedis: true, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
    // A registered client (kept in the store, as every client but the configuration file's).
    await new Clients(server.kv, server.providers, server.apis, server.revocations).add({
      client_id: TOLD.id,
      client_secret: TOLD.secret,
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      backchannel_logout_uri: receiver.url,
      backchannel_logout_session_required: true,
    });
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
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT);
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: REDIRECT });
    assert.ok(done.url.startsWith(REDIRECT), `back at the app, got ${done.status} ${done.url}`);
    const claims = (await oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck })).claims()!;
    return { sub: claims.sub, sid: String(claims.sid), agent };
  }

  /** The logout tokens the app was sent for that person and session, verified. */
  async function logoutTokensFor({ sub, sid }: { sub: string; sid: string }): Promise<number> {
    const keys = createRemoteJWKSet(new URL(app.serverMetadata().jwks_uri!));
    const payloads = await Promise.all(receiver.tokens.map(async (token) => (await jwtVerify(token, keys, { issuer: server.issuer, audience: TOLD.id, typ: 'logout+jwt' })).payload));
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
    const prefix = server.config.redis.keyPrefix;
    const spelled = `${prefix}oidc:Client:`;
    const others = [...spelled].map((char, at) => `~${spelled.slice(0, at)}[^${char}]*`);
    await raw.call('ACL', 'SETUSER', 'noclients', 'on', '>noclients-password', ...others, '&*', '+@all');
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
});
