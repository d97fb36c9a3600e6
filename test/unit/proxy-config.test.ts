/** The reverse-proxy settings: PROXY=true keeps a safe meaning (one hop); hops without a proxy are a mistake said in one line. */
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';

describe('proxy settings', () => {
  it('PROXY=true alone trusts exactly one proxy; PROXY_HOPS says how many', () => {
    assert.deepEqual([loadConfig({ PROXY: 'true' }).proxy, loadConfig({ PROXY: 'true' }).proxyHops], [true, 1]);
    assert.equal(loadConfig({ PROXY: 'true', PROXY_HOPS: '2' }).proxyHops, 2);
  });

  it('PROXY_HOPS without PROXY, or out of range, is refused naming the setting', () => {
    assert.throws(() => loadConfig({ PROXY_HOPS: '2' }), /^ConfigError: proxyHops \(PROXY_HOPS\): .*PROXY=true/);
    assert.throws(() => loadConfig({ PROXY: 'true', PROXY_HOPS: '0' }), /proxyHops \(PROXY_HOPS\)/);
  });
});
