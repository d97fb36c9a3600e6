/**
 * A red team's pass at the newer sign-in surfaces (2026-12-01 evening, sec-factors): passkeys,
 * second factors, step-up, the account page and upstream providers, attacked black box against a
 * running Latchkey on a real Redis, with a cookie-keeping agent as each browser. Each test performs
 * one attack; those that succeeded before their fix say so in docs/security.md ("Passkeys and
 * second factors").
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent, formIn, postToAccount, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { assertion, isSecondFactor, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';
import { startFakeUpstream, upstreamDiscovery } from '../helpers/fake-upstream.js';
import { Upstreams } from '../../src/upstreams/registry.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { digestOf } from '../../src/store/record-keys.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'correct horse battery staple';
const MAX_FAILURES = 4;
/**
 * accounts.reauthenticateAfter in this suite (the default is 300 s): a session older than this is
 * stale. Not 2: a fresh session's few requests overran that on a loaded machine (second-factor.test.ts).
 */
const RECENT_SECONDS = 5;

const codeFor = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });
const secretShown = (page: Page) => page.html.match(/id="totp-secret">([^<]+)</)?.[1]?.replace(/\s/g, '');

describe('red team: second factors, passkeys, step-up, the account page', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { ACCOUNTS_REAUTHENTICATE_AFTER: String(RECENT_SECONDS), ACCOUNTS_THROTTLE_MAX_FAILURES: String(MAX_FAILURES), PROXY: 'true', PROXY_HOPS: '1', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
      clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }],
    });
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => server?.stop());

  /** A browser signed in to `name`'s account page with the password (no second factor yet). */
  async function accountPage(name: string): Promise<{ agent: Agent; page: Page }> {
    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: name, password: PASSWORD, login: 'required' });
    assert.equal(page.url, `${server.issuer}/account`, `the account page, got ${page.status} ${page.url}`);
    return { agent, page };
  }

  it("a stale session (a stolen cookie) neither reads nor confirms the authenticator-app secret the person is setting up in another session (it read it from the confirm form's error page before)", async () => {
    const sub = (await server.accounts.create('vic', PASSWORD)).sub;
    // The thief holds the cookie of a session of vic's signed in a while ago: too old to start a setup.
    const thief = await accountPage('vic');
    await new Promise((done) => setTimeout(done, (RECENT_SECONDS + 1) * 1000 + 100));
    const refused = await postToAccount(thief.agent, thief.page, '/authenticator/start', {});
    assert.ok(refused.url.includes('/interaction/'), `a stale session starting a setup is asked to sign in again, got ${refused.status} ${refused.url}`);

    // Vic, signed in just now in her own browser, starts setting up her authenticator app.
    const victim = await accountPage('vic');
    const setup = await victim.agent.submit(victim.page, '/authenticator/start', {});
    const secret = secretShown(setup);
    assert.ok(secret, `the setup page shows the secret, got ${setup.status} ${setup.url}`);

    // The thief's confirm form with a wrong code: the page must not show the secret vic's app is taking.
    const wrong = ['000000', '111111'].find((code) => ![-1, 0, 1].some((steps) => codeFor(secret, steps) === code))!;
    const probed = await postToAccount(thief.agent, thief.page, '/authenticator/confirm', { code: wrong });
    assert.equal(probed.status, 400);
    assert.equal(secretShown(probed), undefined, "the stale session was shown the secret of vic's setup");
    assert.ok(!probed.html.replace(/\s/g, '').includes(secret), 'the secret appears nowhere on the page');
    // Nor does the right code (had the thief learnt the secret) make it vic's factor from the thief's session.
    const confirmed = await postToAccount(thief.agent, thief.page, '/authenticator/confirm', { code: codeFor(secret) });
    assert.equal(confirmed.status, 400, `confirmed from the stale session: ${confirmed.status} ${confirmed.url}`);
    assert.equal((await server.secondFactors.summary(sub)).totp, undefined);

    // Vic's own setup goes on: a wrong code shows her page again with her secret, the right one sets it up.
    const again = await victim.agent.submit(setup, '/authenticator/confirm', { code: wrong });
    assert.equal(again.status, 400);
    assert.equal(secretShown(again), secret);
    const done = await victim.agent.submit(again, '/authenticator/confirm', { code: codeFor(secret, 1) });
    assert.match(done.html, /Authenticator app set up/);
    assert.ok((await server.secondFactors.summary(sub)).totp);
  });

  it("TOTP guessing is not unpaused by the account page: a right current password there (a thief holding the person's session and password) does not clear the wrong codes counted (it did, so a code could be guessed for ever, the pause never reached)", async () => {
    const { sub } = await server.accounts.create('pia', PASSWORD);
    // The thief's session of pia's, in which her authenticator app was set up (one from before it,
    // elsewhere, signs in again with it before it changes the password: factor-attacks).
    const thief = await accountPage('pia');
    const sessionId = /lk_session=([^;]+)/.exec(thief.agent.cookieHeader(server.issuer))?.[1];
    const stored = sessionId ? await server.kv.getRecord(`oidc:Session:${digestOf(sessionId)}`) : undefined;
    const { uid } = JSON.parse(stored!.payload) as { uid: string };
    const { secret } = await server.secondFactors.totp.begin(sub, 'pia', uid);
    assert.equal(await server.secondFactors.totp.confirm(sub, codeFor(secret, -1), uid), true);
    const valid = new Set([-1, 0, 1, 2].map((steps) => codeFor(secret, steps)));
    let guess = 200_000;
    const wrong = () => {
      do guess += 7919;
      while (valid.has(String(guess % 1_000_000).padStart(6, '0')));
      return String(guess % 1_000_000).padStart(6, '0');
    };
    /** A wrong code at a fresh sign-in's second factor, from `address` (the proxy's word, PROXY_HOPS 1). */
    const guessFrom = async (address: string, password: string) => {
      const agent = new Agent();
      const { page } = await startAuthorization(agent, app, REDIRECT);
      const send = (from: Page, action: string, fields: Record<string, string>) => {
        const form = formIn(from.html, action);
        return agent.follow(new URL(form.action, from.url).href, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': address },
          body: new URLSearchParams({ ...form.hidden, ...fields }),
        }, REDIRECT);
      };
      const second = await send(page, '/login', { username: 'pia', password });
      assert.ok(isSecondFactor(second), `expected the second-factor page, got ${second.status} ${second.url}`);
      return (await send(second, '/second-factor', { method: 'totp', code: wrong() })).status;
    };
    let password = PASSWORD;
    let guesses = 0;
    let paused = false;
    for (let round = 0; round < 3 && !paused; round += 1) {
      // Just under the pause, each from an address of its own.
      for (let i = 0; i < MAX_FAILURES - 1 && !paused; i += 1) {
        const status = await guessFrom(`198.51.100.${10 * round + i + 1}`, password);
        guesses += 1;
        if (status === 429) paused = true;
        else assert.equal(status, 401);
      }
      if (paused) break;
      // Then the right password on the account page, with pia's session.
      const next = `${PASSWORD} round ${round}`;
      const changed = await postToAccount(thief.agent, thief.page, '/password', { current_password: password, new_password: next, confirm_password: next });
      assert.equal(changed.status, 200, `the password change: ${changed.status} ${changed.url}`);
      assert.match(changed.html, /Your password has been changed/);
      password = next;
    }
    assert.ok(paused, `${guesses} wrong codes for pia, and no pause (limit ${MAX_FAILURES})`);
    assert.ok(guesses <= MAX_FAILURES, `${guesses} codes checked before the pause (limit ${MAX_FAILURES})`);
  });

  it("an upstream's email_verified said beside no address is not taken for the address the account holds: an upstream added with --domain, whose person's outside address was taken unverified, did not make it verified by leaving the address out (it did)", async () => {
    // An upstream we control: its ID token carries `claims` as the test sets them.
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' };
    let claims: JWTPayload = {};
    let nonce = '';
    const fake = createServer((req, res) => {
      const url = new URL(req.url ?? '/', issuer);
      const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (url.pathname === '/.well-known/openid-configuration') return json(upstreamDiscovery(issuer));
      if (url.pathname === '/jwks') return json({ keys: [jwk] });
      if (url.pathname === '/authorize') {
        nonce = url.searchParams.get('nonce') ?? '';
        const back = new URL(url.searchParams.get('redirect_uri')!);
        back.searchParams.set('code', 'a-code');
        back.searchParams.set('state', url.searchParams.get('state') ?? '');
        return res.writeHead(302, { location: back.href }).end();
      }
      if (url.pathname === '/token') {
        const now = Math.floor(Date.now() / 1000);
        void new SignJWT({ iss: issuer, sub: 'outsider', aud: 'latchkey', iat: now, exp: now + 300, nonce, ...claims })
          .setProtectedHeader({ alg: 'RS256', kid: 'k' })
          .sign(privateKey)
          .then((idToken) => json({ access_token: 'an-access-token', token_type: 'Bearer', expires_in: 60, id_token: idToken }));
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((done) => fake.listen(0, '127.0.0.1', done));
    const issuer = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    try {
      // Trusted for addresses at its own domain only (--domain).
      await new Upstreams(server.kv, server.config.keys.secrets).add({
        id: 'tenant', issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email', displayName: 'Tenant', linkByEmail: false, endSession: false, domains: ['tenant.example'], claims: {},
      });
      /** A sign-in at the app through the upstream; what the app reads at userinfo. */
      const signIn = async () => {
        const agent = new Agent();
        const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { upstream: 'tenant', scope: 'openid email' });
        const done = await signInSteps(agent, page, { username: '', password: '', stopAt: REDIRECT });
        assert.ok(done.url.startsWith(REDIRECT), `expected the app, got ${done.status} ${done.url}`);
        const tokens = await oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
        return oidc.fetchUserInfo(app, tokens.access_token, tokens.claims()!.sub);
      };
      // The person (or their tenant's admin) sets an address at a domain the upstream does not own.
      claims = { email: 'ceo@bank.example', email_verified: true };
      const first = await signIn();
      assert.equal(first.email, 'ceo@bank.example');
      assert.equal(first.email_verified, false, 'an address outside the upstream\'s domains is taken unverified');
      // Then leaves the address out, the upstream still saying email_verified.
      claims = { email_verified: true };
      const second = await signIn();
      assert.equal(second.email, 'ceo@bank.example');
      assert.equal(second.email_verified, false, 'the upstream vouched for no address: the one held stays unverified');
    } finally {
      await new Upstreams(server.kv, server.config.keys.secrets).remove('tenant').catch(() => {});
      await new Promise<void>((done) => fake.close(() => done()));
    }
  });
});

