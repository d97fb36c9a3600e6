/**
 * A client's registered `scope` and the scopes of an API added at runtime (`latchkey apis add`):
 * they may be registered (dynamic registration, the CLI and admin API through Clients), and then
 * bound what a person can delegate to the client at that API, as the static APIs' scopes do
 * (src/provider/patches/api-scopes-in-metadata.ts, src/provider/resource-servers.ts).
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { frontChannel } from '../helpers/front-channel.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { ClientError, Clients } from '../../src/registration/clients.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'runtime-api-scopes-secret-with-plenty-of-entropy-01';
const PASSWORD = 'runtime api scopes test password';
const LEDGER = 'https://ledger.example.test';

describe('e2e: a runtime API\'s scopes in a client\'s registered scope', function () {
  this.timeout(30_000);
  let server: TestServer;
  let clients: Clients;
  const secrets: Record<string, string> = { open: SECRET, bounded: SECRET };

  before(async () => {
    const client = (id: string, extra: Record<string, unknown> = {}) => ({ client_id: id, client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], ...extra });
    server = await startServer({ clients: [client('open'), client('bounded', { scope: 'openid profile' })], env: { REGISTRATION_OPEN: 'true' } });
    await server.apis.add({ identifier: LEDGER, scopes: ['entries:read', 'entries:write'], format: 'jwt' });
    await server.accounts.create('lena', PASSWORD);
    clients = server.clients;
  });
  after(() => server?.stop());

  const register = (metadata: Record<string, unknown>) =>
    fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: [REDIRECT], grant_types: ['authorization_code'], ...metadata }) });

  async function delegated(clientId: string): Promise<string[]> {
    const secret = secrets[clientId]!;
    const config = await oidc.discovery(new URL(server.issuer), clientId, secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    const { callback, verifier } = await frontChannel(config, {
      redirectUri: REDIRECT,
      username: 'lena',
      password: PASSWORD,
      params: { scope: 'openid entries:read entries:write', resource: LEDGER },
    });
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier }, { resource: LEDGER });
    const claims = decodeJwt(tokens.access_token);
    assert.equal(claims.aud, LEDGER);
    return String(claims.scope ?? '').split(' ').filter(Boolean).sort();
  }

  it('without registered scope, every scope of the API; with one that names none of them, none, and so no token for the API (invalid_target)', async () => {
    assert.deepEqual(await delegated('open'), ['entries:read', 'entries:write']);
    await assert.rejects(delegated('bounded'), (error: { error?: string }) => error.error === 'invalid_target');
  });

  it('dynamic registration takes a runtime API\'s scope, and the app is then bounded by it', async () => {
    const response = await register({ scope: 'openid entries:read' });
    const body = (await response.json()) as { client_id: string; client_secret: string; scope: string };
    assert.equal(response.status, 201, JSON.stringify(body));
    assert.equal(body.scope, 'openid entries:read');
    secrets[body.client_id] = body.client_secret;
    assert.deepEqual(await delegated(body.client_id), ['entries:read']);

    // Removing the API does not break the client (its scope was checked when it was registered).
    await server.apis.remove(LEDGER);
    try {
      const config = await oidc.discovery(new URL(server.issuer), body.client_id, body.client_secret, oidc.ClientSecretBasic(body.client_secret), { execute: [oidc.allowInsecureRequests] });
      const { callback } = await frontChannel(config, { redirectUri: REDIRECT, username: 'lena', password: PASSWORD, params: { scope: 'openid' } });
      assert.ok(callback.searchParams.get('code'));
    } finally {
      await server.apis.add({ identifier: LEDGER, scopes: ['entries:read', 'entries:write'], format: 'jwt' });
    }
  });

  it('a scope no API has, or a privileged one, is still refused at registration', async () => {
    for (const [scope, reason] of [['openid entries:delete', /scope "entries:delete" is not offered here/], ['openid revocations', /granted only by an operator/]] as const) {
      const response = await register({ scope });
      const body = (await response.json()) as { error: string; error_description: string };
      assert.equal(response.status, 400, scope);
      assert.equal(body.error, 'invalid_client_metadata');
      assert.match(body.error_description, reason);
    }
  });

  it('a configured client naming a scope no API has still stops the server at start', async () => {
    await assert.rejects(startServer({ clients: [{ client_id: 'payroll', client_secret: SECRET, redirect_uris: [REDIRECT], scope: 'openid payroll' }] }), /client "payroll": scope "payroll" is not offered here/);
  });

  it('the CLI and admin API (Clients) take a runtime API\'s scope too, and refuse one no API has', async () => {
    const added = await clients.add({ client_id: 'ledger-app', client_secret: SECRET, redirect_uris: [REDIRECT], scope: 'openid entries:write' });
    assert.equal(added.scope, 'openid entries:write');
    secrets['ledger-app'] = SECRET;
    assert.deepEqual(await delegated('ledger-app'), ['entries:write']);
    await assert.rejects(clients.add({ client_id: 'wants-more', client_secret: SECRET, redirect_uris: [REDIRECT], scope: 'openid entries:delete' }), (error: Error) => {
      assert.ok(error instanceof ClientError);
      assert.equal(error.error, 'invalid_client_metadata');
      return true;
    });
  });
});
