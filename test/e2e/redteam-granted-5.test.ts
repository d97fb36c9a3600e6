/**
 * The red team's fifth pass at "Latchkey hands out more than was granted" (2026-12-02), black box:
 * a token's lifetime beyond its session. An access token issued in a sign-in session without
 * offline access is bound to that session (the engine's expiresWithSession), and a sign-out ends
 * it; but the engine decides what a sign-out revokes per app, not per token: an app that holds
 * offline access from any sign-in of the session keeps its grant whole (persistsLogout). An opaque
 * token bound to the session ended all the same (the engine checks its session when it finds it); a
 * JWT access token for an API, got by the same app in the same session without offline access,
 * stayed active at introspection and at every resource server until it expired, after the person
 * signed out everywhere, at the app (RP-initiated logout, with or without an app told by
 * back-channel logout) or on the account page, or signed out of that one app (which the engine then
 * drops from the session, so that a later sign-out everywhere no longer named its grant). Each
 * succeeded before its fix; the rest of the pass held: docs/security-passes.md lists what was tried.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, grantFeed, introspect, machineClient, RESOURCE_SERVERS, type ClientCredentials } from '../helpers/tokens.js';

const PASSWORD = 'red team granted five passphrase';
const NOTES = { id: 'notes', secret: 'notes-client-secret-with-plenty-of-entropy-0123456789', redirect: 'https://notes.example.test/callback' };
const TOLD = { id: 'told', secret: 'told-client-secret-with-plenty-of-entropy-0123456789', redirect: 'https://told.example.test/callback' };
/** The API's own client: it introspects the API's tokens (RESOURCE_SERVERS) and reads the revocation feed. */
const RS: ClientCredentials = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
type App = { readonly id: string; readonly redirect: string; readonly config: oidc.Configuration };

