/**
 * The metrics listener against DNS rebinding, as a browser does it (security-passes.md, "Looked at in
 * the eighteenth passes: review of ... (h12)"). The attack suite's fix (a request with Sec-Fetch-Site
 * other than `none` refused) assumed the rebound page's fetch carries Fetch Metadata; a browser sends
 * Sec-Fetch-* only to a potentially trustworthy URL, and the listener is plain HTTP on a name of the
 * attacker's, so Chromium's fetch from `http://rebound.test:PORT` carried none and read the metrics.
 * Its Host is the attacker's name: the listener now answers only for addresses, localhost, names of
 * one label and those of metrics.hosts.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { Browser } from 'playwright-core';
import { createLogger } from '../../src/ops/logger.js';
import { Metrics, serveMetrics, type MetricsListener } from '../../src/ops/metrics.js';
import { launchChromium } from '../helpers/browser.js';

describe('the metrics listener and a name rebound to it (eighteenth passes, h12)', function () {
  this.timeout(30_000);
  let listener: MetricsListener;
  let port: number;
  let browser: Browser | undefined;

  before(async () => {
    const metrics = new Metrics();
    metrics.logins.inc({ outcome: 'success' });
    listener = await serveMetrics('127.0.0.1', 0, createLogger('silent'), metrics, ['Metrics.Internal.Example']);
    port = Number(new URL(listener.url).port);
  });
  after(async () => {
    await browser?.close();
    await listener.close();
  });

  const send = (method: string, headers: Record<string, string>): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path: '/metrics', headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it("a page of a browser without local-network checks, on a name rebound to the listener's address, cannot read the metrics (its fetch carries no Fetch Metadata over plain HTTP)", async () => {
    // The name resolves to 127.0.0.1 (the rebinding done); Chromium's own local-network checks off, as in a browser without them.
    browser = await launchChromium(['--host-resolver-rules=MAP rebound.test 127.0.0.1', '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults']);
    const page = await browser.newPage();
    const origin = `http://rebound.test:${port}`;
    // The attacker's page, served when the name still pointed at the attacker's server.
    await page.route(`${origin}/page`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<p>a page of the attacker</p>' }));
    await page.goto(`${origin}/page`);
    const read = await page.evaluate(async () => {
      const answer = await fetch('/metrics');
      return { status: answer.status, body: await answer.text() };
    });
    assert.equal(read.status, 421);
    assert.doesNotMatch(read.body, /latchkey_/);
    assert.match(read.body, /metrics\.hosts/);
  });

  it('a Host that is a name with a dot, not in metrics.hosts, is refused 421 with no Fetch Metadata at all, GET and HEAD', async () => {
    for (const method of ['GET', 'HEAD']) {
      for (const host of [`rebound.attacker.example:${port}`, 'rebound.attacker.example', 'localhost.attacker.example', `latchkey.:${port}`]) {
        const answer = await send(method, { host });
        assert.equal(answer.status, 421, `${method} ${host}`);
        assert.doesNotMatch(answer.body, /latchkey_/, host);
      }
    }
  });

  it('a scraper by address, localhost, a one-label name or a name of metrics.hosts (any case, a final dot) still reads the metrics', async () => {
    for (const host of [`127.0.0.1:${port}`, '10.0.0.7:9464', `[::1]:${port}`, `localhost:${port}`, 'metrics.localhost', 'latchkey:9464', 'metrics.internal.example:9464', 'METRICS.internal.example.']) {
      const answer = await send('GET', { host, accept: 'text/plain;version=0.0.4' });
      assert.equal(answer.status, 200, host);
      assert.match(answer.body, /latchkey_logins_total\{outcome="success"\} 1/, host);
    }
  });
});
