/**
 * Path-scoped layers (http/layers.ts) meet a request for their path in any case and with a trailing
 * slash wherever the router serves it, and the answers for such variants are what they were before
 * the layers were scoped: the token endpoint's 401 of client-auth-required.ts at /TOKEN and /token/,
 * our 404 at /token//, the authorization endpoint's POST redirect (post-methods.ts, exact path only),
 * health and discovery at their exact paths only.
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

  it('POST at the authorization endpoint is redirected at its exact path; other spellings get what the engine answers', async () => {
    const exact = await post('/auth', 'client_id=x&scope=openid');
    assert.equal(exact.status, 303);
    assert.equal(exact.headers.get('location'), '/auth?client_id=x&scope=openid');
    for (const path of ['/AUTH', '/auth/']) {
      const other = await post(path, 'client_id=x&scope=openid');
      assert.equal(other.status, 404, path);
      assert.deepEqual(await other.json(), { error: 'not_found', error_description: 'no such endpoint' }, path);
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

  it('discovery: the exact path is answered from memory with an ETag, other spellings by the engine', async () => {
    const exact = await fetch(`${server.url}/.well-known/openid-configuration`);
    assert.equal(exact.status, 200);
    assert.ok(exact.headers.get('etag'));
    const slash = await fetch(`${server.url}/.well-known/openid-configuration/`);
    assert.equal(slash.status, 200);
    assert.deepEqual(await slash.json(), await exact.json());
  });
});
