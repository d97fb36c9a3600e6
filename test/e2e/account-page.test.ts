/**
 * The account page (/account) without a browser, against a real Redis and an app driven by
 * openid-client: signing in to the page with Latchkey itself; withdrawing an app's access (its
 * refresh token refused, its JWT access token inactive at introspection and on the revocation
 * feed, its consent asked again); signing out another session (back-channel logout to its apps,
 * that browser asked to sign in again); and every kind of bad request the page handles.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { AccountSessions } from '../../src/accounts/sessions.js';
import { CookieKeys } from '../../src/http/cookie-keys.js';
import { ClientError } from '../../src/registration/clients.js';
import { GRANT_CLAIM } from '../../src/revocation/list.js';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { isConsent, isLogin, signInSteps, totpCode } from '../helpers/sign-in.js';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const PASSWORD = 'account page password';
const REDIRECT = 'https://notes.example.test/callback';
const NOTES = { id: 'notes', secret: 'notes-app-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };

describe('e2e: the account page', function () {
  this.timeout(60_000);
  let server: TestServer;
  let receiver: LogoutReceiver;
  let notes: oidc.Configuration;

  before(async () => {
    receiver = await startLogoutReceiver();
    const clients = [
      {
        client_id: NOTES.id,
        client_secret: NOTES.secret,
        client_name: 'Orange Notes',
        logo_uri: 'https://cdn.notes.example.test/logo.png',
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        backchannel_logout_uri: receiver.url,
        backchannel_logout_session_required: true,
      },
      machineClient(RS),
    ];
    server = await startServer({ ownRedis: true, clients, env: { RESOURCE_SERVERS, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', REGISTRATION_OPEN: 'true' } });
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) await server.accounts.create(name, PASSWORD, { name: name[0]!.toUpperCase() + name.slice(1) });
    await grantFeed(server, RS.id);
    notes = await oidc.discovery(new URL(server.issuer), NOTES.id, NOTES.secret, oidc.ClientSecretBasic(NOTES.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
    receiver?.server.close();
  });

  async function signIn(username: string, agent = new Agent()): Promise<{ agent: Agent; page: Page }> {
    // No consent step: the account page is Latchkey itself (provider/consents.ts).
    const page = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username, password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(page.url, `${server.issuer}/account`, `expected the account page, got ${page.url} (${page.status})`);
    return { agent, page };
  }

  /** An authenticator app that the session `uid` of `username` set up itself (recovery codes are made only beside a second factor). */
  async function appSetUpIn(username: string, uid: string) {
    const { sub } = (await server.accounts.findByUsername(username))!;
    const { secret } = await server.secondFactors.totp.begin(sub, username, uid);
    assert.ok(await server.secondFactors.totp.confirm(sub, totpCode(secret, -1), uid));
  }

  /** Notes asks for access to the API with offline access (consent is asked only when it is not remembered: patches/offline-access.ts). */
  async function authorize(agent: Agent) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(notes, {
      redirect_uri: REDIRECT,
      scope: 'openid offline_access read',
      resource: API,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    return { page: await agent.follow(url.href, {}, REDIRECT), verifier };
  }
  async function notesSignIn(agent: Agent, username: string) {
    const flow = await authorize(agent);
    const page = await signInSteps(agent, flow.page, { username, password: PASSWORD, stopAt: REDIRECT });
    return oidc.authorizationCodeGrant(notes, new URL(page.url), { pkceCodeVerifier: flow.verifier }, { resource: API });
  }

  const readFeed = async () => {
    const token = await clientCredentialsToken(server.url, RS, `${server.issuer}/revocations`, 'revocations');
    const response = await fetch(`${server.url}/revocations`, { headers: { authorization: `Bearer ${token}` } });
    return ((await response.json()) as { entries: { type: string; gid?: string }[] }).entries;
  };

  /** The sessions listed on the page: each one's uid, and whether it is this browser. */
  const sessionsOn = (page: Page) =>
    page.html
      .split('<div class="listed">')
      .filter((block) => block.includes('name="session"'))
      .map((block) => ({ uid: block.match(/name="session" value="([^"]+)"/)![1]!, current: block.includes('This browser') }));

  it('sends a stranger to sign in, and a person who signs in reaches their page', async () => {
    const agent = new Agent();
    const first = await agent.request(`${server.issuer}/account`);
    assert.equal(first.status, 302);
    assert.equal(first.headers.get('location'), '/account/sign-in');
    const { page } = await signIn('alice', agent);
    assert.equal(page.status, 200);
    assert.match(page.html, /<h1>Your account<\/h1>/);
    // The name is isolated (<bdi>): one an upstream or an operator gave with a right-to-left override reorders nothing of the page's.
    assert.match(page.html, /Signed in as <strong>alice<\/strong> \(<bdi>Alice<\/bdi>\)/);
    for (const section of ['Password', 'Apps with access', 'Where you’re signed in']) assert.ok(page.html.includes(`<h2>${section}</h2>`), section);
    assert.match(page.html, /No app has access to your account/);
    assert.ok(!page.html.includes('Sign in with another provider'), 'no upstream configured and no link: no links section');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    // Only our own script files (passkey enrolment): no inline script, nothing from elsewhere.
    assert.doesNotMatch(page.html, /<script(?![^>]*\ssrc="\/static\/[\w-]+\.js")/);
  });

  it('signing in to the account page asks no consent, an app still does, and nobody can take the page\'s client id', async () => {
    const { agent } = await signIn('dave');
    const app = await authorize(agent);
    assert.ok(isConsent(app.page), `an app asks for consent, got ${app.page.url}`);

    await assert.rejects(server.clients.add({ client_id: 'latchkey-account', redirect_uris: [REDIRECT] }), (error: Error) => {
      assert.ok(error instanceof ClientError);
      assert.equal(error.status, 409);
      return true;
    });
    const registered = await fetch(`${server.url}/reg`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'latchkey-account', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' }),
    });
    assert.equal(registered.status, 201);
    assert.notEqual(((await registered.json()) as { client_id: string }).client_id, 'latchkey-account');
    // Whatever the store holds, the configured first-party client is the one the provider resolves.
    assert.deepEqual(((await server.provider.Client.find('latchkey-account'))?.redirectUris), [`${server.issuer}/account/callback`]);
  });

  it('signs out a person who was disabled since, and sends them to sign in', async () => {
    const { agent } = await signIn('carol');
    await server.accounts.setDisabled('carol', true);
    const again = await agent.request(`${server.issuer}/account`);
    assert.equal(again.status, 302);
    assert.equal(again.headers.get('location'), '/account/sign-in');
    await server.accounts.setDisabled('carol', false);
    assert.ok(isLogin(await agent.follow(`${server.issuer}/account`)), 'the session was ended: the login page is shown again');
  });

  it('withdrawing an app’s access: its refresh token is refused, its JWT access token inactive and on the feed, and it must ask again', async () => {
    const browser = new Agent();
    const tokens = await notesSignIn(browser, 'alice');
    const grant = String(decodeJwt(tokens.access_token)[GRANT_CLAIM]);
    assert.equal((await introspect(server.url, RS, tokens.access_token)).active, true);
    // An opaque access token of the same grant (for userinfo: a refresh without a resource).
    const refreshed = await oidc.refreshTokenGrant(notes, tokens.refresh_token!);
    const userinfo = async () => (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${refreshed.access_token}` } })).status;
    assert.equal(await userinfo(), 200);

    const { agent, page } = await signIn('alice');
    assert.match(page.html, /<strong><bdi>Orange Notes<\/bdi><\/strong>/);
    assert.match(page.html, /May know who you are, keep access while you are away, act on https:\/\/api\.example\.test with: read\./);
    assert.match(page.html, /src="https:\/\/cdn\.notes\.example\.test\/logo\.png"/);
    assert.match(page.headers.get('content-security-policy') ?? '', /img-src 'self' data: https:\/\/cdn\.notes\.example\.test(;|$)/);

    const done = await agent.submit(page, '/apps/withdraw', {});
    assert.match(done.url, new RegExp(`^${server.issuer}/account\\?done=apps\\.withdrawn\\.[\\w-]+#apps$`));
    assert.match(done.html, /Access withdrawn/);
    assert.match(done.html, /No app has access to your account/);

    await assert.rejects(oidc.refreshTokenGrant(notes, refreshed.refresh_token!, { resource: API }), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_grant');
      return true;
    });
    assert.equal((await introspect(server.url, RS, tokens.access_token)).active, false);
    assert.equal(await userinfo(), 401, 'the opaque access token is gone with its grant');
    assert.ok((await readFeed()).some((entry) => entry.type === 'grant' && entry.gid === grant), 'the grant is on the revocation feed');

    const again = await authorize(browser);
    assert.ok(isConsent(again.page), `the app must ask for consent again, got ${again.page.url}`);
  });

  let bobs: { refreshToken: string; sessionUid: string };

  it('signing out another session: back-channel logout to its apps, and that browser must sign in again', async () => {
    const phone = new Agent();
    const tokens = await notesSignIn(phone, 'bob');
    const sid = String(tokens.claims()!.sid);
    const { agent, page } = await signIn('bob');
    const listed = sessionsOn(page);
    assert.equal(listed.length, 2, page.html);
    const other = listed.find((session) => !session.current)!;
    assert.ok(other);

    const before = receiver.tokens.length;
    const form = formIn(page.html, '/sessions/sign-out');
    const done = await agent.follow(new URL(form.action, page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: form.hidden.csrf!, session: other.uid }),
    });
    assert.match(done.html, /That session is signed out/);
    assert.equal(sessionsOn(done).length, 1);

    const logout = receiver.tokens.slice(before).map((token) => decodeJwt(token));
    assert.deepEqual(logout.map((claims) => claims.sid), [sid], 'a logout token for the session signed out');
    assert.ok(isLogin((await authorize(phone)).page), 'that browser is asked to sign in again');
    // Notes asked for offline access, which outlives signing out (as at end_session).
    const refreshed = await oidc.refreshTokenGrant(notes, tokens.refresh_token!, { resource: API });
    assert.ok(isLogin(await phone.follow(`${server.issuer}/account`)), 'the account page too');
    bobs = { refreshToken: refreshed.refresh_token!, sessionUid: listed.find((session) => session.current)!.uid };
  });

  it('a person acts only on their own sessions and apps: another person’s are “not found”, and keep working', async () => {
    const { agent, page } = await signIn('dave');
    const { hidden } = formIn(page.html, '/password');
    const post = (path: string, fields: Record<string, string>) =>
      agent.follow(`${server.issuer}/account${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf: hidden.csrf!, ...fields }),
      });
    const session = await post('/sessions/sign-out', { session: bobs.sessionUid });
    assert.equal(session.status, 404);
    assert.match(session.html, /That session is not signed in any more/);
    const app = await post('/apps/withdraw', { client: NOTES.id });
    assert.equal(app.status, 404, 'dave never gave Notes access');
    assert.match(app.html, /That app has no access to withdraw/);
    assert.match((await agent.follow(`${server.issuer}/account`)).html, /No app has access to your account/, 'nor does he see anyone else’s');
    await oidc.refreshTokenGrant(notes, bobs.refreshToken, { resource: API });
    assert.equal(sessionsOn((await signIn('bob')).page).length, 2, 'bob’s session is still there (and the one just made)');
  });

  it('changing the password: the old one stops working, and the other sessions are signed out with what they were granted (offline access too) unless the person unticks it', async () => {
    const kept = await signIn('erin');
    // Another device where erin let Notes in with offline access (a refresh token).
    const device = await notesSignIn(new Agent(), 'erin');
    let refreshToken = device.refresh_token!;
    const { agent, page } = await signIn('erin');
    const first = await agent.submit(page, '/password', { current_password: PASSWORD, new_password: 'second password', confirm_password: 'second password', });
    assert.match(first.url, new RegExp(`^${server.issuer}/account\\?done=password\\.changed\\.[\\w-]+#password$`));
    assert.match(first.html, /Your password has been changed\./);
    assert.equal(await server.accounts.verify('erin', PASSWORD), undefined, 'the old password no longer signs in');
    assert.ok(await server.accounts.verify('erin', 'second password'));
    assert.equal(sessionsOn(await kept.agent.follow(`${server.issuer}/account`)).length, 3, 'unticked: the other sessions stay');
    refreshToken = (await oidc.refreshTokenGrant(notes, refreshToken, { resource: API })).refresh_token!;

    assert.match(first.html, /name="sign_out_others" value="yes" checked/, 'ticked unless the person unticks it');
    const second = await agent.submit(first, '/password', { current_password: 'second password', new_password: 'third password', confirm_password: 'third password', sign_out_others: 'yes' });
    assert.match(second.html, /Your password has been changed, and every other session is signed out/);
    assert.equal(sessionsOn(second).length, 1);
    assert.ok(isLogin(await kept.agent.follow(`${server.issuer}/account`)), 'the other browser must sign in again');
    await eventually(async () => assert.ok(receiver.tokens.some((token) => decodeJwt(token).sid === device.claims()!.sid), "Notes got a logout token for the other device's session"));
    await assert.rejects(oidc.refreshTokenGrant(notes, refreshToken, { resource: API }), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_grant', "the other device's offline access ended with its session");
      return true;
    });
  });

  it('a change of how the person signs in gives this browser a new session id: a copy of its cookie taken before signs nobody in, the browser goes on', async () => {
    await server.accounts.create('ike', PASSWORD);
    const { agent, page } = await signIn('ike');
    const sessionId = () => /(?:^|; )lk_session=([^;]+)/.exec(agent.cookieHeader(server.url))?.[1];
    const signedInWith = async (cookie: string) => (await fetch(`${server.url}/account`, { headers: { cookie }, redirect: 'manual' })).status === 200;
    const copies = [agent.cookieHeader(server.url)];
    const before = sessionId();
    const uid = sessionsOn(page).find((session) => session.current)!.uid;

    // Unticked, so that only the renewal can end the copy: the other sessions' ending spares this session's uid.
    const changed = await agent.submit(page, '/password', { current_password: PASSWORD, new_password: 'ike has a new password', confirm_password: 'ike has a new password' });
    assert.match(changed.html, /Your password has been changed\./);
    assert.ok(sessionId() && sessionId() !== before, 'the browser got a new session id with the change');
    // Signed, with the attributes the engine gave it at the sign-in (no expiry: "remember me" unticked).
    const attributes = (line: string) => line.replace(/^[^;]*/, '');
    const [signedIn, renewed] = [agent.setCookies.filter((line) => line.startsWith('lk_session')).slice(-4, -2), agent.setCookies.filter((line) => line.startsWith('lk_session')).slice(-2)];
    assert.deepEqual(renewed.map((line) => line.split('=')[0]), ['lk_session', 'lk_session.sig']);
    assert.deepEqual(renewed.map(attributes), signedIn!.map(attributes));
    assert.match(attributes(renewed[0]!), /^; path=\/; samesite=lax; httponly$/);
    assert.deepEqual(sessionsOn(changed), [{ uid, current: true }], 'the same session (its uid) goes on, signed in');
    assert.equal(await signedInWith(copies[0]!), false, 'the copy of the cookie taken before the change signs nobody in');
    assert.equal(await signedInWith(agent.cookieHeader(server.url)), true);

    // And with the other sessions signed out: the copy taken since is out too, this browser is not.
    copies.push(agent.cookieHeader(server.url));
    const again = await agent.submit(changed, '/password', { current_password: 'ike has a new password', new_password: 'ike has a third password', confirm_password: 'ike has a third password', sign_out_others: 'yes' });
    assert.match(again.html, /Your password has been changed, and every other session is signed out/);
    for (const copy of copies) assert.equal(await signedInWith(copy), false);
    const page3 = await agent.follow(`${server.issuer}/account`);
    assert.ok(!isLogin(page3), 'this browser stays signed in');

    // A credential removed or replaced (here the recovery codes, made anew) renews it too.
    await appSetUpIn('ike', uid);
    copies.push(agent.cookieHeader(server.url));
    const codes = await agent.submit(page3, '/recovery-codes', {});
    assert.match(codes.html, /Your recovery codes/);
    assert.equal(await signedInWith(copies.at(-1)!), false, 'the copy taken before new recovery codes signs nobody in');
    assert.equal(await signedInWith(agent.cookieHeader(server.url)), true);
  });

  it('a form that renews the session id sent twice at once leaves one session, under one id (two records of one uid would end its apps when the one left behind expired)', async () => {
    await server.accounts.create('jo', PASSWORD);
    const { agent, page } = await signIn('jo');
    await appSetUpIn('jo', sessionsOn(page).find((session) => session.current)!.uid);
    const form = formIn(page.html, '/recovery-codes');
    const cookie = agent.cookieHeader(server.url);
    const send = () => fetch(new URL(form.action, page.url), { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form.hidden) });
    const answers = await Promise.all([send(), send(), send()]);
    // One made the codes; each other one overlapped it (made none: sent on to the page saying codes were just made elsewhere) or came after its renewal (401: that id signs nobody in).
    assert.ok(answers.some((answer) => answer.status === 200));
    const overlapped = (answer: Response) => answer.status === 303 && /done=recovery-codes\.made-elsewhere/.test(answer.headers.get('location') ?? '');
    for (const answer of answers) assert.ok([200, 401].includes(answer.status) || overlapped(answer), `${answer.status} ${await answer.clone().text()}`);
    const renewed = answers.flatMap((answer) => answer.headers.getSetCookie()).filter((line) => line.startsWith('lk_session='));
    assert.equal(renewed.length, 1, 'one of them renewed it');
    const { sub } = (await server.accounts.findByUsername('jo'))!;
    assert.equal((await new AccountSessions(server.kv, server.providers, server.accounts).list(sub)).length, 1);
  });

  it("a copy of the cookie that renewed the session meanwhile (finishing a consent as the person changes their password) is signed out with every session of the person, this browser's too", async () => {
    await server.accounts.create('kay', PASSWORD);
    const { agent, page } = await signIn('kay');
    const old = /(?:^|; )lk_session=([^;]+)/.exec(agent.cookieHeader(server.url))![1]!;
    const keys = new CookieKeys(server.config.cookie.keys);
    const signedInWith = async (cookie: string) => (await fetch(`${server.url}/account`, { headers: { cookie }, redirect: 'manual' })).status === 200;
    // The thief's copy finishes a consent while the person's change checks the password: the engine
    // renews the id at its resume (destroy the old, write the new), and the thief holds the new one.
    let thief = '';
    const accounts = server.accounts as { changePassword: (...args: unknown[]) => Promise<boolean> };
    const changePassword = accounts.changePassword.bind(accounts);
    accounts.changePassword = async (...args) => {
      const session = (await server.providers.current.Session.find(old))!;
      session.resetIdentifier();
      await session.persist();
      thief = `lk_session=${session.jti}; lk_session.sig=${keys.sign(`lk_session=${session.jti}`)}`;
      assert.equal(await signedInWith(thief), true, "the thief's copy, renewed, is signed in");
      return changePassword(...args);
    };
    // Unticked: only the renewal's check can end the thief's session, of this browser's uid.
    const changed = await agent.submit(page, '/password', { current_password: PASSWORD, new_password: 'kay has a new password', confirm_password: 'kay has a new password' }).finally(() => {
      accounts.changePassword = changePassword;
    });
    assert.ok(isLogin(changed) || /Your password has been changed/.test(changed.html), `${changed.status} ${changed.url}`);
    assert.equal(await signedInWith(thief), false, "the thief's renewed copy outlives the change");
    assert.ok(isLogin(await agent.follow(`${server.issuer}/account`)), 'this browser signs in again (which of the two it is, is not known)');
    assert.ok(await server.accounts.verify('kay', 'kay has a new password'), 'the change is made');
  });

  it('changing the password also ends the offline access of a session that ended already: a thief who signed in with the old password and left keeps nothing', async () => {
    await server.accounts.create('fay', PASSWORD);
    let stolen = (await notesSignIn(new Agent(), 'fay')).refresh_token!;
    // The thief's session ends (it expired, or the thief signed out at the app): offline access outlives it, by design.
    const accountSessions = new AccountSessions(server.kv, server.providers, server.accounts);
    for (const session of await accountSessions.list((await server.accounts.findByUsername('fay'))!.sub)) await accountSessions.end(session);
    stolen = (await oidc.refreshTokenGrant(notes, stolen, { resource: API })).refresh_token!;

    const { agent, page } = await signIn('fay');
    const changed = await agent.submit(page, '/password', { current_password: PASSWORD, new_password: 'fay has a new password', confirm_password: 'fay has a new password', sign_out_others: 'yes' });
    assert.match(changed.html, /Your password has been changed, and every other session is signed out/);
    await assert.rejects(oidc.refreshTokenGrant(notes, stolen, { resource: API }), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_grant', "the refresh token got with the old password outlives it when its session ended first");
      return true;
    });
    assert.equal(isLogin(await agent.follow(`${server.issuer}/account`)), false, 'the session that changed the password stays');
  });

  it("changing the password forgets the consents given in the other sessions: an app the thief let in with the old password asks the person again, rather than getting their codes silently", async () => {
    await server.accounts.create('hal', PASSWORD);
    // The thief, signed in with the old password, let Notes in (an app of theirs, say).
    await notesSignIn(new Agent(), 'hal');
    const { agent, page } = await signIn('hal');
    const changed = await agent.submit(page, '/password', { current_password: PASSWORD, new_password: 'hal has a new password', confirm_password: 'hal has a new password', sign_out_others: 'yes' });
    assert.match(changed.html, /Your password has been changed, and every other session is signed out/);

    // The person's next sign-in at Notes (a link the thief sends, say) asks them first.
    const later = new Agent();
    const flow = await authorize(later);
    const next = await signInSteps(later, flow.page, { username: 'hal', password: 'hal has a new password', consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(next), `the consent given with the old password outlives its change (${next.status} ${next.url})`);
  });

  it("a password change that fails half-way (the store refuses the revocation list) is retried with the old password, and the retry signs the thief out with their offline access", async () => {
    await server.accounts.create('gus', PASSWORD);
    const thief = new Agent();
    const stolen = (await notesSignIn(thief, 'gus')).refresh_token!;
    const { agent, page } = await signIn('gus');
    const change = { current_password: PASSWORD, new_password: 'gus has a new password', confirm_password: 'gus has a new password', sign_out_others: 'yes' };
    // While gus changes it, the store refuses the server the revocation list's keys (a failover in the middle).
    const raw = new Redis(server.env.REDIS_URL!);
    const prefix = server.config.redis.keyPrefix;
    try {
      await raw.call('ACL', 'SETUSER', 'default', 'resetkeys', `~${prefix}[^r]*`, `~${prefix}r[^e]*`, `~${prefix}re[^v]*`);
      const failed = await agent.submit(page, '/password', change);
      assert.doesNotMatch(failed.url, /done=password/, 'the change cannot have succeeded');
    } finally {
      await raw.call('ACL', 'SETUSER', 'default', 'resetkeys', '~*');
      raw.disconnect();
    }
    // gus does what anyone does after an error: the same form again, with the password they know.
    const again = await agent.submit(await agent.follow(`${server.issuer}/account`), '/password', change);
    assert.match(again.html, /Your password has been changed, and every other session is signed out/, `the retry goes through: ${again.status} ${again.html.match(/class="error"[^>]*>([^<]*)/)?.[1] ?? ''}`);
    assert.ok(isLogin(await thief.follow(`${server.issuer}/account`)), "the thief's session is signed out");
    await assert.rejects(oidc.refreshTokenGrant(notes, stolen, { resource: API }), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError);
      assert.equal(error.error, 'invalid_grant', "the thief's offline access ended");
      return true;
    });
    assert.ok(await server.accounts.verify('gus', 'gus has a new password'), 'the new password is set');
  });

  it('refuses a form without its CSRF token, or with another session’s, and any POST from a stranger', async () => {
    const { agent, page } = await signIn('dave');
    const other = await signIn('dave');
    const post = (who: Agent, path: string, fields: Record<string, string>) =>
      who.request(`${server.issuer}/account${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields),
      });
    const { hidden } = formIn(page.html, '/password');
    const change = { current_password: PASSWORD, new_password: 'a new password', confirm_password: 'a new password' };
    for (const path of ['/password', '/apps/withdraw', '/sessions/sign-out']) {
      const missing = await post(agent, path, { ...change, client: NOTES.id, session: 'x' });
      assert.equal(missing.status, 403, path);
      assert.match(await missing.text(), /not sent from your account page/);
      const borrowed = await post(other.agent, path, { ...change, csrf: hidden.csrf!, client: NOTES.id, session: 'x' });
      assert.equal(borrowed.status, 403, `${path}: another session's token`);
      // As a person meets it (a form left open across a change that renewed the session's id): said so, not "Invalid sign-in request".
      const html = await (await other.agent.request(`${server.issuer}/account${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' }, body: new URLSearchParams({ csrf: hidden.csrf! }) })).text();
      assert.match(html, /<h1>This form is out of date<\/h1>/);
      assert.match(html, /href="\/account"[^>]*>Reload the page</);
      const stranger = await post(new Agent(), path, { ...change, csrf: hidden.csrf!, client: NOTES.id, session: 'x' });
      assert.equal(stranger.status, 401, path);
      assert.match(await stranger.text(), /sign in on your account page first/);
    }
    assert.ok(await server.accounts.verify('dave', PASSWORD), 'nothing changed');
  });

  it('answers bad requests with the page and a message, never a 500', async () => {
    const { agent, page } = await signIn('dave');
    const unknownSession = await agent.submit(page, '/sessions/sign-out', { session: 'no-such-session' });
    assert.equal(unknownSession.status, 404);
    assert.match(unknownSession.html, /That session is not signed in any more/);
    const { hidden } = formIn(page.html, '/password');
    const noApp = await agent.follow(`${server.issuer}/account/apps/withdraw`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: hidden.csrf! }),
    });
    assert.equal(noApp.status, 404, 'no app named');
    const mismatch = await agent.submit(page, '/password', { current_password: PASSWORD, new_password: 'one new password', confirm_password: 'another' });
    assert.equal(mismatch.status, 400);
    assert.match(mismatch.html, /are not the same/);
    const short = await agent.submit(page, '/password', { current_password: PASSWORD, new_password: 'short', confirm_password: 'short' });
    assert.equal(short.status, 400);
    assert.match(short.html, /Choose another new password: a password has at least 8 characters/);
    for (const done of ['password.constructor', 'password.__proto__', 'apps.toString', '<b>.changed']) {
      const shown = await agent.follow(`${server.issuer}/account?done=${encodeURIComponent(done)}`);
      assert.equal(shown.status, 200, done);
      assert.doesNotMatch(shown.html, /class="notice"/, `${done}: only a section's own notices are shown`);
    }
    const huge = await agent.request(`${server.issuer}/account/password`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `csrf=${hidden.csrf}&current_password=${'x'.repeat(40_000)}`,
    });
    assert.equal(huge.status, 413);
  });

  it('wrong current passwords count against the sign-in throttle, which then pauses changing it', async () => {
    const { agent, page } = await signIn('dave');
    const wrong = { current_password: 'not the password', new_password: 'a new password', confirm_password: 'a new password' };
    const first = await agent.submit(page, '/password', wrong);
    assert.equal(first.status, 400);
    assert.match(first.html, /That is not your current password/);
    let last = first;
    for (let attempt = 2; attempt <= 5; attempt += 1) last = await agent.submit(page, '/password', wrong);
    assert.equal(last.status, 429);
    assert.match(last.html, /changing it is paused for 30 seconds/);
    // While paused, even the right password is not checked.
    const right = await agent.submit(page, '/password', { ...wrong, current_password: PASSWORD });
    assert.equal(right.status, 429);
    assert.ok(await server.accounts.verify('dave', PASSWORD), 'the password is unchanged');
  });
});
