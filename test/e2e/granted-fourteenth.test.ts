/**
 * The fourteenth fresh-eyes pass at "more than was granted" (2026-12-07, docs/security-passes.md,
 * "more than was granted, fourteenth pass", h1), black box. Found and fixed here: a link offered by
 * an upstream's verified email, which only the person signing in to the existing account makes
 * (interactions/link-confirmation.ts), was made by a sign-in through the provider that account
 * already uses answered from that provider's session alone: in a browser where the account's owner
 * was still signed in there (a shared computer, Latchkey signed out of), a second person's identity
 * at the linking provider was joined to the owner's account without anyone typing anything, where the
 * password and passkey ways of confirming are each a sign-in of now; and so by such a sign-in begun
 * before the offer and finished after it. Held and pinned: two people in
 * one browser (the engine's account switch, a consent page left open across it), and what a refresh
 * token gives for every resource and scope asked.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { Upstreams } from '../../src/upstreams/registry.js';
import { Agent, type Page } from '../helpers/agent.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { launchChromium } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { basic, introspect, machineClient, type ClientCredentials } from '../helpers/tokens.js';

const PASSWORD = 'fourteenth fresh eyes granting passphrase';
const UPSTREAM_SECRET = 'fourteenth-upstream-secret-with-plenty-of-entropy-0123456789';
const REDIRECT = 'https://web.fourteenth.example.test/callback';
const OTHER_REDIRECT = 'https://other.fourteenth.example.test/callback';
const NOTES = 'https://notes.fourteenth.example.test';
const LEDGER = 'https://ledger.fourteenth.example.test';
const WEB: ClientCredentials = { id: 'fourteenth-web', secret: 'fourteenth-web-secret-with-plenty-of-entropy-0123456789' };
const OTHER: ClientCredentials = { id: 'fourteenth-other', secret: 'fourteenth-other-secret-with-plenty-of-entropy-0123456789' };
const API: ClientCredentials = { id: 'fourteenth-api', secret: 'fourteenth-api-secret-with-plenty-of-entropy-0123456789' };

/** A page's words, for an assertion's message. */
const words = (page: Page) => `${page.status} ${page.url}: ${page.html.replace(/<(style|script)[^]*?<\/\1>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300)}`;

