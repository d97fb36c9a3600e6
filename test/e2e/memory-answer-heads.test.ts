/**
 * The heads of the answers served from memory ahead of the engine (discovery, provider/discovery.ts;
 * the JWKS, keyring/jwks-endpoint.ts), header by header in the order written: made once per
 * document or key set and written whole, they must stay what setting each header per request gave
 * (the security headers every answer starts with, the caching and CORS headers, the type and a
 * length that is the body's), for GET, HEAD, a matching If-None-Match and a request with an Origin.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { startServer, type TestServer } from '../helpers/server.js';

interface Head {
  readonly status: number;
  /** Every header as written, in order: [name, value]. */
  readonly headers: [string, string][];
  readonly body: Buffer;
}

function send(url: string, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<Head> {
  return new Promise((done, fail) => {
    const req = request(`${url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const pairs: [string, string][] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
        done({ status: res.statusCode!, headers: pairs, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', fail);
    req.end();
  });
}

const names = (head: Head) => head.headers.map(([name]) => name);
const value = (head: Head, name: string) => head.headers.find(([header]) => header.toLowerCase() === name)?.[1];
/** The headers every GET answer starts with (X-Request-Id, helmet's, Permissions-Policy, then Cache-Control). */
const SECURITY = [
  'X-Request-Id', 'Content-Security-Policy', 'Cross-Origin-Opener-Policy', 'Cross-Origin-Resource-Policy',
  'Origin-Agent-Cluster', 'Referrer-Policy', 'X-Content-Type-Options', 'X-DNS-Prefetch-Control', 'X-Download-Options',
  'X-Frame-Options', 'X-Permitted-Cross-Domain-Policies', 'X-XSS-Protection', 'Permissions-Policy', 'Cache-Control',
];
/** What Node writes after the answer's own headers. */
const NODE = ['Date', 'Connection', 'Keep-Alive'];

describe('e2e: the heads of answers served from memory', function () {
  this.timeout(30_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true });
  });
  after(async () => server?.stop());

  for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
    it(`discovery at ${path}: every header, in order, for GET, HEAD, an Origin and a matching ETag`, async () => {
      const first = await send(server.url, path); // made by the engine, then kept
      assert.equal(first.status, 200);
      const get = await send(server.url, path);
      assert.equal(get.status, 200);
      assert.deepEqual(names(get), [...SECURITY, 'Vary', 'Access-Control-Allow-Origin', 'ETag', 'Content-Type', 'Content-Length', ...NODE]);
      assert.deepEqual(get.body, first.body);
      assert.equal(value(get, 'content-length'), String(get.body.length));
      assert.equal(value(get, 'cache-control'), 'no-cache');
      assert.equal(value(get, 'cross-origin-resource-policy'), 'cross-origin');
      assert.equal(value(get, 'vary'), 'Origin');
      assert.equal(value(get, 'access-control-allow-origin'), '*');
      assert.equal(value(get, 'content-type'), 'application/json; charset=utf-8');
      assert.equal(value(get, 'etag'), value(first, 'etag'));
      assert.match(value(get, 'x-request-id') ?? '', /^[\w-]{36}$/);

      const head = await send(server.url, path, 'HEAD');
      assert.equal(head.status, 200);
      assert.deepEqual(names(head), names(get));
      assert.equal(value(head, 'content-length'), String(get.body.length));
      assert.equal(head.body.length, 0);

      const cross = await send(server.url, path, 'GET', { origin: 'https://app.example.test' });
      assert.deepEqual(names(cross), names(get));
      assert.equal(value(cross, 'access-control-allow-origin'), 'https://app.example.test');
      assert.deepEqual(cross.body, get.body);

      for (const origin of [undefined, 'https://app.example.test']) {
        const unchanged = await send(server.url, path, 'GET', { 'if-none-match': value(get, 'etag')!, ...(origin && { origin }) });
        assert.equal(unchanged.status, 304);
        assert.deepEqual(names(unchanged), [...SECURITY, 'Vary', 'Access-Control-Allow-Origin', 'ETag', ...NODE]);
        assert.equal(value(unchanged, 'access-control-allow-origin'), origin ?? '*');
        assert.equal(value(unchanged, 'etag'), value(get, 'etag'));
        assert.equal(unchanged.body.length, 0);
      }
    });
  }

  for (const path of ['/jwks', '/.well-known/jwks.json']) {
    it(`the JWKS at ${path}: every header, in order, for GET, HEAD and a matching ETag`, async () => {
      const get = await send(server.url, path);
      assert.equal(get.status, 200);
      assert.deepEqual(names(get), [...SECURITY, 'ETag', 'Access-Control-Allow-Origin', 'Content-Type', 'Content-Length', ...NODE]);
      assert.match(value(get, 'cache-control') ?? '', /^public, max-age=\d+$/);
      assert.equal(value(get, 'cross-origin-resource-policy'), 'cross-origin');
      assert.equal(value(get, 'access-control-allow-origin'), '*');
      assert.equal(value(get, 'content-type'), 'application/jwk-set+json; charset=utf-8');
      assert.equal(value(get, 'content-length'), String(get.body.length));
      assert.ok((JSON.parse(get.body.toString('utf8')) as { keys: unknown[] }).keys.length > 0);

      const head = await send(server.url, path, 'HEAD');
      assert.equal(head.status, 200);
      assert.deepEqual(names(head), names(get));
      assert.equal(value(head, 'content-length'), String(get.body.length));
      assert.equal(head.body.length, 0);

      const unchanged = await send(server.url, path, 'GET', { 'if-none-match': value(get, 'etag')! });
      assert.equal(unchanged.status, 304);
      assert.deepEqual(names(unchanged), [...SECURITY, 'ETag', 'Access-Control-Allow-Origin', ...NODE]);
      assert.equal(unchanged.body.length, 0);
    });
  }
});
