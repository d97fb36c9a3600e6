/**
 * The secret oidc-provider derives DPoP server nonces from (RFC 9449 §8; features.dPoP.nonceSecret).
 *
 * The engine makes each nonce from this secret and the current minute, and accepts a few minutes'
 * worth, so every instance and worker that derives the same secret accepts the others' nonces with
 * nothing shared at run time. It is derived (HKDF-SHA256) from the first configured keys.secrets
 * entry, the secret every instance already shares, under its own label, so it reveals nothing of the
 * key that seals the signing keys. Rotating keys.secrets changes it: nonces issued just before are
 * refused with a fresh one (use_dpop_nonce), which clients retry with.
 */
import { hkdfSync } from 'node:crypto';

export function dpopNonceSecret(secrets: readonly string[]): Buffer {
  const [secret] = secrets;
  if (!secret) throw new TypeError('keys.secrets: at least one secret is required');
  return Buffer.from(hkdfSync('sha256', secret, 'latchkey/dpop', 'DPoP server nonces', 32));
}
