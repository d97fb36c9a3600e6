/**
 * The metrics listener, attacked as a page in the operator's browser would (security-passes.md, the
 * eighteenth passes' attack suite, h9): it answers any Host, so a page on a name of the attacker's
 * that is rebound to 127.0.0.1 (DNS rebinding) reads /metrics as its own origin's, and its answers
 * carried none of the security headers every other answer of Latchkey's carries.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createLogger } from '../../src/ops/logger.js';
import { Metrics, serveMetrics, type MetricsListener } from '../../src/ops/metrics.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('the metrics listener, attacked (eighteenth passes)', () => {
  let listener: MetricsListener;
  let port: number;

  before(async () => {
    const metrics = new Metrics();
    metrics.logins.inc({ outcome: 'success' });
    // The scraper below reaches it by a name with a dot: one of metrics.hosts (metrics-rebinding-eighteenth).
    listener = await serveMetrics('127.0.0.1', 0, createLogger('silent'), metrics, ['metrics.internal.example']);
    port = Number(new URL(listener.url).port);
  });
  after(() => listener.close());

  const send = (method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('every answer carries nosniff, a CSP that frames nothing, X-Frame-Options and no-store', async () => {
    for (const [method, path] of [['GET', '/metrics'], ['HEAD', '/metrics'], ['GET', '/'], ['POST', '/metrics']] as const) {
      const answer = await send(method, path);
      assert.equal(answer.headers['x-content-type-options'], 'nosniff', `${method} ${path}`);
      assert.match(String(answer.headers['content-security-policy']), /default-src 'none'.*frame-ancestors 'none'/, `${method} ${path}`);
      assert.equal(answer.headers['x-frame-options'], 'DENY', `${method} ${path}`);
      assert.equal(answer.headers['cache-control'], 'no-store', `${method} ${path}`);
      assert.equal(answer.headers['cross-origin-resource-policy'], 'same-origin', `${method} ${path}`);
    }
  });

  it('a page reading it as its own origin (a rebound name: Sec-Fetch-Site same-origin) is refused 403, nothing of the metrics said', async () => {
    for (const site of ['same-origin', 'same-site', 'cross-site']) {
      const answer = await send('GET', '/metrics', { host: 'rebound.attacker.example:' + String(port), 'sec-fetch-site': site, 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' });
      assert.equal(answer.status, 403, site);
      assert.doesNotMatch(answer.body, /latchkey_/, site);
      assert.match(answer.body, /scraper|address bar/, site);
    }
  });

  it('a scraper (no Fetch Metadata) and the operator typing the address (Sec-Fetch-Site: none) still read the metrics', async () => {
    const scraper = await send('GET', '/metrics', { accept: 'text/plain;version=0.0.4', host: 'metrics.internal.example:9464' });
    assert.equal(scraper.status, 200);
    assert.match(scraper.body, /latchkey_logins_total\{outcome="success"\} 1/);
    const typed = await send('GET', '/metrics', { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' });
    assert.equal(typed.status, 200);
    assert.match(typed.body, /latchkey_logins_total/);
  });
});
