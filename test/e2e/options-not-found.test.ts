/**
 * An OPTIONS request that is not a CORS preflight gets our usual 404 (JSON or the error page, by
 * Accept) at every endpoint, including the CORS-enabled ones; real preflights still get 204.
 */
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';

const CORS_ENABLED = ['/token', '/me', '/jwks', '/.well-known/openid-configuration', '/token/introspection', '/token/revocation', '/request'];
/** Endpoints and pages of every other kind: the engine's, the revocation feed, the admin API, people's pages. */
const OTHERS = ['/auth', '/session/end', '/device/auth', '/device', '/reg', '/revocations', '/admin/clients', '/admin/openapi.json', '/account', '/developer', '/', '/healthz', '/interaction/some-uid'];

describe('e2e: OPTIONS without a CORS preflight', function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());

  it('gets the JSON not_found answer, or the error page for a browser', async () => {
    for (const path of [...CORS_ENABLED, ...OTHERS]) {
      const json = await fetch(`${server.url}${path}`, { method: 'OPTIONS', headers: { accept: 'application/json', origin: 'https://app.example.test' } });
      assert.equal(json.status, 404, path);
      assert.deepEqual(await json.json(), { error: 'not_found', error_description: 'no such endpoint' }, path);
      const html = await fetch(`${server.url}${path}`, { method: 'OPTIONS', headers: { accept: 'text/html' } });
      assert.equal(html.status, 404, path);
      assert.match(await html.text(), /Page not found/, path);
    }
  });

  it('a real preflight still gets 204 with the CORS headers', async () => {
    for (const path of CORS_ENABLED) {
      const response = await fetch(`${server.url}${path}`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example.test', 'access-control-request-method': 'POST' },
      });
      assert.equal(response.status, 204, path);
      assert.ok(response.headers.get('access-control-allow-origin'), path);
    }
  });
});
