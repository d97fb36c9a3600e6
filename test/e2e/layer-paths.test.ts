/**
 * Path-scoped layers (http/layers.ts) meet a request for their path in any case and with a trailing
 * slash wherever the router serves it, and the answers for such variants are what they were before
 * the layers were scoped: the token endpoint's 401 of client-auth-required.ts at /TOKEN and /token/,
 * our 404 at /token//, health at its exact paths only. Every spelling of an engine's route is that
 * route's own (provider/patches/canonical-paths.ts): the authorization endpoint's POST redirect,
 * discovery and JWKS from memory.
 */
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';

describe('e2e: scoped layers and path variants', function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    server = await startServer();
  });
  after(() => server?.stop());

  const post = (path: string, body: string) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
    });

  it('the token endpoint refuses a request without client authentication alike at /token, /TOKEN, /token/ and /Token/', async () => {
    for (const path of ['/token', '/TOKEN', '/token/', '/Token/']) {
      const response = await post(path, 'grant_type=client_credentials');
      assert.equal(response.status, 401, path);
      assert.match(response.headers.get('www-authenticate') ?? '', /^Basic realm=/, path);
      assert.deepEqual(await response.json(), { error: 'invalid_client', error_description: 'client authentication is required' }, path);
    }
    const twoSlashes = await post('/token//', 'grant_type=client_credentials');
    assert.equal(twoSlashes.status, 404);
    assert.deepEqual(await twoSlashes.json(), { error: 'not_found', error_description: 'no such endpoint' });
  });

  it('POST at the authorization endpoint is redirected under every spelling the engine serves (each route has one spelling)', async () => {
    for (const path of ['/auth', '/AUTH', '/auth/']) {
      const answer = await post(path, 'client_id=x&scope=openid');
      assert.equal(answer.status, 303, path);
      assert.equal(answer.headers.get('location'), '/auth?client_id=x&scope=openid', path);
    }
  });

  it('health answers at its exact paths only; every GET is no-store unless its route says otherwise', async () => {
    const healthz = await fetch(`${server.url}/healthz`);
    assert.equal(healthz.status, 200);
    assert.equal(healthz.headers.get('cache-control'), 'no-store');
    for (const path of ['/HEALTHZ', '/healthz/']) {
      const other = await fetch(`${server.url}${path}`, { headers: { accept: 'application/json' } });
      assert.equal(other.status, 404, path);
      assert.equal(other.headers.get('cache-control'), 'no-store', path);
    }
    const jwks = await fetch(`${server.url}/jwks`);
    assert.match(jwks.headers.get('cache-control') ?? '', /^public, max-age=/);
  });

  it('discovery and JWKS: every spelling the engine serves gets the same document from memory, with its ETag', async () => {
    for (const [path, others] of [
      ['/.well-known/openid-configuration', ['/.well-known/openid-configuration/', '/.WELL-KNOWN/OpenID-Configuration']],
      ['/jwks', ['/jwks/', '/JWKS']],
    ] as const) {
      const exact = await fetch(`${server.url}${path}`);
      assert.equal(exact.status, 200);
      const etag = exact.headers.get('etag');
      assert.ok(etag, path);
      const document = await exact.json();
      for (const other of others) {
        const answer = await fetch(`${server.url}${other}`);
        assert.equal(answer.status, 200, other);
        assert.equal(answer.headers.get('etag'), etag, other);
        assert.deepEqual(await answer.json(), document, other);
      }
    }
  });
});
