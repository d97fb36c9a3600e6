/**
 * The sixth blips pass (2026-12-05), black box: the device authorization grant (RFC 8628) and what
 * a person does at /device, with Redis paused (past REDIS_COMMAND_TIMEOUT, the write and what
 * follows run once it resumes, after the answer) or the connection cut at a chosen write.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { commandsIn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';

const PASSWORD = 'sixth blips pass password';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('e2e: sixth blips pass: the device flow with Redis paused or cut at a write', function () {
  this.timeout(60_000);
  let relayed: RelayedServer;
  let server: TestServer;
  let tv: oidc.Configuration;

  before(async () => {
    relayed = await startRelayedServer({ DEVICE_FLOW_POLL_INTERVAL: '1' }, {
      commandTimeout: 500,
      clients: [{ client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] }],
    });
    ({ server } = relayed);
    tv = await oidc.discovery(new URL(server.issuer), 'tv', { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => relayed?.stop());

  /** A trigger: a script with a key starting with `key` (under the server's prefix) among its KEYS. */
  const scriptOn = (key: string) => (chunk: string) =>
    commandsIn(chunk).some(([name = '', , keys = '0', ...args]) => /^eval(sha)?$/i.test(name) && args.slice(0, Number(keys)).some((arg) => arg.startsWith(`${server.config.redis.keyPrefix}${key}`)));

  const poll = async (deviceCode: string) => {
    const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: 'tv' }) });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };
  /** Polls until the answer is no longer authorization_pending/slow_down. */
  const settled = async (deviceCode: string) => {
    for (let tries = 0; ; tries += 1) {
      const answer = await poll(deviceCode);
      if (tries > 10 || !['authorization_pending', 'slow_down'].includes(answer.body.error ?? '')) return answer;
      await new Promise((resolve) => setTimeout(resolve, 1100));
    }
  };

  const blip = (page: Page) => {
    assert.equal(page.status, 503, `answered ${page.status} ${page.url}`);
    assert.ok(page.headers.get('retry-after'), 'a 503 says when to retry');
  };

  async function asked() {
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    return device;
  }

  /**
   * What a device ends with after a 503 on the person's side and `retry` (the person's, from a
   * fresh browser if need be): tokens exactly once (the next poll is refused), whether the first
   * attempt was done whole once Redis ran it or the retry did it.
   */
  async function tokensOnce(deviceCode: string, retry: () => Promise<void>) {
    let answer = await settled(deviceCode);
    if (answer.status !== 200) {
      assert.equal(answer.body.error, 'authorization_pending', `after the 503, pending or tokens: ${answer.status} ${JSON.stringify(answer.body)}`);
      await retry();
      answer = await settled(deviceCode);
    }
    assert.equal(answer.status, 200, `tokens: ${answer.status} ${JSON.stringify(answer.body)}`);
    assert.ok(answer.body.access_token && answer.body.id_token);
    const again = await poll(deviceCode);
    assert.equal(again.body.error, 'invalid_grant', `never two sets of tokens: ${again.status} ${JSON.stringify(again.body)}`);
  }

  /** The person types the code at /device and Continues, in `agent`'s browser: the page after. */
  async function entered(agent: Agent, userCode: string) {
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: userCode });
    assert.match(confirm.html, /name="confirm"/, `the confirmation: ${confirm.status} ${confirm.url}`);
    return confirm;
  }

  /** The person's retry from the start: the code typed again, Continue, sign-in and Allow as shown; "Device connected" or "already used" (the first attempt went through). */
  async function approvedAgain(agent: Agent, userCode: string, username: string) {
    const typed = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: userCode });
    if (/already used/.test(typed.html)) return;
    const done = await signInSteps(agent, await agent.submit(typed, '/device', { confirm: 'yes' }), { username, password: PASSWORD });
    assert.match(done.html, /Device connected/, `the retry connects the device: ${done.status} ${done.url}`);
  }

  it('an approval answered 503 at the device code’s write: the device gets tokens once (the approval done whole), not invalid_grant', async () => {
    await server.accounts.create('ada', PASSWORD);
    const device = await asked();
    const agent = new Agent();
    const consent = await signInSteps(agent, await agent.submit(await entered(agent, device.user_code), '/device', { confirm: 'yes' }), { username: 'ada', password: PASSWORD, consent: 'stop' });
    assert.match(consent.html, /\/confirm/, `the consent page: ${consent.status} ${consent.url}`);
    const first = await relayed.pausedAt(scriptOn('oidc:DeviceCode:'), () => agent.submit(consent, '/confirm', {}));
    blip(first);
    await tokensOnce(device.device_code, () => approvedAgain(agent, device.user_code, 'ada'));
  });
});
