/**
 * authorizationErrorPayload (src/provider/patches/error-descriptions.ts), as the fourteenth passes
 * made it (security-passes.md, "the letter of the specs (conformance, h3)"): an authorization error
 * response leaves with RFC 6749 §4.1.2.1's members and RFC 9207's iss alone, the engine's `scope`
 * said in the description unless the description already names each of its scopes.
 */
import assert from 'node:assert/strict';
import { authorizationErrorPayload } from '../../src/provider/patches/error-descriptions.js';

describe('unit: an authorization error response carries RFC 6749 §4.1.2.1 members only', () => {
  it("the engine's invalid_scope: scope leaves the payload and is named in the description", () => {
    assert.deepEqual(authorizationErrorPayload({ error: 'invalid_scope', error_description: 'requested scope is not allowed', scope: 'profile', state: 's', iss: 'https://op.example' }), {
      error: 'invalid_scope', error_description: 'requested scope is not allowed: profile', state: 's', iss: 'https://op.example',
    });
  });

  it('a description that names every scope already is kept as it is; one naming some of them gets the whole list', () => {
    const named = authorizationErrorPayload({ error: 'invalid_scope', error_description: 'scope not granted to this client at https://api.example: read write', scope: 'read write' });
    assert.deepEqual(named, { error: 'invalid_scope', error_description: 'scope not granted to this client at https://api.example: read write' });
    const some = authorizationErrorPayload({ error: 'invalid_scope', error_description: 'this client may no longer request read', scope: 'read write' });
    assert.equal(some.error_description, 'this client may no longer request read: read write');
  });

  it('error_uri, state and iss stay; anything else goes; the description is brought into RFC 6749 characters', () => {
    assert.deepEqual(authorizationErrorPayload({ error: 'access_denied', error_description: 'the user “cancelled”', error_uri: 'https://op.example/e', state: 's', iss: 'i', session_state: 'x', extra: 1 }), {
      error: 'access_denied', error_description: "the user 'cancelled'", error_uri: 'https://op.example/e', state: 's', iss: 'i',
    });
  });
});
