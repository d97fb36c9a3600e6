/**
 * The idle-lifetime pass (docs/security-passes.md, "Looked at in the idle-lifetime pass").
 *
 * A lowered `ttl.session` (the idle lifetime) ended no session saved under the longer one: signed in
 * under TTL_SESSION=3600, restarted on the same Redis with 2, idle for 3 s, a silent request got a
 * code (found in the twentieth endings pass). oidc-provider stores a session's expiry, set from the
 * lifetime at its last save, not its last use. Now a session keeps when it was last saved, and is
 * bounded by that plus `ttl.session` as configured now (patches/session-idle.ts).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isLogin, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { serverRestarts } from '../helpers/restarts.js';
import type { TestServer } from '../helpers/server.js';

const PASSWORD = 'idle-lifetime pass test password';
const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
const webClient = { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid' };
const DEVICE = 'tv';
const tvClient = { client_id: DEVICE, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [] };

describe('e2e: a lowered ttl.session (idle lifetime) ends sessions saved under the longer one', function () {
  this.timeout(60_000);
  const restarts = serverRestarts();
  let server: TestServer | undefined;

  /** (Re)starts the server on the same Redis with `env` on top. */
  async function start(env: Record<string, string> = {}): Promise<TestServer> {
    return (server = await restarts.start({ clients: [webClient, tvClient], env }));
  }

  const web = () => oidc.discovery(new URL(server!.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });

  /** Signs `agent`'s browser in at the web client (consenting); returns when the sign-in was last used (epoch ms). */
  async function signIn(agent: Agent): Promise<number> {
    const config = await web();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'rhea', password: PASSWORD, login: 'required', stopAt: REDIRECT, consent: 'required' });
    const usedAt = Date.now();
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    assert.ok(tokens.id_token);
    return usedAt;
  }

  /** Where an authorization request of the web client with `cookie` (and `params`) is sent: its Location. */
  async function authorizeWith(cookie: string, params: Record<string, string> = {}): Promise<string> {
    const url = oidc.buildAuthorizationUrl(await web(), { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256', ...params });
    const answer = await fetch(url, { headers: { cookie, accept: 'text/html' }, redirect: 'manual' });
    assert.equal(answer.status, 303, `a redirect, not ${answer.status}`);
    return new URL(answer.headers.get('location')!, server!.url).href;
  }

  /** What a silent request (prompt=none) in `agent`'s browser gets: 'code', or its error. */
  async function silently(agent: Agent): Promise<string> {
    const { page } = await startAuthorization(agent, await web(), REDIRECT, { scope: 'openid', prompt: 'none' });
    const answer = new URL(page.url).searchParams;
    return answer.get('code') ? 'code' : (answer.get('error') ?? `${page.status} ${page.url}`);
  }

  it('signed in under TTL_SESSION=3600, restarted with 2 and idle for 3 s: no silent code, the account page, the authorization endpoint and the device page ask to sign in again (each got through before the fix)', async () => {
    const started = await start({ TTL_SESSION: '3600' });
    await started.accounts.create('rhea', PASSWORD);
    const agent = new Agent();
    const usedAt = await signIn(agent);
    const cookie = agent.cookieHeader(server!.url);

    // The operator lowers the idle lifetime and restarts; the session is left alone for longer than it.
    await start({ TTL_SESSION: '2' });
    await sleep(Math.max(0, usedAt + 3_000 - Date.now()));

    // The account page, the session's cookie replayed (before the fix: 200, signed in).
    const account = await fetch(`${server!.url}/account`, { headers: { cookie, accept: 'text/html' }, redirect: 'manual' });
    assert.equal(account.status, 302, `the account page with a session idle past ttl.session: ${account.status}`);
    assert.match(account.headers.get('location') ?? '', /sign-in/);
    // A silent request, the cookie replayed (before the fix: a code).
    const silent = new URL(await authorizeWith(cookie, { prompt: 'none' }));
    assert.equal(silent.searchParams.get('code'), null, `a silent code in a session idle past the lifetime configured now: ${silent.href}`);
    assert.equal(silent.searchParams.get('error'), 'login_required');
    // An interactive one goes to the login page, not back with a code (before the fix: single sign-on).
    const interactive = new URL(await authorizeWith(cookie));
    assert.equal(interactive.searchParams.get('code'), null, `single sign-on from a session idle past the lifetime configured now: ${interactive.href}`);
    assert.ok(interactive.pathname.startsWith('/interaction/'), `the sign-in, not ${interactive.href}`);
    // The device page in the browser: a user code entered and confirmed asks who is signing in
    // (before the fix: the session's person went on to approve the device).
    const tv = await oidc.discovery(new URL(server!.issuer), DEVICE, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const entry = await agent.submit(await agent.follow(`${server!.issuer}/device`), '/device', { user_code: device.user_code });
    const confirmed = entry.html.includes('name="confirm"') ? await agent.submit(entry, '/device', { confirm: 'yes' }) : entry;
    assert.ok(isLogin(confirmed), `the login page at the device's sign-in, not ${confirmed.status} ${confirmed.url}`);
    // And in the browser itself: its next authorization request shows the login page.
    const { page } = await startAuthorization(agent, await web(), REDIRECT, { scope: 'openid' });
    assert.ok(isLogin(page), `the login page, not ${page.status} ${page.url}`);
  });

  it('lowered to a lifetime longer than the session has been idle, and used within it: the session goes on (held)', async () => {
    const started = await start({ TTL_SESSION: '3600' });
    await started.accounts.create('rhea', PASSWORD);
    const agent = new Agent();
    await signIn(agent);
    await start({ TTL_SESSION: '300' });
    assert.equal(await silently(agent), 'code', 'a session used within the lifetime configured now');
    assert.equal(await silently(agent), 'code', 'and again, its last use kept');
  });
});
