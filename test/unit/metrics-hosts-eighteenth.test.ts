/**
 * metrics.hosts (METRICS_HOSTS) as an operator writes it (security-passes.md, "Looked at in the
 * eighteenth passes: review of e8e13ce5, 5fe85549 and e6b2b8b6 (h20)"). e6b2b8b6 compares the names
 * of metrics.hosts with the Host a request names, its port taken off; the names themselves were taken
 * as written, so the scrape target copied from Prometheus (`latchkey.monitoring.svc:9464`), a URL or a
 * wildcard started the server and never matched: every scrape was refused 421 with "add the name a
 * scraper uses there", the name the operator had added. Such an entry is now refused at start, in
 * one line naming the setting and what to write. And the refusal was said only to the scraper (its
 * body; Prometheus shows only "421 Misdirected Request"): the log now says it too, once for each name
 * refused (a bounded number of names: a page rebinding many cannot fill the log). And a listener
 * bound by a name (metrics.host, METRICS_HOST, a name with a dot) refused its own URL, the name it
 * was bound by: that name answers now, as the operator's own.
 */
import assert from 'node:assert/strict';
import dns from 'node:dns';
import { request } from 'node:http';
import { Writable } from 'node:stream';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/ops/logger.js';
import { Metrics, serveMetrics } from '../../src/ops/metrics.js';

/** The status of GET /metrics at `url` naming `host`. */
const statusFor = (url: URL, host: string) =>
  new Promise<number>((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: '/metrics', headers: { host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });

const refused = (value: string) =>
  assert.throws(() => loadConfig({ METRICS_HOSTS: value }), (error: Error) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.match(error.message, /metrics\.hosts/);
    assert.match(error.message, /without a port/);
    assert.ok(!error.message.includes('\n'), 'one line');
    return true;
  });

describe('metrics.hosts as an operator writes it (eighteenth passes, h20)', () => {
  it('a name with a port, a URL, a wildcard or a path is refused at start, saying what to write', () => {
    refused('latchkey.monitoring.svc:9464');
    refused('http://latchkey.monitoring.svc');
    refused('*.monitoring.svc');
    refused('latchkey.monitoring.svc/metrics');
    refused('a.example,b example');
  });

  it('names as they are written (any case, a trailing dot, a list) load, and the listener answers for them', async () => {
    const config = loadConfig({ METRICS_HOSTS: 'Latchkey.Monitoring.svc., prom_target.internal' });
    assert.deepEqual(config.metrics.hosts, ['Latchkey.Monitoring.svc.', 'prom_target.internal']);
    const listener = await serveMetrics('127.0.0.1', 0, createLogger('silent'), new Metrics(), config.metrics.hosts);
    try {
      const url = new URL('/metrics', listener.url);
      for (const host of ['latchkey.monitoring.svc:9464', 'prom_target.internal']) {
        const status = await new Promise<number>((resolve, reject) => {
          const req = request({ host: url.hostname, port: url.port, path: '/metrics', headers: { host } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          });
          req.on('error', reject);
          req.end();
        });
        assert.equal(status, 200, host);
      }
    } finally {
      await listener.close();
    }
  });

  it('a name refused is said in the log, once for each name, naming metrics.hosts; a bounded number of names', async () => {
    const lines: Record<string, unknown>[] = [];
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const listener = await serveMetrics('127.0.0.1', 0, createLogger('info', out), new Metrics(), []);
    try {
      const url = new URL('/metrics', listener.url);
      for (let i = 0; i < 3; i++) assert.equal(await statusFor(url, 'latchkey.monitoring.svc:9464'), 421);
      for (let i = 0; i < 100; i++) assert.equal(await statusFor(url, `rebound-${i}.attacker.example`), 421);
      assert.equal(await statusFor(url, '127.0.0.1'), 200);
      const refusals = lines.filter((line) => line.event === 'metrics.host_refused');
      assert.equal(refusals.filter((line) => line.host === 'latchkey.monitoring.svc').length, 1, 'once for a name');
      assert.match(String(refusals[0]!.msg), /metrics\.hosts \(METRICS_HOSTS\)/);
      assert.ok(refusals.length > 1 && refusals.length <= 20, `bounded: ${refusals.length}`);
    } finally {
      await listener.close();
    }
  });

  it('bound by a name (metrics.host), the listener answers for it: its own URL is not refused', async () => {
    // The name resolves to 127.0.0.1 here, as an operator's name of an interface would to its address.
    const lookup = dns.lookup;
    (dns as { lookup: unknown }).lookup = (name: string, ...rest: unknown[]) => (lookup as (...args: unknown[]) => void)(name.toLowerCase() === 'metrics.internal.example' ? '127.0.0.1' : name, ...rest);
    let listener;
    try {
      listener = await serveMetrics('Metrics.Internal.Example', 0, createLogger('silent'), new Metrics(), []);
    } finally {
      (dns as { lookup: unknown }).lookup = lookup;
    }
    try {
      const url = new URL(listener.url);
      assert.equal(url.hostname, 'metrics.internal.example');
      assert.equal(await statusFor(new URL(`http://127.0.0.1:${url.port}/metrics`), url.host), 200);
      assert.equal(await statusFor(new URL(`http://127.0.0.1:${url.port}/metrics`), 'other.internal.example'), 421);
    } finally {
      await listener.close();
    }
  });
});
