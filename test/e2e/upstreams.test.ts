/**
 * Signing in through an upstream OpenID Connect provider (issue 16), end to end.
 *
 * In Chromium: a second Latchkey (its own store) is the upstream, on 127.0.0.1, while Latchkey
 * itself is on localhost and two apps on app1.localhost / app2.localhost; Latchkey talks to the
 * upstream with openid-client. The person signs in to an app through the upstream (just-in-time
 * account, mapped claims, amr "fed" and idp in the ID token), then to a second app without the
 * upstream; the upstream's own sign-out ends Latchkey's session through back-channel logout (and
 * the apps'); an upstream that is down, and email linking refused, show their pages.
 *
 * With a cookie-keeping agent: a fake upstream we control (jose signs what it is told to) sends
 * forged, expired and wrong-audience ID tokens and logout tokens, and callbacks are replayed or
 * carry another state.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Secret, TOTP } from 'otpauth';
import { Agent, formIn } from '../helpers/agent.js';
import { launchChromium, screenshots, watchCsp } from '../helpers/browser.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/redis.js';
import { startRelyingParty, type RelyingParty } from '../helpers/relying-party.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { API, clientCredentialsToken, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';
import { latchkey as cli } from '../helpers/process.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { AccountSessions } from '../../src/accounts/sessions.js';
import { Upstreams } from '../../src/upstreams/registry.js';
import { anotherProviderSignsIn, linkedBySignIn, startFakeUpstream, type Mode } from '../helpers/fake-upstream.js';

const SECRET = 'upstream-test-client-secret-with-plenty-of-entropy';
const PASSWORD = 'a passphrase for the upstream';
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
/** A device (RFC 8628) whose person signs in at /device. */
const TV = { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [] };

