/**
 * A session ended while a request that loaded it is still in flight stays ended: the request's
 * write of the session as it answers does not bring it back.
 *
 * Held deterministically, with no hook in Latchkey: the server reaches Redis through a TCP relay
 * (this file) that holds everything the server sends from the moment it sends the session's write
 * (the adapter's putRecord script on the session's key, with the code and the rest the
 * authorization request settles together) until the test lets it go. Meanwhile an operator's
 * `latchkey users passwd` (its own connection, straight to Redis) ends the person's sessions.
 *
 * The same relay holds an access withdrawal on the account page at its forgetting of the remembered
 * consent (after its cutoff) while the app asks again at the other instance: the app gets nothing
 * meanwhile, the person is asked again.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { eventually } from '../helpers/eventually.js';
import { frontChannel } from '../helpers/front-channel.js';
import { latchkey, serveProcess, type ServerProcess } from '../helpers/process.js';
import { signInSteps } from '../helpers/sign-in.js';
import { commandsIn, scriptOn, startRelay, type Held, type Relay } from '../helpers/relay.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { digestOf } from '../../src/store/record-keys.js';

const PASSWORD = 'a passphrase long enough';
const SECRET = 'relying-party-secret-with-plenty-of-entropy-0123456789';
const REDIRECT = 'https://app.example.test/callback';
const API = 'https://api.example.test';

describe('e2e: a session ended while a request is in flight stays ended', function () {
  this.timeout(60_000);
  const dir = testDir();
  let redis: RedisServer;
  let relay: Relay;
  let balancer: Balancer;
  /** Instance A: reaches Redis through the relay. */
  let server: TestServer;
  /** Instance B: reaches Redis directly. */
  let other: ServerProcess;
  let env: Record<string, string>;
  let app: oidc.Configuration;

  before(async () => {
    [redis, balancer] = await Promise.all([startRedisServer(), startBalancer()]);
    relay = await startRelay(Number(new URL(redis.url).port));
    const clients = [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] }];
    // TTL_SESSION under 100 s: every authorization request writes the session back (no extension steps).
    // An API whose access tokens are JWTs: verified alone, they end only through the revocation list.
    const apis = [{ identifier: API, scopes: ['read'], format: 'jwt' }];
    const shared = { ISSUER: balancer.url, CLIENTS: JSON.stringify(clients), RESOURCE_SERVERS: JSON.stringify(apis), TTL_SESSION: '90' };
    const [portA, portB] = [await freePort(), await freePort()];
    // A's held write must not time out (503) while the ending runs: the ending's pace is not the test's.
    server = await startServer({ dir, port: portA, redisUrl: relay.url, env: { ...shared, REDIS_COMMAND_TIMEOUT: '30000' } });
    // Instance B and the operator's CLI reach Redis directly, not through the relay.
    env = testEnv(dir, portB, { redisUrl: redis.url, env: shared });
    other = await serveProcess(env);
    balancer.route(other.url);
    for (const name of ['alice', 'bob', 'carol']) await server.accounts.create(name, PASSWORD);
    app = await oidc.discovery(new URL(balancer.url), 'app', SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    relay?.release();
    await other?.stop();
    await server?.stop();
    await balancer?.close();
    relay?.close();
    await redis?.stop();
  });

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

  /** The uids of the sessions an account page lists, but this browser's. */
  const otherSessionUids = (page: Page) =>
    [...page.html.matchAll(/<div class="listed">([\s\S]*?)(?=<div class="listed">|$)/g)]
      .map(([block]) => block)
      .filter((block) => block.includes('name="session"') && !block.includes('This browser'))
      .map((block) => /name="session" value="([^"]+)"/.exec(block)![1]!);

  /** A token endpoint's invalid_grant, as openid-client throws it. */
  const invalidGrant = (error: unknown) => (error as { error?: unknown }).error === 'invalid_grant';

  /** Where the session of this id is kept: under its digest (store/adapter.ts). */
  const sessionKey = (sessionId: string) => `oidc:Session:${digestOf(sessionId)}`;

  /** A thief signed in as `username` (the person's password, or their cookie): its session id. */
  async function thiefSignedIn(username: string): Promise<{ thief: Agent; sessionId: string }> {
    const thief = new Agent();
    await frontChannel(app, { redirectUri: REDIRECT, username, password: PASSWORD, params: { scope: 'openid' }, agent: thief });
    const sessionId = /lk_session=([^;]+)/.exec(thief.cookieHeader(balancer.url))?.[1];
    assert.ok(sessionId && (await server.kv.getRecord(sessionKey(sessionId))), `${username} has a session`);
    const signedIn = await authorize(thief);
    assert.ok(signedIn.url.startsWith(REDIRECT) && new URL(signedIn.url).searchParams.get('code'), 'the cookie signs in');
    return { thief, sessionId };
  }

  /** A new person `username`, a thief signed in as them, and the person's account page listing the thief's session (its uid). */
  async function thiefSeenOnAccountPage(username: string) {
    await server.accounts.create(username, PASSWORD);
    const { thief, sessionId } = await thiefSignedIn(username);
    const person = new Agent();
    const page = await signInSteps(person, await person.follow(`${balancer.url}/account`), { username, password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(page.url, `${balancer.url}/account`, `the account page (${page.status} ${page.url})`);
    const uid = otherSessionUids(page)[0];
    assert.ok(uid, "the thief's session is listed");
    return { thief, sessionId, person, page, uid };
  }

  /** The thief's next /auth, at instance A: it reads the session, then is held at its write of it. New requests go to B. */
  async function heldAuthorization(thief: Agent, sessionId: string): Promise<Held<Page>> {
    balancer.route(server.url);
    const held = await relay.hold(scriptOn(sessionKey(sessionId)), () => authorize(thief));
    balancer.route(other.url, { drain: true });
    return held;
  }

  /** Once the held request goes on: it answers without a code, and the session stays ended. */
  async function staysEnded(thief: Agent, sessionId: string, held: Held<Page>) {
    // The held request answered from a session that ended meanwhile: its code does not leave.
    const answered = await held.release();
    assert.equal(answered.status, 401, `the held request gets no code (${answered.status} ${answered.url})`);
    assert.match(answered.html, /Signed out/);
    assert.equal(answered.headers.get('location'), null);

    const after = await authorize(thief);
    assert.ok(after.html.includes('name="password"'), `the stolen cookie gets the sign-in page, not a code (${after.status} ${after.url})`);
    assert.equal(await server.kv.getRecord(sessionKey(sessionId)), undefined, 'the session stays ended in the store');
  }

  it("an operator's password reset ends a thief's session while the thief's /auth is held at its session write: the write does not bring it back", async () => {
    const { thief, sessionId } = await thiefSignedIn('alice');
    const held = await heldAuthorization(thief, sessionId);

    const run = await latchkey(env, ['users', 'passwd', 'alice', '--password-stdin'], 'another passphrase long enough\n');
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /ended 1 session/);

    await staysEnded(thief, sessionId, held);
  });

  it('the person signs the thief\'s session out on the account page (another instance) while its /auth is held: it stays signed out', async () => {
    const { thief, sessionId } = await thiefSignedIn('bob');
    const person = new Agent();
    const page = await signInSteps(person, await person.follow(`${balancer.url}/account`), { username: 'bob', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(page.url, `${balancer.url}/account`, `the account page (${page.status} ${page.url})`);
    const uids = otherSessionUids(page);
    assert.equal(uids.length, 1, 'the thief\'s session is listed');

    const held = await heldAuthorization(thief, sessionId);
    const form = formIn(page.html, '/sessions/sign-out');
    const done = await person.follow(new URL(form.action, page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: form.hidden.csrf!, session: uids[0]! }),
    });
    assert.match(done.html, /That session is signed out/);

    await staysEnded(thief, sessionId, held);
  });

  it("the person signs the thief's session out on the account page (another instance) while its consent's resume, which renews the session's id, is held at its write: the renewal does not bring it back under its new id (OWASP session management, RP-Initiated Logout §2)", async () => {
    const { thief, sessionId, person, page, uid } = await thiefSeenOnAccountPage('erin');

    // The thief asks again with prompt=consent (at A) and allows: the resume renews the session's id.
    balancer.route(server.url);
    const consent = await authorize(thief, { prompt: 'consent' });
    assert.match(consent.html, /\/confirm/, `the consent page (${consent.status} ${consent.url})`);
    // Held at its code's write, after it read the session and before it saved it under a new id.
    const held = await relay.hold(scriptOn('oidc:AuthorizationCode:'), () => thief.submit(consent, '/confirm', {}, REDIRECT));
    balancer.route(other.url, { drain: true });
    // The sign-out at B itself (by its own address: no connection kept open to A is taken for it).
    const form = formIn(page.html, '/sessions/sign-out');
    const done = await fetch(new URL(new URL(form.action, page.url).pathname, other.url), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: person.cookieHeader(balancer.url) },
      body: new URLSearchParams({ csrf: form.hidden.csrf!, session: uid }),
    });
    assert.match(String(done.headers.get('location')), /done=sessions\.signed-out/, `${done.status} ${await done.text()}`);

    const answered = await held.release();
    assert.ok(!answered.url.startsWith(REDIRECT), `the resume gets no code (${answered.status} ${answered.url})`);
    assert.equal(answered.status, 401, `${answered.status} ${answered.url}`);
    const after = await authorize(thief);
    assert.ok(after.html.includes('name="password"'), `the stolen cookie, renewed or not, gets the sign-in page, not a code (${after.status} ${after.url})`);
    assert.equal(await server.kv.getRecord(sessionKey(sessionId)), undefined, 'the session stays ended in the store');
    const listed = await person.follow(`${balancer.url}/account`);
    assert.ok(!listed.html.includes(uid), 'the account page no longer lists it');
  });

  it("the person signs the thief's session out on the account page, held after it read the session: a consent the thief finishes meanwhile at another instance (a new grant, the id renewed) ends with the session, and so do its tokens", async () => {
    const { thief, sessionId, person, page, uid } = await thiefSeenOnAccountPage('frank');

    // The sign-out, at A (by its own address), is held at its ending of the session's record: it
    // has read the session and ended the grant it held.
    const form = formIn(page.html, '/sessions/sign-out');
    const held = await relay.hold(scriptOn(sessionKey(sessionId)), () =>
      fetch(new URL(new URL(form.action, page.url).pathname, server.url), {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: person.cookieHeader(balancer.url) },
        body: new URLSearchParams({ csrf: form.hidden.csrf!, session: uid }),
      }),
    );
    // Meanwhile the thief asks again with prompt=consent at B and allows: a new grant, saved into the
    // session under a renewed id, and tokens from it. (Connections kept open to A are closed: one
    // reused would wait on the hold.)
    balancer.route(other.url);
    const verifier = oidc.randomPKCECodeVerifier();
    const consent = await authorize(thief, { prompt: 'consent', scope: 'openid read', resource: API, code_challenge: await oidc.calculatePKCECodeChallenge(verifier) });
    assert.match(consent.html, /\/confirm/, `the consent page (${consent.status} ${consent.url})`);
    const callback = await thief.submit(consent, '/confirm', {}, REDIRECT);
    assert.ok(callback.url.startsWith(REDIRECT) && new URL(callback.url).searchParams.get('code'), `a code (${callback.status} ${callback.url})`);
    const tokens = await oidc.authorizationCodeGrant(app, new URL(callback.url), { pkceCodeVerifier: verifier }, { resource: API });
    assert.equal(tokens.access_token.split('.').length, 3, 'a JWT access token, for the API');
    assert.equal((await oidc.tokenIntrospection(app, tokens.access_token)).active, true, 'the new grant works while the sign-out is held');

    const done = await held.release();
    assert.match(String(done.headers.get('location')), /done=sessions\.signed-out/, `${done.status} ${await done.text()}`);
    // The ending followed the renewal to the new record and ended what that held: the new grant, whose
    // JWT access token is on the revocation list.
    assert.equal((await oidc.tokenIntrospection(app, tokens.access_token)).active, false, "the consent's JWT access token ends with the session");
    if (tokens.refresh_token) await assert.rejects(oidc.refreshTokenGrant(app, tokens.refresh_token), invalidGrant);
    const after = await authorize(thief);
    assert.ok(after.html.includes('name="password"'), `the stolen cookie gets the sign-in page (${after.status} ${after.url})`);
  });

  it("the app revokes its access token (RFC 7009) while a refresh of its grant goes on at another instance: what the refresh saved after the revocation read the grant's tokens ends too (the grant ends)", async () => {
    await server.accounts.create('gina', PASSWORD);
    const consented = await frontChannel(app, { redirectUri: REDIRECT, username: 'gina', password: PASSWORD, params: { scope: 'openid offline_access', prompt: 'consent' }, agent: new Agent() });
    const first = await oidc.authorizationCodeGrant(app, consented.callback, { pkceCodeVerifier: consented.verifier });
    assert.ok(first.refresh_token, 'offline access');
    const basic = `Basic ${Buffer.from(`app:${SECRET}`).toString('base64')}`;
    const post = (url: string, body: Record<string, string>) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }, body: new URLSearchParams(body) });
    // The revocation, at A (by its own address), is held once it has read the grant's tokens, at their deletion.
    const deletesTokens = (chunk: string) => commandsIn(chunk).some(([name = '', ...keys]) => /^(del|unlink)$/i.test(name) && keys.some((key) => /oidc:(RefreshToken|AccessToken):/.test(key)));
    const held = await relay.hold(deletesTokens, () => post(`${server.url}/token/revocation`, { token: first.access_token, token_type_hint: 'access_token' }));
    // Meanwhile the app's refresh at B (by B's own address) goes through.
    const refreshed = await post(`${other.url}/token`, { grant_type: 'refresh_token', refresh_token: first.refresh_token });
    const tokens = (await refreshed.json()) as { access_token?: string; refresh_token?: string };
    assert.equal((await held.release()).status, 200, 'the revocation answers');

    if (refreshed.status === 200) {
      const introspected = (await (await post(`${other.url}/token/introspection`, { token: tokens.access_token! })).json()) as { active?: boolean };
      assert.equal(introspected.active, false, "the refresh's access token is ended");
      assert.ok(tokens.refresh_token, 'a refresh token was made');
      const again = await post(`${other.url}/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
      assert.equal(again.status, 400, `the refresh's refresh token is ended (${again.status} ${await again.clone().text()})`);
      assert.equal(((await again.json()) as { error?: string }).error, 'invalid_grant');
    }
    const old = await post(`${other.url}/token`, { grant_type: 'refresh_token', refresh_token: first.refresh_token });
    assert.equal(old.status, 400);
  });

  it("access withdrawn on the account page while the app asks again at another instance: nothing the app gets meanwhile outlives the withdrawal", async () => {
    // The app has carol's offline access, consented to (and remembered) in her browser.
    const browser = new Agent();
    const consented = await frontChannel(app, { redirectUri: REDIRECT, username: 'carol', password: PASSWORD, params: { scope: 'openid offline_access', prompt: 'consent' }, agent: browser });
    const first = await oidc.authorizationCodeGrant(app, consented.callback, { pkceCodeVerifier: consented.verifier });
    assert.ok(first.refresh_token, 'offline access');
    const sub = (await server.accounts.findByUsername('carol'))!.sub;
    // Her account page, at instance A. The connections to B are closed; a request reusing one would
    // fail, so one is made until it passes (on a connection not kept: it would go to A later).
    balancer.route(server.url);
    await eventually(() => fetch(`${balancer.url}/healthz`, { headers: { connection: 'close' } }), 5, 0);
    const person = new Agent();
    const page = await signInSteps(person, await person.follow(`${balancer.url}/account`), { username: 'carol', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(page.url, `${balancer.url}/account`, `the account page (${page.status} ${page.url})`);

    // The withdrawal is held at its deletion of the remembered consent.
    const form = formIn(page.html, '/apps/withdraw');
    const held = await relay.hold(
      (chunk) => commandsIn(chunk).some(([name = '', key = '']) => /^(del|unlink)$/i.test(name) && key.endsWith(`consent:${sub}:app`)),
      () =>
        person.follow(new URL(form.action, page.url).href, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ csrf: form.hidden.csrf!, client: 'app' }),
        }),
    );
    balancer.route(other.url, { drain: true });
    // Meanwhile the app sends carol's browser to ask again (instance B): the withdrawal's cutoff,
    // written before the consent's deletion (accounts.ts clientGrantsEndedAt), ends the consent
    // still remembered and the session's grant: she is asked again, the app gets no code.
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope: 'openid offline_access', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const again = await browser.follow(url.href, {}, REDIRECT);
    const withdrawn = await held.release();
    assert.ok(!again.url.startsWith(REDIRECT), `no code while the withdrawal is under way (${again.status} ${again.url})`);
    assert.match(again.html, /offline/i, 'she is asked for consent again');

    assert.match(withdrawn.url, /done=apps\.withdrawn/);
    for (const [what, token] of [['before', first.refresh_token]] as const) {
      await assert.rejects(oidc.refreshTokenGrant(app, token), (error: Error) => {
        assert.ok(error instanceof oidc.ResponseBodyError);
        assert.equal(error.error, 'invalid_grant', `the refresh token the app got ${what} the withdrawal ended with it`);
        return true;
      });
    }
  });

  it('one sign-in resumed at two instances at once (its resume link replayed) makes one code, not two', async () => {
    // dora consented before, so that her sign-in's resume ends in a code.
    await server.accounts.create('dora', PASSWORD);
    balancer.route(other.url);
    await frontChannel(app, { redirectUri: REDIRECT, username: 'dora', password: PASSWORD, params: { scope: 'openid' } });
    const agent = new Agent();
    const login = await authorize(agent);
    const resume = await agent.submit(login, '/login', { username: 'dora', password: PASSWORD }, `${balancer.url}/auth/`);
    const uid = new URL(resume.url).pathname.split('/').pop()!;
    assert.ok(resume.url.startsWith(`${balancer.url}/auth/`), `the login answers the resume (${resume.url})`);

    // Instance A reads the interaction and is held as it goes on to end it; B resumes meanwhile.
    balancer.route(server.url);
    await eventually(() => fetch(`${balancer.url}/healthz`, { headers: { connection: 'close' } }), 5, 0);
    const held = await relay.hold(scriptOn(`oidc:Interaction:${uid}`), () => agent.follow(resume.url, {}, REDIRECT));
    balancer.route(other.url, { drain: true });
    const atB = await agent.follow(resume.url, {}, REDIRECT);
    const answers = [await held.release(), atB];
    const codes = answers.filter((page) => page.url.startsWith(REDIRECT) && new URL(page.url).searchParams.get('code'));
    assert.equal(codes.length, 1, `two codes came out of one sign-in: ${answers.map((page) => `${page.status} ${page.url}`).join(', ')}`);
    for (const page of answers) assert.ok(page.status < 500, `never a 5xx (${page.status})`);
  });
});

