/**
 * Review of the fifteenth passes' device-flow changes (docs/security-passes.md, "review of the merged
 * changes (device errors)"): device-token-errors.ts lets through, as saved on a device code, only
 * codes that end a device's polling. A saved error is the end of the person's side, and the engine
 * consumes the code at the poll that tells it: a code that means "try again" (temporarily_unavailable,
 * authorization_pending, slow_down, use_dpop_nonce) sent the device to poll a code already spent.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TV = { client_id: 'tv-review-15', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] };

describe('e2e: review of the fifteenth passes, what a device is told of its flow\'s end', function () {
  this.timeout(60_000);
  let server: TestServer;
  let tv: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true, clients: [TV], env: { DEVICE_FLOW_POLL_INTERVAL: '1' } });
    // An upstream nothing answers at (a closed port): its page is "not answering", reason temporarily_unavailable.
    await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'down', issuer: `http://127.0.0.1:${await freePort()}`, clientId: 'latchkey', clientSecret: 'a-secret-for-an-upstream-that-is-down', scope: 'openid', displayName: 'Down', linkByEmail: false, endSession: false });
    tv = await oidc.discovery(new URL(server.issuer), TV.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  it('a person who stops at an upstream that is down ("Stop and tell the device") ends the device with access_denied, the reason in its description, not temporarily_unavailable for a code already spent', async () => {
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const login = await agent.submit(confirm, '/device', { confirm: 'yes' });
    assert.ok(login.html.includes('/upstream/down'), `the login page with the upstream: ${login.status} ${login.url}`);
    const down = await agent.submit(login, '/upstream/down', {});
    assert.match(down.html, /Down is not answering/, `${down.status} ${down.url}`);
    assert.match(down.html, /value="temporarily_unavailable"/);
    await agent.submit(down, '/upstream-cancel', {});

    await assert.rejects(oidc.pollDeviceAuthorizationGrant(tv, device), (error: { status?: number; error?: string; error_description?: string }) => {
      assert.equal(error.error, 'access_denied', `${error.error}: ${error.error_description}`);
      assert.match(error.error_description ?? '', /^temporarily_unavailable: the upstream identity provider is unavailable/);
      return true;
    });
    // The code is spent: a device that took the first answer for "try again" is told invalid_grant.
    const again = await fetch(`${server.issuer}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: TV.client_id }) });
    assert.equal(((await again.json()) as { error?: string }).error, 'invalid_grant');
  });
});
