/**
 * The stores latchkey/resource-server's DPoP checks rely on (src/resource-server/dpop.ts): the
 * bounded jti store and the rotating nonces, as pure objects. The proof checks themselves are
 * exercised end to end in test/e2e/dpop-par.test.ts.
 */
import assert from 'node:assert/strict';
import { wwwAuthenticate } from '../../src/resource-server/challenge.js';
import { MemoryReplayStore, RotatingNonces } from '../../src/resource-server/dpop.js';

const challenge = (algorithms: readonly string[], failure?: { code: string; scheme: 'Bearer' | 'DPoP' }) =>
  wwwAuthenticate({ dpopAlgorithms: algorithms, error: failure?.code, scheme: failure?.scheme });

const later = () => Math.floor(Date.now() / 1000) + 600;

describe('resource server: DPoP jti store, nonces and challenges', () => {
  it('a jti is unique once until it expires; an expired one may come again', () => {
    const store = new MemoryReplayStore();
    assert.equal(store.unique('k:a', later()), true);
    assert.equal(store.unique('k:a', later()), false);
    assert.equal(store.unique('k:b', later()), true);
    assert.equal(store.unique('k:old', Math.floor(Date.now() / 1000) - 1), true);
    assert.equal(store.unique('k:old', later()), true, 'the first entry had expired');
  });

  it('is bounded: beyond max live entries the oldest is forgotten first', () => {
    const store = new MemoryReplayStore(2);
    for (const key of ['a', 'b', 'c']) assert.equal(store.unique(key, later()), true);
    assert.equal(store.unique('c', later()), false, 'the newest is kept');
    assert.equal(store.unique('a', later()), true, 'the oldest was forgotten (the documented cost of the bound)');
  });

  it('nonces: the one issued is accepted, a made-up one is not', () => {
    const nonces = new RotatingNonces();
    const nonce = nonces.issue();
    assert.match(nonce, /^[\w-]{22}$/);
    assert.equal(nonces.check(nonce), true);
    assert.equal(nonces.check('A'.repeat(22)), false);
    assert.notEqual(new RotatingNonces().issue(), nonce, 'random per instance');
  });

  it('challenges name the failing scheme with its error, and offer DPoP with its algorithms (RFC 9449 §7.1)', () => {
    assert.equal(challenge(['ES256'], { code: 'invalid_dpop_proof', scheme: 'DPoP' }), 'DPoP error="invalid_dpop_proof", algs="ES256"');
    assert.equal(challenge(['ES256', 'EdDSA'], { code: 'insufficient_scope', scheme: 'Bearer' }), 'Bearer error="insufficient_scope", DPoP algs="ES256 EdDSA"');
    assert.equal(challenge(['ES256']), 'Bearer, DPoP algs="ES256"');
  });
});
