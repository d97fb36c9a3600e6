/**
 * The keys that sign cookies, as the `cookies` package (Koa's and oidc-provider's) uses them: its
 * Keygrip interface, with Keygrip's own signatures (HMAC-SHA1 of `name=value`, base64url; the
 * first key signs, every key verifies, and a signature by a later key is re-signed with the first).
 *
 * What differs from Keygrip is how a signature is compared: crypto.timingSafeEqual on the two
 * signatures, instead of tsscmp's double HMAC under a fresh random key (two SHA-256 HMACs and a
 * random draw for every key tried, on every signed cookie read), so reading a session cookie costs
 * one HMAC instead of three and a random draw. Both compare in constant time; only the length
 * (always 27 characters for a real signature) can end a comparison early. One instance serves every
 * request, where an array of keys makes the `cookies` package build a Keygrip per request.
 *
 * And the first key's signatures of recent cookies are kept (SIGNED): a session cookie is read and
 * set again, with the same value, at every authorization request, which otherwise made the same two
 * HMACs each time. Only what the first key signed here, or a signature it made that was presented
 * and matched, is kept, so a forged cookie takes no place; a signature is sent in the cookie itself,
 * so keeping it in memory holds nothing secret.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** Signatures kept, at most (past this, the oldest go first), of `name=value` strings of at most SIGNED_LENGTH characters (ids). */
const SIGNED = 10_000;
const SIGNED_LENGTH = 200;

export class CookieKeys {
  readonly #keys: readonly KeyObject[];
  /** The first key's signature of each `name=value` lately signed or verified (SIGNED). */
  readonly #signed = new Map<string, string>();

  constructor(keys: readonly string[]) {
    if (!keys.length) throw new Error('cookie keys: at least one is required');
    // Made once: createHmac takes a key object as it is (a string key is encoded at every call), UTF-8 as Keygrip's.
    this.#keys = keys.map((key) => createSecretKey(key, 'utf8'));
  }

  sign(data: string): string {
    return this.#signed.get(data) ?? this.#keep(data, signature(data, this.#keys[0]!));
  }

  verify(data: string, digest: string): boolean {
    return this.index(data, digest) > -1;
  }

  /** Which key made `digest` for `data`, or -1. */
  index(data: string, digest: string): number {
    const offered = Buffer.from(String(digest));
    const kept = this.#signed.get(data);
    for (let i = 0; i < this.#keys.length; i += 1) {
      const made = i === 0 && kept !== undefined ? kept : signature(data, this.#keys[i]!);
      const expected = Buffer.from(made);
      if (offered.length !== expected.length || !timingSafeEqual(offered, expected)) continue;
      if (i === 0 && kept === undefined) this.#keep(data, made);
      return i;
    }
    return -1;
  }

  #keep(data: string, made: string): string {
    if (data.length > SIGNED_LENGTH) return made;
    if (this.#signed.size >= SIGNED) this.#signed.delete(this.#signed.keys().next().value!);
    this.#signed.set(data, made);
    return made;
  }
}

/** Keygrip's: HMAC-SHA1, base64 with `/`, `+` and `=` replaced as in base64url. */
function signature(data: string, key: KeyObject): string {
  return createHmac('sha1', key).update(data).digest('base64url');
}
