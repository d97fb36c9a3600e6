/**
 * Provider events as log lines: a failed back-channel logout says why, not only "fetch failed".
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Provider } from 'oidc-provider';
import { observeProviderEvents } from '../../src/ops/events.js';
import { createLogger } from '../../src/ops/logger.js';
import { Metrics } from '../../src/ops/metrics.js';

function observed() {
  const lines: Record<string, unknown>[] = [];
  const provider = new EventEmitter();
  observeProviderEvents(provider as unknown as Provider, createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }), new Metrics());
  return { provider, lines };
}

describe('provider events as log lines', () => {
  it('a back-channel logout refused for a loopback app logs the cause and the setting that allows it', () => {
    const { provider, lines } = observed();
    // What undici's fetch throws when oidc-provider's dispatcher refuses the address.
    const refused = new TypeError('fetch failed', { cause: new Error('hostname resolves to a special-use IP address') });
    provider.emit('backchannel.error', undefined, refused, { clientId: 'demo' }, 'sub-1', 'sid-1');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.event, 'backchannel.error');
    assert.equal(lines[0]!.client_id, 'demo');
    assert.equal(lines[0]!.error, 'fetch failed');
    assert.equal(lines[0]!.cause, 'hostname resolves to a special-use IP address');
    assert.match(String(lines[0]!.hint), /OUTBOUND_ALLOW_PRIVATE_NETWORKS=true/);
  });

  it('another failure logs its cause without the hint; an error without a cause logs neither', () => {
    const { provider, lines } = observed();
    const reset = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8081'), { code: 'ECONNREFUSED' }) });
    provider.emit('backchannel.error', undefined, reset, { clientId: 'demo' }, 'sub-1', 'sid-1');
    provider.emit('backchannel.error', undefined, new Error('expected 200 OK, got: 500 Internal Server Error'), { clientId: 'demo' }, 'sub-1', 'sid-1');
    assert.equal(lines[0]!.cause, 'connect ECONNREFUSED 127.0.0.1:8081');
    assert.equal(lines[0]!.hint, undefined);
    assert.equal(lines[1]!.error, 'expected 200 OK, got: 500 Internal Server Error');
    assert.equal('cause' in lines[1]!, false);
  });
});
