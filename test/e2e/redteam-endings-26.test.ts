/**
 * Red team, twenty-sixth endings pass (docs/security-passes.md, "Looked at in the twenty-sixth endings pass").
 *
 * A client's sign-ins in progress end by its cutoff (store/adapter.ts endPendingSignIns, written on
 * the store's clock) compared at their resume with the sign-in's interaction's `iat`
 * (patches/current-registration.ts), and a person's by theirs (accounts.ts endedAt, compared in
 * session-credentials.ts). oidc-provider stamped that `iat` on the clock of the instance that began
 * the sign-in: with two instances on one Redis, one whose machine's clock ran some seconds ahead
 * gave a sign-in begun there just before its client was narrowed (a redirect URI taken out and put
 * back, RFC 7592) an `iat` after the cutoff, and it ended in a code to the redirect URI; one whose
 * clock ran behind gave a sign-in begun after the narrowing answered (past the second it waits for)
 * an `iat` at or before the cutoff, and it was refused. Now an interaction is stamped on the store's
 * clock (patches/interactions-on-store-clock.ts), the clock every cutoff is written on. Likewise a
 * code's grant was dated by the code's `iat` (the engine's, the machine's clock) against an API's
 * `addedAt`: a code issued at the instance ahead just before its API was removed and added again
 * under its identifier got the new API's token; a code keeps `grantedAt` on the store's clock now
 * (patches/grant-given-at.ts).
 * Twenty-seventh endings pass: a code's and a device code's `iat` (the engine's, machine clock) was
 * compared by findAccount with the person's cutoff: issued (a device code asked for and approved)
 * at the instance ahead just before the person was disabled and enabled again, the revocation of
 * their grants failing half-way, each gave tokens; findAccount compares their `grantedAt` (store's
 * clock) now. A session signed in at the instance ahead just before the person's ending (its
 * sessions' ending failing half-way) lived on, and one signed in at the instance behind just after
 * was ended at once: a session keeps its sign-in's second on the store's clock
 * (patches/sign-in-time.ts). A browser signed in at the instance ahead a second before a device
 * asked for a fresh sign-in (max_age=0) at the instance behind was not asked to sign in again: both
 * times are on the store's clock now (patches/device-fresh-login.ts).
 * Performed through one front door (test/helpers/balancer.ts) to three instances: this process,
 * and two `latchkey serve` processes whose clocks are SKEW_MS ahead and behind.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import * as oidc from 'openid-client';
import { Agent, answerAt, type Page } from '../helpers/agent.js';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { isConsent, isLogin, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, startServerProcess, type TestServer, type TestServerProcess } from '../helpers/server.js';
import { skewedClock } from '../helpers/skewed-clock.js';

const PASSWORD = 'twenty-sixth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const OTHER_REDIRECT = 'https://app.example.test/other-callback';
const APP = { id: 'app-26', secret: 'twenty-sixth-endings-app-secret-with-plenty-of-entropy-01' };
/** How far off the other instances' clocks are (one ahead, one behind): a few seconds. */
const SKEW_MS = 8_000;

