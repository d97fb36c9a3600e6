/**
 * Ninth blips pass (docs/security-passes.md): two approvals of one device code at the same moment.
 *
 * What a person does at /device (Continue, Allow, Deny) reads the device code, then writes it back.
 * Two such requests that read it before either wrote both wrote, the later over the earlier: two
 * approvals (two tabs of one browser, which may take its code on again since the eighth blips pass,
 * or two browsers) each made a grant, and the one written last replaced the one the device may
 * have redeemed already, its consumed mark gone with the record written again: the device
 * redeemed a second time, a second set of tokens from one code. Now each such write lands only
 * while the code still holds what its request read, unconsumed (store/adapter.ts
 * RecordChangedMeanwhile); the other is told the code was used at the same moment elsewhere.
 *
 * Performed through one front door to two instances on one Redis: the first request is held at
 * its write (the relay) after it read the code, while the other goes through the other instance.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { twoInstancesBehindOneDoor } from '../helpers/front-door.js';
import { commandsIn } from '../helpers/relay.js';
import { signInSteps } from '../helpers/sign-in.js';

const PASSWORD = 'ninth blips pass password';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TV = { client_id: 'tv-9', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] };

describe('e2e: ninth blips pass: two approvals of one device code at the same moment', function () {
  this.timeout(60_000);
  const door = twoInstancesBehindOneDoor({ DEVICE_FLOW_POLL_INTERVAL: '1' }, [TV]);
  const { routeTo } = door;
  let tv: oidc.Configuration;
  let people = 0;

  before(async () => {
    tv = await oidc.discovery(new URL(door.balancer.url), TV.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  beforeEach(() => routeTo(door.relayed.server.url));

  /** A trigger: a script (a record's write) with a device code's record among its KEYS. */
  const deviceCodeWrite = (chunk: string) =>
    commandsIn(chunk).some(([name = '', , keys = '0', ...args]) => /^eval(sha)?$/i.test(name) && args.slice(0, Number(keys)).some((arg) => arg.startsWith(`${door.relayed.server.config.redis.keyPrefix}oidc:DeviceCode:`)));

  async function person() {
    const username = `tab${(people += 1)}`;
    await door.relayed.server.accounts.create(username, PASSWORD);
    return username;
  }

  /** The device's poll, after its interval (1 s here: sooner is slow_down). */
  async function poll(deviceCode: string) {
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const response = await fetch(`${door.balancer.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close' },
      body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: TV.client_id }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }

  /** The code typed at /device in `agent`'s browser (a tab of it): the confirmation page. */
  async function typed(agent: Agent, userCode: string): Promise<Page> {
    const confirm = await agent.submit(await agent.follow(`${door.balancer.url}/device`), '/device', { user_code: userCode });
    assert.match(confirm.html, /name="confirm"/, `the confirmation: ${confirm.status} ${confirm.url}`);
    return confirm;
  }

  const usedElsewhere = (page: Page) => {
    assert.ok(page.status < 500, `no server error: ${page.status}`);
    assert.match(page.html, /used in another window or browser at the same moment/, `told what happened: ${page.status} ${page.url}`);
    assert.doesNotMatch(page.html, /Device connected/);
  };

  /** A new person's browser at the consent page of a new device authorization. */
  async function atDeviceConsent() {
    const username = await person();
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const agent = new Agent();
    const consent = await signInSteps(agent, await agent.submit(await typed(agent, device.user_code), '/device', { confirm: 'yes' }), { username, password: PASSWORD, consent: 'stop' });
    assert.match(consent.html, /\/confirm/, `the consent page: ${consent.status} ${consent.url}`);
    return { device, agent, consent };
  }

  it('one tab allows as another tab of the same browser denies: the denial stands, the approval is told; the device never gets tokens', async () => {
    const { device, agent, consent } = await atDeviceConsent();

    // The first tab's Allow has read the code (pending) and is held at its write, as the second tab
    // takes the code on again (its own browser's mark, the code neither approved nor denied) and denies.
    const held = await door.relayed.relay.hold(deviceCodeWrite, () => agent.submit(consent, '/confirm', {}));
    await routeTo(door.other.url);
    const denied = await agent.submit(await typed(agent, device.user_code), '/device', { abort: 'yes' });
    assert.match(denied.html, /Access denied/, `the second tab's denial: ${denied.status} ${denied.url}`);
    const refused = await poll(device.device_code);
    assert.equal(refused.body.error, 'access_denied', `the device is told: ${refused.status} ${JSON.stringify(refused.body)}`);

    const late = await held.release();
    const again = await poll(device.device_code);
    assert.ok(again.status >= 400 && !again.body.access_token, `no tokens after the denial: ${again.status} ${JSON.stringify(again.body)}`);
    usedElsewhere(late);
  });

  it('the browser signs out (another tab) while its device approval is held at its write: the approval is refused with a page, not a 500, and the device gets no tokens', async () => {
    const { device, agent, consent } = await atDeviceConsent();
    const held = await door.relayed.relay.hold(deviceCodeWrite, () => agent.submit(consent, '/confirm', {}));
    await routeTo(door.other.url);
    const signOut = await agent.follow(`${door.balancer.url}/session/end`);
    await agent.submit(signOut, '/session/end/confirm', { logout: 'yes' });
    const late = await held.release();
    assert.ok(late.status >= 400 && late.status < 500, `a page that says it did not go through: ${late.status} ${late.url}`);
    assert.doesNotMatch(late.html, /Device connected/);
    const polled = await poll(device.device_code);
    assert.equal(polled.body.access_token, undefined, `no tokens: ${polled.status} ${JSON.stringify(polled.body)}`);
  });

  it('two browsers press Continue at once: one takes the code on, the other is told, and only the first can approve it', async () => {
    const username = await person();
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const late = new Agent();
    const lateConfirm = await typed(late, device.user_code);
    const early = new Agent();
    const earlyConfirm = await typed(early, device.user_code);

    // The late browser's Continue has read the code (not in flight) and is held at its mark's write.
    const held = await door.relayed.relay.hold(deviceCodeWrite, () => late.submit(lateConfirm, '/device', { confirm: 'yes' }));
    await routeTo(door.other.url);
    const login = await early.submit(earlyConfirm, '/device', { confirm: 'yes' });
    usedElsewhere(await held.release());

    const done = await signInSteps(early, login, { username, password: PASSWORD });
    assert.match(done.html, /Device connected/, `the browser that took the code on connects the device: ${done.status} ${done.url}`);
    const tokens = await poll(device.device_code);
    assert.equal(tokens.status, 200, `tokens: ${JSON.stringify(tokens.body)}`);
    const refused = await late.submit(await late.follow(`${door.balancer.url}/device`), '/device', { user_code: device.user_code });
    assert.match(refused.html, /already used/, 'the other browser is refused after, as ever');
  });
});
