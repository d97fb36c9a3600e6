/**
 * The second-factor step and step-up, with openid-client as the app and a cookie-keeping agent as
 * the person, on a real Redis: a password-only person gets amr pwd; after enrolling an authenticator
 * app, a password sign-in asks for a code (computed here with otpauth), refuses a wrong or replayed
 * one and charges wrong ones to the brute-force throttle; a recovery code works once; a client that
 * requires MFA (require_mfa) or an app asking acr_values=mfa gets acr mfa and amr with mfa, or, for
 * a password-only person, the enrolment prompt and unmet_authentication_requirements.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { createLogger } from '../../src/ops/logger.js';
import { digestOf, secretDigestOf } from '../../src/store/record-keys.js';
import { developerSignIn } from '../helpers/developer.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, isLogin, signInSteps, startAuthorization } from '../helpers/sign-in.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'correct horse battery staple';

/**
 * accounts.reauthenticateAfter in this suite, seconds: a sign-in older than this is asked again.
 * Long enough for a fresh session's few requests on a loaded machine (2 s was overrun: bob's third
 * post on the account page was sent to sign in again, 200 !== 404; 5 s left 2 to 4 s of margin on a
 * runner five times slower).
 */
const RECENT_SECONDS = 8;
/** Long enough for a sign-in to become older than RECENT_SECONDS. */
const staleAfter = () => new Promise((done) => setTimeout(done, (RECENT_SECONDS + 1) * 1000 + 100));

const typed = new Set<string>();
const codeFor = (secret: string, steps = 0) => {
  const code = TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });
  typed.add(code).add(secret);
  return code;
};

const isSecondFactor = (page: Page) => page.url.includes('/interaction/') && page.html.includes('/second-factor');

