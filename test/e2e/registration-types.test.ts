/**
 * Client metadata of the wrong type (redirect URIs that are not an array of strings) gets the RFC
 * 7591 error on every path that registers clients, never a 500: the registration policy runs
 * before oidc-provider's own type checks and used to iterate whatever it was given.
 */
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';

const OPS_SECRET = 'registration-types-ops-secret-with-entropy-012345';
const WRONG = [{ a: 1 }, [1], ['https://ok.example.test/cb', null], 'https://ok.example.test/cb', [['https://ok.example.test/cb']], true];

describe('e2e: client metadata of the wrong type', function () {
  this.timeout(30_000);
  let server: TestServer;
  let adminToken: string;

  before(async () => {
    server = await startServer({
      env: {
        REGISTRATION_OPEN: 'true',
        CLIENTS: JSON.stringify([{ client_id: 'ops', client_secret: OPS_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'admin' }]),
      },
    });
    await server.apis.grant('ops', `${server.issuer}/admin`, { scopes: ['admin'] });
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`ops:${OPS_SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' }),
    });
    adminToken = ((await response.json()) as { access_token: string }).access_token;
  });
  after(() => server?.stop());

  async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
    const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as { error?: string; error_description?: string } };
  }

  it('dynamic registration: 400 with a description, for redirect_uris and post_logout_redirect_uris', async () => {
    for (const value of WRONG) {
      const redirects = await post('/reg', { redirect_uris: value });
      assert.equal(redirects.status, 400, JSON.stringify(value));
      assert.equal(redirects.body.error, 'invalid_redirect_uri', JSON.stringify(value));
      assert.match(redirects.body.error_description ?? '', /redirect_uris must be an array/);
      const logout = await post('/reg', { redirect_uris: ['https://ok.example.test/cb'], post_logout_redirect_uris: value });
      assert.equal(logout.status, 400, JSON.stringify(value));
      assert.equal(logout.body.error, 'invalid_client_metadata', JSON.stringify(value));
    }
  });

  it('the admin API: 400 as well', async () => {
    for (const value of WRONG) {
      const answer = await post('/admin/clients', { redirect_uris: value }, { authorization: `Bearer ${adminToken}` });
      assert.equal(answer.status, 400, JSON.stringify(value));
      assert.ok(['invalid_redirect_uri', 'invalid_client_metadata'].includes(String(answer.body.error)), JSON.stringify(answer.body));
    }
  });
});
