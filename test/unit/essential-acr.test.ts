/**
 * The `acr` an ID token says when the request asked an essential one (patches/step-up.ts
 * essentialAcrMet, OIDC Core §5.5.1.1): one of the values asked, the highest the sign-in meets,
 * never a level the sign-in did not reach.
 */
import assert from 'node:assert/strict';
import { essentialAcrMet } from '../../src/provider/patches/step-up.js';

describe('essential acr: what the ID token says (OIDC Core §5.5.1.1)', () => {
  it('the sign-in’s own when it is among the values asked, or nothing essential was asked', () => {
    assert.equal(essentialAcrMet('mfa', { essential: true, values: ['mfa', 'phr'] }), 'mfa');
    assert.equal(essentialAcrMet('phr', { essential: true, values: ['mfa', 'phr'] }), 'phr');
    assert.equal(essentialAcrMet('mfa', { values: ['pwd'] }), 'mfa', 'voluntary: the sign-in’s own');
    assert.equal(essentialAcrMet('mfa', undefined), 'mfa');
  });

  it('above every value asked: the highest value asked that it meets (a passkey asked mfa, an authenticator app asked pwd)', () => {
    assert.equal(essentialAcrMet('phr', { essential: true, values: ['mfa'] }), 'mfa');
    assert.equal(essentialAcrMet('phr', { essential: true, values: ['pwd', 'mfa'] }), 'mfa');
    assert.equal(essentialAcrMet('mfa', { essential: true, values: ['pwd'] }), 'pwd');
    assert.equal(essentialAcrMet('mfa', { essential: true, value: 'pwd' }), 'pwd', 'asked as one value');
  });

  it('below every value asked, or asked only values nobody offers: the sign-in’s own, never one it did not reach', () => {
    assert.equal(essentialAcrMet('pwd', { essential: true, values: ['mfa', 'phr'] }), 'pwd');
    assert.equal(essentialAcrMet('mfa', { essential: true, values: ['urn:example:loa:4'] }), 'mfa');
    assert.equal(essentialAcrMet('mfa', { essential: true, values: 'pwd' }), 'mfa', 'values not a list: nothing taken from it');
  });
});
