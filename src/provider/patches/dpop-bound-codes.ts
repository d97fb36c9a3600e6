/**
 * A code bound to a DPoP key (RFC 9449 §10: `dpop_jkt` at the authorization endpoint, or a proof
 * at PAR) is refused before it is spent when the token request carries no proof by that key, as a
 * wrong code_verifier is (RFC 7636 §4.6).
 *
 * oidc-provider consumes the code first and compares the proof's key with `dpop_jkt` after
 * (helpers/grant_common.js issueTokens): a request without a proof, or with a proof by another key,
 * was invalid_grant and spent the code. Whoever had intercepted the code (and its verifier: the
 * case dpop_jkt is for, a browser app whose key cannot be exported) but not the key could not redeem
 * it, but spent it, and the client's own request then found it used, which revokes its grant; a
 * client that sent its first request without the proof lost its sign-in alike.
 *
 * What it changes: AuthorizationCode.find on the token endpoint (patches/token-endpoint-finds.ts,
 * which checks only a code of the authenticated client not consumed yet) refuses such a code with
 * the engine's own invalid_grant before anything is consumed. The proof itself was verified by then
 * (the engine validates the DPoP header before it looks the code up), so the thumbprint of its `jwk`
 * is that of the key that signed it. Pinned by test/e2e/dpop-par.test.ts ("a code bound with
 * dpop_jkt ...") and test/unit/provider-patches.test.ts.
 */
import { createHash } from 'node:crypto';
import { errors, Provider } from 'oidc-provider';
import { checkAtTokenEndpoint } from './token-endpoint-finds.js';

/** RFC 7638 members of each key type, in lexicographic order. */
const MEMBERS: Record<string, readonly string[]> = { EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], RSA: ['e', 'kty', 'n'] };

/** The RFC 7638 SHA-256 thumbprint of a proof's `jwk` header, or undefined when there is none to read. */
export function proofThumbprint(proof: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(proof.split('.')[0] ?? '', 'base64url').toString()) as { jwk?: Record<string, unknown> };
    const jwk = header.jwk;
    const members = typeof jwk?.kty === 'string' ? MEMBERS[jwk.kty] : undefined;
    if (!jwk || !members || members.some((name) => typeof jwk[name] !== 'string')) return undefined;
    const canonical = `{${members.map((name) => `${JSON.stringify(name)}:${JSON.stringify(jwk[name])}`).join(',')}}`;
    return createHash('sha256').update(canonical).digest('base64url');
  } catch {
    return undefined;
  }
}

export function dpopBoundCodesBeforeSpending(provider: Provider): void {
  checkAtTokenEndpoint([provider.AuthorizationCode], (code) => {
    const jkt = (code as { dpopJkt?: unknown }).dpopJkt;
    if (typeof jkt !== 'string') return;
    const proof = Provider.ctx?.get('DPoP');
    if (!proof) throw new errors.InvalidGrant('missing DPoP proof JWT');
    if (proofThumbprint(proof) !== jkt) throw new errors.InvalidGrant('DPoP proof key thumbprint does not match dpop_jkt');
  });
}