describe('e2e: sign in through an upstream OpenID Connect provider', function () {
  this.timeout(90_000);
  let latchkey: TestServer;
  let upstream: TestServer;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;
  let app1: RelyingParty;
  let app2: RelyingParty;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let upstreamRequests = 0;
  const cspViolations: string[] = [];
  const shot = screenshots('upstreams');
  const screenshot = (name: string) => shot(page, name);
  const app1Redirect = () => `${app1.url}/callback`;

  before(async () => {
    const [latchkeyPort, upstreamPort, port1, port2] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const downstream = `http://localhost:${latchkeyPort}`;
    // The upstream: another Latchkey, where Latchkey is the client "latchkey".
    upstream = await startServer({
      port: upstreamPort,
      env: { ISSUER: `http://127.0.0.1:${upstreamPort}`, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
      clients: [
        {
          client_id: 'latchkey',
          client_secret: SECRET,
          client_name: 'Latchkey downstream',
          redirect_uris: [`${downstream}/upstream/corp/callback`],
          post_logout_redirect_uris: [`${downstream}/upstream/corp/signed-out`],
          backchannel_logout_uri: `${downstream}/upstream/corp/backchannel-logout`,
          backchannel_logout_session_required: true,
        },
      ],
    });
    await upstream.accounts.create('alice', PASSWORD, { name: 'Alice Upstream', given_name: 'Alice', email: 'alice@corp.example', email_verified: true, locale: 'en-GB' });
    await upstream.accounts.create('bob', PASSWORD, { name: 'Bob Upstream', email: 'bob@local.example', email_verified: false });
    await upstream.accounts.create('carol', PASSWORD, { name: 'Carol Upstream', email: 'carol@local.example', email_verified: true });

    const client = (id: string, name: string, port: number) => ({
      client_id: id,
      client_secret: SECRET,
      client_name: name,
      redirect_uris: [`http://${id}.localhost:${port}/callback`],
      grant_types: ['authorization_code', 'refresh_token'],
      post_logout_redirect_uris: [`http://${id}.localhost:${port}/signed-out`],
      backchannel_logout_uri: `http://127.0.0.1:${port}/backchannel-logout`,
      backchannel_logout_session_required: true,
    });
    latchkey = await startServer({
      ownRedis: true,
      port: latchkeyPort,
      // `strict`: an app whose people must use a second factor (require_mfa), at app1's address.
      // `api` introspects the JWT access tokens of the API the apps may ask for (tokens.ts).
      clients: [client('app1', 'Notes', port1), client('app2', 'Photos', port2), { ...client('app1', 'Notes', port1), client_id: 'strict', require_mfa: true }, machineClient(RS), machineClient(OPS, { scope: 'admin' }), TV],
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', UPSTREAMS_TIMEOUT: '1', RESOURCE_SERVERS },
    });
    await latchkey.apis.grant(OPS.id, `${latchkey.issuer}/admin`, { scopes: ['admin'] });
    // Local accounts whose emails the upstream's bob and carol share.
    await latchkey.accounts.create('bob', 'bob has a local password', { email: 'bob@local.example', email_verified: true });
    await latchkey.accounts.create('carol', 'carol has a local password', { email: 'carol@local.example', email_verified: true });

    fake = await startFakeUpstream(SECRET);
    const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
    const common = { clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email profile', endSession: false };
    // `name` is read from the upstream's given_name: the mapping is configurable.
    await upstreams.add({ ...common, id: 'corp', issuer: upstream.issuer, displayName: 'Corp SSO', linkByEmail: true, endSession: true, claims: { name: 'given_name' } });
    await upstreams.add({ ...common, id: 'fake', issuer: fake.state.issuer, displayName: 'Fake', linkByEmail: false, domains: ['Fake.Example'] });
    await upstreams.add({ ...common, id: 'slow', issuer: `${fake.state.issuer}/slow`, displayName: 'Slow', linkByEmail: false });
    await upstreams.add({ ...common, id: 'down', issuer: `http://127.0.0.1:${await freePort()}`, displayName: 'Down Inc', linkByEmail: false });

    const rp = (id: string, title: string, port: number) =>
      startRelyingParty({ issuer: latchkey.issuer, clientId: id, clientSecret: SECRET, title, port, publicUrl: (p) => `http://${id}.localhost:${p}` });
    app1 = await rp('app1', 'Notes', port1);
    app2 = await rp('app2', 'Photos', port2);

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 900, height: 820 } });
    page = await context.newPage();
    page.on('request', (request) => {
      if (new URL(request.url()).port === String(upstreamPort)) upstreamRequests += 1;
    });
    watchCsp(page, cspViolations);
  });

  after(async () => {
    await browser?.close();
    await app1?.close();
    await app2?.close();
    await fake?.close();
    await latchkey?.stop();
    await upstream?.stop();
  });

  const status = () => page.locator('#status').innerText();

  /** From an app's sign-in, through "Continue with Corp SSO", to the upstream's login page and past it. */
  async function throughCorp(username: string) {
    await page.click('button:has-text("Continue with Corp SSO")');
    await page.waitForSelector('input[name="password"]');
    assert.equal(new URL(page.url()).hostname, '127.0.0.1', 'on the upstream');
    await page.fill('input[name="username"]', username);
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button:has-text("Sign in")');
    // The click returns once the next page is committed, not parsed: counting now could miss the
    // upstream's consent, and the caller's wait for Latchkey's "Allow access?" would match it instead.
    await page.waitForLoadState();
    // The upstream asks once whether Latchkey may have the person's profile.
    if (await page.locator('text=Allow access?').count()) await page.click('button:has-text("Allow")');
  }

  describe('in Chromium, with another Latchkey as the upstream', () => {
    it('signs in to an app through the upstream: a just-in-time account with mapped claims, amr fed and idp', async () => {
      await page.goto(app1.url);
      await page.click('#signin');
      await page.waitForSelector('button:has-text("Continue with Corp SSO")');
      assert.match(await page.locator('main').innerText(), /Continue with Fake[\s\S]*Continue with Down Inc|Continue with Down Inc/);
      await screenshot('login-with-upstreams');
      await throughCorp('alice');
      await page.waitForSelector('text=Allow access?');
      assert.equal(new URL(page.url()).hostname, 'localhost', 'back on Latchkey, at its consent page for the app');
      await page.click('button:has-text("Allow")');
      await page.waitForURL(`${app1.url}/`);
      assert.match(await status(), /Signed in as Alice$/m, 'name mapped from the upstream given_name');

      const claims = app1.idTokens.at(-1)!;
      assert.deepEqual(claims.amr, ['fed']);
      assert.equal(claims.idp, 'corp');
      assert.equal(claims.email, 'alice@corp.example');
      assert.equal(claims.email_verified, true);
      const link = await new UpstreamLinks(latchkey.kv, latchkey.accounts).find('corp', (await upstream.accounts.findByUsername('alice'))!.sub);
      assert.equal(link?.how, 'created');
      const account = await latchkey.accounts.find(claims.sub as string);
      assert.equal(account?.sub, link.sub);
      assert.deepEqual(account?.claims, { email: 'alice@corp.example', email_verified: true, name: 'Alice', given_name: 'Alice', locale: 'en-GB' });
      assert.equal(account?.passwordHash, '', 'no password: it cannot sign in with one');
    });

    it('signs in to a second app without the upstream (single sign-on)', async () => {
      const before = upstreamRequests;
      await page.goto(app2.url);
      await page.click('#signin');
      await page.waitForSelector('text=Allow access?');
      await page.click('button:has-text("Allow")');
      await page.waitForURL(`${app2.url}/`);
      assert.match(await status(), /Signed in as Alice/);
      assert.equal(upstreamRequests, before, 'the upstream was not visited');
      assert.equal(app2.idTokens.at(-1)!.idp, 'corp');
    });

    it("signing out at the upstream ends Latchkey's session (upstream back-channel logout) and the apps'", async () => {
      const [before1, before2] = [app1.loggedOut.length, app2.loggedOut.length];
      await page.goto(`${upstream.issuer}/session/end`);
      await screenshot('upstream-sign-out');
      await page.click('button:has-text("Sign out everywhere")');
      await eventually(async () => assert.ok(app1.loggedOut.length > before1 && app2.loggedOut.length > before2, 'both apps got a logout token'));
      // Latchkey's session is gone: the app's next sign-in asks again.
      await page.goto(`${app1.url}/login?prompt=none`);
      await page.waitForURL(/error=login_required/);
    });

    it('a later sign-in updates the claims; RP-initiated logout at Latchkey signs the person out of the other app, and of the upstream', async () => {
      // The upstream's claims changed since: this sign-in updates them.
      const alice = (await upstream.accounts.findByUsername('alice'))!;
      await upstream.accounts.updateClaims(alice.sub, { ...alice.claims, given_name: 'Alicia' });
      await page.goto(app1.url);
      await page.click('#signin');
      await throughCorp('alice');
      await page.waitForURL(`${app1.url}/`);
      assert.equal(app1.idTokens.at(-1)!.name, 'Alicia');
      assert.equal((await latchkey.accounts.find(app1.idTokens.at(-1)!.sub as string))?.claims.name, 'Alicia', 'claims updated at a later sign-in');
      await page.goto(app2.url);
      await page.click('#signin');
      await page.waitForURL(`${app2.url}/`);
      const before2 = app2.loggedOut.length;
      await page.goto(app1.url);
      await page.click('#signout');
      await page.click('button:has-text("Sign out everywhere")');
      // Latchkey's logout is done, and the browser goes on to the upstream's own sign-out.
      await page.waitForURL((url) => url.hostname === '127.0.0.1');
      await screenshot('upstream-end-session');
      await page.click('button:has-text("Sign out everywhere")');
      await page.waitForURL(`${app1.url}/signed-out`);
      await eventually(async () => assert.ok(app2.loggedOut.length > before2));
      // Signed out at the upstream too: it asks for the password again.
      await page.goto(app1.url);
      await page.click('#signin');
      await page.click('button:has-text("Continue with Corp SSO")');
      await page.waitForSelector('input[name="password"]');
      assert.equal(new URL(page.url()).hostname, '127.0.0.1');
    });

    it('an upstream that is down: an error page with the way back, and the app gets temporarily_unavailable', async () => {
      await page.goto(app1.url);
      await page.click('#signin');
      await page.click('button:has-text("Continue with Down Inc")');
      await page.waitForSelector('text=Down Inc is not answering');
      await screenshot('upstream-down');
      assert.equal(await page.locator('a:has-text("Back to sign-in")').count(), 1);
      await page.click('button:has-text("Return to the application")');
      // The sample app shows Latchkey's error_description too (newcomer-sixteenth): the code is what is pinned.
      await page.waitForURL((url) => `${url.origin}${url.pathname}` === `${app1.url}/` && url.searchParams.get('error') === 'temporarily_unavailable');
    });

    it('refuses to link to a local account by email when the upstream did not verify it; when it did, links once the person signs in to the local account', async () => {
      await context.clearCookies();
      const accountsBefore = (await latchkey.accounts.list()).length;
      await page.goto(app1.url);
      await page.click('#signin');
      await throughCorp('bob');
      await page.waitForSelector('text=Account not linked');
      await screenshot('email-link-refused');
      assert.match(await page.locator('main').innerText(), /did not confirm that the address is yours/);
      assert.equal((await latchkey.accounts.list()).length, accountsBefore, 'no account made');
      assert.equal(await new UpstreamLinks(latchkey.kv, latchkey.accounts).find('corp', (await upstream.accounts.findByUsername('bob'))!.sub), undefined);

      // carol's verified email at the upstream is not her local account: she signs in to it to link them.
      await context.clearCookies();
      await page.goto(app1.url);
      await page.click('#signin');
      await throughCorp('carol');
      await page.waitForSelector('text=Sign in to it');
      await screenshot('email-link-offered');
      assert.equal(new URL(page.url()).hostname, 'localhost', 'back at Latchkey');
      assert.equal(await new UpstreamLinks(latchkey.kv, latchkey.accounts).find('corp', (await upstream.accounts.findByUsername('carol'))!.sub), undefined, 'not linked yet');
      await page.fill('input[name="username"]', 'carol');
      await page.fill('input[name="password"]', 'carol has a local password');
      await page.click('button:has-text("Sign in")');
      await page.waitForSelector('text=Allow access?');
      await page.click('button:has-text("Allow")');
      await page.waitForURL(`${app1.url}/`);
      const localCarol = await latchkey.accounts.findByUsername('carol');
      assert.equal(app1.idTokens.at(-1)!.sub, localCarol!.sub, 'signed in as the local carol');
      const link = await new UpstreamLinks(latchkey.kv, latchkey.accounts).find('corp', (await upstream.accounts.findByUsername('carol'))!.sub);
      assert.deepEqual([link?.sub, link?.how], [localCarol!.sub, 'email'], 'the link is recorded');
    });

    it("the account page shows the person's upstream link", async () => {
      await page.goto(`${latchkey.issuer}/account`);
      if (await page.locator('text=Allow access?').count()) await page.click('button:has-text("Allow")');
      await page.waitForSelector('#links');
      const section = await page.locator('#links').innerText();
      assert.match(section, /Corp SSO/);
      assert.match(section, /joined to this account by your verified email address/);
      await page.locator('#links').scrollIntoViewIfNeeded();
      await screenshot('account-links');
    });

    it('keeps the strict CSP on the new pages', () => {
      assert.deepEqual(cspViolations, []);
    });
  });

  describe('with a fake upstream we control', () => {
    const agent = new Agent();
    const callbackPrefix = () => `${latchkey.issuer}/upstream/fake/callback`;

    /** An authorization request for app1 sent straight to the fake upstream; stops at Latchkey's callback. */
    async function toCallback(extra: Record<string, string> = {}) {
      const params = new URLSearchParams({
        client_id: 'app1',
        response_type: 'code',
        scope: 'openid email',
        redirect_uri: app1Redirect(),
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
        upstream: 'fake',
        ...extra,
      });
      const page = await agent.follow(`${latchkey.issuer}/auth?${params}`, {}, callbackPrefix());
      assert.ok(page.url.startsWith(callbackPrefix()), `expected the callback, got ${page.status} ${page.url}`);
      return page.url;
    }

    for (const mode of ['forged', 'expired', 'audience', 'nonce'] as const) {
      it(`refuses an ID token that is ${mode === 'audience' ? 'for another audience' : mode === 'nonce' ? 'for another nonce' : mode}, and makes no account`, async () => {
        fake.state.mode = mode;
        fake.state.sub = `refused-${mode}`;
        const page = await agent.follow(await toCallback());
        assert.equal(page.status, 403);
        assert.match(page.html, /Sign-in not completed/);
        assert.match(page.html, /Back to sign-in/);
        assert.equal(await new UpstreamLinks(latchkey.kv, latchkey.accounts).find('fake', fake.state.sub), undefined);
      });
    }

    it("ID token checks at the callback (OIDC Core §3.1.3.7): another iss, several audiences without azp or with another's azp, alg none, HS256 keyed with the client secret (even from an upstream that advertises HS256: only its JWKS signs) are refused with no account made; so is userinfo naming another sub (§5.3.2), and a response without the iss its upstream advertises (RFC 9207 §2.4); an address is verified only by its own source", async () => {
      const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
      // The fake under /ui: a userinfo endpoint, and HS256 among its ID token algorithms.
      const subBefore = fake.state.sub;
      await upstreams.add({ id: 'fakeui', issuer: `${fake.state.issuer}/ui`, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email', displayName: 'Fake UI', linkByEmail: false, endSession: false });
      const links = new UpstreamLinks(latchkey.kv, latchkey.accounts);
      const refused = async (upstream: string, mode: Mode, sub: string) => {
        const { page } = await throughFake('app1', sub, { upstream }, mode);
        assert.equal(page.status, 403, `${upstream} ${mode}: ${page.status} ${page.url} ${page.html.slice(0, 300)}`);
        assert.match(page.html, /Sign-in not completed/);
        assert.equal(await links.find(upstream, sub), undefined, `${upstream} ${mode}: no account`);
      };
      const signsIn = async (upstream: string, mode: Mode, sub: string) => {
        const { page } = await throughFake('app1', sub, { upstream }, mode);
        assert.ok(page.url.startsWith(app1Redirect()) || isConsent(page), `${upstream} ${mode}: signed in (${page.status} ${page.url} ${page.html.slice(0, 300)})`);
        assert.ok(await links.find(upstream, sub), `${upstream} ${mode}: the account`);
      };
      try {
        for (const [upstream, mode] of [['fake', 'issuer'], ['fake', 'several-audiences'], ['fake', 'azp-other'], ['fake', 'alg-none'], ['fakeui', 'alg-none'], ['fake', 'hs256'], ['fakeui', 'hs256']] as const) {
          await refused(upstream, mode, `idtoken-${upstream}-${mode}`);
        }
        // Several audiences with azp naming us are taken (the same checks, passed), and so is the upstream with userinfo.
        await signsIn('fake', 'several-audiences-azp', 'idtoken-fake-azp');
        const userinfos = fake.state.userinfos;
        await signsIn('fakeui', 'good', 'idtoken-fakeui-good');
        assert.equal(fake.state.userinfos, userinfos + 1, 'userinfo was read');
        // Userinfo about someone else than the ID token's sub (a mixed-up or hostile userinfo endpoint).
        fake.state.userinfoSub = 'someone-else';
        await refused('fakeui', 'good', 'idtoken-fakeui-userinfo');
        fake.state.userinfoSub = undefined;
        // An upstream that advertises RFC 9207: a response without its iss is refused before its code is redeemed (§2.4).
        const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: app1Redirect(), code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'fakeui' });
        const stripped = new Agent();
        const callback = new URL((await stripped.follow(`${latchkey.issuer}/auth?${params}`, {}, `${latchkey.issuer}/upstream/fakeui/callback`)).url);
        assert.equal(callback.searchParams.get('iss'), `${fake.state.issuer}/ui`);
        callback.searchParams.delete('iss');
        const tokens = fake.state.tokens;
        const withoutIss = await stripped.follow(callback.href, {}, app1Redirect());
        assert.equal(withoutIss.status, 403, `${withoutIss.status} ${withoutIss.url}`);
        assert.equal(fake.state.tokens, tokens, 'the code was not redeemed');
        // The ID token names an address without email_verified, userinfo vouches for another: the
        // account's address is the ID token's, and nobody verified that one (email and email_verified are one claim pair).
        await signsIn('fakeui', 'email-split', 'idtoken-fakeui-split');
        const split = (await latchkey.accounts.find((await links.find('fakeui', 'idtoken-fakeui-split'))!.sub))!.claims;
        assert.deepEqual([split.email, split.email_verified], ['idtoken-fakeui-split@fake.example', false], 'the verified flag of another address is not this one\'s');
      } finally {
        fake.state.userinfoSub = undefined;
        fake.state.mode = 'good';
        fake.state.sub = subBefore; // the tests after this one sign in as whoever was left
        await upstreams.remove('fakeui');
      }
    });

    it('an upstream that answers with an error: the error page, and access_denied for the app', async () => {
      fake.state.mode = 'deny';
      const page = await agent.follow(await toCallback());
      assert.equal(page.status, 403);
      assert.match(page.html, /did not confirm who you are/);
      const cancelled = await agent.submit(page, '/upstream-cancel', {}, app1Redirect());
      assert.match(cancelled.url, /error=access_denied/);
    });

    it('an upstream too slow to answer: the error page once upstreams.timeout has passed', async () => {
      const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: app1Redirect(), code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'slow' });
      const page = await agent.follow(`${latchkey.issuer}/auth?${params}`);
      assert.equal(page.status, 502);
      assert.match(page.html, /Slow is not answering/);
    });

    it('an upstream whose client secret was sealed under a KEYS_SECRETS the server does not hold: a page that says so, not a 500', async () => {
      // As a CLI run with other secrets once did (the public default, say), or a secret dropped after a rotation.
      await new Upstreams(latchkey.kv, ['a-keys-secret-this-server-does-not-hold-0123456789']).add({
        id: 'elsewhere', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Elsewhere', linkByEmail: false, endSession: false,
      });
      const visits = fake.state.authorizations;
      try {
        const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: app1Redirect(), code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'elsewhere' });
        const page = await agent.follow(`${latchkey.issuer}/auth?${params}`);
        assert.equal(page.status, 503);
        assert.match(page.html, /Elsewhere is not available/);
        const cancelled = await agent.submit(page, '/upstream-cancel', {}, app1Redirect());
        assert.match(cancelled.url, /error=temporarily_unavailable/);
        assert.equal(fake.state.authorizations, visits, 'the person was not sent to the upstream');
      } finally {
        await new Upstreams(latchkey.kv, latchkey.config.keys.secrets).remove('elsewhere');
      }
    });

    it("sends a login_hint at an upstream's email domain straight to that upstream, hint included", async () => {
      const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: app1Redirect(), code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', login_hint: 'someone@fake.example' });
      const page = await new Agent().follow(`${latchkey.issuer}/auth?${params}`, {}, `${fake.state.issuer}/authorize`);
      assert.equal(new URL(page.url).searchParams.get('login_hint'), 'someone@fake.example');
      const local = await new Agent().follow(`${latchkey.issuer}/auth?${params.toString().replace('fake.example', 'elsewhere.example')}`);
      assert.match(local.html, /name="password"/, 'another domain gets the login page');
      const unknown = await new Agent().follow(`${latchkey.issuer}/auth?${params}&upstream=nope`);
      assert.equal(unknown.status, 400, 'an unknown upstream: the error page');
      assert.match(unknown.html, /the upstream provider asked for is not one this service offers/);
    });

    it("the login page's upstream buttons are CSRF-protected forms", async () => {
      const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: app1Redirect(), code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
      const login = await agent.follow(`${latchkey.issuer}/auth?${params}`);
      const forged = await agent.submit(login, '/upstream/fake', { csrf: 'forged' });
      assert.equal(forged.status, 403);
      const genuine = await agent.submit(login, '/upstream/fake', {}, `${fake.state.issuer}/authorize`);
      assert.ok(genuine.url.startsWith(`${fake.state.issuer}/authorize`), 'the genuine form goes to the upstream');
    });

    it("redeems the upstream's code with the redirect_uri its authorization request named, whatever Host the callback reached Latchkey by (RFC 6749 §4.1.3; a proxy that does not pass the public host on)", async () => {
      fake.state.mode = 'good';
      fake.state.sub = 'fake-person-host';
      const callback = new URL(await toCallback());
      // The same callback, as it reaches Latchkey through a front end that gives it another Host.
      const inside = new URL(callback.href);
      inside.hostname = callback.hostname === 'localhost' ? '127.0.0.1' : 'localhost';
      const answer = await fetch(inside, { headers: { cookie: agent.cookieHeader(callback.href), accept: 'text/html' }, redirect: 'manual' });
      assert.equal(fake.state.tokenRedirectUri, callbackPrefix(), `redeemed with ${fake.state.tokenRedirectUri}`);
      assert.ok(answer.status === 302 || answer.status === 303, `the sign-in goes on (${answer.status})`);
    });

    it('refuses a callback whose state is not the one this browser was given', async () => {
      fake.state.mode = 'good';
      const callback = new URL(await toCallback());
      callback.searchParams.set('state', 'an-attackers-state-0123456789');
      const page = await agent.follow(callback.href);
      assert.equal(page.status, 400);
      assert.match(page.html, /does not belong to a sign-in started in this browser/);
    });

    it("refuses a state issued for one upstream at another upstream's callback (mix-up)", async () => {
      fake.state.mode = 'good';
      const callback = new URL(await toCallback());
      callback.pathname = '/upstream/corp/callback';
      const page = await agent.follow(callback.href);
      assert.equal(page.status, 400);
      assert.match(page.html, /expired or was not started here/);
    });

    it("refuses an authorization response whose iss names another issuer than the upstream's (mix-up, RFC 9207 §2.4), before its code is redeemed", async () => {
      fake.state.mode = 'good';
      for (const iss of ['https://attacker.example', `${fake.state.issuer}/`]) {
        const callback = new URL(await toCallback());
        callback.searchParams.set('iss', iss);
        const tokens = fake.state.tokens;
        const page = await agent.follow(callback.href, {}, app1Redirect());
        assert.equal(fake.state.tokens, tokens, `${iss}: the code was not sent to the upstream's token endpoint`);
        assert.ok(!page.url.startsWith(app1Redirect()), `${iss}: not signed in`);
        assert.equal(page.status, 403, `${iss}: ${page.status} ${page.html.slice(0, 300)}`);
        assert.match(page.html, /Fake/);
      }
      // The upstream's own iss is taken.
      const callback = new URL(await toCallback());
      callback.searchParams.set('iss', fake.state.issuer);
      const before = agent.setCookies.length;
      const page = await agent.follow(callback.href, {}, app1Redirect());
      assert.ok(page.url.startsWith(app1Redirect()) || page.html.includes('/confirm'), `signed in: ${page.status} ${page.url}`);
      // Every cookie the callback and what follows set, the state cookie's clearing included, is HttpOnly and SameSite=Lax.
      const set = agent.setCookies.slice(before);
      assert.ok(set.some((line) => line.startsWith('lk_upstream=;')), set.map((line) => line.split('=')[0]).join(' '));
      for (const line of set) {
        const attributes = line.split(';').slice(1).map((a) => a.trim().toLowerCase());
        assert.ok(attributes.includes('httponly') && attributes.includes('samesite=lax'), `not HttpOnly and SameSite=Lax: ${line.replace(/=[^;]*/, '=…')}`);
      }
      agent.clearCookies(); // the tests after this one start signed out
    });

    it('malformed callbacks (a parameter repeated, a code with an error, an error with its description only) get a page, never a 500, and redeem nothing', async () => {
      fake.state.mode = 'good';
      const variants: Array<(callback: URL) => void> = [
        (url) => url.searchParams.append('code', 'another-code'),
        (url) => url.searchParams.append('state', url.searchParams.get('state')!),
        (url) => { url.searchParams.append('iss', fake.state.issuer); url.searchParams.append('iss', 'https://attacker.example'); },
        (url) => url.searchParams.set('error', 'access_denied'),
        (url) => { url.searchParams.delete('code'); url.searchParams.set('error', 'server_error'); url.searchParams.set('error_description', '<script>alert(1)</script>'.repeat(200)); },
      ];
      for (const [at, change] of variants.entries()) {
        const callback = new URL(await toCallback());
        change(callback);
        const tokens = fake.state.tokens;
        const page = await agent.follow(callback.href, {}, app1Redirect());
        // The upstream's server_error is it unavailable (502, "not answering": upstreams-eighteenth); the rest are refused.
        assert.ok(at === 4 ? page.status === 502 : page.status >= 400 && page.status < 500, `variant ${at}: ${page.status} ${page.html.slice(0, 300)}`);
        assert.ok(!page.html.includes('<script>alert'), `variant ${at}: nothing of the upstream's is markup`);
        assert.doesNotMatch(page.html, /at .*\.(ts|js):\d+/, `variant ${at}: no stack trace`);
        assert.equal(fake.state.tokens, tokens, `variant ${at}: no code sent to the token endpoint`);
      }
      agent.clearCookies();
    });

    it('signs in with a good ID token, and refuses the same callback replayed', async () => {
      fake.state.mode = 'good';
      fake.state.sub = 'fake-person-1';
      const callback = await toCallback();
      const cookies = agent.cookieHeader(callback);
      const page = await agent.follow(callback, {}, app1Redirect());
      assert.ok(page.url.startsWith(app1Redirect()) || page.html.includes('/confirm'), `signed in: ${page.status} ${page.url}`);
      const replay = await fetch(callback, { headers: { cookie: cookies, accept: 'text/html' }, redirect: 'manual' });
      assert.equal(replay.status, 400);
      assert.match(await replay.text(), /already used/);
    });

    it('after its account was removed, the upstream identity gets a new account (the stale link is replaced)', async () => {
      fake.state.mode = 'good';
      fake.state.sub = 'fake-person-2';
      const links = new UpstreamLinks(latchkey.kv, latchkey.accounts);
      const fresh = new Agent();
      const signIn = async () => {
        const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: app1Redirect(), code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'fake' });
        fresh.clearCookies();
        await fresh.follow(`${latchkey.issuer}/auth?${params}`, {}, app1Redirect());
        return (await links.find('fake', 'fake-person-2'))!.sub;
      };
      const first = await signIn();
      await latchkey.accounts.remove((await latchkey.accounts.find(first))!.username);
      const second = await signIn();
      assert.notEqual(second, first);
      assert.ok(await latchkey.accounts.find(second));
    });

    it("an upstream removed and another provider added under its id: the new one's person with the same sub does not get the old one's account", async () => {
      const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
      const original = fake.state.issuer;
      const common = { id: 'swap', clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Swap', linkByEmail: false, endSession: false };
      const signIn = () => linkedBySignIn(latchkey, fake, { upstream: 'swap', sub: 'swap-person', clientId: 'app1', redirectUri: app1Redirect() });
      await upstreams.add({ ...common, issuer: original });
      try {
        const first = await signIn();
        assert.ok(first, 'the first provider made an account');
        await upstreams.remove('swap');
        const second = await anotherProviderSignsIn(latchkey, fake, common, signIn);
        assert.ok(second, 'the second provider made an account');
        assert.notEqual(second, first, "the new provider's person signed in to the removed provider's person's account");
        assert.ok(await latchkey.accounts.find(first), 'the old account stays');
      } finally {
        fake.state.issuer = original;
        fake.state.email = undefined;
        await upstreams.remove('swap').catch(() => undefined);
      }
    });

    /** An authorization request of `client` sent to the fake upstream as `sub`, in a fresh browser; where it stops, and its PKCE verifier. */
    async function throughFake(client: string, sub: string, extra: Record<string, string> = {}, mode: Mode = 'good') {
      fake.state.mode = mode;
      fake.state.sub = sub;
      const verifier = oidc.randomPKCECodeVerifier();
      const params = new URLSearchParams({
        client_id: client,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: app1Redirect(),
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        upstream: 'fake',
        ...extra,
      });
      const browser = new Agent();
      const before = fake.state.authorizations;
      const page = await browser.follow(`${latchkey.issuer}/auth?${params}`, {}, app1Redirect());
      return { browser, page, verifier, authorizations: fake.state.authorizations - before };
    }

    it("an upstream sign-in is a first factor: a person with an authenticator app is asked for its code; amr fed otp mfa, acr mfa, idp", async () => {
      const sub = 'fake-person-totp';
      const { account } = (await new UpstreamLinks(latchkey.kv, latchkey.accounts).signIn({ id: 'fake', issuer: fake.state.issuer, linkByEmail: false }, sub, {})) as { account: { sub: string; username: string } };
      const { secret } = await latchkey.secondFactors.totp.begin(account.sub, account.username, 'test-session');
      assert.ok(await latchkey.secondFactors.totp.confirm(account.sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'test-session'));

      const { browser, page, verifier, authorizations } = await throughFake('app1', sub);
      assert.equal(authorizations, 1);
      assert.ok(page.url.includes('/interaction/') && page.html.includes('/second-factor'), `expected the second-factor page, got ${page.status} ${page.url}`);
      let done = await browser.submit(page, '/second-factor', { method: 'totp', code: TOTP.generate({ secret: Secret.fromBase32(secret) }) }, app1Redirect());
      if (isConsent(done)) done = await browser.submit(done, '/confirm', {}, app1Redirect());
      assert.ok(done.url.startsWith(app1Redirect()), `expected to be back at the app, got ${done.status} ${done.url}`);
      const config = await oidc.discovery(new URL(latchkey.issuer), 'app1', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
      const claims = (await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier })).claims()!;
      assert.equal(claims.sub, account.sub);
      assert.deepEqual([...(claims.amr as string[])].sort(), ['fed', 'mfa', 'otp']);
      assert.equal(claims.acr, 'mfa');
      assert.equal(claims.idp, 'fake', 'the session names its upstream after the second factor too');
    });

    it('nOAuth: an upstream vouching for a local account\'s verified email does not sign in to it; the person signs in to the account to link it, and another account links nothing', async () => {
      // `fakelink` links by email; the fake upstream says `dora@fake.example`, email_verified true.
      const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
      await upstreams.add({ id: 'fakelink', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email', displayName: 'Fake Link', linkByEmail: true, endSession: false });
      const dora = await latchkey.accounts.create('dora', 'dora has a local password', { email: 'dora@fake.example', email_verified: true });
      const links = new UpstreamLinks(latchkey.kv, latchkey.accounts);
      try {
        // The upstream alone: the login page asks for the account's own sign-in; nothing is linked or signed in.
        const offered = await throughFake('app1', 'dora', { upstream: 'fakelink' });
        assert.ok(offered.page.url.includes('/interaction/') && offered.page.html.includes('name="password"'), `expected the login page, got ${offered.page.status} ${offered.page.url}`);
        assert.match(offered.page.html, /already exists here\. Sign in to it/);
        assert.equal(await links.find('fakelink', 'dora'), undefined, 'no link on the upstream\'s word');
        // Signing in to another account there (bob's) links nothing.
        let done = await offered.browser.submit(offered.page, '/login', { username: 'bob', password: 'bob has a local password' }, app1Redirect());
        if (isConsent(done)) done = await offered.browser.submit(done, '/confirm', {}, app1Redirect());
        assert.ok(done.url.startsWith(app1Redirect()), `bob signed in: ${done.status} ${done.url}`);
        assert.equal(await links.find('fakelink', 'dora'), undefined, 'another account links nothing');

        // Signing in to dora herself, password and then her second factor, makes the link; then the upstream signs her in.
        const { secret } = await latchkey.secondFactors.totp.begin(dora.sub, dora.username, 'test-session');
        assert.ok(await latchkey.secondFactors.totp.confirm(dora.sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'test-session'));
        const again = await throughFake('app1', 'dora', { upstream: 'fakelink' });
        // A mistyped password: the page shown again still says why it asks for the account's own sign-in.
        const mistyped = await again.browser.submit(again.page, '/login', { username: 'dora', password: 'not dora\'s password' });
        assert.match(mistyped.html, /do not match/);
        assert.match(mistyped.html, /already exists here\. Sign in to it/);
        const second = await again.browser.submit(mistyped, '/login', { username: 'dora', password: 'dora has a local password' }, app1Redirect());
        assert.ok(second.html.includes('/second-factor'), `the second factor: ${second.status} ${second.url}`);
        assert.equal(await links.find('fakelink', 'dora'), undefined, 'not linked on the password alone');
        done = await again.browser.submit(second, '/second-factor', { method: 'totp', code: TOTP.generate({ secret: Secret.fromBase32(secret) }) }, app1Redirect());
        if (isConsent(done)) done = await again.browser.submit(done, '/confirm', {}, app1Redirect());
        assert.ok(done.url.startsWith(app1Redirect()), `dora signed in: ${done.status} ${done.url}`);
        assert.deepEqual([(await links.find('fakelink', 'dora'))?.sub, (await links.find('fakelink', 'dora'))?.how], [dora.sub, 'email']);
        const later = await throughFake('app1', 'dora', { upstream: 'fakelink' });
        assert.ok(later.page.html.includes('/second-factor'), `linked: the upstream signs in, then her second factor; got ${later.page.status} ${later.page.url}`);

        // An identity linked already (made just in time) that later says dora's address does not take it:
        // apps would read dora's verified email from another person's ID token.
        await throughFake('app1', 'eve-upstream', { upstream: 'fakelink' });
        const eve = (await links.find('fakelink', 'eve-upstream'))!;
        fake.state.email = 'Dora@fake.example';
        try {
          const renamed = await throughFake('app1', 'eve-upstream', { upstream: 'fakelink' });
          assert.ok(renamed.page.url.startsWith(app1Redirect()) || isConsent(renamed.page), `eve still signs in: ${renamed.page.status} ${renamed.page.url}`);
        } finally {
          fake.state.email = undefined;
        }
        assert.equal((await latchkey.accounts.find(eve.sub))!.claims.email, 'eve-upstream@fake.example', "another account's address is not taken");
        assert.equal((await latchkey.accounts.find(dora.sub))!.claims.email, 'dora@fake.example');

        // An account with no password (made through `fake`) is signed in to through its own link: that confirms the offer.
        await throughFake('app1', 'zed');
        const zed = (await links.find('fake', 'zed'))!;
        fake.state.email = 'zed@fake.example';
        const offeredZed = await throughFake('app1', 'zed-elsewhere', { upstream: 'fakelink' }).finally(() => (fake.state.email = undefined));
        assert.match(offeredZed.page.html, /already exists here\. Sign in to it/);
        assert.equal(await links.find('fakelink', 'zed-elsewhere'), undefined);
        fake.state.sub = 'zed';
        done = await offeredZed.browser.submit(offeredZed.page, '/upstream/fake', {}, app1Redirect());
        assert.ok(done.url.startsWith(app1Redirect()) || isConsent(done), `zed signed in: ${done.status} ${done.url}`);
        assert.deepEqual((await links.find('fakelink', 'zed-elsewhere'))?.sub, zed.sub);
      } finally {
        await upstreams.remove('fakelink');
      }
    });

    it("email lookalikes: an upstream's address that apps or people would take for a local account's (case folded another way, compatibility width, confusable letters) makes no second account, and a linked identity does not take it; what is no plain address (spaces, invisible characters, a trailing dot, quotes, a display name, an ideographic full stop) is not taken", async () => {
      // An app comparing addresses upper-cased ("ſam" → "SAM"), NFKC-normalized ("ｓａｍ" → "sam") or
      // as shown ("s<ZWSP>am" looks like "sam"), or a person reading Cyrillic "ѕаm", would take the upstream's person for sam: the upstream's
      // verified word for an address an app takes for sam's is sam's address (the classic account
      // takeover through a Unicode case-mapping collision). `fake` does not link by email.
      const sam = await latchkey.accounts.create('sam', 'sam has a local password', { email: 'sam@local.example', email_verified: true });
      const links = new UpstreamLinks(latchkey.kv, latchkey.accounts);
      try {
        for (const [at, email] of ['\u017Fam@local.example', '\uFF53\uFF41\uFF4D@local.example', '\u0455\u0430m@local.example', 'sam@LOCAL.EXAMPLE', 'SAM@local.example'].entries()) {
          fake.state.email = email;
          const { page } = await throughFake('app1', `lookalike-${at}`).finally(() => (fake.state.email = undefined));
          assert.ok(!page.url.startsWith(app1Redirect()) && !isConsent(page), `${JSON.stringify(email)}: signed in as a new person (${page.status} ${page.url})`);
          assert.equal(page.status, 409, `${JSON.stringify(email)}: ${page.status} ${page.html.slice(0, 300)}`);
          assert.match(page.html, /Account not linked/);
          assert.equal(await links.find('fake', `lookalike-${at}`), undefined, `${JSON.stringify(email)}: no account made`);
        }
        // An identity linked already whose upstream later says a lookalike of sam's address keeps its own.
        await throughFake('app1', 'lookalike-linked');
        const linked = (await links.find('fake', 'lookalike-linked'))!;
        fake.state.email = '\u017Fam@local.example';
        const later = await throughFake('app1', 'lookalike-linked').finally(() => (fake.state.email = undefined));
        assert.ok(later.page.url.startsWith(app1Redirect()) || isConsent(later.page), `it still signs in: ${later.page.status} ${later.page.url}`);
        assert.equal((await latchkey.accounts.find(linked.sub))!.claims.email, 'lookalike-linked@fake.example', "a lookalike of another account's address is not taken");
        assert.equal((await latchkey.accounts.find(sam.sub))!.claims.email, 'sam@local.example');
        // What is no plain address, though an app that trims, unquotes, maps the domain (IDNA) or reads
        // a display name takes it for sam's, is not taken at all: the person signs in, their account has
        // no address (second factors pass of 2026-12-06: each made a second person with it, verified).
        const notAddresses = ['sam@local.example ', ' sam@local.example', 'sam@local.example.', '"sam"@local.example', 'sam@local\u3002example', 'Sam <sam@local.example>', 'sam(x)@local.example', 'sam@local.example,eve@evil.example', 's\u200Bam@local.example'];
        for (const [at, email] of notAddresses.entries()) {
          fake.state.email = email;
          const { page } = await throughFake('app1', `not-an-address-${at}`).finally(() => (fake.state.email = undefined));
          assert.ok(page.url.startsWith(app1Redirect()) || isConsent(page), `${JSON.stringify(email)}: signs in (${page.status} ${page.url})`);
          const made = (await latchkey.accounts.find((await links.find('fake', `not-an-address-${at}`))!.sub))!;
          assert.deepEqual([made.claims.email, made.claims.email_verified], [undefined, undefined], JSON.stringify(email));
        }
        fake.state.email = ' sam@local.example';
        await throughFake('app1', 'lookalike-linked').finally(() => (fake.state.email = undefined));
        assert.notEqual((await latchkey.accounts.find(linked.sub))!.claims.email, ' sam@local.example', 'a linked identity does not take it either');
        // An address no one here holds, non-ASCII or not, makes its account as before.
        fake.state.email = 'sàm@local.example';
        const own = await throughFake('app1', 'lookalike-own').finally(() => (fake.state.email = undefined));
        assert.ok(own.page.url.startsWith(app1Redirect()) || isConsent(own.page), `a distinct address signs in: ${own.page.status} ${own.page.url}`);
      } finally {
        await latchkey.accounts.remove('sam');
      }
    });

    it("an upstream added with --domain vouches only for addresses at its domains: another domain's address is taken unverified, so it links to no local account and apps read email_verified false", async () => {
      // `fake` was added with the domain fake.example; an upstream that lets its people (or their admins)
      // set any address would otherwise vouch for addresses at domains it does not own (nOAuth).
      const links = new UpstreamLinks(latchkey.kv, latchkey.accounts);
      const verifiedOf = async (sub: string) => (await latchkey.accounts.find((await links.find('fake', sub))!.sub))!.claims.email_verified;
      fake.state.email = 'outsider@elsewhere.example';
      await throughFake('app1', 'domain-outsider').finally(() => (fake.state.email = undefined));
      assert.equal(await verifiedOf('domain-outsider'), false, 'an address at another domain is not verified by this upstream');
      fake.state.email = 'insider@FAKE.example';
      await throughFake('app1', 'domain-insider').finally(() => (fake.state.email = undefined));
      assert.equal(await verifiedOf('domain-insider'), true, 'one at its own domain is');
      // Linking by email: an upstream bounded to fake.example saying carol's address (local.example) is not offered carol's account.
      const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
      await upstreams.add({ id: 'fakedomain', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email', displayName: 'Fake Domain', linkByEmail: true, endSession: false, domains: ['fake.example'] });
      try {
        fake.state.email = 'carol@local.example';
        const { page } = await throughFake('app1', 'domain-carol', { upstream: 'fakedomain' }).finally(() => (fake.state.email = undefined));
        assert.equal(page.status, 409, `${page.status} ${page.url} ${page.html.slice(0, 300)}`);
        assert.match(page.html, /did not confirm that the address is yours/);
        assert.equal(await links.find('fakedomain', 'domain-carol'), undefined);
      } finally {
        await upstreams.remove('fakedomain');
      }
    });

    it('an upstream removed while a sign-in through it waits for the second factor: the sign-in does not complete, the app gets access_denied', async () => {
      const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
      await upstreams.add({ id: 'brief', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Brief', linkByEmail: false, endSession: false });
      const sub = 'fake-person-brief';
      const { account } = (await new UpstreamLinks(latchkey.kv, latchkey.accounts).signIn({ id: 'brief', issuer: fake.state.issuer, linkByEmail: false }, sub, {})) as { account: { sub: string; username: string } };
      const { secret } = await latchkey.secondFactors.totp.begin(account.sub, account.username, 'test-session');
      assert.ok(await latchkey.secondFactors.totp.confirm(account.sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'test-session'));
      const { browser, page } = await throughFake('app1', sub, { upstream: 'brief' });
      assert.ok(page.html.includes('/second-factor'), `expected the second-factor page, got ${page.status} ${page.url}`);

      const token = await clientCredentialsToken(latchkey.url, OPS, `${latchkey.issuer}/admin`, 'admin');
      assert.equal((await fetch(`${latchkey.url}/admin/upstreams/brief`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status, 204);
      const done = await browser.submit(page, '/second-factor', { method: 'totp', code: TOTP.generate({ secret: Secret.fromBase32(secret) }) }, app1Redirect());
      assert.ok(done.url.startsWith(app1Redirect()), `expected the app, got ${done.status} ${done.url}`);
      assert.equal(new URL(done.url).searchParams.get('error'), 'access_denied');
      assert.equal(new URL(done.url).searchParams.get('code'), null);
    });

    it("the upstream's logout of the session a sign-in waits on (for its second factor) ends that sign-in: the app gets access_denied (Back-Channel Logout §2.7)", async () => {
      const sub = 'fake-person-bcl-waiting';
      const { account } = (await new UpstreamLinks(latchkey.kv, latchkey.accounts).signIn({ id: 'fake', issuer: fake.state.issuer, linkByEmail: false }, sub, {})) as { account: { sub: string; username: string } };
      const { secret } = await latchkey.secondFactors.totp.begin(account.sub, account.username, 'test-session');
      assert.ok(await latchkey.secondFactors.totp.confirm(account.sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'test-session'));
      fake.state.sid = 'fake-sid-waiting';
      const { browser, page } = await throughFake('app1', sub);
      assert.ok(page.html.includes('/second-factor'), `expected the second-factor page, got ${page.status} ${page.url}`);
      // Signed out (or cut off) at the upstream meanwhile: no Latchkey session exists yet for the logout to find.
      const post = await fetch(`${latchkey.issuer}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: await fake.logoutToken({ sid: 'fake-sid-waiting' }) }) });
      assert.equal(post.status, 200);
      let done = await browser.submit(page, '/second-factor', { method: 'totp', code: TOTP.generate({ secret: Secret.fromBase32(secret) }) }, app1Redirect());
      if (isConsent(done)) done = await browser.submit(done, '/confirm', {}, app1Redirect());
      assert.ok(done.url.startsWith(app1Redirect()), `expected the app, got ${done.status} ${done.url}`);
      assert.equal(new URL(done.url).searchParams.get('error'), 'access_denied', `the app got ${done.url}`);
      assert.equal(new URL(done.url).searchParams.get('code'), null);
    });

    it('an upstream removed while a finished sign-in through it holds back its resume: the sign-in does not complete, the app gets access_denied', async () => {
      const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
      await upstreams.add({ id: 'held', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Held', linkByEmail: false, endSession: false });
      const sub = 'fake-person-held';
      const { account } = (await new UpstreamLinks(latchkey.kv, latchkey.accounts).signIn({ id: 'held', issuer: fake.state.issuer, linkByEmail: false }, sub, {})) as { account: { sub: string; username: string } };
      const { secret } = await latchkey.secondFactors.totp.begin(account.sub, account.username, 'test-session');
      assert.ok(await latchkey.secondFactors.totp.confirm(account.sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'test-session'));
      const { browser, page } = await throughFake('app1', sub, { upstream: 'held' });
      // The second factor passes while the upstream is there; the redirect to the resume is held back.
      const held = await browser.submit(page, '/second-factor', { method: 'totp', code: TOTP.generate({ secret: Secret.fromBase32(secret) }) }, `${latchkey.issuer}/auth/`);
      assert.match(held.url, /\/auth\/[^/?]+$/, `expected the resume, got ${held.status} ${held.url}`);

      const token = await clientCredentialsToken(latchkey.url, OPS, `${latchkey.issuer}/admin`, 'admin');
      assert.equal((await fetch(`${latchkey.url}/admin/upstreams/held`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status, 204);
      let done = await browser.follow(held.url, {}, app1Redirect());
      if (isConsent(done)) done = await browser.submit(done, '/confirm', {}, app1Redirect());
      assert.ok(done.url.startsWith(app1Redirect()), `expected the app, got ${done.status} ${done.url}`);
      assert.equal(new URL(done.url).searchParams.get('error'), 'access_denied', `the app got ${done.url}`);
      assert.equal(new URL(done.url).searchParams.get('code'), null);
    });

    it('a person without a second factor at an app that requires one: the enrolment prompt, then unmet_authentication_requirements; no loop back to the upstream', async () => {
      const { browser, page, authorizations } = await throughFake('strict', 'fake-person-no-factor');
      assert.equal(authorizations, 1, 'the upstream was visited once');
      const visits = fake.state.authorizations;
      assert.equal(page.status, 403);
      assert.match(page.html, /\/unmet/, `expected the enrolment prompt, got ${page.status} ${page.url}`);
      const unmet = await browser.submit(page, '/unmet', {}, app1Redirect());
      assert.match(unmet.url, /error=unmet_authentication_requirements/);
      assert.equal(fake.state.authorizations, visits, 'and not again');
    });

    /** A person made just in time through the fake upstream, on their account page (signed in through it). */
    async function accountPageThroughFake(sub: string) {
      const { browser } = await throughFake('app1', sub);
      let page = await browser.follow(`${latchkey.issuer}/account`);
      if (isConsent(page)) page = await browser.submit(page, '/confirm', {});
      assert.equal(new URL(page.url).pathname, '/account', `expected the account page, got ${page.status} ${page.url}`);
      const account = (await latchkey.accounts.find((await new UpstreamLinks(latchkey.kv, latchkey.accounts).find('fake', sub))!.sub))!;
      return { browser, page, account };
    }

    it('the account page lists the upstream links and removes one, but not the last way to sign in', async () => {
      const { browser, page, account } = await accountPageThroughFake('fake-person-links');
      const links = new UpstreamLinks(latchkey.kv, latchkey.accounts);
      assert.match(page.html, /Sign in with another provider[\s\S]*<strong><bdi>Fake<\/bdi><\/strong>[\s\S]*made when you first signed in with it/);
      const refused = await browser.submit(page, '/account/links/remove', {});
      assert.equal(refused.status, 409, 'no password, no passkey, one link: it stays');
      assert.match(refused.html, /only way you can sign in/);
      assert.ok(await links.find('fake', 'fake-person-links'));
      const forged = await browser.submit(page, '/account/links/remove', { csrf: 'forged' });
      assert.equal(forged.status, 403);
      const notYours = await browser.submit(page, '/account/links/remove', { id: 'fake:fake-person-1' });
      assert.equal(notYours.status, 404);

      await latchkey.accounts.setPassword(account.username, 'now a password of its own');
      const removed = await browser.submit(page, '/account/links/remove', {});
      assert.match(new URL(removed.url).search, /^\?done=links\.removed\.[\w-]+$/);
      assert.match(removed.html, /No other provider signs you in/);
      assert.equal(await links.find('fake', 'fake-person-links'), undefined, 'the link is gone');
    });

    it('a person made just in time (no password) sets one on the account page, without a current password', async () => {
      const { browser, page, account } = await accountPageThroughFake('fake-person-set-password');
      assert.doesNotMatch(page.html, /name="current_password"/);
      assert.match(page.html, /action="\/account\/password\/set"/);
      const csrf = formIn(page.html, '/account/password/set').hidden.csrf!;
      const change = await browser.follow(`${latchkey.issuer}/account/password`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf, current_password: 'a guess', new_password: 'a new passphrase here', confirm_password: 'a new passphrase here' }),
      });
      assert.equal(change.status, 409, 'no current password to change');
      const mismatch = await browser.submit(page, '/account/password/set', { new_password: 'a new passphrase here', confirm_password: 'another one' });
      assert.equal(mismatch.status, 400);
      const short = await browser.submit(page, '/account/password/set', { new_password: 'short', confirm_password: 'short' });
      assert.equal(short.status, 400);
      assert.match(short.html, /Choose another password/);
      const set = await browser.submit(page, '/account/password/set', { new_password: 'a new passphrase here', confirm_password: 'a new passphrase here' });
      assert.match(new URL(set.url).search, /^\?done=password\.set\.[\w-]+$/);
      assert.equal((await latchkey.accounts.verify(account.username, 'a new passphrase here'))?.sub, account.sub, 'signs in with it (argon2id)');
      assert.match(set.html, /name="current_password"/, 'from now on, changing it asks for the current one');
      // The page's forms from before are another session id's now (renewed with the password set): the page as it is now.
      const stale = await browser.submit(page, '/account/password/set', { new_password: 'a third passphrase', confirm_password: 'a third passphrase' });
      assert.equal(stale.status, 403, 'a form from before the session id was renewed');
      const again = await browser.follow(`${latchkey.issuer}/account/password/set`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf: formIn(set.html, '/account/password').hidden.csrf!, new_password: 'a third passphrase', confirm_password: 'a third passphrase' }),
      });
      assert.equal(again.status, 409, 'setting is only for a person without one');
    });

    it('a fresh sign-in asked of Latchkey (prompt=login, max_age=0) is asked of the upstream too', async () => {
      await throughFake('app1', 'fake-person-fresh');
      assert.equal(fake.state.prompt, null);
      await throughFake('app1', 'fake-person-fresh', { prompt: 'login' });
      assert.equal(fake.state.prompt, 'login');
      await throughFake('app1', 'fake-person-fresh', { max_age: '0' });
      assert.equal(fake.state.prompt, 'login');
      assert.equal(fake.state.maxAge, '0', 'and as max_age=0, so that the upstream must say auth_time');

      // An upstream that ignores prompt=login answers from its older session: that is no fresh sign-in.
      try {
        // Half an hour ago: within an app's max_age of an hour, which prompt=login beside it does not loosen.
        for (const asked of [{ prompt: 'login' }, { max_age: '0' }, { prompt: 'login', max_age: '3600' }] as Record<string, string>[]) {
          fake.state.authTime = Math.floor(Date.now() / 1000) - 1800;
          const stale = await throughFake('app1', 'fake-person-fresh', asked);
          assert.ok(!stale.page.url.startsWith(app1Redirect()) && !isConsent(stale.page), `${JSON.stringify(asked)}: no code, nor a consent page on the way to one (${stale.page.url})`);
          assert.equal(stale.page.status, 403);
          assert.match(stale.page.html, /Sign-in not completed/);
          // Nor one that says no auth_time at all.
          fake.state.authTime = null;
          assert.equal((await throughFake('app1', 'fake-person-fresh', asked)).page.status, 403, `${JSON.stringify(asked)}: no auth_time`);
        }
      } finally {
        fake.state.authTime = undefined;
      }
    });

    it("the same sub at two upstreams is two people: a sign-in through one never lands in the account the other made (links are keyed by upstream and sub)", async () => {
      await new Upstreams(latchkey.kv, latchkey.config.keys.secrets).add({
        id: 'twin', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email profile', displayName: 'Twin', linkByEmail: false, endSession: false,
      });
      try {
        // Each upstream says its own email (the same one would be refused as another person's address).
        const subThrough = async (upstream: string) => {
          fake.state.email = `${upstream}-twice@fake.example`;
          const { browser, page, verifier } = await throughFake('app1', 'fake-person-twice', { upstream }).finally(() => (fake.state.email = undefined));
          const done = isConsent(page) ? await browser.submit(page, '/confirm', {}, app1Redirect()) : page;
          assert.ok(new URL(done.url).searchParams.get('code'), `${upstream}: ${done.status} ${done.url} ${done.html.slice(0, 300)}`);
          const config = await oidc.discovery(new URL(latchkey.issuer), 'app1', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
          return (await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier })).claims()!.sub;
        };
        const first = await subThrough('fake');
        assert.notEqual(await subThrough('twin'), first, 'another upstream saying the same sub is another person');
        assert.equal(await subThrough('fake'), first, 'the same upstream and sub is the same person');
      } finally {
        await new Upstreams(latchkey.kv, latchkey.config.keys.secrets).remove('twin');
      }
    });

    it("an app's max_age is asked of the upstream and its auth_time checked: an upstream session older than the app allows is not a sign-in of now (OIDC Core §3.1.2.1, §2 auth_time)", async () => {
      try {
        // The upstream ignores max_age and answers from a session it signed in an hour ago.
        fake.state.authTime = Math.floor(Date.now() / 1000) - 3600;
        const stale = await throughFake('app1', 'fake-person-stale', { max_age: '300' });
        assert.equal(fake.state.maxAge, '300', 'max_age is passed on');
        assert.ok(!stale.page.url.startsWith(app1Redirect()) || !new URL(stale.page.url).searchParams.get('code'), `no code: ${stale.page.url}`);
        assert.ok(!isConsent(stale.page), 'nor a consent page on the way to one');
        assert.equal(stale.page.status, 403, `${stale.page.status} ${stale.page.url}`);
        assert.match(stale.page.html, /Sign-in not completed/);

        // One that signs the person in again (auth_time now) is taken; without max_age, none is passed on.
        fake.state.authTime = undefined;
        const fresh = await throughFake('app1', 'fake-person-stale', { max_age: '300' });
        const done = isConsent(fresh.page) ? await fresh.browser.submit(fresh.page, '/confirm', {}, app1Redirect()) : fresh.page;
        assert.ok(new URL(done.url).searchParams.get('code'), `a code: ${done.status} ${done.url}`);
        await throughFake('app1', 'fake-person-stale');
        assert.equal(fake.state.maxAge, null);
      } finally {
        fake.state.authTime = undefined;
      }
    });

    it("refuses forged or malformed logout tokens, and ends the session for the upstream's valid one", async () => {
      const endpoint = `${latchkey.issuer}/upstream/fake/backchannel-logout`;
      const post = async (token: string) => (await fetch(endpoint, { method: 'POST', body: new URLSearchParams({ logout_token: token }) })).status;
      assert.equal(await post(await fake.logoutToken({ sid: 'fake-sid-1' }, fake.otherKey)), 400, 'forged signature');
      assert.equal(await post(await fake.logoutToken({ sid: 'fake-sid-1', aud: 'someone-else' })), 400, 'another audience');
      assert.equal(await post(await fake.logoutToken({ sid: 'fake-sid-1', nonce: 'x' })), 400, 'a nonce');
      assert.equal(await post(await fake.logoutToken({ sid: 'fake-sid-1', events: {} })), 400, 'no logout event');
      assert.equal(await post(await fake.logoutToken({})), 400, 'neither sid nor sub');
      // One kind of JWT the upstream signs is not another (Back-Channel Logout §4.1, RFC 8725 §3.11): a token typed as an access token or another SET is no logout token.
      for (const typ of ['at+jwt', 'application/at+jwt', 'secevent+jwt', 'dpop+jwt']) {
        assert.equal(await post(await fake.logoutToken({ sid: 'fake-sid-1' }, undefined, typ)), 400, `typ ${typ}`);
      }
      assert.equal(await post(''), 400, 'no token');
      assert.equal((await fetch(`${latchkey.issuer}/upstream/nope/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: await fake.logoutToken({ sid: 'fake-sid-1' }) }) })).status, 400, 'an unknown upstream');
      const silent = async () => (await agent.follow(`${latchkey.issuer}/auth?${new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: app1Redirect(), code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', prompt: 'none' })}`, {}, app1Redirect())).url;
      assert.doesNotMatch(await silent(), /error=login_required/, 'still signed in');
      assert.equal(await post(await fake.logoutToken({ sid: 'fake-sid-1' })), 200);
      assert.match(await silent(), /error=login_required/, 'signed out');
    });

    /**
     * Signed in to app1 through the fake upstream (or another id for it) as `sub` in upstream session `sid`: the browser,
     * app1's tokens (a JWT access token for the API), and checks of what still works.
     */
    async function tokensThroughFake(sub: string, sid: string, { upstream = 'fake', offline = false } = {}) {
      fake.state.sid = sid;
      const scope = offline ? 'openid offline_access read' : 'openid read';
      const { browser, page, verifier } = await throughFake('app1', sub, { scope, resource: API, upstream });
      const done = isConsent(page) ? await browser.submit(page, '/confirm', {}, app1Redirect()) : page;
      assert.ok(done.url.startsWith(app1Redirect()), `expected to be back at the app, got ${done.status} ${done.url}`);
      const config = await oidc.discovery(new URL(latchkey.issuer), 'app1', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
      const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier }, { resource: API });
      const active = async () => (await introspect(latchkey.url, RS, tokens.access_token)).active;
      const silent = async () => {
        const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: app1Redirect(), code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', prompt: 'none' });
        return (await browser.follow(`${latchkey.issuer}/auth?${params}`, {}, app1Redirect())).url;
      };
      return { browser, tokens, config, active, silent };
    }

    it("an upstream's logout token ends the session's access tokens too, as signing out there would (Back-Channel Logout §2.7)", async () => {
      const { active, silent } = await tokensThroughFake('fake-person-bcl-tokens', 'fake-sid-tokens');
      assert.equal(await active(), true);
      const post = await fetch(`${latchkey.issuer}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: await fake.logoutToken({ sid: 'fake-sid-tokens' }) }) });
      assert.equal(post.status, 200);
      assert.match(await silent(), /error=login_required/, 'signed out');
      assert.equal(await active(), false, 'the JWT access token issued in the session is revoked with its grant');
    });

    it("a device approved after signing in through the upstream: the upstream's logout ends that session and the device's tokens (RFC 8628)", async () => {
      fake.state.mode = 'good';
      fake.state.sub = 'fake-person-device';
      fake.state.sid = 'fake-sid-device';
      const started = await fetch(`${latchkey.issuer}/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: 'tv', scope: 'openid' }) });
      const { user_code: userCode, device_code: deviceCode } = (await started.json()) as { user_code: string; device_code: string };
      const browser = new Agent();
      const entry = await browser.follow(`${latchkey.issuer}/device`);
      const confirm = await browser.submit(entry, '/device', { user_code: userCode });
      const login = await browser.submit(confirm, '/device', { confirm: 'yes' });
      assert.ok(login.html.includes('/upstream/fake'), `expected the login page with the upstream, got ${login.status} ${login.url}`);
      let done = await browser.submit(login, '/upstream/fake', {});
      if (isConsent(done)) done = await browser.submit(done, '/confirm', {});
      assert.equal(done.status, 200, `${done.status} ${done.url}`);
      const poll = await fetch(`${latchkey.issuer}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode, client_id: 'tv' }) });
      const tokens = (await poll.json()) as { access_token?: string; error?: string };
      assert.ok(tokens.access_token, `the device got tokens: ${JSON.stringify(tokens)}`);
      const userinfo = async () => (await fetch(`${latchkey.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status;
      assert.equal(await userinfo(), 200);

      const post = await fetch(`${latchkey.issuer}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: await fake.logoutToken({ sid: 'fake-sid-device' }) }) });
      assert.equal(post.status, 200);
      assert.equal(await userinfo(), 401, "the device's access token ended with the session that approved it");
    });

    it('a logout token works once: its replay (same jti) is refused and a later session with the same upstream sid stays (Back-Channel Logout §2.6)', async () => {
      const endpoint = `${latchkey.issuer}/upstream/fake/backchannel-logout`;
      const post = async (token: string) => fetch(endpoint, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });
      const first = await tokensThroughFake('fake-person-replay', 'fake-sid-replay');
      const token = await fake.logoutToken({ sid: 'fake-sid-replay' });
      assert.equal((await post(token)).status, 200);
      assert.match(await first.silent(), /error=login_required/, 'the first session ended');

      const later = await tokensThroughFake('fake-person-replay', 'fake-sid-replay');
      const replay = await post(token);
      assert.equal(replay.status, 400);
      assert.equal(((await replay.json()) as { error: string }).error, 'invalid_request');
      assert.doesNotMatch(await later.silent(), /error=login_required/, 'the later session is still signed in');
      assert.equal(await later.active(), true);
      assert.equal((await post(await fake.logoutToken({ sid: 'fake-sid-replay' }))).status, 200, 'a new token (another jti) still works');
      assert.match(await later.silent(), /error=login_required/);
    });

    it("a logout token ends only its own upstream's sessions: one signed by the same provider for another of our upstreams (its sid or sub), and one naming the session's sid with another person's sub, end nothing (Back-Channel Logout §2.6, §2.4)", async () => {
      // `twin` is the same provider (same issuer, keys and client id) added under another id: the strongest case.
      const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
      await upstreams.add({ id: 'twin', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email', displayName: 'Twin', linkByEmail: false, endSession: false });
      const post = async (upstream: string, token: string) => (await fetch(`${latchkey.issuer}/upstream/${upstream}/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) })).status;
      try {
        const signedIn = await tokensThroughFake('fake-person-cross', 'fake-sid-cross');
        assert.equal(await post('twin', await fake.logoutToken({ sid: 'fake-sid-cross' })), 200, 'a valid token for twin: nothing of its to end');
        assert.equal(await post('twin', await fake.logoutToken({ sub: 'fake-person-cross' })), 200);
        assert.equal(await post('twin', await fake.logoutToken({ sid: 'fake-sid-cross', sub: 'fake-person-cross' })), 200);
        assert.equal(await post('fake', await fake.logoutToken({ sid: 'fake-sid-cross', sub: 'someone-else-there' })), 200);
        assert.doesNotMatch(await signedIn.silent(), /error=login_required/, 'still signed in');
        assert.equal(await signedIn.active(), true, 'its access token still active');
        assert.equal(await post('fake', await fake.logoutToken({ sid: 'fake-sid-cross', sub: 'fake-person-cross' })), 200);
        assert.match(await signedIn.silent(), /error=login_required/, 'its own upstream ends it');
      } finally {
        await upstreams.remove('twin');
      }
    });

    it('removing an upstream link on the account page ends the other sessions it signed in, with their tokens', async () => {
      const other = await tokensThroughFake('fake-person-unlink', 'fake-sid-unlink');
      const { browser, page, account } = await accountPageThroughFake('fake-person-unlink');
      await latchkey.accounts.setPassword(account.username, 'a password of its own now');
      const removed = await browser.submit(page, '/account/links/remove', {});
      assert.match(new URL(removed.url).search, /^\?done=links\.removed\.[\w-]+$/);
      assert.match(await other.silent(), /error=login_required/, 'the other session the link signed in ended');
      assert.equal(await other.active(), false, 'and its access token');
      assert.equal(new URL((await browser.follow(`${latchkey.issuer}/account`)).url).pathname, '/account', 'the session that removed it stays');
    });

    it('removing an upstream (admin API) ends the sessions it signed in with every grant they made, offline access included; other sessions and the accounts stay', async () => {
      const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
      await upstreams.add({ id: 'gone', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Gone', linkByEmail: false, endSession: false });
      const through = await tokensThroughFake('fake-person-gone', 'fake-sid-gone', { upstream: 'gone', offline: true });
      const elsewhere = await tokensThroughFake('fake-person-stays', 'fake-sid-stays', { offline: true });
      assert.ok(through.tokens.refresh_token, 'offline access was granted');
      assert.equal(await through.active(), true);

      const token = await clientCredentialsToken(latchkey.url, OPS, `${latchkey.issuer}/admin`, 'admin');
      const removed = await fetch(`${latchkey.url}/admin/upstreams/gone`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
      assert.equal(removed.status, 204);

      assert.match(await through.silent(), /error=login_required/, 'its session ended');
      await eventually(async () => assert.ok(app1.loggedOut.includes(String(through.tokens.claims()!.sid)), 'the app of the session got a logout token'));
      assert.equal(await through.active(), false, 'the JWT access token is revoked');
      await assert.rejects(oidc.refreshTokenGrant(through.config, through.tokens.refresh_token!, { resource: API }), (error: Error) => {
        assert.ok(error instanceof oidc.ResponseBodyError);
        assert.equal(error.error, 'invalid_grant', 'the offline refresh token is revoked');
        return true;
      });
      assert.doesNotMatch(await elsewhere.silent(), /error=login_required/, "another upstream's session stays");
      assert.equal(await elsewhere.active(), true);
      assert.ok(await oidc.refreshTokenGrant(elsewhere.config, elsewhere.tokens.refresh_token!, { resource: API }));

      const link = await new UpstreamLinks(latchkey.kv, latchkey.accounts).find('gone', 'fake-person-gone');
      assert.ok(link && (await latchkey.accounts.find(link.sub)), 'the account it made stays');
      const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: app1Redirect(), code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'gone' });
      const signIn = await new Agent().follow(`${latchkey.issuer}/auth?${params}`);
      assert.equal(signIn.status, 400, 'no sign-in through it');
      assert.match(signIn.html, /the upstream provider asked for is not one this service offers/);
      const logout = await fetch(`${latchkey.issuer}/upstream/gone/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: await fake.logoutToken({ sid: 'fake-sid-stays' }) }) });
      assert.equal(logout.status, 400, 'nor logout through it');
      const again = await fetch(`${latchkey.url}/admin/upstreams/gone`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
      assert.equal(again.status, 404);
    });

    for (const by of ['admin API', 'CLI'] as const) {
      it(`removing an upstream (${by}) ends the offline access a sign-in through it got after its session ended; the same person's offline access got with a password stays`, async () => {
        const id = by === 'CLI' ? 'gone-cli' : 'gone-offline';
        const person = `fake-person-${id}`;
        const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
        await upstreams.add({ id, issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Gone offline', linkByEmail: false, endSession: false });
        const through = await tokensThroughFake(person, `fake-sid-${id}`, { upstream: id, offline: true });
        assert.ok(through.tokens.refresh_token, 'offline access was granted');
        const account = (await latchkey.accounts.find((await new UpstreamLinks(latchkey.kv, latchkey.accounts).find(id, person))!.sub))!;
        // The same person also signs in with a password (theirs now), at the same app, offline too.
        await latchkey.accounts.setPassword(account.username, 'a password of its own as well');
        const agent = new Agent();
        const { page, verifier } = await startAuthorization(agent, through.config, app1Redirect(), { scope: 'openid offline_access read', resource: API, prompt: 'consent' });
        const back = await signInSteps(agent, page, { username: account.username, password: 'a password of its own as well', login: 'required', stopAt: app1Redirect() });
        assert.ok(back.url.startsWith(app1Redirect()), `expected to be back at the app, got ${back.status} ${back.url}`);
        const byPassword = await oidc.authorizationCodeGrant(through.config, new URL(back.url), { pkceCodeVerifier: verifier }, { resource: API });
        assert.ok(byPassword.refresh_token, 'offline access was granted to the password sign-in too');
        // Every session of the person ends (signed out, or expired): the refresh tokens outlive them.
        const sessions = new AccountSessions(latchkey.kv, latchkey.providers, latchkey.accounts);
        for (const session of await sessions.list(account.sub)) await sessions.end(session);
        assert.match(await through.silent(), /error=login_required/, 'no session is left');
        const refreshed = await oidc.refreshTokenGrant(through.config, through.tokens.refresh_token!, { resource: API });
        assert.ok(refreshed.refresh_token, 'offline access outlives the session');

        if (by === 'CLI') {
          const run = await cli(latchkey.env, ['upstreams', 'remove', id]);
          assert.equal(run.status, 0, run.stderr);
        } else {
          const token = await clientCredentialsToken(latchkey.url, OPS, `${latchkey.issuer}/admin`, 'admin');
          const removed = await fetch(`${latchkey.url}/admin/upstreams/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
          assert.equal(removed.status, 204);
        }

        await assert.rejects(oidc.refreshTokenGrant(through.config, refreshed.refresh_token!, { resource: API }), (error: Error) => {
          assert.ok(error instanceof oidc.ResponseBodyError);
          assert.equal(error.error, 'invalid_grant', 'the refresh token got through the removed upstream is revoked');
          return true;
        });
        assert.equal((await introspect(latchkey.url, RS, refreshed.access_token)).active, false, 'and its access token');
        assert.equal((await introspect(latchkey.url, RS, byPassword.access_token)).active, true, "the password sign-in's access token stays");
        assert.ok((await oidc.refreshTokenGrant(through.config, byPassword.refresh_token!, { resource: API })).access_token, "and its refresh token");
      });
    }

    it('removing an upstream ends a session it signed in that signed in again with a password since, with the grants made in between', async () => {
      const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
      await upstreams.add({ id: 'gone-later', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Gone later', linkByEmail: false, endSession: false });
      const through = await tokensThroughFake('fake-person-gone-later', 'fake-sid-gone-later', { upstream: 'gone-later', offline: true });
      const account = (await latchkey.accounts.find((await new UpstreamLinks(latchkey.kv, latchkey.accounts).find('gone-later', 'fake-person-gone-later'))!.sub))!;
      await latchkey.accounts.setPassword(account.username, 'a password of its own since');
      // The same session (its browser) signs in again, with the password: amr no longer says fed.
      const { page } = await startAuthorization(through.browser, through.config, app1Redirect(), { prompt: 'login' });
      const again = await signInSteps(through.browser, page, { username: account.username, password: 'a password of its own since', login: 'required', stopAt: app1Redirect() });
      assert.ok(again.url.startsWith(app1Redirect()), `expected to be back at the app, got ${again.status} ${again.url}`);

      const token = await clientCredentialsToken(latchkey.url, OPS, `${latchkey.issuer}/admin`, 'admin');
      const removed = await fetch(`${latchkey.url}/admin/upstreams/gone-later`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
      assert.equal(removed.status, 204);
      assert.match(await through.silent(), /error=login_required/, 'the session ended');
      assert.equal(await through.active(), false, 'the access token granted through the upstream is revoked');
      await assert.rejects(oidc.refreshTokenGrant(through.config, through.tokens.refresh_token!, { resource: API }), (error: Error) => {
        assert.ok(error instanceof oidc.ResponseBodyError);
        assert.equal(error.error, 'invalid_grant', 'and its offline refresh token');
        return true;
      });
    });
  });
});
