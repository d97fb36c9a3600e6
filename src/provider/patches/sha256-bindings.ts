/**
 * Two parameters of an authorization request bind its code to something the token request must
 * prove later, each by a SHA-256 hash, base64url-encoded without padding: 43 characters of A-Z,
 * a-z, 0-9, `-` and `_`:
 *
 * - `code_challenge` with `code_challenge_method=S256` (the only method offered here) is
 *   BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2, Appendix A);
 * - `dpop_jkt` is the JWK SHA-256 Thumbprint of the DPoP key (RFC 9449 §10, RFC 7638 §3).
 *
 * oidc-provider checks a challenge as §4.2's ABNF reads for either method (43 to 128 of the
 * unreserved characters), and a `dpop_jkt` not at all unless a DPoP proof comes with a pushed
 * request. So a challenge of 44 to 128 characters, one holding `.` or `~`, or a `dpop_jkt` of any
 * other shape was taken: the person signed in and allowed the app, and the code could never be
 * redeemed, the client learning only at the token endpoint (`invalid_grant`), with no word of why
 * (the challenge's length was left by the eleventh spec-letter pass). Such a value is now the
 * engine's own `invalid_request` (RFC 7636 §4.4.1: "a value for a PKCE parameter that is invalid";
 * RFC 6749 §4.1.2.1), at the redirect URI with `state` and `iss`, at /auth and when pushed, before
 * anyone is asked to sign in.
 *
 * The last character is not judged by its trailing bits (a canonical encoding of 32 bytes ends in
 * one of 16 characters): no verifier or key meets a value so spelled either, and the length and
 * alphabet catch what a client gets wrong in earnest (a hex digest, padding, another hash, the
 * verifier itself, a thumbprint of another hash).
 */
import { errors } from 'oidc-provider';
import authorizationSteps from 'oidc-provider/lib/actions/authorization/index.js';
import type { Step } from './before-check-scope.js';

/** A SHA-256 hash, base64url-encoded without padding. */
const SHA256_BASE64URL = /^[A-Za-z0-9_-]{43}$/;

const sha256Bindings: Step = function sha256Bindings(ctx, next) {
  const { code_challenge: challenge, code_challenge_method: method, dpop_jkt: jkt } = ctx.oidc.params ?? {};
  if (method === 'S256' && typeof challenge === 'string' && !SHA256_BASE64URL.test(challenge)) {
    throw new errors.InvalidRequest('code_challenge must be the S256 hash of the code_verifier, base64url-encoded without padding: 43 characters of A-Z, a-z, 0-9, - and _ (RFC 7636 section 4.2)');
  }
  if (typeof jkt === 'string' && !SHA256_BASE64URL.test(jkt)) {
    throw new errors.InvalidRequest('dpop_jkt must be the JWK SHA-256 thumbprint of the DPoP key, base64url-encoded without padding: 43 characters of A-Z, a-z, 0-9, - and _ (RFC 9449 section 10, RFC 7638)');
  }
  return next();
};

// Put after the engine's checkPKCE as the module loads (the engine builds each endpoint's steps once):
// at /auth and /request, the two endpoints that take either parameter.
for (const endpoint of ['authorization', 'pushed_authorization_request']) {
  const steps = authorizationSteps(endpoint) as Step[];
  if (steps.includes(sha256Bindings)) continue;
  const at = steps.findIndex((each) => each.name === 'checkPKCE');
  if (at < 0) throw new Error(`oidc-provider's ${endpoint} steps have no checkPKCE: review src/provider/patches/sha256-bindings.ts`);
  steps.splice(at + 1, 0, sha256Bindings);
}