describe('e2e: second factor after a password, and step-up (openid-client)', function () {
  this.timeout(60_000);
  let server: TestServer;
  const configs: Record<string, oidc.Configuration> = {};
  const totpSecrets: Record<string, string> = {};

  /** Enrols an authenticator app for `username` as the account page does (begin, then a code). */
  async function enrolTotp(username: string): Promise<string> {
    const account = (await server.accounts.findByUsername(username))!;
    const { secret } = await server.secondFactors.totp.begin(account.sub, username, 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(account.sub, codeFor(secret, -1), 'test-session'), true);
    return secret;
  }

  const logLines: string[] = [];

  before(async () => {
    server = await startServer({
      ownRedis: true,
      logger: createLogger('info', { write: (line: string) => void logLines.push(line) }),
      // A short bound for the account page's "sign in again" (the default is 300 s).
      env: { ACCOUNTS_THROTTLE_MAX_FAILURES: '3', ACCOUNTS_REAUTHENTICATE_AFTER: String(RECENT_SECONDS) },
      clients: [
        { client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] },
        { client_id: 'strict', client_secret: SECRET, redirect_uris: [REDIRECT], require_mfa: true },
      ],
    });
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin']) await server.accounts.create(name, PASSWORD);
    totpSecrets.alice = await enrolTotp('alice');
    totpSecrets.dave = await enrolTotp('dave');
    for (const id of ['app', 'strict']) {
      configs[id] = await oidc.discovery(new URL(server.issuer), id, SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    }
  });
  after(() => server?.stop());

  /** An authorization request of `client`, followed to our first page (or straight back to the app). */
  const authorize = (agent: Agent, client: string, params: Record<string, string> = {}) => startAuthorization(agent, configs[client]!, REDIRECT, params);

  async function claimsAt(client: string, page: Page, verifier: string, agent?: Agent) {
    if (agent && isConsent(page)) page = await agent.submit(page, '/confirm', {}, REDIRECT);
    assert.ok(page.url.startsWith(REDIRECT), `expected to be back at the app, got ${page.status} ${page.url}\n${page.html.slice(0, 500)}`);
    const tokens = await oidc.authorizationCodeGrant(configs[client]!, new URL(page.url), { pkceCodeVerifier: verifier });
    return tokens.claims()!;
  }

  /** Password step of `username`: returns the page after it (the second-factor page, or back at the app). */
  async function password(agent: Agent, client: string, username: string, params: Record<string, string> = {}) {
    const { page, verifier } = await authorize(agent, client, params);
    return { page: await signInSteps(agent, page, { username, password: PASSWORD, login: 'required', stopAt: REDIRECT }), verifier };
  }

  it('advertises the acr values; a password-only person gets amr pwd and acr pwd', async () => {
    const metadata = configs.app!.serverMetadata();
    assert.deepEqual(metadata.acr_values_supported, ['pwd', 'mfa', 'phr']);
    const { page, verifier } = await password(new Agent(), 'app', 'bob');
    const claims = await claimsAt('app', page, verifier);
    assert.deepEqual(claims.amr, ['pwd']);
    assert.equal(claims.acr, 'pwd');
    assert.equal(typeof claims.auth_time, 'number');
  });

  /** The authenticator-app code alice signed in with in the test below, for the replay after it. */
  let aliceSpent = '';

  it('with an authenticator app: the password asks for a code; a wrong one is refused, the right one signs in with amr pwd otp mfa', async () => {
    const agent = new Agent();
    const { page, verifier } = await password(agent, 'app', 'alice');
    assert.ok(isSecondFactor(page), `expected the second-factor page, got ${page.url}`);
    const wrong = await agent.submit(page, '/second-factor', { method: 'totp', code: codeFor(totpSecrets.alice!, 20) }, REDIRECT);
    assert.equal(wrong.status, 401);
    assert.match(wrong.html, /That code is not right/);
    const before = Math.floor(Date.now() / 1000);
    aliceSpent = codeFor(totpSecrets.alice!);
    const done = await agent.submit(wrong, '/second-factor', { method: 'totp', code: aliceSpent }, REDIRECT);
    const claims = await claimsAt('app', done, verifier, agent);
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(claims.acr, 'mfa');
    assert.ok((claims.auth_time as number) >= before - 1);
  });

  it('a code already used is refused (replay), in another sign-in', async () => {
    const agent = new Agent();
    const { page } = await password(agent, 'app', 'alice');
    // The very code spent above, not the current one: a new 30 s step may have begun since (the
    // sign-in above and the password step here take seconds on a loaded machine), whose code is fresh.
    const replay = await agent.submit(page, '/second-factor', { method: 'totp', code: aliceSpent }, REDIRECT);
    assert.equal(replay.status, 401);
    assert.match(replay.html, /already used/);
  });

  it('wrong codes share the brute-force throttle: the third pauses sign-in, and then even a right code is not checked', async () => {
    const agent = new Agent();
    let { page } = await password(agent, 'app', 'dave');
    for (let i = 0; i < 2; i += 1) page = await agent.submit(page, '/second-factor', { method: 'totp', code: codeFor(totpSecrets.dave!, 40 + i) }, REDIRECT);
    assert.equal(page.status, 401);
    page = await agent.submit(page, '/second-factor', { method: 'totp', code: codeFor(totpSecrets.dave!, 60) }, REDIRECT);
    assert.equal(page.status, 429);
    assert.ok(Number(page.headers.get('retry-after')) > 0);
    const right = await agent.submit(page, '/second-factor', { method: 'totp', code: codeFor(totpSecrets.dave!) }, REDIRECT);
    assert.equal(right.status, 429);
  });

  it('a recovery code works once, not twice', async () => {
    const sub = (await server.accounts.findByUsername('alice'))!.sub;
    const [code] = await server.secondFactors.recoveryCodes.generate(sub);
    typed.add(code!);
    const agent = new Agent();
    const { page, verifier } = await password(agent, 'app', 'alice');
    const done = await agent.submit(page, '/second-factor', { method: 'recovery', code: code! }, REDIRECT);
    const claims = await claimsAt('app', done, verifier, agent);
    assert.deepEqual(claims.amr, ['pwd', 'mfa']);
    assert.equal(claims.acr, 'mfa');

    const again = new Agent();
    const second = await password(again, 'app', 'alice');
    const refused = await again.submit(second.page, '/second-factor', { method: 'recovery', code: code! }, REDIRECT);
    assert.equal(refused.status, 401);
  });

  it('a client requiring MFA: a password-only person is asked to enrol, and the app gets unmet_authentication_requirements', async () => {
    const agent = new Agent();
    const { page } = await password(agent, 'strict', 'bob');
    assert.equal(page.status, 403);
    assert.match(page.html, /href="\/account"/);
    const back = await agent.submit(page, '/unmet', {}, REDIRECT);
    const params = new URL(back.url).searchParams;
    assert.equal(params.get('error'), 'unmet_authentication_requirements');
  });

  it('"Return to the application" (unmet) is taken only at the enrolment prompt: before sign-in, for a client not requiring MFA, or at the second-factor page it is refused, and the app is told nothing', async () => {
    const unmet = async (agent: Agent, page: Page) => {
      const uid = new URL(page.url).pathname.split('/')[2];
      const csrf = page.html.match(/name="csrf" value="([^"]+)"/)![1]!;
      return agent.follow(`${server.url}/interaction/${uid}/unmet`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf }) }, REDIRECT);
    };
    const outOfTurn = async (agent: Agent, page: Page, what: string) => {
      const refused = await unmet(agent, page);
      assert.equal(refused.status, 400, `${what}: ${refused.url}`);
      assert.match(refused.html, /this sign-in request is not waiting for a second factor to be set up/, what);
    };
    const plain = new Agent();
    const { page: signIn, verifier } = await authorize(plain, 'app');
    assert.ok(isLogin(signIn));
    await outOfTurn(plain, signIn, 'a plain sign-in page');
    const strict = new Agent();
    const { page: strictSignIn } = await authorize(strict, 'strict');
    await outOfTurn(strict, strictSignIn, 'before anyone signed in');
    const alice = new Agent();
    const { page: second } = await password(alice, 'strict', 'alice');
    assert.ok(isSecondFactor(second));
    await outOfTurn(alice, second, 'at the second-factor page');

    // The refused request goes on: the sign-in is still the app's to finish.
    const after = await signInSteps(plain, signIn, { username: 'bob', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    assert.deepEqual((await claimsAt('app', after, verifier)).amr, ['pwd']);
    // At the prompt, reloaded too, it is taken.
    const bob = new Agent();
    const { page: prompt } = await password(bob, 'strict', 'bob');
    assert.equal(prompt.status, 403);
    const reloaded = await bob.follow(`${server.url}/interaction/${new URL(prompt.url).pathname.split('/')[2]}`);
    assert.equal(reloaded.status, 403);
    const back = await unmet(bob, reloaded);
    assert.equal(new URL(back.url).searchParams.get('error'), 'unmet_authentication_requirements');
  });

  it('an app asking acr_values=mfa is treated the same; a person with a second factor gets acr mfa', async () => {
    const bob = new Agent();
    const { page } = await password(bob, 'app', 'bob', { acr_values: 'mfa' });
    assert.equal(page.status, 403);
    const back = await bob.submit(page, '/unmet', {}, REDIRECT);
    assert.equal(new URL(back.url).searchParams.get('error'), 'unmet_authentication_requirements');

    const alice = new Agent();
    const { page: second, verifier } = await password(alice, 'app', 'alice', { acr_values: 'mfa' });
    const done = await alice.submit(second, '/second-factor', { method: 'totp', code: codeFor(totpSecrets.alice!, 1) }, REDIRECT);
    assert.equal((await claimsAt('app', done, verifier, alice)).acr, 'mfa');
  });

  it('an essential acr below the sign-in (claims parameter, OIDC Core §5.5.1.1): a person with an authenticator app asked ["pwd"] signs in once and the ID token says pwd, not the login page again and again; asked ["pwd","mfa"], mfa', async () => {
    await server.accounts.create('gwen', PASSWORD);
    const secret = await enrolTotp('gwen');
    const agent = new Agent();
    const asked = (values: string[]) => ({ claims: JSON.stringify({ id_token: { acr: { essential: true, values } } }) });
    const { page, verifier } = await password(agent, 'app', 'gwen', asked(['pwd']));
    assert.ok(isSecondFactor(page), `expected the second-factor page, got ${page.url}`);
    const done = await agent.submit(page, '/second-factor', { method: 'totp', code: codeFor(secret) }, REDIRECT);
    // Before the fix: the login page of a new interaction, every time round.
    assert.ok(!isLogin(done), `sent to sign in again: ${done.url}`);
    const claims = await claimsAt('app', done, verifier, agent);
    assert.equal(claims.acr, 'pwd', 'one of the values asked (the highest the sign-in meets)');
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa'], 'amr says what was done');

    // The same session, asked for either level: the one reached, silently.
    const again = await authorize(agent, 'app', asked(['pwd', 'mfa']));
    assert.equal((await claimsAt('app', again.page, again.verifier, agent)).acr, 'mfa');
    // A level above the session's asks to sign in again, as acr_values does.
    const higher = await authorize(agent, 'app', { ...asked(['phr']), prompt: 'none' });
    assert.equal(new URL(higher.page.url).searchParams.get('error'), 'login_required');
  });

  it('an app asking acr_values=phr (phishing-resistant) is offered no codes: an authenticator-app code is refused', async () => {
    const agent = new Agent();
    const { page } = await password(agent, 'app', 'alice', { acr_values: 'phr' });
    assert.match(page.html, /Confirm it is you/, `got ${page.url}`);
    assert.doesNotMatch(page.html, /name="method" value="totp"/);
    assert.match(page.html, /asks for a passkey/);
    const refused = await agent.follow(`${server.url}${new URL(page.url).pathname}/second-factor`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: page.html.match(/name="csrf" value="([^"]+)"/)![1]!, method: 'totp', code: codeFor(totpSecrets.alice!, -1) }),
    });
    assert.equal(refused.status, 400);
    assert.match(refused.html, /This application asks for a passkey\./);
  });

  it('step-up: a password session is asked to sign in again for a client requiring MFA; an MFA session is not, unless prompt=login', async () => {
    const agent = new Agent();
    const first = await password(agent, 'app', 'carol');
    assert.equal((await claimsAt('app', first.page, first.verifier)).acr, 'pwd');
    const carolSecret = await enrolTotp('carol');

    const stepUp = await authorize(agent, 'strict');
    assert.ok(isLogin(stepUp.page), 'the pwd session is not enough: the login page again');
    const second = await signInSteps(agent, stepUp.page, { username: 'carol', password: PASSWORD, stopAt: REDIRECT });
    const done = await agent.submit(second, '/second-factor', { method: 'totp', code: codeFor(carolSecret) }, REDIRECT);
    const claims = await claimsAt('strict', done, stepUp.verifier, agent);
    assert.equal(claims.acr, 'mfa');
    assert.ok((claims.amr as string[]).includes('mfa'));

    const sso = await authorize(agent, 'strict');
    assert.equal((await claimsAt('strict', sso.page, sso.verifier, agent)).acr, 'mfa', 'the MFA session serves the strict client without a page');
    const forced = await authorize(agent, 'strict', { prompt: 'login' });
    assert.ok(isLogin(forced.page), 'prompt=login still forces a fresh sign-in');
    const aged = await authorize(agent, 'app', { max_age: '0' });
    assert.ok(isLogin(aged.page), 'max_age=0 still forces a fresh sign-in');
  });

  it('bad input: a second-factor form without the password step, with a bad method, or a forged CSRF token', async () => {
    const agent = new Agent();
    const { page } = await authorize(agent, 'app');
    const uid = new URL(page.url).pathname.split('/')[2];
    const csrf = page.html.match(/name="csrf" value="([^"]+)"/)![1]!;
    const post = (path: string, fields: Record<string, string>) =>
      agent.follow(`${server.url}/interaction/${uid}/${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) });
    const early = await post('second-factor', { csrf, method: 'totp', code: '123456' });
    assert.equal(early.status, 400);
    assert.match(early.html, /not waiting for a second factor/);
    const forged = await post('second-factor', { csrf: 'forged', method: 'totp', code: '123456' });
    assert.equal(forged.status, 403);
    for (const credential of ['{not json', 'null', '[]', '{"id":"x","response":{"userHandle":"../x"}}', '{"id":"x","type":"public-key","response":{"userHandle":"eA","clientDataJSON":"e30","authenticatorData":"AA","signature":"AA"}}']) {
      const garbage = await post('passkey', { csrf, credential });
      assert.equal(garbage.status, 401, credential);
      assert.match(garbage.html, /passkey was not accepted/);
    }
    const second = await password(new Agent(), 'app', 'alice');
    const badMethod = await new Agent().follow(second.page.url); // another browser: not its interaction
    assert.equal(badMethod.status, 400);

    const owner = new Agent();
    const { page: factorPage } = await password(owner, 'app', 'alice');
    assert.ok(isSecondFactor(factorPage));
    const unknownMethod = await owner.submit(factorPage, '/second-factor', { method: 'sms', code: '123456' }, REDIRECT);
    assert.equal(unknownMethod.status, 400);
    assert.match(unknownMethod.html, /Enter the code/);
  });

  it('bad input on the account page: a broken passkey, a passkey that is not yours, a code without a pending set-up', async () => {
    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'bob', password: PASSWORD, login: 'required' });
    assert.equal(page.url, `${server.issuer}/account`);
    const csrf = formIn(page.html, '/account/recovery-codes').hidden.csrf!;
    const post = (path: string, fields: Record<string, string>) =>
      agent.follow(`${server.issuer}/account${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf, ...fields }) });
    const broken = await post('/passkeys/add', { name: 'x', credential: '{"id":"x","response":{}}' });
    assert.equal(broken.status, 400);
    assert.match(broken.html, /could not be added/);
    assert.equal((await post('/passkeys/add', { name: 'x', credential: 'not json' })).status, 400);
    const notYours = await post('/passkeys/remove', { id: 'someone-elses' });
    assert.equal(notYours.status, 404);
    const noSetup = await post('/authenticator/confirm', { code: '123456' });
    assert.equal(noSetup.status, 400);
    assert.match(noSetup.html, /Start again/);
    const forged = await agent.follow(`${server.issuer}/account/recovery-codes`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=forged' });
    assert.equal(forged.status, 403);
    assert.equal((await server.secondFactors.summary((await server.accounts.findByUsername('bob'))!.sub)).recoveryCodesLeft, 0);
  });

  it('the account page asks a session signed in longer ago than accounts.reauthenticateAfter to sign in again before removing the authenticator app; a fresh one is not asked', async () => {
    const secret = await enrolTotp('erin');
    const sub = (await server.accounts.findByUsername('erin'))!.sub;
    const agent = new Agent();
    /** The password and an authenticator-app code (`steps` windows ahead, each code used once), from the page asking for them. */
    const signIn = async (from: Page, steps: number) => {
      const factor = await signInSteps(agent, from, { username: 'erin', password: PASSWORD, login: 'required' });
      assert.ok(isSecondFactor(factor), `expected the second-factor page, got ${factor.url}`);
      const after = await agent.submit(factor, '/second-factor', { method: 'totp', code: codeFor(secret, steps) });
      return isConsent(after) ? agent.submit(after, '/confirm', {}) : after; // the account page's consent, asked once
    };
    let page = await signIn(await agent.follow(`${server.issuer}/account`), 0);
    assert.equal(page.url, `${server.issuer}/account`);
    // The sign-in becomes older than the bound.
    await staleAfter();
    const stalePage = await agent.follow(`${server.issuer}/account`);
    assert.match(stalePage.html, /href="\/account\/sign-in\?again=passkeys"/, 'adding a passkey offers "sign in again" first');
    assert.doesNotMatch(stalePage.html, /passkey-enrol-form/);
    // Every action that changes how erin signs in sends her to sign in again, and changes nothing.
    const csrf = formIn(page.html, '/account/recovery-codes').hidden.csrf!;
    for (const [path, fields] of [['/passkeys/remove', { id: 'any' }], ['/passkeys/add', { name: 'x', credential: '{}' }], ['/authenticator/start', {}], ['/recovery-codes', {}], ['/links/remove', { id: 'corp:x' }], ['/password/set', {}]] as const) {
      const asked = await agent.follow(`${server.issuer}/account${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf, ...fields }) });
      assert.ok(isLogin(asked), `${path}: expected to be asked to sign in again, got ${asked.status} ${asked.url}`);
    }
    assert.equal((await server.secondFactors.summary(sub)).recoveryCodesLeft, 0);
    const stale = await agent.submit(page, '/account/authenticator/remove', {});
    assert.ok(isLogin(stale), `expected to be asked to sign in again, got ${stale.status} ${stale.url}`);
    assert.ok((await server.secondFactors.summary(sub)).totp, 'the authenticator app is still there');

    page = await signIn(stale, 1);
    assert.equal(page.url, `${server.issuer}/account?done=authenticator.signed-in-again#authenticator`, 'back at the section');
    assert.match(page.html, /You signed in again/);
    assert.match(page.html, /passkey-enrol-form/, 'a fresh session can add a passkey');
    const removed = await agent.submit(page, '/account/authenticator/remove', {});
    assert.match(removed.url, new RegExp(`^${server.issuer}/account\\?done=authenticator\\.removed\\.[\\w-]+#authenticator$`));
    assert.equal((await server.secondFactors.summary(sub)).totp, undefined, 'removed after a fresh sign-in');

    // Bad input: a section name that is not a plain name is ignored, going out and coming back.
    const odd = new URL((await agent.request(`${server.issuer}/account/sign-in?again=${encodeURIComponent('x"><b')}`)).headers.get('location')!);
    assert.equal(odd.searchParams.get('prompt'), null);
    assert.doesNotMatch(odd.searchParams.get('state')!, /\./);
    const back = await agent.request(`${server.issuer}/account/callback?code=x&state=${encodeURIComponent('abc./evil.example')}`);
    assert.equal(back.headers.get('location'), '/account');
  });

  it("the developer page asks a session signed in longer ago than accounts.reauthenticateAfter to sign in again before rotating an app's secret (a stolen session cookie alone would read the new secret); a fresh one is not asked", async () => {
    await server.accounts.create('gina', PASSWORD);
    const { agent, page } = await developerSignIn(server.issuer, 'gina', PASSWORD);
    const registered = await agent.submit(page, '/developer/apps', { name: 'Gina web', type: 'web', redirect_uris: REDIRECT });
    assert.equal(registered.status, 200);
    const appId = registered.html.match(/app-[\w-]{12}/)![0];
    // The digest the store keeps of the app's secret (the secret itself is nowhere after it is shown).
    const secretOf = async () => secretDigestOf(((await server.provider.Client.find(appId)) as unknown as { clientSecret: string }).clientSecret);
    const first = await secretOf();
    // The sign-in becomes older than the bound: the cookie alone, as a thief would hold it.
    await staleAfter();
    const stalePage = await agent.follow(`${server.issuer}/developer`);
    for (const leaked of ['', 'yes']) {
      const asked = await agent.submit(stalePage, `/developer/apps/${appId}/secret`, leaked ? { leaked } : {});
      assert.ok(isLogin(asked), `expected to be asked to sign in again, got ${asked.status} ${asked.url}`);
      assert.doesNotMatch(asked.html, /id="client-secret"/);
      assert.equal(await secretOf(), first, 'the secret is not rotated');
    }
    // Signed in again: back on the page, and the rotation shows the new secret.
    const asked = await agent.submit(stalePage, `/developer/apps/${appId}/secret`, {});
    const back = await signInSteps(agent, asked, { username: 'gina', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(back.url, `${server.issuer}/developer?done=apps.signed-in-again#apps`);
    assert.match(back.html, /You signed in again/);
    const rotated = await agent.submit(back, `/developer/apps/${appId}/secret`, {});
    assert.equal(rotated.status, 200);
    const shown = rotated.html.match(/id="client-secret"[^>]*>([^<]+)</)?.[1];
    assert.ok(shown && digestOf(shown) !== first && digestOf(shown) === (await secretOf()), 'the new secret is shown after a fresh sign-in');
  });

  it('metrics count uses and failures by method and outcome; log events name the person, never a code or secret', async () => {
    const metrics = await (await fetch(server.metricsUrl!)).text();
    const count = (series: string) => Number(metrics.split('\n').find((line) => line.startsWith(`${series} `))?.split(' ')[1] ?? 0);
    assert.ok(count('latchkey_second_factor_total{method="totp",outcome="success"}') >= 3);
    assert.ok(count('latchkey_second_factor_total{method="totp",outcome="replayed"}') >= 1);
    assert.ok(count('latchkey_second_factor_total{method="totp",outcome="failure"}') >= 1);
    assert.ok(count('latchkey_second_factor_total{method="totp",outcome="throttled"}') >= 1);
    assert.ok(count('latchkey_second_factor_total{method="recovery_code",outcome="success"}') >= 1);
    assert.ok(count('latchkey_second_factor_total{method="passkey",outcome="failure"}') >= 1);
    const events = logLines.map((line) => (JSON.parse(line) as { event?: string }).event);
    for (const event of ['second_factor.succeeded', 'second_factor.failed', 'second_factor.throttled', 'passkey.failed']) assert.ok(events.includes(event), event);
    const everything = logLines.join('\n');
    // A six-digit code counts only as a word of its own (a JSON value, a form field), not inside a
    // longer number (a time, a duration's fraction: "ms":6.957824 matched a code once) or an
    // identifier (a request id or session uid holds digit runs too).
    const pattern = (secret: string) => new RegExp(/^\d{6}$/.test(secret) ? `(?<![0-9A-Za-z.])${secret}(?![0-9A-Za-z]|\\.[0-9])` : secret);
    const leaked = [...typed].filter((secret) => pattern(secret).test(everything));
    assert.deepEqual(leaked.map((secret) => everything.split('\n').find((line) => pattern(secret).test(line))), [], 'no code or secret in the logs');
  });
});
