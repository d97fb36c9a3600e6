/**
 * accounts.mfa.required (ACCOUNTS_MFA_REQUIRED): every app's sign-in needs a second factor, so a
 * password-only person is asked to set one up (or the app gets unmet_authentication_requirements),
 * but they can still reach the account page to do so; once they have, the app gets acr mfa.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps } from '../helpers/sign-in.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'correct horse battery staple';

describe('e2e: a second factor required everywhere (accounts.mfa.required)', function () {
  this.timeout(30_000);
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { ACCOUNTS_MFA_REQUIRED: 'true' }, clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }] });
    await server.accounts.create('erin', PASSWORD);
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => server?.stop());

  async function signIn(agent: Agent) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'erin', password: PASSWORD, login: 'required', stopAt: REDIRECT });
    return { page, verifier };
  }

  it('a password-only person is asked to enrol for any app, yet reaches the account page; with an authenticator app, acr mfa', async () => {
    const agent = new Agent();
    const { page } = await signIn(agent);
    assert.equal(page.status, 403);
    assert.match(page.html, /Second factor required/);

    const account = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'erin', password: PASSWORD, stopAt: REDIRECT });
    assert.equal(account.url, `${server.issuer}/account`, `the account page, got ${account.status} ${account.url}`);
    assert.match(account.html, /Set up an authenticator app/);

    const setup = await agent.submit(account, '/authenticator/start', {});
    const secret = setup.html.match(/id="totp-secret">([^<]+)</)![1]!.replace(/\s/g, '');
    const confirmed = await agent.submit(setup, '/authenticator/confirm', { code: TOTP.generate({ secret: Secret.fromBase32(secret) }) });
    assert.match(confirmed.html, /Authenticator app set up/);

    const again = new Agent();
    const { page: second, verifier } = await signIn(again);
    let done = await again.submit(second, '/second-factor', { method: 'totp', code: TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() + 30_000 }) }, REDIRECT);
    if (isConsent(done)) done = await again.submit(done, '/confirm', {}, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(app, new URL(done.url), { pkceCodeVerifier: verifier });
    assert.equal(tokens.claims()!.acr, 'mfa');
  });

  it("the account page's password-only session, exempt so that a person can set up a second factor, opens no other first-party page: the developer page asks for the second factor", async () => {
    await server.accounts.create('finn', PASSWORD);
    const agent = new Agent();
    const account = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'finn', password: PASSWORD });
    assert.equal(account.url, `${server.issuer}/account`, `the account page, got ${account.status} ${account.url}`);

    const developer = await agent.follow(`${server.issuer}/developer`);
    assert.match(developer.html, /<h1>Register your apps<\/h1>/, 'the page for a stranger, with its "Sign in"');
    assert.doesNotMatch(developer.html, /<h1>Your apps<\/h1>/);
    const register = await agent.request(`${server.issuer}/developer/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ name: 'Sneaky', kind: 'web', redirect_uris: 'https://sneaky.example.test/cb' }),
    });
    assert.equal(register.status, 401, 'no app registered with a password alone');
    assert.deepEqual(await server.clients.list().then((clients) => clients.filter((client) => client.client_name === 'Sneaky')), []);

    // Its "Sign in" asks for the second factor the person does not have yet.
    const signIn = await signInSteps(agent, await agent.follow(`${server.issuer}/developer/sign-in`), { username: 'finn', password: PASSWORD });
    assert.equal(signIn.status, 403);
    assert.match(signIn.html, /Second factor required/);
  });
});
