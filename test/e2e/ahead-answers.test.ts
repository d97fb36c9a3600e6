/**
 * Discovery and the JWKS, answered by the request listener before Koa (http/ahead.ts), keep what
 * the app gave them: the request line and the duration metric as the app writes them (a request
 * in another spelling, which goes through the app, is the reference), a proxy's request id, the
 * per-address limit counted as the app counts it (its 429 included), and a key ring change shown
 * at the next request. The heads themselves: memory-answer-heads.test.ts.
 */
import assert from 'node:assert/strict';
import { createLogger } from '../../src/ops/logger.js';
import { eventually } from '../helpers/eventually.js';
import { startServer, type TestServer } from '../helpers/server.js';

const LIMIT = 4;

describe('e2e: discovery and the JWKS answered before the app', function () {
  this.timeout(30_000);
  let server: TestServer;
  const lines: string[] = [];
  let address = 0;
  /** A new client address for each request (PROXY: the last X-Forwarded-For entry), so that the limit stays out of the way. */
  const fresh = () => `198.51.100.${(address += 1)}`;

  before(async () => {
    server = await startServer({
      env: { LOG_LEVEL: 'info', PROXY: 'true', RATE_LIMIT_METADATA_PER_IP: String(LIMIT) },
      logger: createLogger('info', { write: (line: string) => void lines.push(line) }),
    });
    // Each discovery path's first answer is the engine's (then kept).
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      assert.equal((await fetch(`${server.url}${path}`, { headers: { 'x-forwarded-for': fresh() } })).status, 200);
    }
  });
  after(async () => server?.stop());

  const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
    fetch(`${server.url}${path}`, { method, headers: { 'x-forwarded-for': fresh(), ...headers } });

  /** The request line of the answer with this request id (the time and the duration aside). */
  const lineOf = (requestId: string) =>
    eventually(async () => {
      const line = lines.map((text) => JSON.parse(text) as Record<string, unknown>).find((fields) => fields.requestId === requestId && fields.msg === 'request');
      assert.ok(line, `a request line for ${requestId}`);
      assert.equal(typeof line.ms, 'number');
      assert.equal(typeof line.time, 'number');
      const { ms: _ms, time: _time, ...rest } = line;
      return rest;
    });

  const scrape = async () => (await (await fetch(server.metricsUrl!)).text()).split('\n');
  const count = (scraped: string[], method: string, status: string) =>
    Number(scraped.find((line) => line.startsWith(`latchkey_http_request_duration_seconds_count{route="other",method="${method}",status="${status}"} `))?.split(' ')[1] ?? 0);

  for (const [path, other] of [
    ['/.well-known/openid-configuration', '/.well-known/openid-configuration/'],
    ['/.well-known/oauth-authorization-server', '/.well-known/OAUTH-authorization-server'],
    ['/jwks', '/jwks/'],
    ['/.well-known/jwks.json', '/jwks/'], // no other spelling of this one reaches the app
  ] as const) {
    it(`${path}: the request line and the metric of GET, HEAD and a 304, as the app writes them for ${other}`, async () => {
      const before = await scrape();
      const reference = await get(other);
      assert.equal(reference.status, 200);
      const etag = reference.headers.get('etag')!;
      for (const [method, headers, status] of [
        ['GET', {}, 200],
        ['HEAD', {}, 200],
        ['GET', { 'if-none-match': etag }, 304],
        ['GET', { origin: 'https://app.example.test' }, 200],
      ] as const) {
        const ahead = await get(`${path}?any=query`, headers, method);
        const app = await get(other, headers, method);
        assert.equal(ahead.status, status);
        assert.equal(app.status, status);
        assert.equal(await ahead.text(), await app.text());
        const [aheadLine, appLine] = [await lineOf(ahead.headers.get('x-request-id')!), await lineOf(app.headers.get('x-request-id')!)];
        assert.deepEqual(Object.keys(aheadLine), Object.keys(appLine), 'the same fields, in order');
        assert.deepEqual({ ...aheadLine, requestId: '', path: '' }, { ...appLine, requestId: '', path: '' });
        assert.equal(aheadLine.path, path);
        assert.equal(aheadLine.status, status);
        assert.equal(aheadLine.outcome, 'ok');
      }
      const after = await scrape();
      // Each kind twice (ahead and through the app) and the reference GET.
      assert.equal(count(after, 'GET', '2xx') - count(before, 'GET', '2xx'), 5);
      assert.equal(count(after, 'HEAD', '2xx') - count(before, 'HEAD', '2xx'), 2);
      assert.equal(count(after, 'GET', '3xx') - count(before, 'GET', '3xx'), 2);
    });
  }

  it("a proxy's well-formed X-Request-Id is the answer's and the line's; another is replaced", async () => {
    const kept = await get('/jwks', { 'x-request-id': 'edge-42.a' });
    assert.equal(kept.headers.get('x-request-id'), 'edge-42.a');
    assert.equal((await lineOf('edge-42.a')).path, '/jwks');
    const replaced = await get('/.well-known/openid-configuration', { 'x-request-id': 'not an id' });
    assert.match(replaced.headers.get('x-request-id')!, /^[\da-f-]{36}$/);
  });

  it('the per-address limit counts each answer (both JWKS paths one route), then the app refuses with 429', async () => {
    const from = { 'x-forwarded-for': '203.0.113.7, 192.0.2.9' }; // the proxy's entry, the last, is the address
    for (let n = 0; n < LIMIT; n += 1) {
      const path = n % 2 ? '/jwks' : '/.well-known/jwks.json';
      assert.equal((await get(path, from)).status, 200, `request ${n + 1}`);
    }
    for (const path of ['/jwks', '/.well-known/jwks.json']) {
      const refused = await get(path, from);
      assert.equal(refused.status, 429);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      assert.equal((await lineOf(refused.headers.get('x-request-id')!)).status, 429);
    }
    assert.equal((await get('/jwks', { 'x-forwarded-for': '192.0.2.10' })).status, 200, 'another address');
    assert.equal((await get('/.well-known/openid-configuration', from)).status, 200, 'discovery is counted apart');
  });

  it('a key ring change shows in the next JWKS answer, and discovery is made again by the new provider', async () => {
    const first = await get('/jwks');
    const etag = first.headers.get('etag')!;
    const kept = await (await get('/.well-known/openid-configuration')).text();
    await server.keys.rotate(true);
    const after = await get('/jwks', { 'if-none-match': etag });
    assert.equal(after.status, 200, 'the old ETag no longer matches');
    assert.notEqual(after.headers.get('etag'), etag);
    assert.deepEqual(((await after.json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid), server.keys.jwks.body && JSON.parse(server.keys.jwks.body).keys.map((key: { kid: string }) => key.kid));
    assert.equal(await (await get('/.well-known/openid-configuration')).text(), kept);
  });
});
