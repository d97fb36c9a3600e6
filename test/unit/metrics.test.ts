/**
 * Metrics belong to the running server (issue 14): nothing is registered at import time, and two
 * Metrics (two servers in one process) count apart, each with its own signing-key gauge.
 */
import assert from 'node:assert/strict';
import client from 'prom-client';
import { Metrics } from '../../src/ops/metrics.js';

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
});
