/**
 * The fourteenth fresh-eyes pass over passkeys and second factors (docs/security-passes.md,
 * "passkeys (WebAuthn) and second factors (TOTP, recovery codes), attacked", fourteenth passes):
 * black box, a running Latchkey on a real Redis, a cookie-keeping agent and Debian's Chromium with
 * its virtual authenticator (DevTools WebAuthn domain) as the browser, openid-client as the app.
 */
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page as BrowserPage, CDPSession } from 'playwright-core';
import { Agent, formIn } from '../helpers/agent.js';
import { launchChromium } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isLogin, startAuthorization, totpCode } from '../helpers/sign-in.js';
import { isSecondFactor, passkeyChallenge } from '../helpers/soft-passkeys.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-fourteenth-0123';
const PASSWORD = 'a passphrase for the fourteenth factors pass';

describe('passkeys and second factors, fourteenth pass (black box)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true, clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }] });
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  /** A person with an authenticator app (enrolled with the code of the step before: that step is spent). */
  async function withApp(name: string): Promise<{ sub: string; secret: string }> {
    const account = await server.accounts.create(name, PASSWORD);
    const { secret } = await server.secondFactors.totp.begin(account.sub, name, 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(account.sub, totpCode(secret, -1), 'test-session'), true);
    return { sub: account.sub, secret };
  }

  it('an app asking a passkey (acr_values=phr) of a person with only an authenticator app: the page offers to return to the app, which gets unmet_authentication_requirements, not access_denied as a cancel', async () => {
    await withApp('phr-without-passkey');
    const agent = new Agent();
    const { page: login } = await startAuthorization(agent, app, REDIRECT, { acr_values: 'phr' });
    assert.ok(isLogin(login));
    const page = await agent.submit(login, '/login', { username: 'phr-without-passkey', password: PASSWORD }, REDIRECT);
    assert.match(page.html, /Confirm it is you/, `${page.status} ${page.url}`);
    assert.match(page.html, /asks for a passkey, and this account has none/);
    assert.doesNotMatch(page.html, /name="method" value="totp"/, 'no codes for a passkey request');
    assert.match(page.html, /href="\/account"/, 'where to add one');
    // Before: only "Cancel", and the app was told access_denied ("the user cancelled the request").
    assert.match(page.html, /action="\/interaction\/[^"]+\/unmet"/, 'a way back that tells the app why');
    const back = await agent.submit(page, '/unmet', {}, REDIRECT);
    const answer = new URL(back.url);
    assert.ok(back.url.startsWith(REDIRECT), `${back.status} ${back.url}`);
    assert.equal(answer.searchParams.get('error'), 'unmet_authentication_requirements');
  });

  it('a person with no second factor asked for a passkey (acr_values=phr) is told a passkey is what the app asks (an authenticator app would not do), and can return to the app with unmet_authentication_requirements', async () => {
    await server.accounts.create('phr-password-only', PASSWORD);
    const agent = new Agent();
    const { page: login } = await startAuthorization(agent, app, REDIRECT, { acr_values: 'phr' });
    const page = await agent.submit(login, '/login', { username: 'phr-password-only', password: PASSWORD }, REDIRECT);
    assert.equal(page.status, 403);
    assert.match(page.html, /asks for a passkey\. Your account has none yet/);
    const back = await agent.submit(page, '/unmet', {}, REDIRECT);
    assert.equal(new URL(back.url).searchParams.get('error'), 'unmet_authentication_requirements');
  });

  it('held: one recovery code sent by eight sign-ins at the same moment, half of them at a second instance, signs exactly one in', async () => {
    const person = await withApp('recovery-race');
    const [code] = await server.secondFactors.recoveryCodes.generate(person.sub);
    const second = await startServer({ redisUrl: server.env.REDIS_URL!, cheapHashing: true, clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }], env: { ISSUER: server.issuer } });
    try {
      // The passwords one after another (tries at once are counted before they are checked), then the code at once.
      const pages = [];
      for (let i = 0; i < 8; i += 1) {
        const agent = new Agent();
        const { page: login } = await startAuthorization(agent, app, REDIRECT);
        pages.push({ agent, page: await agent.submit(login, '/login', { username: 'recovery-race', password: PASSWORD }, REDIRECT) });
      }
      const statuses = await Promise.all(
        pages.map(async ({ agent, page }, i) => {
          const { action, hidden } = formIn(page.html.replace(/name="method" value="totp"/, ''), 'second-factor');
          const instance = i % 2 ? second : server;
          const answer = await fetch(`${instance.url}${new URL(action, page.url).pathname}`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: agent.cookieHeader(page.url), accept: 'text/html' },
            body: new URLSearchParams({ ...hidden, method: 'recovery', code: code! }),
            redirect: 'manual',
          });
          return answer.status;
        }),
      );
      assert.equal(statuses.filter((status) => status === 303).length, 1, `one sign-in finished: ${statuses}`);
      // The others refused, as wrong codes (401), or paused once five of them had failed (429).
      assert.ok(statuses.every((status) => status === 303 || status === 401 || status === 429), `${statuses}`);
    } finally {
      await second.stop();
    }
  });

  it('held: the same person asked acr_values=mfa is not offered that way out (their app meets it), and a request posted to it is refused, nothing told to the app', async () => {
    const person = await withApp('mfa-with-app');
    const agent = new Agent();
    const { page: login } = await startAuthorization(agent, app, REDIRECT, { acr_values: 'mfa' });
    const page = await agent.submit(login, '/login', { username: 'mfa-with-app', password: PASSWORD }, REDIRECT);
    assert.ok(isSecondFactor(page));
    assert.doesNotMatch(page.html, /\/unmet"/);
    const uid = new URL(page.url).pathname.split('/')[2];
    const csrf = page.html.match(/name="csrf" value="([^"]+)"/)![1]!;
    const refused = await agent.follow(`${server.url}/interaction/${uid}/unmet`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf }) }, REDIRECT);
    assert.equal(refused.status, 400);
    // The sign-in goes on.
    const done = await agent.submit(page, '/second-factor', { method: 'totp', code: totpCode(person.secret) }, REDIRECT);
    assert.ok(!isSecondFactor(done), `${done.status} ${done.url}`);
  });

  it("held: wrong authenticator-app codes of one sign-in sent by turns to two instances of one deployment count on one throttle: the fifth starts the pause, and the right code is then unchecked at either", async () => {
    const person = await withApp('two-instances');
    const second = await startServer({ redisUrl: server.env.REDIS_URL!, cheapHashing: true, clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }], env: { ISSUER: server.issuer } });
    try {
      const agent = new Agent();
      const { page: login } = await startAuthorization(agent, app, REDIRECT);
      const page = await agent.submit(login, '/login', { username: 'two-instances', password: PASSWORD }, REDIRECT);
      assert.ok(isSecondFactor(page));
      const { action, hidden } = formIn(page.html, '/second-factor');
      const wrong = totpCode(person.secret) === '000000' ? '111111' : '000000';
      const at = async (instance: TestServer, code: string) => {
        const answer = await fetch(`${instance.url}${new URL(action, page.url).pathname}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: agent.cookieHeader(page.url), accept: 'text/html' },
          body: new URLSearchParams({ ...hidden, code }),
          redirect: 'manual',
        });
        return answer.status;
      };
      const statuses: number[] = [];
      for (let i = 0; i < 5; i += 1) statuses.push(await at(i % 2 ? second : server, wrong));
      // The fifth wrong code starts the pause (429), wherever it was sent.
      assert.deepEqual(statuses, [401, 401, 401, 401, 429]);
      assert.equal(await at(second, totpCode(person.secret)), 429, 'the right code at the other instance, while paused');
      assert.equal(await at(server, totpCode(person.secret)), 429, 'and at the first');
    } finally {
      await second.stop();
    }
  });
});

describe('passkeys, fourteenth pass: Chromium and its virtual authenticator against the ceremonies', function () {
  // Three browsers' ceremonies: on a loaded two-core runner one test took 68 s.
  this.timeout(180_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let browser: Browser;
  let context: BrowserContext;
  let page: BrowserPage;
  let cdp: CDPSession;
  let authenticatorId: string;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true, clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }] });
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    await server.accounts.create('vera', PASSWORD);
    browser = await launchChromium();
    context = await browser.newContext();
    page = await context.newPage();
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    }));
    await context.route('https://app.example.test/**', (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'back at the app' }));
    // Vera adds a passkey on her account page (a password-only person may add her first factor).
    await page.goto(`${server.issuer}/account`);
    await page.fill('input[name="username"]', 'vera');
    await page.fill('input[name="password"]', PASSWORD);
    await page.press('input[name="password"]', 'Enter');
    await page.waitForSelector('#passkey-enrol-button');
    await page.fill('#passkey-name', 'Virtual');
    await page.click('#passkey-enrol-button');
    await page.waitForSelector('text=Passkey added.');
    await context.clearCookies();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /**
   * Whether the virtual authenticator answers at once, as if touched: off, the login page's autofill
   * request waits (as for a person who has not picked the passkey yet), so a test clicks the button.
   */
  const presence = (enabled: boolean) => cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });

  /** Clicks the passkey button with the authenticator answering (off again at every authorize). */
  async function usePasskey(): Promise<void> {
    await page.waitForSelector('#passkey-button:not([hidden])');
    await presence(true);
    await page.click('#passkey-button');
  }

  /**
   * An assertion as soft-passkeys.ts assertion() makes it, signed with the key's own algorithm: Chromium's
   * virtual authenticator takes the first the relying party lists that it knows (ML-DSA-44 here).
   */
  function signedBy(key: { id: string; privateKey: KeyObject }, challenge: string, userHandle: string, counter: number, flags: number): string {
    const clientData = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin: server.issuer, crossOrigin: false }));
    const counterBytes = Buffer.alloc(4);
    counterBytes.writeUInt32BE(counter);
    const authData = Buffer.concat([createHash('sha256').update(new URL(server.issuer).hostname).digest(), Buffer.from([flags]), counterBytes]);
    const signed = Buffer.concat([authData, createHash('sha256').update(clientData).digest()]);
    // ES256 and RS256 hash first; EdDSA and ML-DSA sign the message itself.
    const signature = sign(['ec', 'rsa'].includes(key.privateKey.asymmetricKeyType!) ? 'sha256' : null, signed, key.privateKey);
    return JSON.stringify({
      id: key.id,
      rawId: key.id,
      type: 'public-key',
      clientExtensionResults: {},
      response: { clientDataJSON: clientData.toString('base64url'), authenticatorData: authData.toString('base64url'), signature: signature.toString('base64url'), userHandle: Buffer.from(userHandle).toString('base64url') },
    });
  }

  /** Waits until back at the app, allowing access on the consent page if it is asked on the way. */
  async function backAtApp(): Promise<URL> {
    for (let waited = 0; !page.url().startsWith(REDIRECT); waited += 100) {
      if (waited > 15_000) throw new Error(`stuck at ${page.url()}: ${(await page.locator('body').innerText()).slice(0, 300)}`);
      if (await page.locator('h1:has-text("Allow access?")').count()) await page.click('button:has-text("Allow")');
      await page.waitForTimeout(100);
    }
    return new URL(page.url());
  }

  /** An authorization request of the app in the browser, with `params`; its verifier. */
  async function authorize(params: Record<string, string> = {}, at: BrowserPage = page): Promise<string> {
    await presence(false);
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...params });
    await at.goto(url.href);
    return verifier;
  }

  /** What the login page's passkey button sends, captured and never delivered: the form's fields and the interaction it was for. */
  async function capturedAssertion(): Promise<{ fields: URLSearchParams; uid: string }> {
    let captured: { fields: URLSearchParams; uid: string } | undefined;
    await page.route('**/interaction/*/passkey', async (route) => {
      captured = { fields: new URLSearchParams(route.request().postData() ?? ''), uid: new URL(route.request().url()).pathname.split('/')[2]! };
      await route.abort();
    });
    try {
      await usePasskey();
      for (let waited = 0; !captured; waited += 50) {
        if (waited > 10_000) throw new Error('no assertion sent');
        await page.waitForTimeout(50);
      }
      return captured;
    } finally {
      await page.unroute('**/interaction/*/passkey');
    }
  }

  /** Posts a passkey form to an interaction with the browser's cookies: the status and where it led. */
  async function post(uid: string, fields: URLSearchParams): Promise<{ status: number; location: string | undefined; text: string }> {
    const answer = await context.request.post(`${server.issuer}/interaction/${uid}/passkey`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      data: fields.toString(),
      maxRedirects: 0,
    });
    return { status: answer.status(), location: answer.headers().location, text: await answer.text() };
  }

  it("held: a real browser's assertion answers its own sign-in once: not another sign-in's of the same browser (its CSRF token swapped in), not a second time", async () => {
    await authorize({ prompt: 'login' });
    const { fields, uid } = await capturedAssertion();
    // Another sign-in of the same browser (another tab): its own page, its own CSRF token.
    const other = await context.newPage();
    await authorize({ prompt: 'login' }, other);
    const otherUid = new URL(other.url()).pathname.split('/')[2]!;
    assert.notEqual(otherUid, uid);
    const otherCsrf = await other.getAttribute('#passkey-form input[name="csrf"]', 'value');
    const crossed = new URLSearchParams(fields);
    crossed.set('csrf', otherCsrf!);
    const elsewhere = await post(otherUid, crossed);
    assert.equal(elsewhere.status, 401, `another sign-in took the assertion: ${elsewhere.status} ${elsewhere.location}`);
    // Its own sign-in takes it, once.
    const taken = await post(uid, fields);
    assert.equal(taken.status, 303, `${taken.status} ${taken.text.slice(0, 200)}`);
    const again = await post(uid, fields);
    assert.notEqual(again.status, 303, 'the same assertion a second time');
    await other.close();
  });

  it("held: the browser's own passkey (its private key taken from the virtual authenticator) signing without user verification (UV clear) is refused at the login page; the same key with UV signs in: no phr or swk without it", async () => {
    // Chromium itself makes no assertion when the authenticator did not verify the person: so the key is taken out of it.
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    const credential = credentials[0]!;
    const key = { id: Buffer.from(credential.credentialId, 'base64').toString('base64url'), privateKey: createPrivateKey({ key: Buffer.from(credential.privateKey, 'base64'), format: 'der', type: 'pkcs8' }) };
    const userHandle = Buffer.from(credential.userHandle!, 'base64').toString('utf8');
    const tryWith = async (flags: number, counter: number) => {
      const agent = new Agent();
      const { page: login } = await startAuthorization(agent, app, REDIRECT, { prompt: 'login' });
      assert.ok(isLogin(login));
      return agent.submit(login, '/passkey', { credential: signedBy(key, passkeyChallenge(login), userHandle, counter, flags) }, REDIRECT);
    };
    const counter = credential.signCount + 100;
    const unverified = await tryWith(0x01, counter);
    assert.equal(unverified.status, 401, `UP without UV: ${unverified.status} ${unverified.url}`);
    const verified = await tryWith(0x05, counter + 1);
    assert.ok(!isLogin(verified) && verified.status < 400, `the same key with UV: ${verified.status} ${verified.url}`);
    // The browser's own counter now lags the one recorded (its next assertion would be refused as a
    // clone's): moved past it, as the key's own authenticator would have.
    await cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId: credential.credentialId });
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential: { ...credential, signCount: counter + 10 } });
  });

  it('held: max_age=0 over a passkey session asks the passkey again, and the new ID token says the new sign-in (auth_time, amr swk, acr phr)', async () => {
    await context.clearCookies();
    const first = await authorize();
    await usePasskey();
    const before = (await oidc.authorizationCodeGrant(app, await backAtApp(), { pkceCodeVerifier: first })).claims()!;
    assert.equal(before.acr, 'phr');
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await authorize({ max_age: '0' });
    assert.ok(page.url().includes('/interaction/'), 'asked again');
    await usePasskey();
    const after = (await oidc.authorizationCodeGrant(app, await backAtApp(), { pkceCodeVerifier: second, maxAge: 0 })).claims()!;
    assert.ok(after.auth_time! > before.auth_time!, `${after.auth_time} after ${before.auth_time}`);
    assert.deepEqual(after.amr, ['swk', 'mfa']);
    assert.equal(after.acr, 'phr');
  });

  it("held: a passkey copied into another browser (a clone of the credential, its private key and counter) signs the thief in; the owner's removal of it on the account page ends the thief's session and the access token it got", async () => {
    // The owner: a second browser with its own authenticator, signs in with the password and adds a passkey.
    const owner = await browser.newContext();
    const thief = await browser.newContext();
    try {
      await server.accounts.create('wren', PASSWORD);
      const ownerPage = await owner.newPage();
      const ownerCdp = await owner.newCDPSession(ownerPage);
      await ownerCdp.send('WebAuthn.enable');
      const { authenticatorId: ownersKey } = await ownerCdp.send('WebAuthn.addVirtualAuthenticator', {
        options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
      });
      await ownerPage.goto(`${server.issuer}/account`);
      await ownerPage.fill('input[name="username"]', 'wren');
      await ownerPage.fill('input[name="password"]', PASSWORD);
      await ownerPage.press('input[name="password"]', 'Enter');
      await ownerPage.waitForSelector('#passkey-enrol-button');
      await ownerPage.fill('#passkey-name', 'Phone');
      await ownerPage.click('#passkey-enrol-button');
      await ownerPage.waitForSelector('text=Passkey added.');
      // The thief's browser holds a copy of it.
      const { credentials } = await ownerCdp.send('WebAuthn.getCredentials', { authenticatorId: ownersKey });
      const thiefPage = await thief.newPage();
      const thiefCdp = await thief.newCDPSession(thiefPage);
      await thiefCdp.send('WebAuthn.enable');
      const { authenticatorId: thiefsKey } = await thiefCdp.send('WebAuthn.addVirtualAuthenticator', {
        options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
      });
      await thiefCdp.send('WebAuthn.addCredential', { authenticatorId: thiefsKey, credential: credentials[0]! });
      await thief.route('https://app.example.test/**', (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'back at the app' }));
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      // The login page's autofill is answered at once by the thief's authenticator.
      await thiefPage.goto(url.href);
      for (let waited = 0; !thiefPage.url().startsWith(REDIRECT); waited += 100) {
        if (waited > 15_000) throw new Error(`thief stuck at ${thiefPage.url()}`);
        if (await thiefPage.locator('h1:has-text("Allow access?")').count()) await thiefPage.click('button:has-text("Allow")');
        await thiefPage.waitForTimeout(100);
      }
      const tokens = await oidc.authorizationCodeGrant(app, new URL(thiefPage.url()), { pkceCodeVerifier: verifier });
      assert.equal(tokens.claims()!.acr, 'phr');
      const userinfo = () => fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      assert.equal((await userinfo()).status, 200);
      // The owner removes the passkey (they keep their password), from the session that added it.
      await ownerPage.goto(`${server.issuer}/account`);
      await ownerPage.click('#passkeys button:has-text("Remove")');
      await ownerPage.waitForSelector('text=Passkey removed.');
      // The thief's session and its token are over.
      assert.equal((await userinfo()).status, 401, "the thief's access token after the removal");
      await thiefCdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId: thiefsKey, enabled: false });
      await thiefPage.goto(`${server.issuer}/account`);
      await thiefPage.waitForSelector('input[name="password"]');
      assert.ok(thiefPage.url().includes('/interaction/') && !(await thiefPage.locator('#passkeys').count()), `the thief's browser is signed out: ${thiefPage.url()}`);
      // And the copy signs nobody in any more.
      await thiefCdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId: thiefsKey, enabled: true });
      await thiefPage.click('#passkey-button');
      await thiefPage.waitForSelector('text=That passkey was not accepted');
    } finally {
      await owner.close();
      await thief.close();
    }
  });
});
