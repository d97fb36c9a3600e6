/**
 * Discovery answered from memory (src/provider/discovery.ts): the same document oidc-provider
 * builds, with an ETag that revalidates to 304, CORS as oidc-provider answers it, and a fresh
 * document after a key ring change brings a new provider instance.
 */
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';

describe('e2e: discovery documents from memory', function () {
  this.timeout(30_000);
  let server: TestServer;
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${server.url}${path}`, { headers });

  before(async () => {
    server = await startServer({ ownRedis: true });
  });
  after(async () => server?.stop());

  it('answers every request with the document oidc-provider built, and an ETag', async () => {
    const first = await get('/.well-known/openid-configuration');
    const firstBody = (await first.json()) as Record<string, unknown>;
    assert.equal(first.status, 200);
    assert.equal(firstBody.issuer, server.issuer);
    assert.equal(firstBody.jwks_uri, `${server.issuer}/jwks`);
    const again = await get('/.well-known/openid-configuration');
    assert.equal(again.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.deepEqual(await again.json(), firstBody);
    assert.equal(again.headers.get('etag'), first.headers.get('etag'));
    assert.match(again.headers.get('etag') ?? '', /^"[\w-]+"$/);
    // Kept by caches for revalidation, never served from one unchecked (no-store would waste the ETag).
    for (const answer of [first, again]) assert.equal(answer.headers.get('cache-control'), 'no-cache');
    // The security headers of every answer are still there.
    assert.ok(again.headers.get('content-security-policy'));
  });

  it('revalidates with If-None-Match to 304 without a body; another ETag gets the document', async () => {
    const { headers } = await get('/.well-known/openid-configuration');
    const etag = headers.get('etag')!;
    const unchanged = await get('/.well-known/openid-configuration', { 'if-none-match': `W/${etag}` });
    assert.equal(unchanged.status, 304);
    assert.equal(await unchanged.text(), '');
    const changed = await get('/.well-known/openid-configuration', { 'if-none-match': '"something-else"' });
    assert.equal(changed.status, 200);
  });

  it('may be read from any origin, as oidc-provider answers it', async () => {
    await get('/.well-known/openid-configuration');
    const cross = await get('/.well-known/openid-configuration', { origin: 'https://app.example.test' });
    assert.equal(cross.headers.get('access-control-allow-origin'), 'https://app.example.test');
    assert.match(cross.headers.get('vary') ?? '', /Origin/);
    assert.equal((await get('/.well-known/openid-configuration')).headers.get('access-control-allow-origin'), '*');
  });

  it('after a key ring change the new provider instance answers the same document', async () => {
    const before = (await (await get('/.well-known/openid-configuration')).json()) as Record<string, unknown>;
    const provider = server.providers.current;
    await server.keys.rotate(true);
    for (let i = 0; i < 50 && server.providers.current === provider; i += 1) await new Promise((done) => setTimeout(done, 100));
    assert.notEqual(server.providers.current, provider, 'a new provider instance serves');
    assert.deepEqual(await (await get('/.well-known/openid-configuration')).json(), before);
    assert.deepEqual(await (await get('/.well-known/openid-configuration')).json(), before);
  });
});
