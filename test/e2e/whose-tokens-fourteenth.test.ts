/**
 * Whose tokens? (fourteenth fresh-eyes passes of 2026-12-07). Two people in one browser, one after
 * the other, and the apps each asked: every code, ID token (`sub`, `sid`, `auth_time`, `acr`,
 * `amr`), userinfo answer and device approval belongs to the person who signed in and consented in
 * that interaction, never to the one signed in before or after, and what was allowed for one is not
 * given to the other. Raw HTTP (our Agent, the engine's auto-posted logout form posted as a browser
 * would) and Chromium (two tabs of one browser, the logout form auto-submitted by the page itself).
 * Nothing here failed: each case is what the pass attacked and saw hold (docs/security-passes.md).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { startBalancer } from '../helpers/balancer.js';
import { launchChromium } from '../helpers/browser.js';
import { fakeUpstreamOf } from '../helpers/fake-upstream.js';
import { startLogoutReceiver, type LogoutReceiver } from '../helpers/logout-receiver.js';
import { startRedisServer } from '../helpers/redis.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';
import type { Page } from '../helpers/agent.js';
import { addPerson, Agent, ALICE, BOB, callbackParams, isConsent, isLogin, RelyingParty, startOp, webClient, type Flow, type Op, type Person } from '../conformance/fixture.js';

const SECRET = 'whose-tokens-fourteenth-client-secret-with-plenty-of-entropy';
const WEB_CALLBACK = 'https://web.example.test/callback';
const UPSTREAM_SECRET = 'whose-tokens-fourteenth-upstream-secret-with-plenty-of-entropy';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('e2e: whose tokens — two people in one browser, each app gets the person who signed in and consented there (fourteenth passes)', function () {
  this.timeout(90_000);
  let op: Op;
  let web: RelyingParty;
  let other: RelyingParty;
  let told: RelyingParty;
  let tv: oidc.Configuration;
  let receiver: LogoutReceiver;

  before(async () => {
    receiver = await startLogoutReceiver();
    op = await startOp({
      people: [ALICE, BOB],
      clients: [
        webClient('web', SECRET),
        webClient('other', SECRET),
        webClient('told', SECRET, { backchannel_logout_uri: receiver.url, backchannel_logout_session_required: true }),
        { client_id: 'tv', client_name: 'TV', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], redirect_uris: [], response_types: [] },
      ],
    });
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    other = await RelyingParty.create(op, 'other', { secret: SECRET });
    told = await RelyingParty.create(op, 'told', { secret: SECRET });
    tv = await oidc.discovery(new URL(op.issuer), 'tv', { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await op?.stop();
    receiver?.server.close();
  });

  /** The engine's logout form (a sign-in as someone else ends the session first), posted as the page's script would. */
  async function settled(agent: Agent, page: Page, stopAt?: string): Promise<Page> {
    for (let hops = 0; hops < 3 && page.html.includes('/session/end/confirm'); hops += 1) page = await agent.submit(page, '/session/end/confirm', {}, stopAt);
    return page;
  }

  /** `person` signs in at `page` (a login form), through the account switch if there is one, and allows if asked. */
  async function signInThere(agent: Agent, page: Page, person: Person, stopAt?: string, consent: 'allow' | 'stop' = 'allow'): Promise<Page> {
    let next = await settled(agent, await signInSteps(agent, page, { username: person.username, password: person.password, consent: 'stop', stopAt }), stopAt);
    if (consent === 'allow' && isConsent(next)) next = await agent.submit(next, '/confirm', {}, stopAt);
    return next;
  }

  const code = (flow: Flow, page: Page) => (page.url.startsWith(flow.redirectUri) ? callbackParams({ ...flow, page }).get('code') : null);
  const noCode = (flow: Flow, page: Page, what: string) => {
    assert.equal(code(flow, page), null, `${what}: no code, got ${page.status} ${page.url}`);
    assert.ok(page.status < 500, `${what}: ${page.status}`);
  };
  const userinfo = (token: string) => fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${token}` } });

  it('held: a consent page left open for alice, confirmed after bob signed in in another tab, gives no code, and nothing alice allowed reaches bob', async () => {
    const agent = new Agent();
    await web.redeem(await web.signIn(agent, ALICE));
    const asked = await web.authorize(agent, { scope: 'openid email' });
    assert.ok(isConsent(asked.page) && asked.page.html.includes('alice'), 'the consent page names alice');
    const switched = await other.authorize(agent, { prompt: 'login' });
    const bobs = await signInThere(agent, switched.page, BOB, switched.redirectUri);
    assert.equal((await other.redeem({ ...switched, page: bobs })).claims()!.sub, op.subs.bob);
    const confirmed = await agent.submit(asked.page, '/confirm', {}, asked.redirectUri);
    assert.equal(confirmed.status, 400, `alice's page: ${confirmed.status} ${confirmed.url}`);
    noCode(asked, confirmed, "alice's consent page after the switch");
    // Nor was it written for bob: his silent request for the same scope is consent_required.
    const silent = await web.authorize(agent, { scope: 'openid email', prompt: 'none' });
    assert.equal(callbackParams(silent).get('error'), 'consent_required');
  });

  it('held: a consent alice remembered for an app is not bob\'s: after the switch, bob is asked on a page naming him', async () => {
    const agent = new Agent();
    await web.redeem(await web.signIn(agent, ALICE, { scope: 'openid email profile' }));
    const flow = await web.authorize(agent, { scope: 'openid email profile', prompt: 'login' });
    const page = await signInThere(agent, flow.page, BOB, flow.redirectUri, 'stop');
    assert.ok(isConsent(page), `bob is asked, got ${page.status} ${page.url}`);
    assert.match(page.html, /Signed in as\s*<[^>]*>\s*bob/);
    assert.doesNotMatch(page.html, /alice/);
  });

  it("held: alice's re-authentication page (prompt=login) left open while bob signs in elsewhere: alice's password there is refused, no code", async () => {
    const agent = new Agent();
    await web.redeem(await web.signIn(agent, ALICE));
    const stale = await web.authorize(agent, { prompt: 'login' });
    assert.ok(isLogin(stale.page));
    const switched = await other.authorize(agent, { prompt: 'login' });
    await other.redeem({ ...switched, page: await signInThere(agent, switched.page, BOB, switched.redirectUri) });
    const page = await signInSteps(agent, stale.page, { username: ALICE.username, password: ALICE.password, stopAt: stale.redirectUri });
    assert.equal(page.status, 400);
    noCode(stale, page, "alice's stale login page");
  });

  it("held: max_age=0 answered by bob's sign-in: the code, ID token and userinfo are bob's, with his own sid and sign-in; alice's access token and session-bound grant end; back-channel logout tells alice's sid only", async () => {
    const agent = new Agent();
    receiver.tokens.length = 0;
    const alice = await told.redeem(await told.signIn(agent, ALICE, { scope: 'openid profile' }));
    const aliceSid = alice.claims()!.sid;
    assert.ok(aliceSid, 'the ID token carries a sid (backchannel_logout_session_required)');
    const before = Math.floor(Date.now() / 1000);
    const flow = await told.authorize(agent, { max_age: '0', scope: 'openid profile' });
    assert.ok(isLogin(flow.page));
    const bob = await told.redeem({ ...flow, page: await signInThere(agent, flow.page, BOB, flow.redirectUri) });
    const claims = bob.claims()!;
    assert.equal(claims.sub, op.subs.bob);
    assert.ok(claims.sid && claims.sid !== aliceSid, `a sid of bob's own session, got ${String(claims.sid)}`);
    assert.ok((claims.auth_time ?? 0) >= before - 1, `bob's sign-in time, got ${String(claims.auth_time)}`);
    assert.equal(claims.acr, 'pwd');
    assert.deepEqual(claims.amr, ['pwd']);
    const info = await userinfo(bob.access_token);
    assert.equal(info.status, 200);
    const answer = (await info.json()) as Record<string, unknown>;
    assert.equal(answer.sub, op.subs.bob);
    assert.equal(answer.name, BOB.name);
    assert.equal((await userinfo(alice.access_token)).status, 401, "alice's access token ended with her session");
    const deadline = Date.now() + 5000;
    while (!receiver.tokens.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(receiver.tokens.map((token) => [decodeJwt(token).sub, decodeJwt(token).sid]), [[op.subs.alice, aliceSid]]);
  });

  it('held: the chooser names the signed-in person only; a login_hint naming someone else shows the login form (no chooser), and "use another account" signs bob in for bob', async () => {
    const agent = new Agent();
    await web.redeem(await web.signIn(agent, ALICE));
    const hinted = await web.authorize(agent, { prompt: 'select_account', login_hint: 'bob' });
    assert.ok(isLogin(hinted.page) && !hinted.page.html.includes('/continue"'), 'the login form, no "Continue as alice"');
    const chooser = await web.authorize(agent, { prompt: 'select_account' });
    assert.ok(chooser.page.html.includes('/continue"') && chooser.page.html.includes('(alice)'));
    const another = await agent.follow(new URL(chooser.page.html.match(/href="([^"]*\/another)"/)![1]!, chooser.page.url).href, {}, chooser.redirectUri);
    assert.ok(isLogin(another));
    const page = await signInThere(agent, another, BOB, chooser.redirectUri);
    assert.equal((await web.redeem({ ...chooser, page })).claims()!.sub, op.subs.bob);
  });

  it("held: alice's id_token_hint while bob is signed in: the login form (prompt=none: login_required); bob signing in there is login_required, alice signing in gets alice", async () => {
    const aliceBrowser = new Agent();
    const hint = (await web.redeem(await web.signIn(aliceBrowser, ALICE))).id_token!;
    const agent = new Agent();
    await web.redeem(await web.signIn(agent, BOB));
    const silent = await web.authorize(agent, { id_token_hint: hint, prompt: 'none' });
    assert.equal(callbackParams(silent).get('error'), 'login_required');
    const asBob = await web.authorize(agent, { id_token_hint: hint });
    assert.ok(isLogin(asBob.page), 'the login form, not a code for bob');
    const refused = await signInThere(agent, asBob.page, BOB, asBob.redirectUri);
    assert.equal(callbackParams({ ...asBob, page: refused }).get('error'), 'login_required');
    noCode(asBob, refused, 'bob at alice\'s hint');
    const asAlice = await web.authorize(agent, { id_token_hint: hint });
    const page = await signInThere(agent, asAlice.page, ALICE, asAlice.redirectUri);
    assert.equal((await web.redeem({ ...asAlice, page })).claims()!.sub, op.subs.alice);
  });

  it("held: a device that asked for alice (claims sub value) approved by bob, signed in or signing in, gets nothing: the device is told access_denied (login_required, its reason)", async () => {
    for (const bobSignedIn of [false, true]) {
      const agent = new Agent();
      if (bobSignedIn) await web.redeem(await web.signIn(agent, BOB));
      const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid', claims: JSON.stringify({ id_token: { sub: { value: op.subs.alice } } }) });
      const confirm = await agent.submit(await agent.follow(`${op.issuer}/device`), '/device', { user_code: device.user_code });
      const login = await agent.submit(confirm, '/device', { confirm: 'yes' });
      assert.ok(isLogin(login), `${bobSignedIn}: the login form, not bob's consent`);
      const page = await signInThere(agent, login, BOB);
      assert.doesNotMatch(page.html, /Device connected/, `${bobSignedIn}: ${page.status} ${page.url}`);
      const polled = await fetch(op.metadata.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: 'tv' }),
      });
      assert.equal(polled.status, 400);
      // A device is told only the token endpoint's codes (RFC 8628 §3.5): access_denied, the reason first in its description.
      const told = (await polled.json()) as { error?: string; error_description?: string };
      assert.equal(told.error, 'access_denied', `${bobSignedIn}: the device is told`);
      assert.match(told.error_description ?? '', /^login_required\b/, `${bobSignedIn}: the reason`);
    }
  });

  it("held: an upstream's back-channel logout of the person it signed in (by sid, then by sub), sent after bob took over that browser with his password, ends her own other session and nothing of bob's", async () => {
    const fake = await fakeUpstreamOf(op.server!, UPSTREAM_SECRET);
    try {
      fake.state.sub = 'ula-at-the-upstream';
      fake.state.sid = 'ula-upstream-session';
      const agent = new Agent();
      const viaUpstream = await web.authorize(agent, { upstream: 'fake' });
      const ulas = await web.redeem({ ...viaUpstream, page: isConsent(viaUpstream.page) ? await agent.submit(viaUpstream.page, '/confirm', {}, viaUpstream.redirectUri) : viaUpstream.page });
      const ula = ulas.claims()!;
      assert.deepEqual(ula.amr, ['fed']);
      assert.notEqual(ula.sub, op.subs.bob);
      const flow = await web.authorize(agent, { prompt: 'login' });
      const bob = await web.redeem({ ...flow, page: await signInThere(agent, flow.page, BOB, flow.redirectUri) });
      assert.equal(bob.claims()!.sub, op.subs.bob);
      // Ula still signed in through the upstream in a browser of her own: what the logout ends.
      const ulasOwn = new Agent();
      const own = await web.authorize(ulasOwn, { upstream: 'fake' });
      assert.ok(code(own, own.page), `ula's own browser, got ${own.page.url}`);
      for (const claims of [{ sid: 'ula-upstream-session' }, { sub: 'ula-at-the-upstream' }]) {
        const posted = await fetch(`${op.issuer}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: await fake.logoutToken(claims) }) });
        assert.equal(posted.status, 200, JSON.stringify(claims));
      }
      const ended = await web.authorize(ulasOwn, { prompt: 'none' });
      assert.equal(callbackParams(ended).get('error'), 'login_required', "the logout ended ula's own session");
      const info = await userinfo(bob.access_token);
      assert.equal(info.status, 200, "bob's access token still works");
      assert.equal(((await info.json()) as { sub?: string }).sub, op.subs.bob);
      const silent = await web.authorize(agent, { prompt: 'none' });
      assert.ok(code(silent, silent.page), `bob is still signed in, got ${silent.page.url}`);
      assert.equal((await web.redeem(silent)).claims()!.sub, op.subs.bob);
    } finally {
      await fake.close();
    }
  });

  it("held: two instances on one store behind one issuer: alice's consent page made by one, confirmed there after bob signed in through the other, gives no code, and nothing of it reaches bob", async () => {
    const redis = await startRedisServer();
    const dir = testDir();
    const door = await startBalancer();
    const instances: TestServer[] = [];
    try {
      for (let n = 0; n < 2; n += 1) instances.push(await startServer({ redisUrl: redis.url, dir, clients: [webClient('web', SECRET)], cheapHashing: true, env: { ISSUER: door.url } }));
      const [one, two] = instances as [TestServer, TestServer];
      await one.accounts.create(ALICE.username, ALICE.password);
      const bobsSub = (await one.accounts.create(BOB.username, BOB.password)).sub;
      door.route(one.url);
      const app = await oidc.discovery(new URL(door.url), 'web', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
      const agent = new Agent();
      const authorize = async (params: Record<string, string>) => {
        const verifier = oidc.randomPKCECodeVerifier();
        const url = oidc.buildAuthorizationUrl(app, { redirect_uri: WEB_CALLBACK, scope: 'openid', state: 'st', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...params });
        return { verifier, state: 'st', nonce: '', redirectUri: WEB_CALLBACK, page: await agent.follow(url.href, {}, WEB_CALLBACK) };
      };
      const first = await authorize({});
      assert.ok(code(first, await signInThere(agent, first.page, ALICE, WEB_CALLBACK)), 'alice signed in at the first instance');
      const asked = await authorize({ scope: 'openid email' });
      assert.ok(isConsent(asked.page) && asked.page.html.includes('alice'), "alice's consent page, made by the first instance");
      await door.route(two.url);
      const switched = await authorize({ prompt: 'login' });
      const bobs = await signInThere(agent, switched.page, BOB, WEB_CALLBACK);
      const tokens = await oidc.authorizationCodeGrant(app, new URL(bobs.url), { pkceCodeVerifier: switched.verifier, expectedState: 'st' });
      assert.equal(tokens.claims()!.sub, bobsSub, "bob, through the second instance");
      await door.route(one.url);
      const confirmed = await agent.submit(asked.page, '/confirm', {}, WEB_CALLBACK);
      assert.equal(confirmed.status, 400, `alice's page at the first instance: ${confirmed.status} ${confirmed.url}`);
      noCode(asked, confirmed, "alice's consent page after the switch at the other instance");
      const silent = await authorize({ scope: 'openid email', prompt: 'none' });
      assert.equal(callbackParams(silent).get('error'), 'consent_required');
    } finally {
      for (const instance of instances) await instance.stop();
      await door.close();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('in Chromium', function () {
    // Each navigation takes seconds on a loaded machine (one core shared with the server).
    this.timeout(180_000);
    let browser: Browser;
    before(async () => {
      browser = await launchChromium();
    });
    after(() => browser?.close());

    it("held: two tabs, cleo's consent page open while dora signs in in the other (the engine's logout form submitting itself): Allow on cleo's page lands on our error page, and web gets nothing", async () => {
      const cleo = { username: 'cleo', password: 'cleo has a long enough passphrase', name: 'Cleo' };
      const dora = { username: 'dora', password: 'dora has a long enough passphrase', name: 'Dora' };
      const dorasSub = await addPerson(op.env, dora);
      await addPerson(op.env, cleo);
      const context = await browser.newContext();
      const answers: string[] = [];
      context.on('request', (request) => {
        if (/^https:\/\/(web|other)\.example\.test\//.test(request.url())) answers.push(request.url());
      });
      await context.route(/^https:\/\/(web|other)\.example\.test\//, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<main><h1>back at the app</h1></main>' }));
      const url = async (rp: RelyingParty, params: Record<string, string>) => {
        const verifier = oidc.randomPKCECodeVerifier();
        return { verifier, href: oidc.buildAuthorizationUrl(rp.config, { redirect_uri: rp.redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...params }).href };
      };
      const signIn = async (tab: Awaited<ReturnType<typeof context.newPage>>, person: Person) => {
        await tab.fill('input[name="username"]', person.username);
        await tab.fill('input[name="password"]', person.password);
        await tab.click('button:has-text("Sign in")');
        await tab.waitForSelector('main h1');
        if (await tab.locator('button:has-text("Allow")').count()) await tab.click('button:has-text("Allow")');
      };
      try {
        const first = await context.newPage();
        await first.goto((await url(web, { state: 'first' })).href);
        await signIn(first, cleo);
        await first.waitForURL(/web\.example\.test/);
        const cleoTab = await context.newPage();
        await cleoTab.goto((await url(web, { scope: 'openid email', state: 'cleo' })).href);
        await cleoTab.waitForSelector('button:has-text("Allow")');
        assert.match(await cleoTab.locator('main').innerText(), /Signed in as cleo/);
        const doraTab = await context.newPage();
        const doras = await url(other, { prompt: 'login', state: 'dora' });
        await doraTab.goto(doras.href);
        await signIn(doraTab, dora);
        await doraTab.waitForURL(/other\.example\.test/);
        const tokens = await oidc.authorizationCodeGrant(other.config, new URL(doraTab.url()), { pkceCodeVerifier: doras.verifier, expectedState: 'dora' });
        assert.equal(tokens.claims()!.sub, dorasSub);
        await cleoTab.click('button:has-text("Allow")');
        await cleoTab.waitForSelector('main h1:has-text("Sign-in expired")');
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.deepEqual(answers.filter((answer) => new URL(answer).searchParams.get('state') === 'cleo'), [], "web was sent nothing for cleo's page");
      } finally {
        await context.close();
      }
    });
  });
});
