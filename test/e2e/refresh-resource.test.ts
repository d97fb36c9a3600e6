/**
 * A refresh request refused for its `resource` (invalid_target) must not spend the refresh token:
 * before the fix, the token was consumed first, so the client's next correct refresh looked like a
 * replay and revoked the whole grant (RFC 9700 §4.14.2 rotation must not punish a refused request).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { frontChannel } from '../helpers/front-channel.js';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'refresh-resource-secret-with-plenty-of-entropy-012';
const PASSWORD = 'refresh resource test password';
const API = 'https://api.example.test';
const OTHER_API = 'https://other-api.example.test';

describe('e2e: a refused refresh does not spend the refresh token', function () {
  this.timeout(30_000);
  let server: TestServer;
  let config: oidc.Configuration;

  before(async () => {
    server = await startServer({
      env: {
        RESOURCE_SERVERS: JSON.stringify([
          { identifier: API, scopes: ['read'], format: 'jwt' },
          { identifier: OTHER_API, scopes: ['read'], format: 'jwt' },
        ]),
        CLIENTS: JSON.stringify([{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] }]),
      },
    });
    await server.accounts.create('refresher', PASSWORD);
    config = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => server?.stop());

  async function refreshToken(): Promise<string> {
    const { callback, verifier } = await frontChannel(config, {
      redirectUri: REDIRECT,
      username: 'refresher',
      password: PASSWORD,
      params: { scope: 'openid offline_access read', resource: API, prompt: 'consent' },
    });
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier }, { resource: API });
    return tokens.refresh_token!;
  }

  async function refresh(token: string, params: Record<string, string | string[]>) {
    const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token });
    for (const [name, value] of Object.entries(params)) for (const each of [value].flat()) body.append(name, each);
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`app:${SECRET}`).toString('base64')}` },
      body,
    });
    return { status: response.status, body: (await response.json()) as { error?: string; refresh_token?: string; access_token?: string } };
  }

  it('a resource the token was not issued for → invalid_target, and the same token still refreshes', async () => {
    const token = await refreshToken();
    for (const resource of [OTHER_API, 'https://unknown.example.test', [API, OTHER_API]]) {
      const refused = await refresh(token, { resource });
      assert.equal(refused.status, 400, JSON.stringify(resource));
      assert.equal(refused.body.error, 'invalid_target', JSON.stringify(resource));
    }
    const ok = await refresh(token, { resource: API });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.ok(ok.body.refresh_token);
    const again = await refresh(ok.body.refresh_token!, {});
    assert.equal(again.status, 200, 'the grant is intact');
  });

  it('a spent refresh token presented again still revokes the grant (replay detection is unchanged)', async () => {
    const token = await refreshToken();
    const first = await refresh(token, { resource: API });
    assert.equal(first.status, 200);
    assert.equal((await refresh(token, { resource: API })).body.error, 'invalid_grant');
    assert.equal((await refresh(first.body.refresh_token!, {})).body.error, 'invalid_grant');
  });
});