describe('e2e: a code made from a session ended while its request is in flight, without writing the session back', function () {
  this.timeout(60_000);
  const dir = testDir();
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;
  let env: Record<string, string>;
  let app: oidc.Configuration;

  before(async () => {
    redis = await startRedisServer();
    relay = await startRelay(Number(new URL(redis.url).port));
    const clients = [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] }];
    // The default session lifetime: a signed-in /auth leaves the unchanged session unwritten
    // (patches/unchanged-sessions.ts), so the store refuses it nothing and its code is written.
    server = await startServer({ dir, redisUrl: relay.url, clients, env: { REDIS_COMMAND_TIMEOUT: '30000' } });
    // The operator's CLI reaches Redis directly, not through the relay.
    env = testEnv(dir, await freePort(), { redisUrl: redis.url, env: { ISSUER: server.issuer, CLIENTS: JSON.stringify(clients) } });
    for (const name of ['dan', 'eve']) await server.accounts.create(name, PASSWORD);
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    relay?.release();
    await server?.stop();
    relay?.close();
    await redis?.stop();
  });

  for (const [username, scope] of [
    ['dan', 'openid'],
    ['eve', 'openid offline_access'],
  ] as const) {
    it(`an operator's password reset while a signed-in /auth (${scope}) is held at its code's write: the code it hands out is refused at the token endpoint`, async () => {
      const thief = new Agent();
      await frontChannel(app, { redirectUri: REDIRECT, username, password: PASSWORD, params: { scope, prompt: 'consent' }, agent: thief });
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      const held = await relay.hold(scriptOn('oidc:AuthorizationCode:'), () => thief.follow(url.href, {}, REDIRECT));

      const run = await latchkey(env, ['users', 'passwd', username, '--password-stdin'], 'another passphrase long enough\n');
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, /ended 1 session/);

      // Its session was not written back, so nothing stopped the redirect: the code is what must not work.
      const answered = await held.release();
      assert.ok(answered.url.startsWith(REDIRECT) && new URL(answered.url).searchParams.get('code'), `the held request answered with a code (${answered.status} ${answered.url})`);
      await assert.rejects(oidc.authorizationCodeGrant(app, new URL(answered.url), { pkceCodeVerifier: verifier }), (error: Error) => {
        assert.ok(error instanceof oidc.ResponseBodyError, String(error));
        assert.equal(error.error, 'invalid_grant');
        return true;
      });
    });
  }
});
