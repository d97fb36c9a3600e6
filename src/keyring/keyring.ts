/**
 * Signing keys: RS256 key pairs whose `kid` is their JWK thumbprint (RFC 7638), kept in
 * keys/keyring.json with mode 0600. The newest key is `current` and signs; older keys are
 * `retired` and stay published so tokens they signed still verify.
 * This is the only module that reads or writes private keys.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

export type KeyState = 'current' | 'retired';

export interface StoredKey {
  readonly kid: string;
  readonly state: KeyState;
  /** ISO 8601 */
  readonly createdAt: string;
  readonly jwk: JWK;
}

interface KeyringFile {
  readonly version: 1;
  readonly keys: StoredKey[];
}

/** Private members of RSA/EC/OKP/oct JWKs (RFC 7518 §6): none of these may ever be published. */
export const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

export class Keyring {
  constructor(readonly keys: readonly StoredKey[]) {}

  /** The private JWKS for oidc-provider: the current key first, so it is the one that signs. */
  signingJwks(): { keys: JWK[] } {
    const ordered = [...this.keys].sort((a, b) => Number(b.state === 'current') - Number(a.state === 'current'));
    return { keys: ordered.map(({ jwk }) => ({ ...jwk })) };
  }

  /** The public JWKS: what resource servers verify against. */
  publicJwks(): { keys: JWK[] } {
    return { keys: this.signingJwks().keys.map(toPublic) };
  }
}

export function toPublic(jwk: JWK): JWK {
  const copy: Record<string, unknown> = { ...jwk };
  for (const member of PRIVATE_JWK_MEMBERS) delete copy[member];
  return copy as JWK;
}

export async function generateKey(rsaBits: number): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: rsaBits, extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { kid, state: 'current', createdAt: new Date().toISOString(), jwk: { ...jwk, kid, alg: 'RS256', use: 'sig' } };
}

/** The key ring kept in a directory (keys/ by default). */
export class FileKeyStore {
  readonly file: string;

  constructor(dir: string) {
    this.file = join(dir, 'keyring.json');
  }

  exists(): boolean {
    return existsSync(this.file);
  }

  read(): Keyring {
    const mode = statSync(this.file).mode & 0o777;
    if (mode & 0o077) chmodSync(this.file, 0o600); // never leave private keys readable by others
    const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as KeyringFile;
    if (parsed.version !== 1 || !Array.isArray(parsed.keys) || !parsed.keys.length) {
      throw new Error(`${this.file} is not a Latchkey key ring`);
    }
    return new Keyring(parsed.keys);
  }

  write(keyring: Keyring): void {
    mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 });
    const temporary = `${this.file}.${process.pid}.tmp`;
    const body: KeyringFile = { version: 1, keys: [...keyring.keys] };
    writeFileSync(temporary, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    renameSync(temporary, this.file);
  }

  /** Reads the key ring, creating one with a fresh key on first start. */
  async load(rsaBits: number): Promise<Keyring> {
    if (this.exists()) return this.read();
    const keyring = new Keyring([await generateKey(rsaBits)]);
    this.write(keyring);
    return keyring;
  }

  /** Adds a new current key; the previous current key is retired (still published). */
  async addKey(rsaBits: number): Promise<StoredKey> {
    const existing = this.exists() ? this.read().keys : [];
    const key = await generateKey(rsaBits);
    this.write(new Keyring([key, ...existing.map((k) => ({ ...k, state: 'retired' as const }))]));
    return key;
  }
}