describe('e2e: fourteenth fresh-eyes pass, more than was granted', function () {
  this.timeout(60_000);
  let server: TestServer;
  const fakes: Awaited<ReturnType<typeof startFakeUpstream>>[] = [];

  before(async () => {
    server = await startServer({
      ownRedis: true,
      cheapHashing: true,
      env: {
        OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
        RESOURCE_SERVERS: JSON.stringify([
          { identifier: NOTES, scopes: ['read', 'write'], format: 'jwt', grants: [{ client_id: API.id, introspect: true }] },
          { identifier: LEDGER, scopes: ['read'], format: 'opaque', grants: [{ client_id: API.id, introspect: true }] },
        ]),
      },
      clients: [
        { client_id: 'fourteenth-app', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] },
        { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email profile offline_access read write' },
        { client_id: OTHER.id, client_secret: OTHER.secret, redirect_uris: [OTHER_REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email' },
        machineClient(API),
      ],
    });
    await server.accounts.create('alice', PASSWORD, { email: 'alice@fourteenth.example', email_verified: true, name: 'Alice' });
    await server.accounts.create('bob', PASSWORD, { email: 'bob@fourteenth.example', email_verified: true, name: 'Bob' });
  });
  after(async () => {
    for (const fake of fakes) await fake.close();
    await server?.stop();
  });

  describe('a link offered by email, confirmed through the provider the account already uses', () => {
    /**
     * Two upstreams: `home`, through which the owner's account was made (her verified address), and
     * `corp`, which offers links by email. The account is made in `browser` by a sign-in through home
     * as `owner`; then corp's `other` identity, saying the same verified address, signs in in the same
     * browser (Latchkey's session gone, home's kept: the fake answers without asking): the login page
     * offering the link.
     */
    async function offeredInSharedBrowser(tag: string) {
      const [home, corp] = [await startFakeUpstream(UPSTREAM_SECRET), await startFakeUpstream(UPSTREAM_SECRET)];
      fakes.push(home, corp);
      const upstreams = new Upstreams(server.kv, server.config.keys.secrets);
      await upstreams.add({ id: `home-${tag}`, issuer: home.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: `Home ${tag}`, linkByEmail: false, endSession: false });
      await upstreams.add({ id: `corp-${tag}`, issuer: corp.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: `Corp ${tag}`, linkByEmail: true, endSession: false });
      const links = new UpstreamLinks(server.kv, server.accounts);
      const request = (upstream: string) =>
        `${server.issuer}/auth?${new URLSearchParams({ client_id: 'fourteenth-app', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream })}`;
      const email = `owner-${tag}@shared.fourteenth.example`;
      home.state.sub = `owner-${tag}`;
      home.state.email = email;
      const browser = new Agent();
      await browser.follow(request(`home-${tag}`), {}, REDIRECT);
      const owner = (await links.find(`home-${tag}`, `owner-${tag}`))?.sub;
      assert.ok(owner, 'the owner\'s account, made by her sign-in through home');
      // Signed out of Latchkey (its cookies gone), still signed in at home.
      for (const name of browser.cookieNames(new URL(server.issuer).host)) browser.keepCookies(server.issuer, new Response(null, { headers: { 'set-cookie': `${name}=; Max-Age=0` } }));
      corp.state.sub = `other-${tag}`;
      corp.state.email = email;
      const offered = await browser.follow(request(`corp-${tag}`), {}, REDIRECT);
      assert.match(offered.html, /already exists here\. Sign in to it/, words(offered));
      return { home, browser, offered, links, owner, corp: `corp-${tag}`, other: `other-${tag}` };
    }

    it("asks that provider for a sign-in of now (prompt=login, max_age=0): answered from its session of an hour ago, nothing is linked and no code is given; signed in now, the link is made", async () => {
      const stale = await offeredInSharedBrowser('stale');
      stale.home.state.prompt = null;
      stale.home.state.maxAge = null;
      // Home answers from the owner's session there, signed in an hour ago (as a provider ignoring prompt=login would).
      stale.home.state.authTime = Math.floor(Date.now() / 1000) - 3600;
      const answered = await stale.browser.submit(stale.offered, '/upstream/home-stale', {}, REDIRECT);
      assert.equal(stale.home.state.prompt, 'login', 'the confirming sign-in asked of home: prompt');
      assert.equal(stale.home.state.maxAge, '0', 'the confirming sign-in asked of home: max_age');
      assert.equal(await stale.links.find(stale.corp, stale.other), undefined, "the other person's corp identity is not joined to the owner's account");
      assert.ok(!answered.url.startsWith(REDIRECT), `no code for the app: ${words(answered)}`);
      assert.match(answered.html, /did not confirm who you are/, words(answered));

      // The control: the owner signs in at home now (its auth_time now): the link is hers to make.
      const fresh = await offeredInSharedBrowser('fresh');
      fresh.home.state.authTime = undefined;
      await fresh.browser.submit(fresh.offered, '/upstream/home-fresh', {}, REDIRECT);
      assert.equal(fresh.home.state.prompt, 'login');
      assert.equal((await fresh.links.find(fresh.corp, fresh.other))?.sub, fresh.owner, 'linked, by a sign-in of now to the account');
    });
  });

  describe('a link offered by email, confirmed by a sign-in begun before the offer', () => {
    it("a sign-in through the account's provider that was not asked fresh, begun before the offer and finished after it (its state cookie put back), links nothing", async () => {
      const [home, corp] = [await startFakeUpstream(UPSTREAM_SECRET), await startFakeUpstream(UPSTREAM_SECRET)];
      fakes.push(home, corp);
      const upstreams = new Upstreams(server.kv, server.config.keys.secrets);
      await upstreams.add({ id: 'home-race', issuer: home.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: 'Home race', linkByEmail: false, endSession: false });
      await upstreams.add({ id: 'corp-race', issuer: corp.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: 'Corp race', linkByEmail: true, endSession: false });
      const links = new UpstreamLinks(server.kv, server.accounts);
      const request = (extra: Record<string, string> = {}) =>
        `${server.issuer}/auth?${new URLSearchParams({ client_id: 'fourteenth-app', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', ...extra })}`;
      home.state.sub = 'owner-race';
      home.state.email = 'owner-race@shared.fourteenth.example';
      const browser = new Agent();
      await browser.follow(request({ upstream: 'home-race' }), {}, REDIRECT);
      assert.ok(await links.find('home-race', 'owner-race'));
      const host = new URL(server.issuer).host;
      const forget = (names: string[]) => browser.keepCookies(server.issuer, new Response(null, { headers: names.map((name) => ['set-cookie', `${name}=; Max-Age=0`] as [string, string]) }));
      forget(browser.cookieNames(host));
      // The login page; "Continue with Home race" begun (no offer yet: not asked fresh), home's answer (from the owner's session of an hour ago) held.
      const login = await browser.follow(request(), {}, REDIRECT);
      home.state.authTime = Math.floor(Date.now() / 1000) - 3600;
      const toHome = await browser.submit(login, '/upstream/home-race', {}, home.state.issuer);
      const pendingCookies = browser.cookieHeader(`${server.issuer}/upstream/`).split('; ').filter((pair) => pair.startsWith('lk_upstream'));
      const homeAnswer = (await fetch(toHome.url, { redirect: 'manual' })).headers.get('location')!;
      // Then someone else's corp identity, saying the owner's address: the offer.
      corp.state.sub = 'other-race';
      corp.state.email = 'owner-race@shared.fourteenth.example';
      const offered = await browser.submit(login, '/upstream/corp-race', {}, REDIRECT);
      assert.match(offered.html, /already exists here\. Sign in to it/, words(offered));
      // Home's held answer delivered now, with the cookie of its start put back.
      browser.keepCookies(server.issuer, new Response(null, { headers: pendingCookies.map((pair) => ['set-cookie', `${pair}; Path=/upstream/`] as [string, string]) }));
      await browser.follow(homeAnswer, {}, REDIRECT);
      assert.equal(await links.find('corp-race', 'other-race'), undefined, "the other person's corp identity is not joined to the owner's account");
    });
  });

  describe('two people in one browser (held)', () => {
    const config = (client: ClientCredentials) => oidc.discovery(new URL(server.issuer), client.id, client.secret, oidc.ClientSecretBasic(client.secret), { execute: [oidc.allowInsecureRequests] });

    it("a second person signing in where the first is signed in ends the first's session: the second is asked their own consent, and the first's app gets nothing of the first silently after; the first's consent page left open gives nothing", async () => {
      const web = await config(WEB);
      const other = await config(OTHER);
      const agent = new Agent();
      // Alice allows the app her email.
      const first = await startAuthorization(agent, web, REDIRECT, { scope: 'openid email' });
      const back = await signInSteps(agent, first.page, { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
      const alices = await oidc.authorizationCodeGrant(web, new URL(back.url), { pkceCodeVerifier: first.verifier, expectedState: oidc.skipStateCheck });
      assert.equal(alices.claims()!.email, 'alice@fourteenth.example');
      // Alice's consent page for the other app, left open.
      const left = await startAuthorization(agent, other, OTHER_REDIRECT, { scope: 'openid email' });
      assert.match(left.page.html, /Signed in as\s*(<[^>]+>\s*)*alice/, words(left.page));
      // Bob signs in to the other app with prompt=login: the engine signs Alice out first.
      const switched = await startAuthorization(agent, other, OTHER_REDIRECT, { scope: 'openid email', prompt: 'login' });
      let page = await signInSteps(agent, switched.page, { username: 'bob', password: PASSWORD, consent: 'stop', stopAt: OTHER_REDIRECT });
      assert.match(page.html, /session\/end\/confirm/, words(page));
      page = await agent.submit(page, '/session/end/confirm', {}, OTHER_REDIRECT);
      page = await signInSteps(agent, page, { username: 'bob', password: PASSWORD, consent: 'stop', stopAt: OTHER_REDIRECT });
      assert.match(page.html, /Signed in as\s*(<[^>]+>\s*)*bob/, `Bob is asked his own consent: ${words(page)}`);
      page = await agent.submit(page, '/confirm', {}, OTHER_REDIRECT);
      const bobs = await oidc.authorizationCodeGrant(other, new URL(page.url), { pkceCodeVerifier: switched.verifier, expectedState: oidc.skipStateCheck });
      assert.equal(bobs.claims()!.email, 'bob@fourteenth.example');
      // Alice's page, confirmed by whoever is at the browser now: nothing.
      const confirmed = await agent.submit(left.page, '/confirm', {}, OTHER_REDIRECT);
      assert.ok(!confirmed.url.startsWith(OTHER_REDIRECT), `no code from Alice's page: ${words(confirmed)}`);
      // The first app, silently: Bob never allowed it, and nothing of Alice's is given.
      const silent = await startAuthorization(agent, web, REDIRECT, { scope: 'openid email', prompt: 'none' });
      assert.equal(new URL(silent.page.url).searchParams.get('error'), 'consent_required', silent.page.url);
    });
  });

  describe('in Chromium: a shared computer (held, with the fix above)', function () {
    // Debian's Chromium, started and driven through a dozen pages.
    this.timeout(120_000);

    it("Alice's home session left in the browser confirms no link for someone else; another person's sign-in there switches the account and asks their own consent", async () => {
      const [home, corp] = [await startFakeUpstream(UPSTREAM_SECRET), await startFakeUpstream(UPSTREAM_SECRET)];
      fakes.push(home, corp);
      const upstreams = new Upstreams(server.kv, server.config.keys.secrets);
      await upstreams.add({ id: 'home-chromium', issuer: home.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: 'Chromium home', linkByEmail: false, endSession: false });
      await upstreams.add({ id: 'corp-chromium', issuer: corp.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: 'Chromium corp', linkByEmail: true, endSession: false });
      const links = new UpstreamLinks(server.kv, server.accounts);
      const web = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
      const other = await oidc.discovery(new URL(server.issuer), OTHER.id, OTHER.secret, oidc.ClientSecretBasic(OTHER.secret), { execute: [oidc.allowInsecureRequests] });
      const browser = await launchChromium();
      try {
        const context = await browser.newContext();
        // The apps' callbacks: answered by the test, which reads the code from the address.
        await context.route(/^https:\/\/[a-z]+\.fourteenth\.example\.test\//, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<p>app</p>' }));
        const page = await context.newPage();
        const authorize = async (config: oidc.Configuration, redirectUri: string, params: Record<string, string>) => {
          const verifier = oidc.randomPKCECodeVerifier();
          const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...params });
          // A request answered straight back at the app (prompt=none) ends at its address, which the route above answers.
          await page.goto(url.href).catch((error: Error) => assert.match(error.message, /ERR_NAME_NOT_RESOLVED|ERR_ABORTED/));
          return verifier;
        };
        const codeAt = async (config: oidc.Configuration, redirectUri: string, verifier: string) => {
          await page.waitForURL((url) => url.href.startsWith(redirectUri));
          return oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
        };
        // Alice's account made through home, in this browser; she then leaves Latchkey (its cookies cleared), not home.
        home.state.sub = 'alice-chromium';
        home.state.email = 'alice-chromium@shared.fourteenth.example';
        let verifier = await authorize(web, REDIRECT, { scope: 'openid email', upstream: 'home-chromium' });
        await page.click('button:has-text("Allow")');
        assert.equal((await codeAt(web, REDIRECT, verifier)).claims()!.email, 'alice-chromium@shared.fourteenth.example');
        const alice = (await links.find('home-chromium', 'alice-chromium'))?.sub;
        await context.clearCookies();
        // Someone else's corp identity says her address: offered the link, they choose Home, which answers from her session of an hour ago.
        corp.state.sub = 'someone-chromium';
        corp.state.email = 'alice-chromium@shared.fourteenth.example';
        home.state.authTime = Math.floor(Date.now() / 1000) - 3600;
        await authorize(web, REDIRECT, { scope: 'openid email', upstream: 'corp-chromium' });
        await page.waitForSelector('text=already exists here');
        await page.click('button:has-text("Continue with Chromium home")');
        await page.waitForSelector('text=did not confirm who you are');
        assert.equal(home.state.prompt, 'login');
        assert.equal(await links.find('corp-chromium', 'someone-chromium'), undefined, "nothing joined to Alice's account");
        assert.ok(alice);

        // Dave signs in to the other app with prompt=login where Carol is signed in (her password sign-in).
        await server.accounts.create('carol', PASSWORD, { email: 'carol@fourteenth.example', email_verified: true });
        await server.accounts.create('dave', PASSWORD, { email: 'dave@fourteenth.example', email_verified: true });
        await context.clearCookies();
        verifier = await authorize(web, REDIRECT, { scope: 'openid email' });
        await page.fill('input[name="username"]', 'carol');
        await page.fill('input[name="password"]', PASSWORD);
        await page.click('button:has-text("Sign in")');
        const consentOrBack = await Promise.race([page.waitForURL((url) => url.href.startsWith(REDIRECT)).then(() => 'back'), page.waitForSelector('button:has-text("Allow")').then(() => 'consent')]);
        if (consentOrBack === 'consent') await page.click('button:has-text("Allow")');
        assert.equal((await codeAt(web, REDIRECT, verifier)).claims()!.email, 'carol@fourteenth.example');
        verifier = await authorize(other, OTHER_REDIRECT, { scope: 'openid email', prompt: 'login' });
        await page.fill('input[name="username"]', 'dave');
        await page.fill('input[name="password"]', PASSWORD);
        await page.click('button:has-text("Sign in")');
        // The engine's sign-out of Carol is a form the page posts itself; then Dave's own consent.
        await page.waitForSelector('text=Signed in as');
        assert.match(await page.textContent('body') ?? '', /Signed in as\s*dave/);
        await page.click('button:has-text("Allow")');
        assert.equal((await codeAt(other, OTHER_REDIRECT, verifier)).claims()!.email, 'dave@fourteenth.example');
        await authorize(web, REDIRECT, { scope: 'openid email', prompt: 'none' });
        await page.waitForURL((url) => url.href.startsWith(REDIRECT));
        assert.equal(new URL(page.url()).searchParams.get('error'), 'consent_required', 'nothing of Carol\'s for the first app');
      } finally {
        await browser.close();
      }
    });
  });

  describe('a refresh token, every resource and scope asked (held)', () => {
    it("gives no audience, scope or claim beyond what the person allowed: the API allowed with its allowed scope, the userinfo token with the OpenID scopes, every other API, scope or privileged API refused", async () => {
      const web = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
      const agent = new Agent();
      const asked = await startAuthorization(agent, web, REDIRECT, { scope: 'openid email offline_access read', resource: NOTES });
      const back = await signInSteps(agent, asked.page, { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
      const tokens = await oidc.authorizationCodeGrant(web, new URL(back.url), { pkceCodeVerifier: asked.verifier, expectedState: oidc.skipStateCheck }, { resource: NOTES });
      let refreshToken = tokens.refresh_token!;
      const allowed = new Set(['openid', 'email', 'offline_access']);
      const resources = [[], [NOTES], [LEDGER], [NOTES, LEDGER], ['https://unknown.fourteenth.example.test'], [`${server.issuer}/admin`], [`${server.issuer}/revocations`]];
      const scopes = [undefined, 'openid', 'read', 'write', 'openid read', 'admin', 'admin:read', 'revocations', 'offline_access', 'profile', 'email', 'openid email offline_access read write'];
      for (const resource of resources) {
        for (const scope of scopes) {
          const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken });
          for (const indicator of resource) body.append('resource', indicator);
          if (scope !== undefined) body.set('scope', scope);
          const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(WEB) }, body });
          const answer = (await response.json()) as { access_token?: string; refresh_token?: string; id_token?: string; scope?: string; error?: string };
          const tried = `resource ${resource.join(',') || '-'}, scope ${scope ?? '-'}`;
          assert.ok(response.status === 200 || (response.status === 400 && ['invalid_scope', 'invalid_target'].includes(answer.error!)), `${tried}: ${response.status} ${JSON.stringify(answer)}`);
          if (response.status !== 200) continue;
          refreshToken = answer.refresh_token ?? refreshToken;
          const token = answer.access_token!.split('.').length === 3 ? decodeJwt(answer.access_token!) : await introspect(server.url, WEB, answer.access_token!);
          const granted = String(token.scope ?? '').split(' ').filter(Boolean);
          if (token.aud !== undefined) {
            assert.equal(token.aud, NOTES, `${tried}: only the API allowed`);
            assert.deepEqual(granted, ['read'], `${tried}: only the scope allowed there`);
          } else {
            assert.ok(granted.every((name) => allowed.has(name)), `${tried}: ${granted.join(' ')}`);
          }
          if (answer.id_token) {
            const claims = decodeJwt(answer.id_token);
            assert.equal(claims.name, undefined, `${tried}: no profile in the ID token`);
          }
        }
      }
    });
  });
});
