/**
 * authorizationErrorPayload (src/provider/patches/error-descriptions.ts), as the fourteenth passes
 * made it (security-passes.md, "the letter of the specs (conformance, h3)"): an authorization error
 * response leaves with RFC 6749 §4.1.2.1's members and RFC 9207's iss alone, the engine's `scope`
 * said in the description.
 */
import assert from 'node:assert/strict';
import { authorizationErrorPayload } from '../../src/provider/patches/error-descriptions.js';

describe('unit: an authorization error response carries RFC 6749 §4.1.2.1 members only', () => {
  it("the engine's invalid_scope: scope leaves the payload and is named in the description", () => {
    assert.deepEqual(authorizationErrorPayload({ error: 'invalid_scope', error_description: 'requested scope is not allowed', scope: 'profile', state: 's', iss: 'https://op.example' }), {
      error: 'invalid_scope', error_description: 'requested scope is not allowed: profile', state: 's', iss: 'https://op.example',
    });
  });

  it('the scope is appended whole, scope tokens of any RFC 6749 §3.3 characters included (merged-review h9: no description at a response mode names them)', () => {
    const out = authorizationErrorPayload({ error: 'invalid_scope', error_description: 'requested scope is not allowed', scope: 'https://api.example/read orders:write' });
    assert.equal(out.error_description, 'requested scope is not allowed: https://api.example/read orders:write');
  });

  it('error_uri, state and iss stay; anything else goes; the description is brought into RFC 6749 characters', () => {
    assert.deepEqual(authorizationErrorPayload({ error: 'access_denied', error_description: 'the user “cancelled”', error_uri: 'https://op.example/e', state: 's', iss: 'i', session_state: 'x', extra: 1 }), {
      error: 'access_denied', error_description: "the user 'cancelled'", error_uri: 'https://op.example/e', state: 's', iss: 'i',
    });
  });
});
