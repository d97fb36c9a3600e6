/**
 * Signing keys: RS256 key pairs whose `kid` is their JWK thumbprint (RFC 7638). Each key moves
 * through states:
 *
 *   next     published in the JWKS, signs nothing yet (so verifiers learn it before they meet it)
 *   current  signs every new token (exactly one key)
 *   retired  signs nothing, stays published until every token it signed has expired
 *   removed  gone from the ring
 *
 * This folder is the only code that reads or writes private keys; they leave it unencrypted only
 * into keys/keyring.json (mode 0600), and encrypted into the shared store (see sealing.ts).
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

export type KeyState = 'next' | 'current' | 'retired';

export interface StoredKey {
  readonly kid: string;
  readonly state: KeyState;
  /** ISO 8601: when the key was made and published. */
  readonly createdAt: string;
  /** ISO 8601: when it became current. */
  readonly activatedAt?: string;
  /** ISO 8601: when it stopped signing. */
  readonly retiredAt?: string;
  /** The private JWK (with kid, alg, use). */
  readonly jwk: JWK;
}

/** Private members of RSA/EC/OKP/oct/AKP JWKs (RFC 7518 §6): none of these may ever be published. */
export const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'] as const;

const ORDER: Record<KeyState, number> = { current: 0, next: 1, retired: 2 };

export class Keyring {
  readonly keys: readonly StoredKey[];

  constructor(keys: readonly StoredKey[]) {
    // Current first (oidc-provider signs with the first matching key), then next, then retired
    // newest first. Array.prototype.sort is stable, so equal keys keep their order.
    this.keys = [...keys].sort(
      (a, b) => ORDER[a.state] - ORDER[b.state] || Date.parse(b.retiredAt ?? b.createdAt) - Date.parse(a.retiredAt ?? a.createdAt),
    );
  }

  get current(): StoredKey | undefined {
    return this.keys.find((key) => key.state === 'current');
  }

  get next(): StoredKey | undefined {
    return this.keys.find((key) => key.state === 'next');
  }

  /** The public JWKS: what resource servers verify against (next, current and retired keys). */
  publicJwks(): { keys: JWK[] } {
    return { keys: this.keys.map(({ jwk }) => toPublic(jwk)) };
  }
}

/**
 * What is published of a key: its public RSA members (RFC 7518 §6.3.1), its kid, and how it is
 * used, by name, never by what else the private JWK holds. Every key of the ring is an RS256
 * signing key (checkKey), whatever its JWK says: `alg` and `use` are stated, not copied. A ring an
 * operator provisioned from a key manager or WebCrypto's exportKey carries members besides the key
 * (`key_ops: ["sign"]`, `ext`, a tool's own) that were published as they were, a leak for any
 * member a tool writes that is not in PRIVATE_JWK_MEMBERS, and `key_ops: ["sign"]` made a
 * WebCrypto verifier (jose) refuse to import the key at all.
 */
export function toPublic(jwk: JWK): JWK {
  return { kty: 'RSA', n: jwk.n, e: jwk.e, kid: jwk.kid, alg: 'RS256', use: 'sig' };
}

/** A new RS256 key pair in the given state, made now. */
export async function generateKey(rsaBits: number, state: KeyState, now = Date.now()): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: rsaBits, extractable: true });
  const exported = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(exported, 'sha256');
  const at = new Date(now).toISOString();
  return {
    kid,
    state,
    createdAt: at,
    ...(state === 'current' ? { activatedAt: at } : {}),
    jwk: { ...exported, kid, alg: 'RS256', use: 'sig' },
  };
}

/** Checks that a private JWK is an RS256 signing key whose kid is its thumbprint (nothing swapped). */
export async function checkKey(key: StoredKey): Promise<void> {
  const { jwk } = key;
  if (jwk.kty !== 'RSA' || typeof jwk.n !== 'string' || typeof jwk.d !== 'string') {
    throw new Error(`key ${key.kid} is not an RSA private key`);
  }
  if (jwk.kid !== key.kid || (await calculateJwkThumbprint(jwk, 'sha256')) !== key.kid) {
    throw new Error(`key ${key.kid}: kid is not the thumbprint of the key`);
  }
}
