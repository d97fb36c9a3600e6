/**
 * The memo of verified JWT access tokens (src/provider/verified-tokens.ts): it forgets a token once
 * it expired (with the verifier's clock tolerance), and holds at most its bound. That a revoked
 * token is refused although remembered is shown end to end (test/e2e/revocation.test.ts introspects
 * each token before revoking it). Entries are found by the token's end and then compared whole: two
 * tokens sharing an end are never confused.
 */
import assert from 'node:assert/strict';
import { VerifiedTokens } from '../../src/provider/verified-tokens.js';

describe('VerifiedTokens', () => {
  it('answers for a token until its exp plus the clock tolerance, then forgets it', () => {
    const memo = new VerifiedTokens<{ claims: { exp?: number; sub: string } }>(10, 5);
    memo.set('a', { claims: { exp: 1000, sub: 'x' } });
    assert.equal(memo.get('a', 900)?.claims.sub, 'x');
    assert.equal(memo.get('a', 1004.9)?.claims.sub, 'x');
    assert.equal(memo.get('a', 1005), undefined);
    assert.equal(memo.size, 0, 'an expired token is dropped, not kept');
    assert.equal(memo.get('b', 900), undefined);
  });

  it('holds at most its bound, dropping the oldest first', () => {
    const memo = new VerifiedTokens<{ claims: { exp?: number } }>(3, 0);
    for (const token of ['t1', 't2', 't3', 't4']) memo.set(token, { claims: { exp: 2000 } });
    assert.equal(memo.size, 3);
    assert.equal(memo.get('t1', 1000), undefined);
    assert.ok(memo.get('t4', 1000));
  });

  it('never answers for a token that only shares the end of a remembered one', () => {
    const memo = new VerifiedTokens<{ claims: { exp?: number; sub: string } }>(10, 0);
    const end = '.' + 's'.repeat(64);
    memo.set(`header.payload-a${end}`, { claims: { exp: 2000, sub: 'a' } });
    assert.equal(memo.get(`header.payload-b${end}`, 1000), undefined, 'another token with the same signature end');
    assert.equal(memo.get(`header.payload-a${end}x`.slice(0, -1), 1000)?.claims.sub, 'a', 'the same text, another string');
    assert.equal(memo.get(`x${end}`.slice(1), 1000), undefined, 'the end alone');
    memo.set(`header.payload-b${end}`, { claims: { exp: 2000, sub: 'b' } });
    assert.equal(memo.get(`header.payload-b${end}`, 1000)?.claims.sub, 'b');
    assert.equal(memo.get(`header.payload-a${end}`, 1000), undefined, 'the later token took the entry: a miss, never the other\'s claims');
    assert.equal(memo.size, 1);
  });
});
