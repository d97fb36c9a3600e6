/**
 * The seventeenth pass over passkeys and second factors (docs/security-passes.md, "Looked at in the
 * seventeenth passes: passkeys and second factors, attacked (h10)"): black box, a running Latchkey
 * on a redis-server of its own, a cookie-keeping agent as the person's browser with a software
 * passkey (test/helpers/soft-passkeys.ts), openid-client as the device and the app.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { isLogin, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { assertion, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TV = 'tv';
const REDIRECT = 'https://app.seventeenth.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-seventeenth-01';
const PASSWORD = 'a passphrase for the seventeenth factors pass';

describe('passkeys and second factors, seventeenth pass (black box)', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      cheapHashing: true,
      clients: [
        { client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] },
        { client_id: TV, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], scope: 'openid offline_access' },
      ],
      env: { DEVICE_FLOW_POLL_INTERVAL: '1' },
    });
  });
  after(async () => {
    await server?.stop();
  });

  /** A person with a passkey only (no password use): the key and their sub. */
  async function withPasskey(name: string) {
    const account = await server.accounts.create(name, PASSWORD);
    const key = softPasskey();
    await registerSoftPasskeys(server, account.sub, key);
    let counter = 0;
    const origin = new URL(server.issuer).origin;
    /** Signs in with the passkey alone at a login page. */
    const signIn = (agent: Agent, page: Page) => agent.submit(page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(page), account.sub, (counter += 1)) });
    return { sub: account.sub, signIn };
  }

  it("a device approved by a person who signed in with a passkey: the device's tokens do not say phr (phishing-resistant), since a user code is relayed as easily as a link (RFC 8628 §5.4); they say mfa, and amr still says the passkey", async () => {
    const person = await withPasskey('device-passkey');
    const config = await oidc.discovery(new URL(server.issuer), TV, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    // The attacker's device asks; the person is sent its user code ("enter this code to continue").
    const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid offline_access' });
    const browser = new Agent();
    const confirm = await browser.submit(await browser.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const login = await browser.submit(confirm, '/device', { confirm: 'yes' });
    const done = await signInSteps(browser, await person.signIn(browser, login), { username: 'device-passkey', password: PASSWORD });
    assert.match(done.html, /Device connected/, `${done.status} ${done.url}`);
    const tokens = await oidc.pollDeviceAuthorizationGrant(config, device);
    const idToken = tokens.claims()!;
    assert.equal(idToken.acr, 'mfa', `the device's ID token: ${JSON.stringify(idToken)}`);
    assert.deepEqual([...(idToken.amr as string[])].sort(), ['mfa', 'swk']);
    // And its refresh, which keeps the device code's level.
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    assert.equal(refreshed.claims()!.acr, 'mfa');
    // Held: the browser's own session keeps its level: an app it signs in to (asking phr) gets phr, with no sign-in.
    const app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    const { page, verifier } = await startAuthorization(browser, app, REDIRECT, { acr_values: 'phr' });
    assert.ok(!isLogin(page), 'single sign-on, no login page');
    const back = await signInSteps(browser, page, { username: 'device-passkey', password: PASSWORD, stopAt: REDIRECT });
    const appTokens = await oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: verifier, idTokenExpected: true });
    assert.equal(appTokens.claims()!.acr, 'phr');
  });

  for (const [asked, params] of [
    ['acr_values=phr', { acr_values: 'phr' }],
    ['an essential acr of phr', { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['phr'] } } }) }],
  ] as const) {
    it(`a device asking a phishing-resistant sign-in (${asked}), which no device's can be: the person is told at /device, before signing in, and the device is told why`, async () => {
      await withPasskey(`device-phr-${asked.length}`);
      const config = await oidc.discovery(new URL(server.issuer), TV, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid', ...params });
      const browser = new Agent();
      const confirm = await browser.submit(await browser.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
      const refused = await browser.submit(confirm, '/device', { confirm: 'yes' });
      assert.ok(refused.status >= 400 && refused.status < 500, `${refused.status} ${refused.url}`);
      assert.doesNotMatch(refused.html, /name="password"/, 'no sign-in asked for nothing');
      assert.match(refused.html, /phishing-resistant/);
      const poll = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: TV }),
      });
      // access_denied, a code a device knows, with the saved one first in its description (patches/device-token-errors.ts).
      const told = (await poll.json()) as { error?: string; error_description?: string };
      assert.equal(told.error, 'access_denied');
      assert.match(told.error_description ?? '', /^unmet_authentication_requirements.*phishing-resistant/);
    });
  }
});
