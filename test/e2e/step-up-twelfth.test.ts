/**
 * The twelfth fresh-eyes pass over step-up, acr and amr, second factors and passkeys
 * (docs/security-passes.md, "step-up, acr and amr, second factors and passkeys"), black box: a
 * running Latchkey on a real Redis, a cookie-keeping agent as the browser, openid-client as the app.
 * What a token or a page takes of a sign-in (`auth_time`, `acr`, `amr`) must be no fresher and no
 * stronger than the sign-in was.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent, answerAt, postToAccount } from '../helpers/agent.js';
import { pastSecond } from '../helpers/in-flight.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'a passphrase nobody types here';
/** accounts.reauthenticateAfter here: how old a sign-in may be for the account page's credential changes. */
const RECENT_SECONDS = 2;

describe('step-up, acr and amr, second factors and passkeys, twelfth pass (black box)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      cheapHashing: true,
      env: { ACCOUNTS_REAUTHENTICATE_AFTER: String(RECENT_SECONDS) },
      clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }],
    });
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  it("a consent page confirmed seconds after the password was typed does not make the sign-in later: the ID token's auth_time is the password's second, the app's next max_age is not met by the click, and the account page still asks for a sign-in again", async () => {
    await server.accounts.create('consent-later', PASSWORD);
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { max_age: '60' });
    const consent = await signInSteps(agent, page, { username: 'consent-later', password: PASSWORD, login: 'required', consent: 'stop' });
    // The password was verified before this second ended.
    const signedIn = Math.floor(Date.now() / 1000);
    assert.ok(isConsent(consent), `the consent page: ${consent.status} ${consent.url}`);
    await pastSecond(signedIn + RECENT_SECONDS + 1);

    // The account page (same browser) finds the sign-in too old to add a credential.
    const accountPage = await agent.follow(`${server.issuer}/account`);
    assert.equal(accountPage.url, `${server.issuer}/account`, `the account page: ${accountPage.status} ${accountPage.url}`);
    assert.match(accountPage.html, /Sign in again to add a passkey/, 'before the click, adding a passkey asks for a sign-in again');

    // The person allows the app: a click, no factor.
    const back = await agent.submit(consent, '/confirm', {}, REDIRECT);
    assert.equal(answerAt(back, REDIRECT), 'code');
    const tokens = await oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: verifier, maxAge: 60 });
    const idToken = decodeJwt(tokens.id_token!);
    assert.ok(Number(idToken.auth_time) <= signedIn, `auth_time ${idToken.auth_time} is the password's second (${signedIn}) or before, not the consent's`);

    // Nor does the session count as signed in at the click, for the app or the account page.
    const again = await startAuthorization(agent, app, REDIRECT, { prompt: 'none', max_age: String(RECENT_SECONDS) });
    assert.equal(answerAt(again.page, REDIRECT), 'login_required', 'a max_age the sign-in is older than asks for a sign-in again');
    const after = await agent.follow(`${server.issuer}/account`);
    assert.match(after.html, /Sign in again to add a passkey/, 'after the click, adding a passkey still asks for a sign-in again');
    const still = await postToAccount(agent, after, '/authenticator/start', {});
    assert.ok(still.url.includes('/interaction/'), `after the click, a setup is still asked to sign in again: ${still.status} ${still.url}`);
  });
});
