/**
 * An adversarial pass on sign-in assurance (2026-12-01 afternoon, sec-factors): each test performs
 * one attack on a factor against a running Latchkey on a real Redis, with openid-client as the app
 * and a cookie-keeping agent as the browser. Two classes: a factor bypassed or counted when it was
 * not performed, and a factor's secret used more than once or by someone else. docs/security.md
 * ("Passkeys and second factors") points here.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { assertion, attestation, isSecondFactor, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'correct horse battery staple';
const MAX_FAILURES = 4;

const codeFor = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });

const errorAt = (page: Page) => (page.url.startsWith(REDIRECT) ? new URL(page.url).searchParams.get('error') : undefined);

describe('attacks: sign-in assurance (factors counted, factors spent)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let strict: oidc.Configuration;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { ACCOUNTS_THROTTLE_MAX_FAILURES: String(MAX_FAILURES), PROXY: 'true', PROXY_HOPS: '1' },
      clients: [
        { client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] },
        { client_id: 'strict', client_secret: SECRET, redirect_uris: [REDIRECT], require_mfa: true },
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [] },
      ],
    });
    const discover = (id: string) => oidc.discovery(new URL(server.issuer), id, SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    [app, strict] = await Promise.all([discover('app'), discover('strict')]);
  });
  after(() => server?.stop());

  const authorize = (agent: Agent, params: Record<string, string> = {}, config = app) => startAuthorization(agent, config, REDIRECT, params);

  async function person(name: string): Promise<{ sub: string; secret: string }> {
    const account = await server.accounts.create(name, PASSWORD);
    const { secret } = await server.secondFactors.totp.begin(account.sub, name, 'test-session');
    // Enrolled with the code of the step before: that step is spent.
    assert.equal(await server.secondFactors.totp.confirm(account.sub, codeFor(secret, -1), 'test-session'), true);
    return { sub: account.sub, secret };
  }

  /** A fresh browser at `name`'s second-factor page (the password typed). */
  async function atSecondFactor(name: string, address?: string): Promise<{ agent: Agent; page: Page; verifier: string }> {
    const agent = new Agent();
    const { page, verifier } = await authorize(agent);
    const second = address
      ? await post(agent, page, '/login', { username: name, password: PASSWORD }, address)
      : await signInSteps(agent, page, { username: name, password: PASSWORD, login: 'required', consent: 'stop', stopAt: REDIRECT });
    assert.ok(isSecondFactor(second), `expected the second-factor page, got ${second.status} ${second.url}`);
    return { agent, page: second, verifier };
  }

  /** Submits a form of `page`, from `address` (X-Forwarded-For: the proxy's word, PROXY_HOPS 1). */
  function post(agent: Agent, page: Page, action: string, fields: Record<string, string>, address: string): Promise<Page> {
    const form = formIn(page.html, action);
    return agent.follow(new URL(form.action, page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': address },
      body: new URLSearchParams({ ...form.hidden, ...fields }),
    }, REDIRECT);
  }

  /** Past the second factor: the consent page, or the app. */
  const passed = (page: Page) => isConsent(page) || page.url.startsWith(REDIRECT);

  it('TOTP: one code sent by two sign-ins at the same moment passes exactly one of them; the other is told it was used (RFC 6238 §5.2, NIST SP 800-63B §5.1.4.2)', async () => {
    const { secret } = await person('tess');
    const [one, two] = await Promise.all([atSecondFactor('tess'), atSecondFactor('tess')]);
    const code = codeFor(secret);
    const answers = await Promise.all([one, two].map(({ agent, page }) => agent.submit(page, '/second-factor', { method: 'totp', code }, REDIRECT)));
    assert.equal(answers.filter(passed).length, 1, `passed: ${answers.map((a) => `${a.status} ${a.url}`).join(', ')}`);
    const refused = answers.find((a) => !passed(a))!;
    assert.equal(refused.status, 401);
    assert.match(refused.html, /already used/);
  });

  it('TOTP: codes two or more steps away (either side, a day back) are refused; one step either side is the whole window (RFC 6238 §5.2, §6)', async () => {
    const { secret } = await person('tom');
    // Three wrong codes: under the pause (MAX_FAILURES), which the right codes below then clear.
    for (const steps of [2, -2, -2880]) {
      const { agent, page } = await atSecondFactor('tom');
      const far = codeFor(secret, steps);
      if ([-1, 0, 1].some((near) => codeFor(secret, near) === far)) continue; // one in a million: the same digits
      const refused = await agent.submit(page, '/second-factor', { method: 'totp', code: far }, REDIRECT);
      assert.equal(refused.status, 401, `a code ${steps} steps away: ${refused.status} ${refused.url}`);
    }
    // (One step back was spent by the enrolment.)
    const { agent, page } = await atSecondFactor('tom');
    assert.ok(passed(await agent.submit(page, '/second-factor', { method: 'totp', code: codeFor(secret, 1) }, REDIRECT)), 'a code one step ahead');
  });

  it('TOTP: once a code is accepted, an older one still inside the window is not (the code the app showed just before, seen over the shoulder or relayed) (RFC 6238 §5.2)', async () => {
    const { secret } = await person('otto');
    const newer = await atSecondFactor('otto');
    assert.ok(passed(await newer.agent.submit(newer.page, '/second-factor', { method: 'totp', code: codeFor(secret, 1) }, REDIRECT)), 'the code of the next step');
    const older = await atSecondFactor('otto');
    const code = codeFor(secret, 0);
    if (code === codeFor(secret, 1)) return; // one in a million: the same digits
    const refused = await older.agent.submit(older.page, '/second-factor', { method: 'totp', code }, REDIRECT);
    assert.equal(refused.status, 401, `the code of the step before: ${refused.status} ${refused.url}`);
    assert.match(refused.html, /already used/);
  });

  it('recovery codes: one code sent by two sign-ins at the same moment passes exactly one; codes made anew leave the old ones dead (NIST SP 800-63B §5.1.2.2)', async () => {
    const { sub } = await person('rita');
    const [code, spare] = await server.secondFactors.recoveryCodes.generate(sub);
    const [one, two] = await Promise.all([atSecondFactor('rita'), atSecondFactor('rita')]);
    const answers = await Promise.all([one, two].map(({ agent, page }) => agent.submit(page, '/second-factor', { method: 'recovery', code: code! }, REDIRECT)));
    assert.equal(answers.filter(passed).length, 1, `passed: ${answers.map((a) => `${a.status} ${a.url}`).join(', ')}`);
    assert.equal(answers.find((a) => !passed(a))!.status, 401);
    const fresh = await server.secondFactors.recoveryCodes.generate(sub);
    const old = await atSecondFactor('rita');
    assert.equal((await old.agent.submit(old.page, '/second-factor', { method: 'recovery', code: spare! }, REDIRECT)).status, 401, 'an unused code of the old set');
    const now = await atSecondFactor('rita');
    assert.ok(passed(await now.agent.submit(now.page, '/second-factor', { method: 'recovery', code: fresh[0]! }, REDIRECT)));
  });

  it('TOTP guessing from a new address for every code is paused per person: the username counts whatever the address (NIST SP 800-63B §5.2.2, OWASP ASVS V2.2.1)', async () => {
    const { secret } = await person('ursula');
    const valid = new Set([-1, 0, 1].map((step) => codeFor(secret, step)));
    let guess = 100_000;
    const wrong = () => {
      do guess += 7919;
      while (valid.has(String(guess % 1_000_000).padStart(6, '0')));
      return String(guess % 1_000_000).padStart(6, '0');
    };
    let paused: Page | undefined;
    let n = 0;
    for (; n < MAX_FAILURES + 2 && !paused; n += 1) {
      const address = `203.0.113.${10 + n}`;
      const { agent, page } = await atSecondFactor('ursula', address);
      const answer = await post(agent, page, '/second-factor', { method: 'totp', code: wrong() }, address);
      if (answer.status === 429) paused = answer;
      else assert.equal(answer.status, 401);
    }
    assert.ok(paused, `${n} wrong codes from ${n} addresses and no pause`);
    assert.ok(n <= MAX_FAILURES, `${n} codes checked before the pause (limit ${MAX_FAILURES})`);
  });

  it('the first factor alone is no session: prompt=none after the password is login_required, and a forged "continue as" (select_account) is refused (OIDC Core §3.1.2.6)', async () => {
    await person('paula');
    const { agent, page } = await atSecondFactor('paula');
    const silent = await authorize(agent, { prompt: 'none' });
    assert.equal(errorAt(silent.page), 'login_required', `got ${silent.page.url}`);
    const chooser = await authorize(agent, { prompt: 'select_account' });
    assert.ok(chooser.page.html.includes('name="password"'), 'nobody to choose: the login form');
    const csrf = page.html.match(/name="csrf" value="([^"]+)"/)![1]!;
    const forged = await agent.follow(`${new URL(page.url).href}/continue`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf }),
    }, REDIRECT);
    assert.equal(forged.status, 400);
    assert.ok(!forged.url.startsWith(REDIRECT));
  });

  it('step-up by select_account: a password-only session choosing "continue" for a client requiring MFA is asked to sign in, and no code is issued (OIDC Core §3.1.2.1)', async () => {
    await server.accounts.create('sam', PASSWORD);
    const agent = new Agent();
    const first = await authorize(agent);
    const done = await signInSteps(agent, first.page, { username: 'sam', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.ok(new URL(done.url).searchParams.get('code'), 'signed in with a password at the app');
    const { page } = await authorize(agent, { prompt: 'select_account' }, strict);
    assert.ok(!page.url.startsWith(REDIRECT), `no code: ${page.url}`);
    assert.ok(!page.html.includes('/continue'), 'no "continue as" for a session below what the client requires');
  });

  it('passkeys on the second-factor page: an assertion of the person\'s own passkey whose userHandle names someone else is refused; with their own, or none, it passes (WebAuthn L3 §7.2 step 6)', async () => {
    const { sub } = await person('vera');
    const other = await server.accounts.create('walt', PASSWORD);
    const key = softPasskey();
    await registerSoftPasskeys(server, sub, key);
    const origin = new URL(server.issuer).origin;
    const swapped = await atSecondFactor('vera');
    const refused = await swapped.agent.submit(swapped.page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(swapped.page), other.sub, 1) }, REDIRECT);
    assert.equal(refused.status, 401, `a userHandle naming walt: ${refused.status} ${refused.url}`);
    const own = await atSecondFactor('vera');
    assert.ok(passed(await own.agent.submit(own.page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(own.page), sub, 2) }, REDIRECT)), 'her own userHandle');
    const none = await atSecondFactor('vera');
    assert.ok(passed(await none.agent.submit(none.page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(none.page), undefined, 3) }, REDIRECT)), 'no userHandle');
  });

  it('passkeys: an assertion without user verification, one made for another RP ID, and one assertion sent twice at the same moment (exactly one passes) (WebAuthn L3 §7.2 steps 12, 15, 17; §13.4.3)', async () => {
    const xena = await server.accounts.create('xena', PASSWORD);
    const key = softPasskey();
    await registerSoftPasskeys(server, xena.sub, key);
    const origin = new URL(server.issuer).origin;
    const agent = new Agent();
    for (const [what, options] of [
      ['user present, not verified (UP only)', { flags: 0x01 }],
      ['signed for another RP ID', { rpId: 'latchkey.example.evil' }],
    ] as const) {
      const { page } = await authorize(agent);
      const refused = await agent.submit(page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(page), xena.sub, 1, options) }, REDIRECT);
      assert.equal(refused.status, 401, `${what}: ${refused.status} ${refused.url}`);
    }
    const { page } = await authorize(agent);
    const once = assertion(key, origin, passkeyChallenge(page), xena.sub, 2);
    const answers = await Promise.all([0, 1].map(() => agent.submit(page, '/passkey', { credential: once }, REDIRECT)));
    assert.equal(answers.filter(passed).length, 1, `passed: ${answers.map((a) => `${a.status} ${a.url}`).join(', ')}`);
  });

  it('passkey registration on the account page: without user verification, for another origin, with a sign-in\'s challenge, or with a challenge used already, nothing is added (WebAuthn L3 §7.1 steps 9, 11, 15)', async () => {
    const yara = await server.accounts.create('yara', PASSWORD);
    const origin = new URL(server.issuer).origin;
    const agent = new Agent();
    const accountPage = async () => {
      const shown = await agent.follow(`${server.issuer}/account`);
      return shown.url.endsWith('/account') ? shown : signInSteps(agent, shown, { username: 'yara', password: PASSWORD, login: 'required', consent: 'stop' });
    };
    const add = (shown: Page, credential: string) => agent.submit(shown, '/account/passkeys/add', { name: 'attempt', credential });
    const signIn = await authorize(new Agent());
    // Each made for the challenge of the page it is sent from (a new page replaces the person's registration challenge).
    const refusals: [string, (challenge: string) => string][] = [
      ['user present, not verified', (challenge) => attestation(softPasskey(), origin, challenge, { flags: 0x41 })],
      ['another origin', (challenge) => attestation(softPasskey(), 'https://latchkey.example.evil', challenge)],
      ["a sign-in's challenge", () => attestation(softPasskey(), origin, passkeyChallenge(signIn.page))],
    ];
    for (const [what, credential] of refusals) {
      const page = await accountPage();
      const answer = await add(page, credential(passkeyChallenge(page)));
      assert.ok(answer.status >= 400 && answer.status < 500, `${what}: ${answer.status}`);
    }
    const shown = await accountPage();
    const used = passkeyChallenge(shown);
    assert.match((await add(shown, attestation(softPasskey(), origin, used))).html, /Passkey added/);
    const again = await add(await accountPage(), attestation(softPasskey(), origin, used));
    assert.ok(again.status >= 400 && again.status < 500, `a challenge used already: ${again.status}`);
    assert.equal((await server.secondFactors.records.read(yara.sub)).passkeys.length, 1, 'only the genuine one');
  });

  it("a session signed in with the password alone before the person added an authenticator app changes no credential, however recent: a passkey, new recovery codes, the app removed or the password changed each send it to sign in again, with the second factor, after which they are done (NIST SP 800-63B §6.1.2.1)", async () => {
    const gina = await server.accounts.create('gina', PASSWORD);
    const origin = new URL(server.issuer).origin;
    // Whoever has only the password signs in to the account page with it: one factor, so far all there is.
    const agent = new Agent();
    const signedIn = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'gina', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.ok(signedIn.url.endsWith('/account'), `${signedIn.status} ${signedIn.url}`);
    // The person adds an authenticator app (in their own browser) a moment later.
    const { secret } = await server.secondFactors.totp.begin(gina.sub, 'gina', 'own-browser');
    assert.equal(await server.secondFactors.totp.confirm(gina.sub, codeFor(secret), 'own-browser'), true);

    const page = await agent.follow(`${server.issuer}/account`);
    assert.ok(page.url.endsWith('/account'), 'the session itself goes on');
    assert.doesNotMatch(page.html, /passkey-enrol-form/, 'no passkey registration offered');
    assert.match(page.html, /\/account\/sign-in\?again=passkeys/);
    const { hidden } = formIn(page.html, '/account/password');
    const post = (path: string, fields: Record<string, string>) =>
      agent.follow(`${server.issuer}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf: hidden.csrf!, ...fields }) }, `${server.issuer}/interaction/`);
    const attempts: [string, Record<string, string>][] = [
      ['/account/passkeys/add', { name: 'thief', credential: attestation(softPasskey(), origin, 'a-challenge-never-offered') }],
      ['/account/recovery-codes', {}],
      ['/account/authenticator/remove', {}],
      ['/account/password', { current_password: PASSWORD, new_password: 'a thief chose this new passphrase', confirm_password: 'a thief chose this new passphrase', sign_out_others: 'yes' }],
    ];
    for (const [path, fields] of attempts) {
      const answer = await post(path, fields);
      assert.ok(answer.url.startsWith(`${server.issuer}/interaction/`), `${path}: sent to sign in again, not ${answer.status} ${answer.url}`);
    }
    const factors = await server.secondFactors.summary(gina.sub);
    assert.equal(factors.passkeys.length, 0);
    assert.ok(factors.totp, 'the authenticator app stays');
    assert.equal(factors.recoveryCodesLeft, 0, 'no recovery codes made');
    assert.ok(await server.accounts.verify('gina', PASSWORD), 'the password stays');

    // Signed in again with the password and the app's code, the same session may.
    const again = await agent.follow(`${server.issuer}/account/sign-in?again=recovery-codes`);
    const second = await signInSteps(agent, again, { username: 'gina', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.ok(isSecondFactor(second), `${second.status} ${second.url}`);
    const back = await agent.submit(second, '/second-factor', { method: 'totp', code: codeFor(secret, 1) });
    assert.ok(back.url.includes('/account'), `${back.status} ${back.url}`);
    const codes = await agent.submit(await agent.follow(`${server.issuer}/account`), '/account/recovery-codes', {});
    assert.equal(codes.status, 200);
    assert.ok((await server.secondFactors.summary(gina.sub)).recoveryCodesLeft > 0, 'recovery codes made');
  });

  it('a person disabled while their device approval waits at the second factor: the device is told access_denied, never tokens (RFC 8628 §3.5)', async () => {
    const { secret } = await person('dev-dis');
    const metadata = app.serverMetadata();
    const form = (params: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params) });
    const started = (await (await fetch(metadata.device_authorization_endpoint!, form({ client_id: 'tv', scope: 'openid' }))).json()) as Record<string, string>;
    const agent = new Agent();
    const entry = await agent.follow(`${server.issuer}/device`);
    const confirm = await agent.submit(entry, '/device', { user_code: started.user_code! });
    const login = await agent.submit(confirm, '/device', { confirm: 'yes' });
    const second = await signInSteps(agent, login, { username: 'dev-dis', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.ok(isSecondFactor(second), `expected the second-factor page, got ${second.status} ${second.url}`);
    await server.accounts.setDisabled('dev-dis', true);
    const answer = await agent.submit(second, '/second-factor', { method: 'totp', code: codeFor(secret) });
    assert.ok(answer.status < 500, `got ${answer.status} ${answer.url}`);
    const poll = (await (await fetch(metadata.token_endpoint!, form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: started.device_code!, client_id: 'tv' }))).json()) as Record<string, string>;
    assert.equal(poll.error, 'access_denied', JSON.stringify(poll));
  });

  for (const [way, act] of [
    ['reloads the page', (agent: Agent, page: Page) => agent.follow(page.url, {}, REDIRECT)],
    ['sends a right code', async (agent: Agent, page: Page, secret: string) => agent.submit(page, '/second-factor', { method: 'totp', code: codeFor(secret) }, REDIRECT)],
    ['uses their passkey', async (agent: Agent, page: Page, _secret: string, key: ReturnType<typeof softPasskey>, sub: string) =>
      agent.submit(page, '/passkey', { credential: assertion(key, new URL(server.issuer).origin, passkeyChallenge(page), sub, 1) }, REDIRECT)],
  ] as const) {
    it(`a person disabled while on the second-factor page, who then ${way}: the app is told access_denied, and no session is made (RFC 6749 §4.1.2.1)`, async () => {
      const name = `dis-${way.split(' ')[0]}`;
      const { sub, secret } = await person(name);
      const key = softPasskey();
      await registerSoftPasskeys(server, sub, key);
      const { agent, page } = await atSecondFactor(name);
      await server.accounts.setDisabled(name, true);
      const answer = await act(agent, page, secret, key, sub);
      assert.equal(errorAt(answer), 'access_denied', `got ${answer.status} ${answer.url}`);
      const silent = await authorize(agent, { prompt: 'none' });
      assert.equal(errorAt(silent.page), 'login_required');
    });
  }

  it('a person disabled while on the consent page: reloading it, or allowing, tells the app access_denied; nothing is granted (RFC 6749 §4.1.2.1)', async () => {
    for (const way of ['reload', 'allow'] as const) {
      const name = `consent-${way}`;
      await server.accounts.create(name, PASSWORD);
      const agent = new Agent();
      const { page } = await authorize(agent);
      const consent = await signInSteps(agent, page, { username: name, password: PASSWORD, login: 'required', consent: 'stop', stopAt: REDIRECT });
      assert.ok(isConsent(consent), `expected the consent page, got ${consent.url}`);
      await server.accounts.setDisabled(name, true);
      const answer = way === 'reload' ? await agent.follow(consent.url, {}, REDIRECT) : await agent.submit(consent, '/confirm', {}, REDIRECT);
      assert.equal(errorAt(answer), 'access_denied', `${way}: got ${answer.status} ${answer.url}`);
      assert.equal(new URL(answer.url).searchParams.get('code'), null);
    }
  });
});

describe('attacks: a budget of wrong second-factor codes (seventh fresh-eyes passes of 2026-12-06, evening)', function () {
  this.timeout(90_000);
  /** accounts.throttle.maxCodeFailures here (the default is 100); the pauses are lifted out of the way (maxFailures). */
  const BUDGET = 6;
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { ACCOUNTS_THROTTLE_MAX_FAILURES: '1000', ACCOUNTS_THROTTLE_MAX_CODE_FAILURES: String(BUDGET) },
      clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }],
    });
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => server?.stop());

  async function atSecondFactor(name: string): Promise<{ agent: Agent; page: Page }> {
    const agent = new Agent();
    const { page } = await startAuthorization(agent, app, REDIRECT);
    const second = await signInSteps(agent, page, { username: name, password: PASSWORD, login: 'required', consent: 'stop', stopAt: REDIRECT });
    assert.ok(isSecondFactor(second), `expected the second-factor page, got ${second.status} ${second.url}`);
    return { agent, page: second };
  }
  const passed = (page: Page) => isConsent(page) || page.url.startsWith(REDIRECT);

  it("a thief holding the password gets a budget of wrong authenticator-app codes, not a rate: past it (no completed sign-in between), even the right code is refused unchecked, at any sign-in; a recovery code still signs in, and starts the count afresh (NIST SP 800-63B §5.2.2: no more than 100 consecutive failed attempts)", async () => {
    // Before this pass the pauses were the only limit: five codes every accounts.throttle.maxDelay
    // (900 s), about 480 a day for ever, one chance in 700 a day of a six-digit code.
    const account = await server.accounts.create('vera', PASSWORD);
    const { secret } = await server.secondFactors.totp.begin(account.sub, 'vera', 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(account.sub, codeFor(secret, -1), 'test-session'), true);
    const [recovery] = await server.secondFactors.recoveryCodes.generate(account.sub);
    const valid = () => new Set([-1, 0, 1].map((step) => codeFor(secret, step)));
    let guess = 123_457;
    const wrong = () => {
      do guess = (guess + 7919) % 1_000_000;
      while (valid().has(String(guess).padStart(6, '0')));
      return String(guess).padStart(6, '0');
    };
    // The budget spent over two sign-ins: the count is the person's, not one sign-in's.
    for (const tries of [BUDGET - 2, 2]) {
      const signIn = await atSecondFactor('vera');
      let { page } = signIn;
      for (let i = 0; i < tries; i += 1) {
        page = await signIn.agent.submit(page, '/second-factor', { method: 'totp', code: wrong() }, REDIRECT);
        assert.equal(page.status, 401, `wrong code ${i + 1}: ${page.status} ${page.url}`);
      }
    }
    const thief = await atSecondFactor('vera');
    const refused = await thief.agent.submit(thief.page, '/second-factor', { method: 'totp', code: codeFor(secret, 1) }, REDIRECT);
    assert.ok(!passed(refused), `the right code, past the budget, signed in: ${refused.status} ${refused.url}`);
    assert.equal(refused.status, 403);
    assert.match(refused.html, /not accepted now/);
    // The person, with a recovery code: signed in, and the count starts afresh.
    const person = await atSecondFactor('vera');
    assert.ok(passed(await person.agent.submit(person.page, '/second-factor', { method: 'recovery', code: recovery! }, REDIRECT)), 'a recovery code past the budget');
    const later = await atSecondFactor('vera');
    const code = codeFor(secret, 1);
    // (The step before was spent at enrolment; a refused code spends nothing.)
    assert.ok(passed(await later.agent.submit(later.page, '/second-factor', { method: 'totp', code }, REDIRECT)), 'the right code after a completed sign-in');
  });
});
