/**
 * The red team's third pass at "Latchkey hands out more than was granted", black box: what a device
 * (RFC 8628) may ask for at the device authorization endpoint. The rest of the pass's matrix held
 * against tests that already perform it (docs/security.md lists them); this file keeps the cell no
 * test performed: a device authorization asking beyond its client's `scope` metadata, or for a
 * privileged API, is refused there, before any user code reaches a person to approve.
 */
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, basic, type ClientCredentials } from '../helpers/tokens.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const HUB: ClientCredentials = { id: 'hub', secret: 'hub-secret-with-plenty-of-entropy-0123456789abcdef' };
const APP: ClientCredentials = { id: 'app', secret: 'app-secret-with-plenty-of-entropy-0123456789abcdef' };
const REDIRECT = 'https://app.example.test/callback';

describe('e2e: red team, third pass, Latchkey hands out more than was granted', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read', 'write'], format: 'jwt' }]) },
      clients: [
        // A public device client that may ask for its person's profile and the API's read, nothing more.
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [], scope: 'openid profile read' },
        // A confidential device client without scope metadata: any scope a person may delegate.
        { client_id: HUB.id, client_secret: HUB.secret, application_type: 'native', grant_types: [DEVICE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [] },
        // A web app that pushes its requests (RFC 9126), with the same scope metadata as the device.
        { client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], scope: 'openid profile read' },
      ],
    });
  });
  after(() => server?.stop());

  async function deviceAuthorization(params: Record<string, string>, headers: Record<string, string> = {}) {
    return post('/device/auth', params, headers);
  }

  /** A pushed authorization request of the web app (PKCE S256), as openid-client would push it. */
  async function pushed(params: Record<string, string>) {
    const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
    return post('/request', { client_id: APP.id, response_type: 'code', redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', ...params }, { authorization: basic(APP) });
  }

  async function post(path: string, params: Record<string, string>, headers: Record<string, string> = {}) {
    const response = await fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
      body: new URLSearchParams(params),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it("a device authorization asking for more than its client may request gets no user code: an OpenID scope, offline_access or an API's scope outside its scope metadata is invalid_scope, a privileged API (the admin API, the feed) invalid_target, even for a confidential device client (RFC 8628 §3.1, RFC 6749 §3.3, RFC 8707 §2)", async () => {
    const baseline = await deviceAuthorization({ client_id: 'tv', scope: 'openid profile read', resource: API });
    assert.equal(baseline.status, 200, JSON.stringify(baseline.body));
    assert.equal(typeof baseline.body.user_code, 'string', 'what the client may request gets a user code (the baseline)');

    for (const [scope, beyond] of [['openid email', 'email'], ['openid offline_access', 'offline_access'], ['openid read write', 'write']] as const) {
      const refused = await deviceAuthorization({ client_id: 'tv', scope, resource: API });
      assert.equal(refused.status, 400, `${scope}: ${JSON.stringify(refused.body)}`);
      assert.deepEqual([refused.body.error, refused.body.scope, refused.body.user_code], ['invalid_scope', beyond, undefined], scope);
    }
    for (const [resource, scope] of [[`${server.issuer}/admin`, 'admin'], [`${server.issuer}/revocations`, 'revocations']] as const) {
      const refused = await deviceAuthorization({ scope: `openid ${scope}`, resource }, { authorization: basic(HUB) });
      assert.equal(refused.status, 400, `${resource}: ${JSON.stringify(refused.body)}`);
      assert.equal(refused.body.error, 'invalid_target', resource);
      assert.equal(refused.body.user_code, undefined, resource);
    }
  });

  it("a pushed authorization request asking for more than its client may request gets no request_uri: the same refusals at the pushed authorization endpoint (RFC 9126 §2.3, RFC 6749 §3.3, RFC 8707 §2)", async () => {
    const baseline = await pushed({ scope: 'openid profile read', resource: API });
    assert.equal(baseline.status, 201, JSON.stringify(baseline.body));
    assert.equal(typeof baseline.body.request_uri, 'string', 'what the client may request is pushed (the baseline)');

    for (const [scope, beyond] of [['openid email', 'email'], ['openid read write', 'write']] as const) {
      const refused = await pushed({ scope, resource: API });
      assert.equal(refused.status, 400, `${scope}: ${JSON.stringify(refused.body)}`);
      assert.deepEqual([refused.body.error, refused.body.scope, refused.body.request_uri], ['invalid_scope', beyond, undefined], scope);
    }
    // The privileged scopes are outside its scope metadata (invalid_scope, as above): the API alone is asked for.
    for (const resource of [`${server.issuer}/admin`, `${server.issuer}/revocations`]) {
      const refused = await pushed({ scope: 'openid', resource });
      assert.equal(refused.status, 400, `${resource}: ${JSON.stringify(refused.body)}`);
      assert.deepEqual([refused.body.error, refused.body.request_uri], ['invalid_target', undefined], resource);
    }
  });
});
