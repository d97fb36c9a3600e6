/**
 * The sixteenth passes, "endings must end, second angle" (docs/security-passes.md, "Looked at in
 * the sixteenth passes: endings by an operator, and timing, second angle (h15)"), black box: an
 * operator's ending (admin API) made while a person or an app is mid-flow.
 *
 * Found and fixed: an upstream removed and added again (the same issuer and client) while a sign-in
 * waited at it took that sign-in's callback, and one waiting at its second factor completed: the
 * app got a code each time (upstreams/registry.ts `made`, kept with the pending sign-in and the
 * first factor's record, compared at the callback and at the second factor).
 *
 * Held, pinned (no earlier test performed them): an upstream sign-in begun before the person was
 * disabled and enabled again, its callback arriving after, or across its link's removal on the
 * account page; a pushed request (PAR) for a stored API used after the API was removed, and after it
 * was removed and added again in a session that had consented to the old one; a code issued in a
 * session signed in through an upstream, redeemed after the upstream's removal; a sign-in through an
 * upstream waiting at the consent page across the upstream removed and added again.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startSelfUpstreamServer, type TestServer } from '../helpers/server.js';
import { authenticatorAdded, isConsent, signInSteps, startAuthorization, totpCode } from '../helpers/sign-in.js';
import { adminJson, clientCredentialsToken, machineClient } from '../helpers/tokens.js';
import { UpstreamLinks } from '../../src/accounts/links.js';

const PASSWORD = 'sixteenth operator endings password of the person';
const REDIRECT = 'https://app.operator-sixteenth.example.test/callback';
const SECRET = 'operator-sixteenth-client-secret-with-plenty-of-entropy-0123';
const OPS = { id: 'ops', secret: 'operator-sixteenth-operator-secret-with-plenty-of-entropy-01' };

describe('e2e: sixteenth passes, an operator\'s endings made while a person or an app is mid-flow', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;
  const back = () => `${server.issuer}/upstream/self/callback`;

  before(async () => {
    server = await startSelfUpstreamServer({ secret: SECRET, redirect: REDIRECT, ownRedis: true, cheapHashing: true, clients: [machineClient(OPS)] });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  const admin = async (method: string, path: string, body?: unknown) => {
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const answer = await adminJson(server.url, token, method, path, body);
    assert.ok(answer.status < 300, `${method} ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
  };

  /** The app's sign-in in `browser` taken to the upstream ("self") and signed in there as `username`: the upstream's answer, not yet followed. */
  async function atUpstreamCallback(browser: Agent, username: string, params: Record<string, string> = {}) {
    const { page: login, verifier } = await startAuthorization(browser, app, REDIRECT, params);
    const toUpstream = await browser.submit(login, '/upstream/self', {}, `${server.issuer}/auth`);
    const upstreamBrowser = new Agent();
    const answer = await signInSteps(upstreamBrowser, await upstreamBrowser.follow(toUpstream.url, {}, back()), { username, password: PASSWORD, stopAt: back() });
    assert.ok(answer.url.startsWith(back()), `the upstream answers: ${answer.status} ${answer.url}`);
    return { callback: answer.url, verifier };
  }

  const followed = async (browser: Agent, url: string) => signInSteps(browser, await browser.follow(url, {}, REDIRECT), { username: '', password: '', stopAt: REDIRECT });

  it('an upstream sign-in begun before the person was disabled and enabled again (admin API), its callback arriving after: access_denied, no code', async () => {
    const { sub: upstreamSub } = await server.accounts.create('ulf', PASSWORD);
    const first = new Agent();
    const made = await followed(first, (await atUpstreamCallback(first, 'ulf')).callback);
    assert.ok(new URL(made.url).searchParams.get('code'), `the first sign-in makes the account: ${made.status} ${made.url}`);
    const linked = (await new UpstreamLinks(server.kv, server.accounts).find('self', upstreamSub))!;
    const { username } = (await server.accounts.find(linked.sub))!;

    const browser = new Agent();
    const { callback } = await atUpstreamCallback(browser, 'ulf', { prompt: 'login' });
    await admin('POST', `/users/${encodeURIComponent(username)}/disable`);
    await admin('POST', `/users/${encodeURIComponent(username)}/enable`);
    const done = await followed(browser, callback);
    const answer = new URL(done.url);
    assert.ok(done.url.startsWith(REDIRECT), `back at the app: ${done.status} ${done.url}`);
    assert.equal(answer.searchParams.get('code'), null, 'a code');
    assert.equal(answer.searchParams.get('error'), 'access_denied');
  });

  it('an upstream link removed on the account page while a sign-in through it is at the upstream: its callback does not reach the account', async () => {
    const { sub: upstreamSub } = await server.accounts.create('lena', PASSWORD);
    const first = new Agent();
    await followed(first, (await atUpstreamCallback(first, 'lena')).callback);
    const links = new UpstreamLinks(server.kv, server.accounts);
    const linked = (await links.find('self', upstreamSub))!;
    const { username } = (await server.accounts.find(linked.sub))!;
    await server.accounts.setPassword(username, PASSWORD);

    const browser = new Agent();
    const { callback, verifier } = await atUpstreamCallback(browser, 'lena', { prompt: 'login' });
    const accountPage = new Agent();
    let page = await signInSteps(accountPage, await accountPage.follow(`${server.issuer}/account`), { username, password: PASSWORD });
    if (isConsent(page)) page = await accountPage.submit(page, '/confirm', {});
    const removed = await accountPage.submit(page, '/account/links/remove', {});
    assert.match(new URL(removed.url).search, /^\?done=links\.removed\./, `removed: ${removed.status} ${removed.url}`);
    // The identity signs in as any identity without a link does (an account made for it), never to the one it left.
    const done = await followed(browser, callback);
    if (new URL(done.url).searchParams.get('code')) {
      const tokens = await oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
      assert.notEqual(tokens.claims()!.sub, linked.sub, 'signed in to the account whose link was removed');
    }
    assert.notEqual((await links.find('self', upstreamSub))?.sub, linked.sub, 'linked to the account again');
  });

  async function pushed(api: string) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = await oidc.buildAuthorizationUrlWithPAR(app, { redirect_uri: REDIRECT, scope: 'openid read', resource: api, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    return url.href;
  }

  it('a pushed request for a stored API, the API removed (admin API) before the request_uri is used: invalid_target, no code', async () => {
    const api = 'https://pushed-removed.operator-sixteenth.example.test';
    await admin('POST', '/apis', { identifier: api, scopes: ['read'] });
    await server.accounts.create('petra', PASSWORD);
    const url = await pushed(api);
    await admin('DELETE', `/apis/${encodeURIComponent(api)}`);
    const browser = new Agent();
    const done = await signInSteps(browser, await browser.follow(url, {}, REDIRECT), { username: 'petra', password: PASSWORD, stopAt: REDIRECT });
    const answer = new URL(done.url);
    assert.ok(done.url.startsWith(REDIRECT), `back at the app: ${done.status} ${done.url}`);
    assert.equal(answer.searchParams.get('code'), null, 'a code');
    assert.equal(answer.searchParams.get('error'), 'invalid_target');
  });

  it('a pushed request, its API removed and added again, used in a session that consented to the old one: the person is asked again, no code', async () => {
    const api = 'https://pushed-remade.operator-sixteenth.example.test';
    await admin('POST', '/apis', { identifier: api, scopes: ['read'] });
    await server.accounts.create('paula', PASSWORD);
    const browser = new Agent();
    const consented = await signInSteps(browser, (await startAuthorization(browser, app, REDIRECT, { scope: 'openid read', resource: api })).page, { username: 'paula', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(new URL(consented.url).searchParams.get('code'), `consented to the first API: ${consented.status} ${consented.url}`);
    const url = await pushed(api);
    await admin('DELETE', `/apis/${encodeURIComponent(api)}`);
    await admin('POST', '/apis', { identifier: api, scopes: ['read'] });
    const page = await browser.follow(url, {}, REDIRECT);
    assert.ok(isConsent(page), `the consent page: ${page.status} ${page.url}`);
  });

  it('an upstream removed and added again (admin API, the same issuer and client) while a sign-in waits at it: its callback is refused, as after a removal alone', async () => {
    await server.accounts.create('udo', PASSWORD);
    const browser = new Agent();
    const { callback } = await atUpstreamCallback(browser, 'udo');
    await admin('DELETE', '/upstreams/self');
    await admin('POST', '/upstreams', { id: 'self', issuer: server.issuer, client_id: 'latchkey', client_secret: SECRET, scope: 'openid', display_name: 'Self', link_by_email: false, end_session: false });
    const done = await browser.follow(callback, {}, REDIRECT);
    assert.ok(!done.url.startsWith(REDIRECT), `back at the app: ${done.url}`);
    assert.equal(done.status, 400, `the callback answers ${done.status} ${done.url}`);
    assert.match(done.html, /expired or was already completed/);
    // The upstream made again signs people in from now on.
    const again = new Agent();
    const fresh = await followed(again, (await atUpstreamCallback(again, 'udo')).callback);
    assert.ok(new URL(fresh.url).searchParams.get('code'), `a sign-in begun after: ${fresh.status} ${fresh.url}`);
  });

  it('a sign-in through an upstream waiting at the consent page while the upstream is removed and added again (the same issuer): confirming gives no code', async () => {
    await server.accounts.create('uma', PASSWORD);
    const browser = new Agent();
    const { callback } = await atUpstreamCallback(browser, 'uma');
    const consent = await signInSteps(browser, await browser.follow(callback, {}, REDIRECT), { username: '', password: '', consent: 'stop', stopAt: REDIRECT });
    assert.ok(isConsent(consent), `the consent page: ${consent.status} ${consent.url}`);
    await admin('DELETE', '/upstreams/self');
    await admin('POST', '/upstreams', { id: 'self', issuer: server.issuer, client_id: 'latchkey', client_secret: SECRET, scope: 'openid', display_name: 'Self', link_by_email: false, end_session: false });
    const done = await browser.submit(consent, '/confirm', {}, REDIRECT);
    assert.ok(!done.url.startsWith(REDIRECT), `back at the app: ${done.url}`);
    assert.equal(done.status, 400, `${done.status} ${done.url}`);
  });

  it('a sign-in through an upstream waiting at its second factor while the upstream is removed and added again (the same issuer): the right code gives no code to the app', async () => {
    const { sub: upstreamSub } = await server.accounts.create('tara', PASSWORD);
    const first = new Agent();
    await followed(first, (await atUpstreamCallback(first, 'tara')).callback);
    const linked = (await new UpstreamLinks(server.kv, server.accounts).find('self', upstreamSub))!;
    const { username } = (await server.accounts.find(linked.sub))!;
    await server.accounts.setPassword(username, PASSWORD);
    const accountPage = new Agent();
    let page = await signInSteps(accountPage, await accountPage.follow(`${server.issuer}/account`), { username, password: PASSWORD });
    if (isConsent(page)) page = await accountPage.submit(page, '/confirm', {});
    const { secret } = await authenticatorAdded(accountPage, page);

    const browser = new Agent();
    const factor = await browser.follow((await atUpstreamCallback(browser, 'tara')).callback, {}, REDIRECT);
    assert.match(factor.html, /second-factor/, `the second-factor page: ${factor.status} ${factor.url}`);
    await admin('DELETE', '/upstreams/self');
    await admin('POST', '/upstreams', { id: 'self', issuer: server.issuer, client_id: 'latchkey', client_secret: SECRET, scope: 'openid', display_name: 'Self', link_by_email: false, end_session: false });
    // The code of the step after the one the setup spent.
    let done = await browser.submit(factor, '/second-factor', { code: totpCode(secret) }, REDIRECT);
    if (isConsent(done)) done = await browser.submit(done, '/confirm', {}, REDIRECT);
    assert.equal(done.url.startsWith(REDIRECT) ? new URL(done.url).searchParams.get('code') : null, null, `a code: ${done.status} ${done.url}`);
  });

  // Last: it removes the upstream the tests above sign in through.
  it('a code issued in a session signed in through an upstream, redeemed after an operator removed the upstream (admin API): refused', async () => {
    await server.accounts.create('ursel', PASSWORD);
    const browser = new Agent();
    const { callback, verifier } = await atUpstreamCallback(browser, 'ursel');
    const done = await followed(browser, callback);
    assert.ok(new URL(done.url).searchParams.get('code'), `a code: ${done.status} ${done.url}`);
    await admin('DELETE', '/upstreams/self');
    await assert.rejects(
      oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }),
      (error: { error?: string }) => error.error === 'invalid_grant',
    );
  });
});
