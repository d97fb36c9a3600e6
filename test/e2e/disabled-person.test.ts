/**
 * Issue 19.2, performed: a person signs in (developer page and an app with back-channel logout),
 * an operator disables them (CLI, admin API), and the same browser session then tries the
 * developer page, its create-app form and /auth (prompt=none and normal). Every try finds no one
 * signed in — never a 500 — the app receives a signed logout token, and re-enabling the person
 * lets them sign in again. Also the former 500 itself: a stale session the index does not know
 * (made before it existed) reaching /auth and the consent page.
 */
import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { developerSignIn } from '../helpers/developer.js';
import { frontChannel } from '../helpers/front-channel.js';
import { latchkey } from '../helpers/process.js';
import { isConsent, signInSteps } from '../helpers/sign-in.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.js';
import { clientCredentialsToken, introspect } from '../helpers/tokens.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { AdapterIndexes } from '../../src/store/adapter-indexes.js';

const PASSWORD = 'disabled person test password';
const APP_SECRET = 'app-client-secret-with-plenty-of-entropy-0123456789';
const OPS_SECRET = 'ops-client-secret-with-plenty-of-entropy-0123456789';
const REDIRECT = 'https://app.example.test/callback';
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('e2e: disabling a person ends their sessions everywhere (issue 19.2)', function () {
  this.timeout(90_000);
  const dir = testDir();
  let redis: RedisServer;
  let receiver: LogoutReceiver;
  let server: TestServer;
  let env: Record<string, string>;
  let app: oidc.Configuration;

  before(async () => {
    [redis, receiver] = await Promise.all([startRedisServer(), startLogoutReceiver()]);
    const clients = [
      {
        client_id: 'app',
        client_secret: APP_SECRET,
        redirect_uris: [REDIRECT],
        backchannel_logout_uri: receiver.url,
        backchannel_logout_session_required: true,
      },
      { client_id: 'ops', client_secret: OPS_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'admin' },
      { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] },
    ];
    const port = await freePort();
    const settings = { redisUrl: redis.url, dir, port, env: { CLIENTS: JSON.stringify(clients), OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } };
    env = testEnv(dir, port, settings);
    server = await startServer(settings);
    await server.apis.grant('ops', `${server.issuer}/admin`, { scopes: ['admin'] });
    for (const name of ['alice', 'bob', 'carol', 'dora', 'erin', 'frank', 'gina']) await server.accounts.create(name, PASSWORD);
    app = await oidc.discovery(new URL(server.issuer), 'app', APP_SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
    receiver?.server.close();
    await redis?.stop();
  });

  /** One browser: signed in to the developer page and to the app (one session, two clients). */
  async function signedInEverywhere(username: string) {
    const { agent, page } = await developerSignIn(server.issuer, username, PASSWORD);
    await frontChannel(app, { redirectUri: REDIRECT, username, password: PASSWORD, params: { scope: 'openid' }, agent });
    return { agent, developerPage: page };
  }

  const sub = async (username: string) => (await server.accounts.findByUsername(username))!.sub;

  const adminToken = () => clientCredentialsToken(server.url, { id: 'ops', secret: OPS_SECRET }, `${server.issuer}/admin`, 'admin');

  /** The authorization request as the app makes it, with this browser's cookies, stopped at the app. */
  async function authorize(agent: Agent, params: Record<string, string> = {}): Promise<Page> {
    const url = oidc.buildAuthorizationUrl(app, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      ...params,
    });
    return agent.follow(url.href, {}, REDIRECT);
  }

  /** What a stale session must get everywhere (/auth first: that is where the engine failed): nobody signed in, and never a 5xx. */
  async function signedOutEverywhere(agent: Agent, developerPage: Page, who: string, accountId: string) {
    const normal = await authorize(agent);
    assert.equal(normal.status, 200, `${who}: /auth answers ${normal.status}`);
    assert.ok(normal.html.includes('name="password"'), `${who}: /auth shows the sign-in page`);

    const silent = await authorize(agent, { prompt: 'none' });
    assert.ok(silent.url.startsWith(REDIRECT), `${who}: prompt=none returns to the app (${silent.status} ${silent.url})`);
    assert.equal(new URL(silent.url).searchParams.get('error'), 'login_required');

    const developer = await agent.follow(`${server.issuer}/developer`);
    assert.equal(developer.status, 200);
    assert.match(developer.html, /Developer sign-in|Register your apps/, `${who}: the developer page asks to sign in`);
    assert.doesNotMatch(developer.html, /Your apps/);

    // The create-app form as it was before the person was disabled (its CSRF token included).
    const create = await agent.submit(developerPage, '/developer/apps', { name: 'After disable', type: 'web', redirect_uris: 'https://late.example.test/cb' });
    assert.equal(create.status, 401, `${who}: no app is created`);
    assert.doesNotMatch(create.html, /client_secret|App registered/);
    assert.deepEqual(await developerApps(accountId), [], `${who}: owns no app`);
  }

  async function logoutTokenFor(accountId: string) {
    const keys = createRemoteJWKSet(new URL(app.serverMetadata().jwks_uri!));
    for (const token of receiver.tokens) {
      const { payload } = await jwtVerify(token, keys, { issuer: server.issuer, audience: 'app', typ: 'logout+jwt' });
      if (payload.sub === accountId) return payload;
    }
    return undefined;
  }

  it('disabled with the CLI: the same cookie opens nothing, creates no app, gets the sign-in page at /auth; the app gets a logout token', async () => {
    const { agent, developerPage } = await signedInEverywhere('alice');
    const accountId = await sub('alice');
    const run = await latchkey(env, ['users', 'disable', 'alice']);
    assert.equal(run.status, 0, run.stderr);

    const token = await logoutTokenFor(accountId);
    assert.ok(token, 'a logout token for alice reached the app');
    assert.ok(token.sid, 'with the session id (backchannel_logout_session_required)');
    assert.deepEqual(token.events, { [BACKCHANNEL_EVENT]: {} });
    assert.deepEqual(await new AdapterIndexes(server.kv).sessionIds(accountId), [], 'the index is emptied');

    await signedOutEverywhere(agent, developerPage, 'alice', accountId);
  });

  it('disabled with the admin API: the same, and re-enabling lets the person sign in again', async () => {
    const { agent, developerPage } = await signedInEverywhere('bob');
    const accountId = await sub('bob');
    const token = await adminToken();
    const admin = (action: string) => fetch(`${server.url}/admin/users/bob/${action}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal((await admin('disable')).status, 200);
    assert.ok(await logoutTokenFor(accountId), 'a logout token for bob reached the app');
    await signedOutEverywhere(agent, developerPage, 'bob', accountId);

    // The sign-in page refuses him while disabled…
    const refused = await agent.submit(await authorize(agent), '/login', { username: 'bob', password: PASSWORD }, REDIRECT);
    assert.equal(refused.status, 401);
    // …and lets him in once an operator enables him again (here with the CLI).
    assert.equal((await latchkey(env, ['users', 'enable', 'bob'])).status, 0);
    const { callback } = await frontChannel(app, { redirectUri: REDIRECT, username: 'bob', password: PASSWORD, params: { scope: 'openid' } });
    assert.ok(callback.searchParams.get('code'));
    await developerSignIn(server.issuer, 'bob', PASSWORD);
  });

  it('regression (was a 500): a stale session the index does not know, first at /auth, then the developer page', async () => {
    const { agent, developerPage } = await signedInEverywhere('carol');
    const accountId = await sub('carol');
    // A session made before sessions were indexed, then the person disabled: nothing ended it.
    await new AdapterIndexes(server.kv).forgetSessions(accountId);
    await server.accounts.setDisabled('carol', true);
    await signedOutEverywhere(agent, developerPage, 'carol', accountId);
    assert.ok(await logoutTokenFor(accountId), 'ended at first use, with a logout token to the app');
  });

  it('deleted with the CLI: the same, and the name is free again', async () => {
    const { agent, developerPage } = await signedInEverywhere('frank');
    const accountId = await sub('frank');
    const run = await latchkey(env, ['users', 'remove', 'frank']);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(await logoutTokenFor(accountId), 'a logout token for frank reached the app');
    await signedOutEverywhere(agent, developerPage, 'frank', accountId);
    assert.notEqual((await server.accounts.create('frank', PASSWORD)).sub, accountId);
  });

  it('a stale session the index does not know, first at the developer page: no apps shown, none created', async () => {
    const { agent, developerPage } = await signedInEverywhere('erin');
    const accountId = await sub('erin');
    await new AdapterIndexes(server.kv).forgetSessions(accountId);
    await server.accounts.setDisabled('erin', true);
    const create = await agent.submit(developerPage, '/developer/apps', { name: 'After disable', type: 'web', redirect_uris: 'https://late.example.test/cb' });
    assert.equal(create.status, 401);
    assert.deepEqual(await developerApps(accountId), []);
    assert.doesNotMatch((await agent.follow(`${server.issuer}/developer`)).html, /Your apps/);
    assert.ok((await authorize(agent)).html.includes('name="password"'));
  });

  it('a stale session the index does not know, at the select_account chooser: the person deleted meanwhile, the chooser (reloaded, or "Continue as") makes the request again, which ends that session and shows the login form (was a 403 dead end), and another account signs in there', async () => {
    await server.accounts.create('ivan', PASSWORD);
    for (const way of ['reload', 'continue'] as const) {
      const who = `helen-${way}`;
      await server.accounts.create(who, PASSWORD);
      const { agent } = await signedInEverywhere(who);
      await new AdapterIndexes(server.kv).forgetSessions(await sub(who));
      const chooser = await authorize(agent, { prompt: 'select_account' });
      assert.ok(chooser.html.includes('/continue"'), `${way}: the chooser, got ${chooser.status} ${chooser.url}`);
      await server.accounts.remove(who);
      const page = way === 'reload' ? await agent.follow(chooser.url, {}, REDIRECT) : await agent.submit(chooser, '/continue', {}, REDIRECT);
      assert.equal(page.status, 200, `${way}: ${page.status} ${page.url}`);
      assert.ok(page.html.includes('name="password"') && !page.html.includes('/continue"'), `${way}: the login form, got ${page.url}`);
      const done = await signInSteps(agent, page, { username: 'ivan', password: PASSWORD, login: 'required', stopAt: REDIRECT });
      assert.ok(new URL(done.url).searchParams.get('code'), `${way}: a code for ivan, got ${done.status} ${done.url}`);
    }
  });

  it('a stale session the index does not know, at /device: ended there, the device is connected only after signing in again', async () => {
    const { agent } = await signedInEverywhere('gina');
    const accountId = await sub('gina');
    await new AdapterIndexes(server.kv).forgetSessions(accountId);
    await server.accounts.setDisabled('gina', true);
    const started = await fetch(`${server.url}/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: 'tv', scope: 'openid' }) });
    const { user_code } = (await started.json()) as { user_code: string };

    // The entry page re-checks the session as /auth does: gina is signed out there.
    const entry = await agent.follow(`${server.issuer}/device`);
    assert.equal(entry.status, 200);
    assert.ok(await logoutTokenFor(accountId), 'ended at /device, with a logout token to the app');
    await server.accounts.setDisabled('gina', false);
    const confirm = await agent.submit(entry, '/device', { user_code });
    assert.match(confirm.html, /name="confirm"/, `the confirmation page, got ${confirm.status} ${confirm.url}`);
    const next = await agent.submit(confirm, '/device', { confirm: 'yes' });
    assert.equal(next.status, 200, `${next.status} ${next.url}`);
    assert.ok(next.html.includes('name="password"'), `asked to sign in again, got ${next.url}`);
  });

  it('a person disabled while the consent page is open: the app is told access_denied (RFC 6749 §4.1.2.1), and nothing is granted', async () => {
    const agent = new Agent();
    const login = await authorize(agent);
    const consent = await agent.submit(login, '/login', { username: 'dora', password: PASSWORD }, REDIRECT);
    assert.match(consent.html, /\/confirm/, 'dora is asked for consent');
    await server.accounts.setDisabled('dora', true);

    // Allowing: no code, the app hears access_denied (it was a 403 page, and the app never heard).
    const confirmed = await agent.submit(consent, '/confirm', {}, REDIRECT);
    assert.ok(confirmed.url.startsWith(REDIRECT), `back at the app: ${confirmed.status} ${confirmed.url}`);
    assert.equal(new URL(confirmed.url).searchParams.get('error'), 'access_denied');
    assert.equal(new URL(confirmed.url).searchParams.get('code'), null, 'no code reaches the app');
  });

  it("a person disabled by an operator (which ends their sessions) while the consent page is open: allowing tells the app access_denied, not a page that leaves it waiting (operating.md; granting and endings pass)", async () => {
    await server.accounts.create('dina', PASSWORD);
    const agent = new Agent();
    const login = await authorize(agent);
    const consent = await agent.submit(login, '/login', { username: 'dina', password: PASSWORD }, REDIRECT);
    assert.match(consent.html, /\/confirm/, 'dina is asked for consent');
    assert.equal((await latchkey(env, ['users', 'disable', 'dina'])).status, 0);

    const confirmed = await agent.submit(consent, '/confirm', {}, REDIRECT);
    assert.ok(confirmed.url.startsWith(REDIRECT), `back at the app: ${confirmed.status} ${confirmed.url} ${confirmed.html.slice(0, 200)}`);
    assert.equal(new URL(confirmed.url).searchParams.get('error'), 'access_denied');
    assert.equal(new URL(confirmed.url).searchParams.get('code'), null, 'no code reaches the app');
  });

  it('a login form open (prompt=login) in a browser whose signed-in person an operator disabled: someone else signs in there, and the app gets their code, not access_denied', async () => {
    await server.accounts.create('dale', PASSWORD);
    await server.accounts.create('erik', PASSWORD);
    const agent = new Agent();
    const first = await agent.submit(await authorize(agent), '/login', { username: 'dale', password: PASSWORD }, REDIRECT);
    const allowed = first.html.includes('/confirm') ? await agent.submit(first, '/confirm', {}, REDIRECT) : first;
    assert.ok(new URL(allowed.url).searchParams.get('code'), `dale is signed in (${allowed.status} ${allowed.url})`);
    const form = await authorize(agent, { prompt: 'login' });
    assert.match(form.html, /name="password"/, 'the login form');
    assert.equal((await latchkey(env, ['users', 'disable', 'dale'])).status, 0);

    const signedIn = await agent.submit(form, '/login', { username: 'erik', password: PASSWORD }, REDIRECT);
    const answered = signedIn.html.includes('/confirm') ? await agent.submit(signedIn, '/confirm', {}, REDIRECT) : signedIn;
    assert.equal(new URL(answered.url).searchParams.get('error'), null, `not refused in dale's name (${answered.status} ${answered.url})`);
  });

  const developerApps = (accountId: string) => server.clients.ownedBy(accountId);

  it("a disabled person's tokens: userinfo answers 401 and introspection inactive, at once", async () => {
    await server.accounts.create('hank', PASSWORD);
    const { callback, verifier } = await frontChannel(app, { redirectUri: REDIRECT, username: 'hank', password: PASSWORD, params: { scope: 'openid' } });
    const tokens = await oidc.authorizationCodeGrant(app, callback, { pkceCodeVerifier: verifier });
    const userinfo = () => fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    const self = { id: 'app', secret: APP_SECRET };
    assert.equal((await userinfo()).status, 200, 'userinfo answers before');
    assert.equal((await introspect(server.url, self, tokens.access_token)).active, true, 'active before');

    assert.equal((await latchkey(env, ['users', 'disable', 'hank'])).status, 0);
    assert.equal((await userinfo()).status, 401, 'userinfo with the token of a disabled person');
    assert.deepEqual(await introspect(server.url, self, tokens.access_token), { active: false });
  });
  it('disabled and enabled again (CLI, admin API): every app asks for consent again; a consent given before, perhaps by whoever took the account, does not carry over', async () => {
    const token = await adminToken();
    const ways: [string, (username: string) => Promise<unknown>][] = [
      ['the CLI', async (username) => assert.equal((await latchkey(env, ['users', 'disable', username])).status, 0)],
      ['the admin API', async (username) => assert.equal((await fetch(`${server.url}/admin/users/${username}/disable`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status, 200)],
    ];
    for (const [way, disable] of ways) {
      const username = way === 'the CLI' ? 'ivy' : 'jack';
      await server.accounts.create(username, PASSWORD);
      await frontChannel(app, { redirectUri: REDIRECT, username, password: PASSWORD, params: { scope: 'openid' } });
      const before = new Agent();
      const remembered = await signInSteps(before, await authorize(before), { username, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
      assert.ok(remembered.url.startsWith(REDIRECT), `${way}: the consent is remembered before (${remembered.url})`);

      await disable(username);
      assert.equal((await latchkey(env, ['users', 'enable', username])).status, 0);
      const agent = new Agent();
      const again = await signInSteps(agent, await authorize(agent), { username, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
      assert.ok(isConsent(again), `${way}: the app got a code without asking (${again.status} ${again.url})`);
    }
  });
});
