/**
 * The eighteenth passes, the operator's day (h15): `serve --workers 2`'s /metrics, which the
 * primary makes by summing its workers' registries (prom-client's AggregatorRegistry). Every worker
 * holds the same key ring, so a sum counted each key once per worker: two current keys.
 */
import assert from 'node:assert/strict';
import { AggregatorRegistry } from 'prom-client';
import { Metrics } from '../../src/ops/metrics.js';

const value = (text: string, series: string) => Number(text.split('\n').find((line) => line.startsWith(`${series} `))?.split(' ')[1]);

describe('unit: eighteenth operator’s day pass: metrics summed over workers', () => {
  it('latchkey_signing_keys counts the one key ring once, not once per worker (before the fix: current 2 at two workers)', async () => {
    const workers = [new Metrics(), new Metrics()];
    for (const worker of workers) worker.observeSigningKeys(() => [{ state: 'current' }, { state: 'next' }, { state: 'retired' }, { state: 'retired' }]);
    const summed = await AggregatorRegistry.aggregate(await Promise.all(workers.map((worker) => worker.registry.getMetricsAsJSON()))).metrics();
    assert.equal(value(summed, 'latchkey_signing_keys{state="current"}'), 1);
    assert.equal(value(summed, 'latchkey_signing_keys{state="next"}'), 1);
    assert.equal(value(summed, 'latchkey_signing_keys{state="retired"}'), 2);
    // Counters stay summed: each worker's own requests.
    for (const worker of workers) worker.logins.inc({ outcome: 'success' });
    const counted = await AggregatorRegistry.aggregate(await Promise.all(workers.map((worker) => worker.registry.getMetricsAsJSON()))).metrics();
    assert.equal(value(counted, 'latchkey_logins_total{outcome="success"}'), 2);
  });
});