describe('red team: the last way in (seventh fresh-eyes passes of 2026-12-06, evening)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }, clients: [] });
    fake = await startFakeUpstream(SECRET);
    await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'fake', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email profile', displayName: 'Fake', linkByEmail: false, endSession: false });
  });
  after(async () => {
    await fake?.close();
    await server?.stop();
  });

  it('a person made by an upstream (no password) who removed their link cannot remove their only passkey next: nothing would sign them in (the links section already keeps the last link)', async () => {
    fake.state.mode = 'good';
    fake.state.sub = 'last-way';
    const links = new UpstreamLinks(server.kv, server.accounts);
    const { account } = (await links.signIn({ id: 'fake', issuer: fake.state.issuer, linkByEmail: false }, 'last-way', {})) as { account: { sub: string } };
    const key = softPasskey();
    await registerSoftPasskeys(server, account.sub, key);
    // Signed in to the account page through the upstream, and the passkey as the second factor.
    const agent = new Agent();
    const login = await agent.follow(`${server.issuer}/account`);
    const second = await agent.submit(login, '/upstream/fake', {});
    const page = await agent.submit(second, '/passkey', { credential: assertion(key, new URL(server.issuer).origin, passkeyChallenge(second), account.sub, 1) });
    assert.equal(page.url, `${server.issuer}/account`, `the account page, got ${page.status} ${page.url}`);
    // The link goes (the passkey is another way in)...
    const unlinked = await agent.submit(page, '/account/links/remove', { id: 'fake:last-way' });
    assert.equal(unlinked.status, 200, `link removal: ${unlinked.status} ${unlinked.url}`);
    assert.equal((await links.list(account.sub)).length, 0);
    // ...and then the passkey, the last way in, stays.
    const refused = await agent.submit(unlinked, '/account/passkeys/remove', { id: key.id });
    assert.equal(refused.status, 409, `the last passkey: ${refused.status} ${refused.url}`);
    assert.match(refused.html, /only way you can sign in/);
    assert.equal((await server.secondFactors.summary(account.sub)).passkeys.length, 1);
  });
});
