/**
 * The thirteenth fresh-eyes passes' attack on the device authorization grant (RFC 8628;
 * docs/security-passes.md, "thirteenth fresh-eyes passes of 2026-12-07: device authorization grant"):
 * a device code held to its client's cutoff as a sign-in is (a device authorization caught in flight,
 * deterministically by the test relay, while another instance narrows the client and widens it again;
 * a person's approval caught so, which held already), and what the person is told when the device's
 * request is refused as they press Continue.
 */
import assert from 'node:assert/strict';
import { Agent, type Page } from '../helpers/agent.js';
import { commandsIn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { signInSteps } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const PASSWORD = 'device thirteenth pass password';
const device = (id: string, extra: Record<string, unknown> = {}) => ({
  client_id: id,
  client_name: `App ${id}`,
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: [DEVICE_GRANT, 'refresh_token'],
  response_types: [],
  redirect_uris: [],
  ...extra,
});

describe('e2e: the device authorization grant attacked, thirteenth fresh-eyes passes', function () {
  this.timeout(120_000);
  let relayed: RelayedServer;
  /** A second instance of the same deployment, straight to the same Redis: where the operator's changes are made. */
  let other: TestServer;

  before(async () => {
    relayed = await startRelayedServer({ DEVICE_FLOW_POLL_INTERVAL: '1' });
    other = await startServer({ redisUrl: relayed.redis.url, port: undefined, env: { ISSUER: relayed.server.issuer, DEVICE_FLOW_POLL_INTERVAL: '1' } });
    for (const name of ['alice', 'bob', 'carol']) await other.accounts.create(name, PASSWORD);
  });
  after(async () => {
    await other?.stop();
    await relayed?.stop();
  });

  /** A trigger: a script (a record's write) with a device code's record among its KEYS. */
  const deviceCodeWrite = (chunk: string) =>
    commandsIn(chunk).some(([name = '', , keys = '0', ...args]) => /^eval(sha)?$/i.test(name) && args.slice(0, Number(keys)).some((arg) => arg.startsWith(`${relayed.server.config.redis.keyPrefix}oidc:DeviceCode:`)));

  async function authorize(url: string, clientId: string, scope: string): Promise<{ device_code: string; user_code: string }> {
    const response = await fetch(`${url}/device/auth`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: clientId, scope }) });
    const body = (await response.json()) as { device_code: string; user_code: string };
    assert.equal(response.status, 200, JSON.stringify(body));
    return body;
  }

  /** The device's poll, after its interval (1 s here: sooner is slow_down): "tokens", or the error. */
  async function poll(clientId: string, deviceCode: string): Promise<string> {
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const response = await fetch(`${other.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: clientId }),
    });
    const body = (await response.json()) as { error?: string; access_token?: string };
    return body.access_token ? 'tokens' : body.error!;
  }

  /** The code typed at `url`/device: the confirmation page (the pages' forms go to the issuer, the relayed instance). */
  async function typed(agent: Agent, url: string, userCode: string): Promise<Page> {
    return agent.submit(await agent.follow(`${url}/device`), '/device', { user_code: userCode });
  }

  /** An operator takes the device grant from the client and gives it back (a mistake undone), at the other instance. */
  async function narrowedAndWidenedAgain(clientId: string): Promise<void> {
    await other.clients.update(clientId, device(clientId, { grant_types: ['refresh_token'] }));
    await other.clients.update(clientId, device(clientId));
  }

  it('a device authorization caught in flight while its client was narrowed, and widened again, cannot be approved (held to the cutoff, as a sign-in is)', async () => {
    await other.clients.add(device('tv'));
    const held = await relayed.relay.hold(deviceCodeWrite, () => authorize(relayed.server.url, 'tv', 'openid offline_access'));
    await narrowedAndWidenedAgain('tv');
    const { device_code, user_code } = await held.release();

    const agent = new Agent();
    const confirm = await typed(agent, relayed.server.url, user_code);
    assert.match(confirm.html, /name="confirm"/, `the confirmation: ${confirm.status} ${confirm.url}`);
    const page = /name="confirm"/.test(confirm.html) ? await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'alice', password: PASSWORD }) : confirm;
    assert.doesNotMatch(page.html, /Device connected/, `a device code of before the narrowing was approved: ${page.status} ${page.url}`);
    assert.ok(page.status < 500, `never a 5xx (${page.status})`);
    assert.match(page.html, /App tv<\/bdi> was not connected|App tv was not connected/, 'the person is told the device was not connected');
    assert.notEqual(await poll('tv', device_code), 'tokens', 'a device code of before the narrowing got tokens');
  });

  it("a person's approval caught in flight while the client was narrowed, and widened again, gives the device no tokens (the approval's write over a code ended meanwhile is refused: held already)", async () => {
    await other.clients.add(device('console'));
    const { device_code, user_code } = await authorize(other.url, 'console', 'openid offline_access');
    const agent = new Agent();
    const consent = await signInSteps(agent, await agent.submit(await typed(agent, relayed.server.url, user_code), '/device', { confirm: 'yes' }), { username: 'bob', password: PASSWORD, consent: 'stop' });
    assert.match(consent.html, /\/confirm/, `the consent page: ${consent.status} ${consent.url}`);

    const held = await relayed.relay.hold(deviceCodeWrite, () => agent.submit(consent, '/confirm', {}));
    await narrowedAndWidenedAgain('console');
    const page = await held.release();
    assert.ok(page.status < 500, `never a 5xx (${page.status})`);
    assert.notEqual(await poll('console', device_code), 'tokens', 'a device code approved across the narrowing got tokens');
  });

  it('a request refused as the person presses Continue (a scope taken from the app since) tells them the app was not connected, not to type the code again', async () => {
    const metadata = device('radio', { scope: 'openid profile email' });
    await other.clients.add(metadata);
    const { device_code, user_code } = await authorize(other.url, 'radio', 'openid email');
    await other.clients.update('radio', { ...metadata, scope: 'openid profile' });
    const agent = new Agent();
    const confirm = await typed(agent, relayed.server.url, user_code);
    const page = await agent.submit(confirm, '/device', { confirm: 'yes' });
    assert.equal(await poll('radio', device_code), 'invalid_scope', 'the device is told');
    assert.match(page.html, /App radio<\/bdi> was not connected|App radio was not connected/, `the person is told: ${page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 400)}`);
    assert.doesNotMatch(page.html, /Enter the code again/);
  });
});
