import { strict as assert } from 'node:assert';
import { bearerToken, presentedToken } from '../../src/http/bearer.js';

const withHeader = (authorization: string) => ({ get: (name: string) => (name.toLowerCase() === 'authorization' ? authorization : '') });

describe('unit: the Authorization header at our own APIs (RFC 6750 §2.1, RFC 9449 §7.1)', () => {
  it('takes the token after one or more spaces, in either scheme, whatever its case', () => {
    assert.equal(bearerToken(withHeader('Bearer abc.def-_~+/=')), 'abc.def-_~+/=');
    assert.equal(bearerToken(withHeader('Bearer   abc')), 'abc');
    assert.equal(bearerToken(withHeader('bearer abc')), 'abc');
    assert.deepEqual(presentedToken(withHeader('dpop  xyz')), { token: 'xyz', scheme: 'DPoP' });
  });

  it('finds no token in a header that breaks the grammar', () => {
    for (const header of ['', 'Bearer', 'Bearer ', 'Bearerabc', 'Basic abc', 'Bearer a b', 'Bearer a\tb', ' Bearer abc', 'Bearer abc ']) {
      assert.equal(presentedToken(withHeader(header)), undefined, JSON.stringify(header));
    }
  });

  it('never gives a DPoP-presented token as a bearer one', () => {
    assert.equal(bearerToken(withHeader('DPoP abc')), undefined);
  });
});
