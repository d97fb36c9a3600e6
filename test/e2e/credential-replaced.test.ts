/**
 * A person's credential replaced rather than removed (the fifth endings pass's item left): removing
 * one ends what it signed in, so no way of replacing one may leave that signed in. The account page
 * offers "Set up" for an authenticator app only while none is set up, and "Set a password" only to a
 * person without one; a setup or a first password confirmed while one exists (a setup page left open
 * in one session while another set an app up, a crafted POST, two confirmed at once) is refused with
 * the account page, never written over the one there. Recovery codes made anew end what an old code
 * signed in as a removal does, also when the store fails half-way. Over HTTP with the account page's
 * CSRF token, against a real Redis; a passkey registered again and a password changed are shown
 * elsewhere (attacks.test.ts, account-page.test.ts).
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { enrolmentStamp } from '../../src/accounts/credentials.js';
import { passwordStamp } from '../../src/accounts/accounts.js';
import { Agent, postToAccount, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signedInToAccountPage, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { assertion, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';

const PASSWORD = 'credential replaced password';
const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';

const codeFor = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });
const secretShown = (page: Page) => page.html.match(/id="totp-secret">([^<]+)</)?.[1]?.replace(/\s/g, '');
const SET_UP_ALREADY = /An authenticator app is set up already\. To use another one, remove this one first/;

describe('e2e: a credential replaced, not removed', function () {
  this.timeout(60_000);
  let server: TestServer;

  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }] });
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => server?.stop());

  /** A browser signed in to `username`'s account page just now with the password, and the second factor's `code` when asked. */
  const accountPage = (username: string, code?: () => string) => signedInToAccountPage(server.issuer, username, PASSWORD, code);

  it('an authenticator app set up while one is (a setup page left open since before another session set one up, then a crafted start) is refused: the page left open, its session now weaker than her sign-in, is sent to sign in again, the crafted start gets the account page; the app set up stays, and what it signed in stays signed in', async () => {
    const { sub } = await server.accounts.create('ada', PASSWORD);
    const stale = await accountPage('ada');
    const fresh = await accountPage('ada');
    // Ada starts a setup in one session and leaves the page open.
    const begun = await stale.agent.submit(stale.page, '/account/authenticator/start', {});
    const staleSecret = secretShown(begun);
    assert.ok(staleSecret, `the setup page shows a secret, got ${begun.status} ${begun.url}`);
    // In another she sets up her app, and signs in with it.
    const setup = await fresh.agent.submit(fresh.page, '/account/authenticator/start', {});
    const secret = secretShown(setup)!;
    const added = await fresh.agent.submit(setup, '/account/authenticator/confirm', { code: codeFor(secret, -1) });
    assert.match(added.url, /done=authenticator\.added/);
    const enrolled = enrolmentStamp((await server.secondFactors.records.read(sub)).totp);
    const byApp = await accountPage('ada', () => codeFor(secret, 0));

    // The page left open is confirmed with a right code of its own secret: refused, nothing replaced.
    // Its session signed in with the password alone, weaker than Ada's sign-in now that she has an
    // app: it is sent to sign in again (ninth pass over second factors and upstreams; a session as
    // strong gets "set up already", 409: "two authenticator-app setups confirmed at the same moment").
    const signInAgain = `${server.issuer}/interaction/`;
    const confirmed = await stale.agent.submit(begun, '/account/authenticator/confirm', { code: codeFor(staleSecret, 1) }, signInAgain);
    assert.ok(confirmed.url.startsWith(signInAgain), `a second app was set up over the first: ${confirmed.status} ${confirmed.url}`);
    assert.equal(secretShown(confirmed), undefined, 'no setup page again');
    assert.equal(enrolmentStamp((await server.secondFactors.records.read(sub)).totp), enrolled, 'the app set up is the one there');
    // Nor later.
    const again = await stale.agent.submit(begun, '/account/authenticator/confirm', { code: codeFor(staleSecret, 1) }, signInAgain);
    assert.ok(again.url.startsWith(signInAgain), `${again.status} ${again.url}`);
    assert.equal(enrolmentStamp((await server.secondFactors.records.read(sub)).totp), enrolled);

    // A crafted start while the app is set up: refused before any secret is made.
    const started = await postToAccount(fresh.agent, added, '/authenticator/start', {});
    assert.equal(started.status, 409, `a setup was started over the app: ${started.status} ${started.url}`);
    assert.match(started.html, SET_UP_ALREADY);
    assert.equal(secretShown(started), undefined);

    // The app set up still signs in, the stale secret does not; the session the app signed in stays.
    assert.equal((await byApp.agent.follow(`${server.issuer}/account`)).url, `${server.issuer}/account`);
    const later = new Agent();
    const login = await signInSteps(later, await later.follow(`${server.issuer}/account`), { username: 'ada', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.ok(login.html.includes('/second-factor'), 'the password asks for the app');
    assert.equal((await server.secondFactors.totp.verify(sub, codeFor(staleSecret, 0), 'a-sign-in')).outcome, 'wrong', "the stale setup's secret is no one's");
    assert.equal((await server.secondFactors.totp.verify(sub, codeFor(secret, 1), 'a-sign-in')).outcome, 'ok', 'the app set up signs in');
  });

  /** Whether `agent`'s session is still signed in: the account page answers, not the sign-in. */
  const signedIn = async (agent: Agent) => (await agent.follow(`${server.issuer}/account`)).url === `${server.issuer}/account`;

  it('recovery codes made anew end what an old code signed in as a removal does: before the codes are replaced too, so that a failure half-way (the store refusing the revocation list) leaves the old codes the person holds, not new ones never shown; made again, the thief is signed out', async () => {
    const { sub } = await server.accounts.create('cy', PASSWORD);
    const { secret } = await server.secondFactors.totp.begin(sub, 'cy', 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(sub, codeFor(secret, -1), 'test-session'), true);
    const [stolen, spare] = await server.secondFactors.recoveryCodes.generate(sub);
    // A thief with cy's password and a recovery code signs in to the app (a grant) and stays signed in.
    const thief = new Agent();
    const second = await signInSteps(thief, (await startAuthorization(thief, app, REDIRECT)).page, { username: 'cy', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    const done = await thief.submit(second, '/second-factor', { method: 'recovery', code: stolen! }, REDIRECT);
    const granted = done.url.startsWith(REDIRECT) ? done : await thief.submit(done, '/confirm', {}, REDIRECT);
    assert.ok(new URL(granted.url).searchParams.get('code'), `the thief got a code: ${granted.status} ${granted.url}`);
    assert.equal(await signedIn(thief), true);
    const owner = await accountPage('cy', () => codeFor(secret, 0));
    const before = enrolmentStamp((await server.secondFactors.records.read(sub)).recovery);

    // As cy makes new codes, the store refuses the server the revocation list's keys (a failover in the middle).
    const raw = new Redis(server.env.REDIS_URL!);
    const prefix = server.config.redis.keyPrefix;
    try {
      await raw.call('ACL', 'SETUSER', 'default', 'resetkeys', `~${prefix}[^r]*`, `~${prefix}r[^e]*`, `~${prefix}re[^v]*`);
      const failed = await owner.agent.submit(owner.page, '/account/recovery-codes', {});
      assert.doesNotMatch(failed.html, /id="recovery-codes"/, 'no codes can have been shown');
    } finally {
      await raw.call('ACL', 'SETUSER', 'default', 'resetkeys', '~*');
      raw.disconnect();
    }
    assert.equal(enrolmentStamp((await server.secondFactors.records.read(sub)).recovery), before, 'the codes cy holds are still hers (new ones were made and never shown)');
    assert.ok(await server.secondFactors.recoveryCodes.use(sub, spare!, 'a-sign-in'), 'an unused one of them still works');

    const made = await owner.agent.submit(await owner.agent.follow(`${server.issuer}/account`), '/account/recovery-codes', {});
    assert.match(made.html, /id="recovery-codes"/, `made again: ${made.status} ${made.url}`);
    assert.equal(await signedIn(thief), false, 'the session an old code signed in ended');
    assert.equal(await signedIn(owner.agent), true, 'the session that acted stays');
  });

  it('two authenticator-app setups confirmed at the same moment (two sessions): one is set up, the other refused, not written over it', async () => {
    const { sub } = await server.accounts.create('bo', PASSWORD);
    const [one, two] = await Promise.all([accountPage('bo'), accountPage('bo')]);
    const pages = await Promise.all([one, two].map(({ agent, page }) => agent.submit(page, '/account/authenticator/start', {})));
    const secrets = pages.map((page) => secretShown(page)!);
    // Codes of different steps: neither is refused as the other's replay.
    const answers = await Promise.all(
      [one, two].map(({ agent }, at) => agent.submit(pages[at]!, '/account/authenticator/confirm', { code: codeFor(secrets[at]!, at === 0 ? -1 : 1) })),
    );
    const won = answers.findIndex((answer) => /done=authenticator\.added/.test(answer.url));
    assert.ok(won >= 0, `neither was set up: ${answers.map((answer) => `${answer.status} ${answer.url}`).join(', ')}`);
    const lost = answers[1 - won]!;
    assert.equal(lost.status, 409, `both were set up, the second over the first: ${answers.map((answer) => `${answer.status} ${answer.url}`).join(', ')}`);
    assert.match(lost.html, SET_UP_ALREADY);
    assert.equal((await server.secondFactors.totp.verify(sub, codeFor(secrets[1 - won]!, 0), 'a-sign-in')).outcome, 'wrong', "the refused setup's secret is no one's");
  });

  it('a first password set from two sessions at the same moment (a person without one, signed in with a passkey): one is set, the other refused, not written over it', async () => {
    const bea = await server.accounts.createWithoutPassword('bea', {});
    const key = softPasskey();
    await registerSoftPasskeys(server, bea.sub, key);
    const origin = new URL(server.issuer).origin;
    let counter = 0;
    const withPasskey = async () => {
      const agent = new Agent();
      const login = await agent.follow(`${server.issuer}/account`);
      const page = await agent.submit(login, '/passkey', { credential: assertion(key, origin, passkeyChallenge(login), bea.sub, (counter += 1)) });
      assert.equal(page.url, `${server.issuer}/account`, `expected the account page, got ${page.status} ${page.url}`);
      return { agent, page };
    };
    const sessions = [await withPasskey(), await withPasskey()];
    const passwords = ['bea sets this one first', 'bea sets another one too'];
    const answers = await Promise.all(
      sessions.map(({ agent, page }, at) => agent.submit(page, '/account/password/set', { new_password: passwords[at]!, confirm_password: passwords[at]! })),
    );
    const won = answers.findIndex((answer) => /done=password\.set/.test(answer.url));
    assert.ok(won >= 0, `neither was set: ${answers.map((answer) => `${answer.status} ${answer.url}`).join(', ')}`);
    const lost = answers[1 - won]!;
    assert.equal(lost.status, 409, `both were set, the second over the first: ${answers.map((answer) => `${answer.status} ${answer.url}`).join(', ')}`);
    assert.match(lost.html, /You already have a password/);
    const stored = await server.accounts.find(bea.sub);
    assert.ok(passwordStamp(stored!), 'a password is set');
    assert.ok(await server.accounts.verify('bea', passwords[won]!), 'the password set is the one whose answer said so');
  });
});