describe('e2e: red team, fifth pass, Latchkey hands out more than was granted', function () {
  this.timeout(60_000);
  let server: TestServer;
  let receiver: LogoutReceiver;
  let helper: ResourceServer;
  let notes: App;
  let told: App;

  before(async () => {
    receiver = await startLogoutReceiver();
    const clients = [
      { client_id: NOTES.id, client_secret: NOTES.secret, redirect_uris: [NOTES.redirect], grant_types: ['authorization_code', 'refresh_token'] },
      { client_id: TOLD.id, client_secret: TOLD.secret, redirect_uris: [TOLD.redirect], grant_types: ['authorization_code', 'refresh_token'], backchannel_logout_uri: receiver.url },
      machineClient(RS),
    ];
    server = await startServer({ ownRedis: true, clients, env: { RESOURCE_SERVERS, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
    await grantFeed(server, RS.id);
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret });
    const app = async ({ id, secret, redirect }: typeof NOTES): Promise<App> => ({
      id,
      redirect,
      config: await oidc.discovery(new URL(server.issuer), id, secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] }),
    });
    [notes, told] = await Promise.all([app(NOTES), app(TOLD)]);
  });
  after(async () => {
    helper?.close();
    await server?.stop();
    receiver?.server.close();
  });

  /** `agent` signs `username` in at `app` (consenting if asked) with `params`; the app's tokens. */
  async function signIn(agent: Agent, app: App, username: string, params: Record<string, string>) {
    const { page, verifier } = await startAuthorization(agent, app.config, app.redirect, params);
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: app.redirect });
    assert.ok(done.url.startsWith(app.redirect), `back at the app, got ${done.status} ${done.url}`);
    return oidc.authorizationCodeGrant(app.config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, params.resource ? { resource: params.resource } : undefined);
  }

  /** Whether the API still takes `accessToken`: its introspection, and latchkey/resource-server after a poll of the feed. */
  async function atTheApi(accessToken: string): Promise<{ introspection: unknown; resourceServer: string }> {
    await helper.sync();
    const resourceServer = await helper.verify(accessToken).then(
      () => 'accepted',
      (error: Error) => `refused: ${error.message}`,
    );
    return { introspection: (await introspect(server.url, RS, accessToken)).active, resourceServer };
  }

  /**
   * In one browser session `username` lets `app` in twice: with offline access (a refresh token),
   * and without it for the API (a JWT access token bound to the session), in the order given.
   */
  async function boundAndOffline(agent: Agent, app: App, username: string, offlineFirst: boolean) {
    await server.accounts.create(username, PASSWORD);
    const offline = () => signIn(agent, app, username, { scope: 'openid offline_access' });
    const bound = () => signIn(agent, app, username, { scope: 'openid read', resource: API, prompt: 'login' });
    const [first, second] = offlineFirst ? [await offline(), await bound()] : [await bound(), await offline()];
    const [held, api] = offlineFirst ? [first, second] : [second, first];
    assert.ok(held.refresh_token, 'offline access was granted');
    assert.equal(api.refresh_token, undefined, 'the API token was asked without offline access');
    assert.equal(api.scope, 'read');
    assert.deepEqual(await atTheApi(api.access_token), { introspection: true, resourceServer: 'accepted' }, 'the API takes the token while the person is signed in');
    return { refreshToken: held.refresh_token, accessToken: api.access_token };
  }

  /** After the sign-out: the session-bound JWT is taken nowhere; the offline grant still refreshes, into tokens that work. */
  async function endedWithTheSession(app: App, tokens: { refreshToken: string; accessToken: string }) {
    const after = await atTheApi(tokens.accessToken);
    assert.equal(after.introspection, false, 'a JWT bound to the session is inactive at introspection once the session is signed out');
    assert.match(after.resourceServer, /^refused/, 'and refused by latchkey/resource-server (the revocation feed)');
    const refreshed = await oidc.refreshTokenGrant(app.config, tokens.refreshToken);
    assert.equal(refreshed.scope, 'openid offline_access', 'offline access outlives the sign-out, as by design');
    assert.equal((await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${refreshed.access_token}` } })).status, 200);
  }

  async function signOutEverywhere(agent: Agent): Promise<void> {
    const page = await agent.follow(`${server.issuer}/session/end`);
    const done = await agent.submit(page, '/session/end/confirm', { logout: 'yes' });
    assert.match(done.url, /\/session\/end\/success/);
  }

  for (const offlineFirst of [true, false]) {
    const order = offlineFirst ? 'after offline access was granted' : 'before offline access was granted';
    it(`a JWT access token got without offline access, ${order} to the same app in the same session, ends when the person signs out everywhere (no app told) (OIDC RP-Initiated Logout §2, OIDC Core §11, RFC 7662 §2.2)`, async () => {
      const agent = new Agent();
      const tokens = await boundAndOffline(agent, notes, `noor-${offlineFirst}`, offlineFirst);
      await signOutEverywhere(agent);
      await endedWithTheSession(notes, tokens);
    });
  }

  it('… and so when an app of the session is told by back-channel logout: the token has ended before the app is told (Back-Channel Logout 1.0 §2.7)', async () => {
    const agent = new Agent();
    const tokens = await boundAndOffline(agent, told, 'tove', true);
    let whenTold: unknown;
    receiver.onToken = async () => {
      whenTold = (await introspect(server.url, RS, tokens.accessToken)).active;
    };
    try {
      await signOutEverywhere(agent);
    } finally {
      receiver.onToken = undefined;
    }
    assert.equal(whenTold, false, 'the token was inactive when the app was told');
    await endedWithTheSession(told, tokens);
  });

  for (const app of ['notes', 'told'] as const) {
    it(`… and so when the person signs out of that one app (${app === 'told' ? 'told by back-channel logout' : 'no app told'}), which a later sign-out everywhere no longer names (OIDC RP-Initiated Logout §2)`, async () => {
      const agent = new Agent();
      const signedIn = app === 'told' ? told : notes;
      const tokens = await boundAndOffline(agent, signedIn, `otto-${app}`, true);
      const page = await agent.follow(`${server.issuer}/session/end?client_id=${signedIn.id}`);
      const done = await agent.submit(page, '/session/end/confirm', {});
      assert.match(done.url, /\/session\/end\/success/);
      await endedWithTheSession(signedIn, tokens);
      await signOutEverywhere(agent);
      assert.deepEqual(await atTheApi(tokens.accessToken), { introspection: false, resourceServer: 'refused: the access token has been revoked' });
    });
  }

  it("… and so when the person signs that browser out on the account page (another session's sign-out)", async () => {
    const phone = new Agent();
    const tokens = await boundAndOffline(phone, notes, 'pia', true);
    const laptop = new Agent();
    const page: Page = await signInSteps(laptop, await laptop.follow(`${server.issuer}/account`), { username: 'pia', password: PASSWORD, login: 'required', consent: 'stop' });
    const other = page.html
      .split('<div class="listed">')
      .filter((block) => block.includes('name="session"') && !block.includes('This browser'))
      .map((block) => block.match(/name="session" value="([^"]+)"/)![1]!);
    assert.equal(other.length, 1, page.html);
    const form = formIn(page.html, '/sessions/sign-out');
    const done = await laptop.follow(new URL(form.action, page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: form.hidden.csrf!, session: other[0]! }),
    });
    assert.match(done.html, /That session is signed out/);
    await endedWithTheSession(notes, tokens);
  });
});
