/**
 * Encryption at rest of private keys kept in the shared store: AES-256-GCM (node:crypto) under a
 * key derived with HKDF-SHA256 from a configured secret (keys.secrets). The key's kid is the
 * additional authenticated data, so a sealed key cannot be passed off as another.
 *
 * Sealed form: `v1.<secret id>.<iv>.<ciphertext>.<tag>`, base64url parts. The secret id (derived
 * from the secret, revealing nothing about it) says which configured secret opens it: the first
 * secret seals, every one opens, so the secret can be rotated by putting a new one first (the
 * ring is re-sealed under it at the next maintenance; upstreams' client secrets and
 * authenticator-app secrets, sealed with this too, at the server's start: main.ts
 * resealUnderFirstSecret).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { JWK } from 'jose';

const SALT = 'latchkey/keyring';
const VERSION = 'v1';

interface Secret {
  readonly id: string;
  readonly key: Buffer;
}

function derive(secret: string): Secret {
  const key = Buffer.from(hkdfSync('sha256', secret, SALT, 'private JWK encryption, AES-256-GCM', 32));
  const id = Buffer.from(hkdfSync('sha256', secret, SALT, 'secret identifier', 6)).toString('base64url');
  return { id, key };
}

export class SealError extends Error {
  override name = 'SealError';
}

/** Sealed under a secret keys.secrets does not hold: these settings are not the ones that sealed it. */
export class UnknownSecret extends SealError {
  /** Whether the secret that sealed it is `secret` (the public default, say: then the way out can name it). */
  readonly sealedWith: (secret: string) => boolean;
  constructor(message: string, id: string) {
    super(message);
    this.sealedWith = (secret) => derive(secret).id === id;
  }
}

export class Sealer {
  readonly #secrets: readonly Secret[];

  constructor(secrets: readonly string[]) {
    if (!secrets.length) throw new SealError('keys.secrets: at least one secret is required');
    this.#secrets = secrets.map(derive);
  }

  seal(kid: string, jwk: JWK): string {
    return this.sealValue(kid, jwk);
  }

  open(kid: string, sealed: string): JWK {
    return this.openValue(kid, sealed, `key ${kid}`) as JWK;
  }

  /**
   * Any JSON value sealed the same way, bound to `label` (the additional authenticated data: a
   * value sealed under one label does not open under another). A label names its kind, e.g.
   * `passkey-challenge:signin:<ceremony>`, so that it never equals a key's kid.
   */
  sealValue(label: string, value: unknown): string {
    const { id, key } = this.#secrets[0]!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(label));
    const ciphertext = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return [VERSION, id, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  /** A value sealed by sealValue under `label`; throws SealError when it is not one (`what` names it in the message). */
  openValue(label: string, sealed: string, what = 'sealed value'): unknown {
    const [version, id, iv, ciphertext, tag, ...rest] = sealed.split('.');
    if (version !== VERSION || !id || !iv || !ciphertext || !tag || rest.length) {
      throw new SealError(`${what}: not a sealed key`);
    }
    const secret = this.#secrets.find((candidate) => candidate.id === id);
    if (!secret) throw new UnknownSecret(`${what} was sealed with a secret that is not in keys.secrets (KEYS_SECRETS)`, id);
    try {
      const decipher = createDecipheriv('aes-256-gcm', secret.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(label));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      const plain = Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
      return JSON.parse(plain.toString('utf8')) as unknown;
    } catch (error) {
      throw new SealError(`${what}: cannot be opened (tampered with, or sealed for another kid)`, { cause: error });
    }
  }

  /** Whether a sealed key is sealed under the first (sealing) secret. */
  isCurrent(sealed: string): boolean {
    return sealed.split('.')[1] === this.#secrets[0]!.id;
  }
}
