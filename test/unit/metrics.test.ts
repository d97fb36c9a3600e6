/**
 * Metrics belong to the running server (issue 14): nothing is registered at import time, and two
 * Metrics (two servers in one process) count apart, each with its own signing-key gauge.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import client from 'prom-client';
import { incrementerOf, Metrics } from '../../src/ops/metrics.js';

const value = (text: string, series: string) => Number(text.split('\n').find((line) => line.startsWith(`${series} `))?.split(' ')[1]);

describe('metrics', () => {
  it('registers nothing in the process-wide registry at import time', async () => {
    assert.doesNotMatch(await client.register.metrics(), /latchkey_/);
  });

  it('two servers in one process each count their own', async () => {
    const one = new Metrics();
    const two = new Metrics();
    one.logins.inc({ outcome: 'success' });
    one.logins.inc({ outcome: 'success' });
    two.logins.inc({ outcome: 'success' });
    one.observeSigningKeys(() => [{ state: 'current' }, { state: 'next' }]);
    two.observeSigningKeys(() => [{ state: 'current' }, { state: 'retired' }, { state: 'retired' }]);
    const [first, second] = await Promise.all([one.registry.metrics(), two.registry.metrics()]);
    assert.equal(value(first, 'latchkey_logins_total{outcome="success"}'), 2);
    assert.equal(value(second, 'latchkey_logins_total{outcome="success"}'), 1);
    assert.equal(value(first, 'latchkey_signing_keys{state="next"}'), 1);
    assert.equal(value(second, 'latchkey_signing_keys{state="retired"}'), 2);
    assert.match(first, /^latchkey_process_resident_memory_bytes /m);
  });

  describe('histogram series observed without prom-client\'s per-observation work', () => {
    /** The histogram's lines of a registry's exposition. */
    const lines = (text: string, name: string) => text.split('\n').filter((line) => line.startsWith(name)).join('\n');
    // On every bound, just above and below, above them all, zero, and a negative value.
    const VALUES = [0, -1, 0.001, 0.0010001, 0.0024, 0.0025, 0.003, 0.05, 0.7, 2.5, 2.6, 1000, 1e-9];

    it('expose exactly what prom-client\'s own observe() exposes, and bypass it after the first', async () => {
      const ours = new Metrics();
      const theirs = new Metrics();
      let throughPromClient = 0;
      const observe = ours.requestDuration.observe.bind(ours.requestDuration);
      ours.requestDuration.observe = ((...args: Parameters<typeof observe>) => ((throughPromClient += 1), observe(...args))) as typeof observe;
      for (const value of VALUES) {
        ours.observeRequest('token', 'POST', '2xx', value);
        ours.observeRequest('jwks', 'GET', '2xx', value * 3);
        theirs.requestDuration.labels('token', 'POST', '2xx').observe(value);
        theirs.requestDuration.labels('jwks', 'GET', '2xx').observe(value * 3);
        ours.storeCommand('get', 'ok').observe(value / 7);
        theirs.storeCommands.labels('get', 'ok').observe(value / 7);
      }
      assert.equal(throughPromClient, 2); // the first observation of each series
      const [a, b] = await Promise.all([ours.registry.metrics(), theirs.registry.metrics()]);
      assert.ok(lines(a, 'latchkey_http_request_duration_seconds').length > 0);
      assert.equal(lines(a, 'latchkey_http_request_duration_seconds'), lines(b, 'latchkey_http_request_duration_seconds'));
      assert.equal(lines(a, 'latchkey_store_command_duration_seconds'), lines(b, 'latchkey_store_command_duration_seconds'));
    });

    it('start over after a reset or a removal of the series, and refuse what prom-client refuses', async () => {
      const ours = new Metrics();
      const theirs = new Metrics();
      const series = ours.storeCommand('set', 'error');
      series.observe(0.01);
      series.observe(0.02);
      ours.storeCommands.reset();
      series.observe(0.03);
      ours.storeCommands.remove('set', 'error');
      series.observe(0.04);
      series.observe(0.5);
      theirs.storeCommands.labels('set', 'error').observe(0.04);
      theirs.storeCommands.labels('set', 'error').observe(0.5);
      assert.throws(() => series.observe(Number.NaN), TypeError);
      const [a, b] = await Promise.all([ours.registry.metrics(), theirs.registry.metrics()]);
      assert.equal(lines(a, 'latchkey_store_command_duration_seconds'), lines(b, 'latchkey_store_command_duration_seconds'));
      assert.match(a, /latchkey_store_command_duration_seconds_count\{operation="set",outcome="error"\} 2$/m);
    });
  });

  describe('counter series counted without prom-client\'s per-increment work', () => {
    const lines = (text: string, name: string) => text.split('\n').filter((line) => line.startsWith(name)).join('\n');

    it('expose exactly what prom-client\'s own inc() exposes, and bypass it after the first', async () => {
      const ours = new Metrics();
      const theirs = new Metrics();
      let throughPromClient = 0;
      for (const counter of [ours.tokensIssued, ours.providerEvents] as unknown as { inc(...args: unknown[]): void }[]) {
        const inc = counter.inc.bind(counter);
        counter.inc = (...args: unknown[]) => ((throughPromClient += 1), inc(...args));
      }
      const granted = incrementerOf(ours.providerEvents, { event: 'grant.success' });
      const ended = incrementerOf(ours.providerEvents, { event: 'end_session.success' });
      for (let i = 0; i < 7; i += 1) {
        ours.countIssued('client_credentials');
        granted.inc();
        theirs.tokensIssued.labels('client_credentials').inc();
        theirs.providerEvents.labels('grant.success').inc();
        if (i % 2 === 0) {
          ours.countIssued('refresh_token');
          ended.inc();
          theirs.tokensIssued.labels('refresh_token').inc();
          theirs.providerEvents.labels('end_session.success').inc();
        }
      }
      assert.equal(throughPromClient, 4); // the first increment of each series
      const [a, b] = await Promise.all([ours.registry.metrics(), theirs.registry.metrics()]);
      assert.match(a, /^latchkey_tokens_issued_total\{grant_type="client_credentials"\} 7$/m);
      assert.equal(lines(a, 'latchkey_tokens_issued_total'), lines(b, 'latchkey_tokens_issued_total'));
      assert.equal(lines(a, 'latchkey_provider_events_total'), lines(b, 'latchkey_provider_events_total'));
    });

    it('start over after a reset or a removal of the series', async () => {
      const ours = new Metrics();
      const series = incrementerOf(ours.providerEvents, { event: 'grant.revoked' });
      series.inc();
      series.inc();
      ours.providerEvents.reset();
      series.inc();
      ours.providerEvents.remove('grant.revoked');
      series.inc();
      series.inc();
      const text = await ours.registry.metrics();
      assert.match(text, /^latchkey_provider_events_total\{event="grant.revoked"\} 2$/m);
    });
  });

  describe('the event loop\'s delay, sampled only while requests arrive (an idle server is not woken)', () => {
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    const request = {} as IncomingMessage;
    const response = {} as ServerResponse;
    const maxDelay = async (metrics: Metrics) => value(await metrics.registry.metrics(), 'latchkey_nodejs_eventloop_lag_max_seconds');
    const until = async (done: () => boolean) => {
      while (!done()) await new Promise((next) => setTimeout(next, 5));
    };

    it('records a stall from the arrival of the request that made it on, under prom-client\'s names', async () => {
      const metrics = new Metrics();
      const listener = metrics.arrivals(() => busy(60));
      listener(request, response);
      assert.equal(metrics.loopDelaySampling, true);
      // The next sample's timer has fired once a timer due after it does.
      await new Promise((next) => setTimeout(next, 15));
      assert.ok((await maxDelay(metrics)) >= 0.06, 'the stall is the first sample');
      const text = await metrics.registry.metrics();
      for (const name of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
        assert.equal(text.match(new RegExp(`^latchkey_nodejs_eventloop_lag_${name}_seconds `, 'gm'))?.length, 1, name);
      }
      assert.match(text, /^latchkey_nodejs_eventloop_lag_seconds /m);
    });

    it('stops sampling once no request arrived for a while, and starts again at the next', async () => {
      const metrics = new Metrics({ loopIdleAfter: 20 });
      const listener = metrics.arrivals(() => {});
      assert.equal(metrics.loopDelaySampling, false);
      listener(request, response);
      await until(() => !metrics.loopDelaySampling);
      await maxDelay(metrics); // a scrape starts a new period
      busy(60);
      await new Promise((next) => setTimeout(next, 15));
      assert.equal(await maxDelay(metrics), 0, 'a stall with no request arriving is not sampled');
      listener(request, response);
      busy(60);
      await new Promise((next) => setTimeout(next, 15));
      assert.ok((await maxDelay(metrics)) >= 0.06);
    });
  });
});
