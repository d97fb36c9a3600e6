/**
 * What a client's registered `scope` does to the scopes of an API added at runtime (`latchkey apis
 * add`), as things stand (README "Who gets an API's scopes"; src/provider/resource-servers.ts):
 * oidc-provider checks `scope` metadata against its static `scopes` (the OpenID scopes and the
 * `resourceServers` setting's), so a runtime API's scopes cannot be registered; a client without
 * `scope` may be delegated any of them; a client with `scope` is bounded by it, so it gets none.
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

describe('e2e: a runtime API\'s scopes and a client\'s registered scope', function () {
  this.timeout(30_000);
  let server: TestServer;
  const configs: Record<string, oidc.Configuration> = {};

  before(async () => {
    const client = (id: string, extra: Record<string, unknown> = {}) => ({ client_id: id, client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], ...extra });
    server = await startServer({ clients: [client('open'), client('bounded', { scope: 'openid profile' })] });
    await server.apis.add({ identifier: LEDGER, scopes: ['entries:read', 'entries:write'], format: 'jwt' });
    await server.accounts.create('lena', PASSWORD);
    for (const id of ['open', 'bounded']) {
      configs[id] = await oidc.discovery(new URL(server.issuer), id, SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    }
  });
  after(() => server?.stop());

  async function delegated(clientId: string): Promise<string[]> {
    const config = configs[clientId]!;
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

  it('a client without registered scope may be delegated every scope of the API', async () => {
    assert.deepEqual(await delegated('open'), ['entries:read', 'entries:write']);
  });

  it('a client with registered scope is bounded by it: none of the runtime API\'s scopes', async () => {
    assert.deepEqual(await delegated('bounded'), []);
  });

  it('a runtime API\'s scope cannot be registered in `scope` metadata', async () => {
    await assert.rejects(new Clients(server.kv, server.providers).add({ client_id: 'wants-ledger', client_secret: SECRET, redirect_uris: [REDIRECT], scope: 'openid entries:read' }), (error: Error) => {
      assert.ok(error instanceof ClientError);
      assert.equal(error.error, 'invalid_client_metadata');
      return true;
    });
  });
});
