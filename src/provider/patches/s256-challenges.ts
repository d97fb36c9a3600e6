/**
 * RFC 7636 §4.2: an S256 `code_challenge` is BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), the
 * base64url encoding (without padding, Appendix A) of 32 bytes: 43 characters of A-Z, a-z, 0-9, `-`
 * and `_`. oidc-provider checks a challenge as §4.2's ABNF reads for either method (43 to 128 of the
 * unreserved characters), and S256 is the only method offered here, so a challenge of 44 to 128
 * characters, or one holding `.` or `~`, was taken: the person signed in and allowed the app, and the
 * code could never be redeemed, the client learning only at the token endpoint (`invalid_grant`),
 * with no word of why (left by the eleventh spec-letter pass). Such a challenge is now the engine's
 * own `invalid_request` (§4.4.1: "a value for a PKCE parameter that is invalid"), at the redirect
 * URI with `state` and `iss`, at /auth and when pushed, before anyone is asked to sign in.
 *
 * The last character is not judged by its trailing bits (a canonical encoding of 32 bytes ends in
 * one of 16 characters): no verifier meets another, and the length and alphabet catch what a
 * client gets wrong in earnest (a hex digest, padding, another hash, the verifier itself).
 */
import { errors } from 'oidc-provider';
import authorizationSteps from 'oidc-provider/lib/actions/authorization/index.js';
import type { Step } from './before-check-scope.js';

const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

const s256Challenge: Step = function s256Challenge(ctx, next) {
  const { code_challenge: challenge, code_challenge_method: method } = ctx.oidc.params ?? {};
  if (method === 'S256' && typeof challenge === 'string' && !S256_CHALLENGE.test(challenge)) {
    throw new errors.InvalidRequest('code_challenge must be the S256 hash of the code_verifier, base64url-encoded without padding: 43 characters of A-Z, a-z, 0-9, - and _ (RFC 7636 section 4.2)');
  }
  return next();
};

// Put after the engine's checkPKCE as the module loads (the engine builds each endpoint's steps once).
for (const endpoint of ['authorization', 'pushed_authorization_request']) {
  const steps = authorizationSteps(endpoint) as Step[];
  if (steps.includes(s256Challenge)) continue;
  const at = steps.findIndex((each) => each.name === 'checkPKCE');
  if (at < 0) throw new Error(`oidc-provider's ${endpoint} steps have no checkPKCE: review src/provider/patches/s256-challenges.ts`);
  steps.splice(at + 1, 0, s256Challenge);
}