describe('e2e: red team, twenty-sixth endings pass: sign-ins across a narrowing and a person\'s ending, on instances whose clocks differ', function () {
  this.timeout(60_000);
  let balancer: Balancer;
  /** This process's instance, on the store's own clock: the narrowings and the operator go through it. */
  let server: TestServer;
  let fast: TestServerProcess;
  let slow: TestServerProcess;
  const urls: Record<'server' | 'fast' | 'slow', string> = { server: '', fast: '', slow: '' };

  before(async () => {
    balancer = await startBalancer();
    const shared = { ISSUER: balancer.url, REGISTRATION_OPEN: 'true' };
    server = await startServer({ ownRedis: true, env: shared });
    urls.server = server.url;
    const other = async (skew: number) => {
      const port = await freePort();
      const started = await startServerProcess({ dir: dirname(server.env.KEYS_DIR!), port, redisUrl: server.env.REDIS_URL!, env: { ...shared, ...skewedClock(skew) } });
      return { started, url: `http://127.0.0.1:${port}` };
    };
    const [ahead, behind] = await Promise.all([other(SKEW_MS), other(-SKEW_MS)]);
    [fast, slow, urls.fast, urls.slow] = [ahead.started, behind.started, ahead.url, behind.url];
    await server.accounts.create('tove', PASSWORD);
    balancer.route(urls.server);
    await server.clients.add({ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] });
  });
  after(async () => {
    await Promise.all([fast?.stop(), slow?.stop()]);
    await server?.stop();
    await balancer?.close();
  });

  /** Every new connection through the front door goes to `instance` from now on. */
  async function routeTo(instance: keyof typeof urls) {
    balancer.route(urls[instance]);
    await eventually(() => fetch(`${balancer.url}/healthz`, { headers: { connection: 'close' } }), 5, 0);
  }

  /** A public client registered (RFC 7591), and what takes its other redirect URI out and puts it back (RFC 7592), through this process's instance. */
  async function registered() {
    await routeTo('server');
    const metadata = { redirect_uris: [REDIRECT, OTHER_REDIRECT], token_endpoint_auth_method: 'none' };
    const created = await fetch(`${balancer.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify(metadata) });
    assert.equal(created.status, 201, await created.clone().text());
    const client = (await created.json()) as { client_id: string; registration_client_uri: string; registration_access_token: string };
    const config = await oidc.discovery(new URL(balancer.url), client.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    let token = client.registration_access_token;
    const outAndBack = async () => {
      await routeTo('server');
      for (const redirectUris of [[REDIRECT], [REDIRECT, OTHER_REDIRECT]]) {
        const updated = await fetch(client.registration_client_uri, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, connection: 'close' },
          body: JSON.stringify({ ...metadata, redirect_uris: redirectUris, client_id: client.client_id }),
        });
        assert.equal(updated.status, 200, await updated.clone().text());
        token = ((await updated.json()) as { registration_access_token?: string }).registration_access_token ?? token;
      }
    };
    return { config, outAndBack };
  }

  /** A sign-in for OTHER_REDIRECT begun at `instance`, left at the login page. */
  async function atLogin(config: oidc.Configuration, instance: keyof typeof urls) {
    await routeTo(instance);
    const agent = new Agent();
    const { page } = await startAuthorization(agent, config, OTHER_REDIRECT);
    assert.ok(isLogin(page), `${page.status} ${page.url}`);
    return { agent, page };
  }

  /** Signs the person in and allows, the request's resume at `instance`: what the app is told. */
  async function resumedAt(pending: { agent: Agent; page: Page }, instance: keyof typeof urls): Promise<string> {
    await routeTo(instance);
    return answerAt(await signInSteps(pending.agent, pending.page, { username: 'tove', password: PASSWORD, stopAt: OTHER_REDIRECT }), OTHER_REDIRECT);
  }

  it(`sign-ins begun at the instance ${SKEW_MS / 1000} s ahead just before the client's redirect URI was taken out and put back (RFC 7592): resumed there and at the instance behind, each ends (a code before the fix)`, async () => {
    const { config, outAndBack } = await registered();
    const first = await atLogin(config, 'fast');
    const second = await atLogin(config, 'fast');
    await outAndBack();
    assert.equal(await resumedAt(first, 'fast'), 'invalid_request', 'resumed at the instance that began it');
    assert.equal(await resumedAt(second, 'slow'), 'invalid_request', 'resumed at the instance behind');
  });

  it(`sign-ins begun after the narrowing answered, at the instance ${SKEW_MS / 1000} s behind and at the one ahead: each goes on to a code (the one behind was refused before the fix)`, async () => {
    const { config, outAndBack } = await registered();
    await outAndBack();
    const behind = await atLogin(config, 'slow');
    const ahead = await atLogin(config, 'fast');
    assert.equal(await resumedAt(behind, 'slow'), 'code', 'begun and resumed at the instance behind');
    assert.equal(await resumedAt(ahead, 'server'), 'code', 'begun at the instance ahead, resumed at another');
  });

  it(`a password verified at the instance ${SKEW_MS / 1000} s ahead, the person disabled and enabled again by an operator before the sign-in resumes: the app is refused (signed in before the fix)`, async () => {
    const { config } = await registered();
    const pending = await atLogin(config, 'fast');
    // The password verified; the resume not yet followed.
    const resume = await pending.agent.submit(pending.page, '/login', { username: 'tove', password: PASSWORD }, `${balancer.url}/auth/`);
    assert.ok(resume.url.startsWith(`${balancer.url}/auth/`), `the login answers the resume (${resume.status} ${resume.url})`);
    for (const action of ['disable', 'enable']) {
      const done = await latchkey(server.env, ['users', action, 'tove']);
      assert.equal(done.status, 0, done.stderr);
    }
    await routeTo('fast');
    const resumed = await pending.agent.follow(resume.url, {}, OTHER_REDIRECT);
    const answer = isConsent(resumed) ? await pending.agent.submit(resumed, '/confirm', {}, OTHER_REDIRECT) : resumed;
    assert.equal(answerAt(answer, OTHER_REDIRECT), 'access_denied', 'a sign-in whose password was verified before the person was ended');
  });

  it(`a code issued at the instance ${SKEW_MS / 1000} s ahead for an API, the API removed and added again under its identifier before the code is redeemed: no token for the new API (one before the fix)`, async () => {
    const NOTES = 'https://notes.twenty-six.example.test';
    await server.apis.add({ identifier: NOTES, scopes: ['notes:read'] });
    const app = await oidc.discovery(new URL(balancer.url), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    await routeTo('fast');
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid notes:read', resource: NOTES });
    const back = await signInSteps(agent, page, { username: 'tove', password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    assert.equal(answerAt(back, REDIRECT), 'code');
    // The operator removes the API and someone adds one under the same identifier (another service).
    await server.apis.remove(NOTES);
    await server.apis.add({ identifier: NOTES, scopes: ['notes:read'] });
    await routeTo('server');
    await assert.rejects(oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: verifier }, { resource: NOTES }), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError, String(error));
      assert.equal(error.error, 'invalid_target', error.message);
      return true;
    });
  });


  // Twenty-seventh endings pass: a code's and a device code's `iat` against the person's cutoff.

  /**
   * The person disabled and enabled again by an operator whose revocation of their grants failed
   * half-way (accounts.ts: the cutoff, endedAt, and the revocation list's entries written first;
   * the grants, and with them their codes and device codes, not yet revoked): the cutoff is all
   * that ends what was issued before.
   */
  async function endedHalfWay(): Promise<void> {
    await server.accounts.setDisabled('tove', true, server.revocations);
    await server.accounts.setDisabled('tove', false);
  }

  it(`a code issued at the instance ${SKEW_MS / 1000} s ahead, the person disabled and enabled again before it is redeemed, the revocation of their grants failing half-way: redeemed at the instance behind, no tokens (tokens before the fix)`, async () => {
    const app = await oidc.discovery(new URL(balancer.url), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    await routeTo('fast');
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT);
    const back = await signInSteps(agent, page, { username: 'tove', password: PASSWORD, stopAt: REDIRECT });
    assert.equal(answerAt(back, REDIRECT), 'code');
    await endedHalfWay();
    await routeTo('slow');
    await assert.rejects(oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: verifier }), (error: Error) => {
      assert.ok(error instanceof oidc.ResponseBodyError, String(error));
      assert.equal(error.error, 'invalid_grant', error.message);
      return true;
    });
  });

  it(`a device code asked for and approved at the instance ${SKEW_MS / 1000} s ahead, the person disabled and enabled again before the device polls, the revocation of their grants failing half-way: no tokens (tokens before the fix)`, async () => {
    const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
    const tv = 'tv-27';
    await server.clients.add({ client_id: tv, application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: [DEVICE_CODE] });
    const post = async (path: string, params: Record<string, string>) => {
      const response = await fetch(`${balancer.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close' }, body: new URLSearchParams(params) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    await routeTo('fast');
    const started = await post('/device/auth', { client_id: tv, scope: 'openid' });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${balancer.url}/device`), '/device', { user_code: started.body.user_code! });
    const approved = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'tove', password: PASSWORD });
    assert.match(approved.html, /Device connected/, `${approved.status} ${approved.url}`);
    await endedHalfWay();
    await routeTo('server');
    const polled = await post('/token', { grant_type: DEVICE_CODE, device_code: started.body.device_code!, client_id: tv });
    assert.equal(polled.status, 400, `the device approved before the person's ending got tokens: ${JSON.stringify(polled.body)}`);
    assert.equal(polled.body.error, 'invalid_grant', JSON.stringify(polled.body));
  });


  it(`sessions across the person disabled and enabled again, the ending of their sessions failing half-way: one signed in at the instance ${SKEW_MS / 1000} s ahead just before is signed out (it lived on before the fix); one signed in at the instance behind just after lives (it was ended before the fix)`, async () => {
    const app = await oidc.discovery(new URL(balancer.url), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    const signedIn = async (instance: keyof typeof urls) => {
      await routeTo(instance);
      const agent = new Agent();
      const { page } = await startAuthorization(agent, app, REDIRECT);
      assert.equal(answerAt(await signInSteps(agent, page, { username: 'tove', password: PASSWORD, login: 'required', stopAt: REDIRECT }), REDIRECT), 'code');
      return agent;
    };
    /** What a silent request of the app (prompt=none) at this process's instance gets in the agent's session. */
    const silently = async (agent: Agent) => {
      await routeTo('server');
      return answerAt((await startAuthorization(agent, app, REDIRECT, { prompt: 'none' })).page, REDIRECT);
    };
    const before = await signedIn('fast');
    await endedHalfWay();
    assert.equal(await silently(before), 'login_required', 'the session signed in before the ending, at the instance ahead');
    const after = await signedIn('slow');
    assert.equal(await silently(after), 'code', 'the session signed in after the ending, at the instance behind');
  });


  it(`a device asking for a fresh sign-in (max_age=0) at the instance ${SKEW_MS / 1000} s behind, the person's browser signed in a second before at the instance ahead: asked to sign in again (went to the consent before the fix)`, async () => {
    const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
    const tv = 'fresh-tv-27';
    await server.clients.add({ client_id: tv, application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: [DEVICE_CODE] });
    const app = await oidc.discovery(new URL(balancer.url), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    await routeTo('fast');
    const agent = new Agent();
    const { page } = await startAuthorization(agent, app, REDIRECT);
    assert.equal(answerAt(await signInSteps(agent, page, { username: 'tove', password: PASSWORD, stopAt: REDIRECT }), REDIRECT), 'code');
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the sign-in now predates the request (whole seconds)
    await routeTo('slow');
    const started = await fetch(`${balancer.url}/device/auth`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close' }, body: new URLSearchParams({ client_id: tv, scope: 'openid', max_age: '0' }) });
    const device = (await started.json()) as { user_code: string };
    assert.equal(started.status, 200, JSON.stringify(device));
    const confirm = await agent.submit(await agent.follow(`${balancer.url}/device`), '/device', { user_code: device.user_code });
    const next = await agent.submit(confirm, '/device', { confirm: 'yes' });
    assert.ok(isLogin(next), `tove is asked to sign in again (${next.status} ${next.url})`);
    const done = await signInSteps(agent, next, { username: 'tove', password: PASSWORD });
    assert.match(done.html, /Device connected/, 'the fresh sign-in at the instance behind goes on to connect the device');
  });
});
