/**
 * Review of the seventeenth passes (f99951b9..6225b947, docs/security-passes.md): the cap on a
 * device's grant at `mfa` (provider/patches/step-up.ts deviceGrantsBelowPhr) attacked from the
 * sides its own test did not: several values asked (acr_values 'phr mfa', an essential acr's
 * values), an essential acr's single `value`, a client's default_acr_values, and a second device
 * code approved in a session already signed in with a passkey (single sign-on, no sign-in).
 * Black box: a running Latchkey on a redis-server of its own, openid-client as the device.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';
import { assertion, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TV = 'tv';
const TV_PHR = 'tv-phr';
const PASSWORD = 'a passphrase for the seventeenth device review';

describe("a device's grant is never phr, review of the seventeenth passes (black box)", function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    const device = { application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], scope: 'openid offline_access' };
    server = await startServer({
      ownRedis: true,
      cheapHashing: true,
      clients: [
        { client_id: TV, ...device },
        { client_id: TV_PHR, ...device, default_acr_values: ['phr'] },
      ],
      env: { DEVICE_FLOW_POLL_INTERVAL: '1' },
    });
  });
  after(async () => {
    await server?.stop();
  });

  async function withPasskey(name: string) {
    const account = await server.accounts.create(name, PASSWORD);
    const key = softPasskey();
    await registerSoftPasskeys(server, account.sub, key);
    let counter = 0;
    const origin = new URL(server.issuer).origin;
    const signIn = (agent: Agent, page: Page) => agent.submit(page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(page), account.sub, (counter += 1)) });
    return { sub: account.sub, signIn };
  }

  const device = (clientId: string) => oidc.discovery(new URL(server.issuer), clientId, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });

  /** Enters the device's user code and confirms: the page after. */
  async function enter(browser: Agent, userCode: string): Promise<Page> {
    const confirm = await browser.submit(await browser.follow(`${server.issuer}/device`), '/device', { user_code: userCode });
    return browser.submit(confirm, '/device', { confirm: 'yes' });
  }

  for (const [asked, params] of [
    ["acr_values 'phr mfa' (the lowest is what it needs)", { acr_values: 'phr mfa' }],
    ["an essential acr's values ['phr', 'mfa']", { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['phr', 'mfa'] } } }) }],
  ] as const) {
    it(`a device asking ${asked} is connected, and its tokens say mfa, not phr`, async () => {
      const name = `several-${asked.length}`;
      const person = await withPasskey(name);
      const config = await device(TV);
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid offline_access', ...params });
      const browser = new Agent();
      const done = await signInSteps(browser, await person.signIn(browser, await enter(browser, started.user_code)), { username: name, password: PASSWORD });
      assert.match(done.html, /Device connected/, `${done.status} ${done.url}`);
      const tokens = await oidc.pollDeviceAuthorizationGrant(config, started);
      assert.equal(tokens.claims()!.acr, 'mfa');
      assert.equal((await oidc.refreshTokenGrant(config, tokens.refresh_token!)).claims()!.acr, 'mfa');
    });
  }

  for (const [asked, clientId, params] of [
    ["an essential acr's single value 'phr'", TV, { claims: JSON.stringify({ id_token: { acr: { essential: true, value: 'phr' } } }) }],
    ["its client's default_acr_values ['phr']", TV_PHR, {}],
  ] as const) {
    it(`a device asking phr by ${asked} is refused at /device before anyone signs in, and told access_denied`, async () => {
      const config = await device(clientId);
      const started = await oidc.initiateDeviceAuthorization(config, { scope: 'openid', ...params });
      const refused = await enter(new Agent(), started.user_code);
      assert.ok(refused.status >= 400 && refused.status < 500, `${refused.status} ${refused.url}`);
      assert.doesNotMatch(refused.html, /name="password"/);
      assert.match(refused.html, /phishing-resistant/);
      const poll = await fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: started.device_code, client_id: clientId }),
      });
      const told = (await poll.json()) as { error?: string; error_description?: string };
      assert.equal(poll.status, 400);
      assert.equal(told.error, 'access_denied');
    });
  }

  it('a second device code approved in the same passkey session (no sign-in asked) says mfa too', async () => {
    const person = await withPasskey('second-device');
    const config = await device(TV);
    const browser = new Agent();
    const first = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const done = await signInSteps(browser, await person.signIn(browser, await enter(browser, first.user_code)), { username: 'second-device', password: PASSWORD });
    assert.match(done.html, /Device connected/);
    assert.equal((await oidc.pollDeviceAuthorizationGrant(config, first)).claims()!.acr, 'mfa');
    const second = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
    const again = await signInSteps(browser, await enter(browser, second.user_code), { username: 'second-device', password: PASSWORD });
    assert.match(again.html, /Device connected/, `${again.status} ${again.url}`);
    assert.equal((await oidc.pollDeviceAuthorizationGrant(config, second)).claims()!.acr, 'mfa');
  });
});
