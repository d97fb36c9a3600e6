/**
 * The thirteenth fresh-eyes pass over passkeys and second factors (docs/security-passes.md,
 * "passkeys (WebAuthn) and second factors (TOTP, recovery codes), attacked"), black box: a running
 * Latchkey on a real Redis, a cookie-keeping agent as the browser (two tabs of one sign-in are two
 * pages of one agent), openid-client as the app.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, isLogin, startAuthorization, totpCode } from '../helpers/sign-in.js';
import { isSecondFactor } from '../helpers/soft-passkeys.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'a passphrase nobody types here';

describe('passkeys and second factors, thirteenth pass (black box)', function () {
  this.timeout(30_000);
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }] });
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

  /** Past the second factor: allows on the consent page if asked, and answers whom the app's ID token names. */
  async function signedInAs(agent: Agent, page: Page, verifier: string): Promise<string> {
    const back = isConsent(page) ? await agent.submit(page, '/confirm', {}, REDIRECT) : page;
    assert.ok(back.url.startsWith(REDIRECT), `back at the app: ${back.status} ${back.url}`);
    const tokens = await oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: verifier });
    return tokens.claims()!.sub;
  }

  it("two tabs of one sign-in, each given another person's password: the second-factor page checks the codes of the person it names (it named the second and checked the first's), and the first tab's page checks nothing", async () => {
    const bob = await withApp('two-tabs-bob');
    const alice = await withApp('two-tabs-alice');
    const agent = new Agent();
    const { page: login, verifier } = await startAuthorization(agent, app, REDIRECT);
    assert.ok(isLogin(login));
    // The first tab: bob's password, his second-factor page.
    const bobs = await agent.submit(login, '/login', { username: 'two-tabs-bob', password: PASSWORD }, REDIRECT);
    assert.ok(isSecondFactor(bobs) && bobs.html.includes('two-tabs-bob'), `${bobs.status} ${bobs.url}`);
    // The second tab, still at the login page of the same sign-in: alice's password.
    const alices = await agent.submit(login, '/login', { username: 'two-tabs-alice', password: PASSWORD }, REDIRECT);
    assert.ok(isSecondFactor(alices), `${alices.status} ${alices.url}`);
    assert.match(alices.html, /Signing in as <strong>two-tabs-alice<\/strong>/);
    // The first tab's page names bob, but the sign-in holds alice now: his code there is not checked
    // against her app (nor hers against his), and the page she holds is shown.
    const stale = await agent.submit(bobs, '/second-factor', { method: 'totp', code: totpCode(bob.secret) }, REDIRECT);
    assert.equal(stale.status, 409, `bob's code from his page after alice's password: ${stale.status} ${stale.url}`);
    assert.match(stale.html, /went on as two-tabs-alice in another tab/);
    // What the page names is whose code it takes: alice's code signs alice in.
    const done = await agent.submit(alices, '/second-factor', { method: 'totp', code: totpCode(alice.secret) }, REDIRECT);
    assert.ok(!isSecondFactor(done), `alice's own code at the page naming her: ${done.status} ${done.html.match(/class="error"[^>]*>([^<]*)/)?.[1]}`);
    assert.equal(await signedInAs(agent, done, verifier), alice.sub);
    assert.notEqual(alice.sub, bob.sub);
  });

  it('an authenticator-app code checked as its time step ends spends the step it belongs to, not the one after: the next code is not refused as used (RFC 6238 §5.2)', async () => {
    const person = await withApp('step-edge');
    const period = 30_000;
    const realNow = Date.now;
    // The last millisecond of a step, and the code of the step after it (one step ahead: in the window).
    const edge = (Math.floor(realNow() / period) + 2) * period;
    const codeAt = (at: number) => TOTP.generate({ secret: Secret.fromBase32(person.secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: at });
    let clock = edge - 1;
    const validate = TOTP.prototype.validate;
    try {
      Date.now = () => clock;
      // The step ends while the code is being checked: the clock moves on once it was matched.
      TOTP.prototype.validate = function (this: TOTP, options: Parameters<TOTP['validate']>[0]) {
        const delta = validate.call(this, options);
        clock = edge + 1;
        return delta;
      };
      assert.equal((await server.secondFactors.totp.verify(person.sub, codeAt(edge), 'first-sign-in')).outcome, 'ok');
      TOTP.prototype.validate = validate;
      // Another sign-in a moment later, with the code of the step after (one step ahead of the clock).
      const next = codeAt(edge + period);
      if (next === codeAt(edge)) return; // one in a million: the same digits
      assert.equal((await server.secondFactors.totp.verify(person.sub, next, 'next-sign-in')).outcome, 'ok');
    } finally {
      TOTP.prototype.validate = validate;
      Date.now = realNow;
    }
  });
});
