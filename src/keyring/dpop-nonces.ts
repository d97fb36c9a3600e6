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
import { hkdfSync, timingSafeEqual } from 'node:crypto';

export function dpopNonceSecret(secrets: readonly string[]): Buffer {
  const [secret] = secrets;
  if (!secret) throw new TypeError('keys.secrets: at least one secret is required');
  return Buffer.from(hkdfSync('sha256', secret, 'latchkey/dpop', 'DPoP server nonces', 32));
}

/** The engine's nonce step, in seconds, and how many steps either side of now it accepts (oidc-provider's ServerChallenge). */
const STEP = 60;
const SPREAD = 2;

/**
 * The engine's own DPoP nonces from `secret` (dpopNonceSecret), for Latchkey's protected resources
 * that check proofs themselves (the admin API and the revocation feed: http/sender-constraint.ts),
 * so that `dpop.requireNonce` holds there too. Each value is the engine's (HKDF-SHA256 of the
 * secret with the big-endian minute as salt and "DPoP" as info), so a client that keeps one nonce
 * per origin, as openid-client and oauth4webapi do, uses the token endpoint's here and ours there.
 */
export class DpopNonces {
  readonly #secret: Buffer;
  #step: number | undefined;
  #values: readonly string[] = [];

  constructor(secret: Buffer) {
    this.#secret = secret;
  }

  #window(): readonly string[] {
    const step = Math.floor(Date.now() / 1000 / STEP);
    if (step !== this.#step) {
      this.#step = step;
      this.#values = Array.from({ length: 2 * SPREAD + 1 }, (_, i) => {
        const salt = Buffer.alloc(8);
        salt.writeBigUInt64BE(BigInt(step - SPREAD + i));
        return Buffer.from(hkdfSync('sha256', this.#secret, salt, 'DPoP', 32)).toString('base64url');
      });
    }
    return this.#values;
  }

  /** The nonce to tell a client now (the engine's next one). */
  issue(): string {
    return this.#window()[SPREAD + 1]!;
  }

  check(nonce: string): boolean {
    const given = Buffer.from(nonce);
    let matched = false;
    for (const value of this.#window()) {
      const expected = Buffer.from(value);
      matched = (given.length === expected.length && timingSafeEqual(given, expected)) || matched;
    }
    return matched;
  }
}
