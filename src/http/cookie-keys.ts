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
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export class CookieKeys {
  readonly #keys: readonly string[];

  constructor(keys: readonly string[]) {
    if (!keys.length) throw new Error('cookie keys: at least one is required');
    this.#keys = [...keys];
  }

  sign(data: string): string {
    return signature(data, this.#keys[0]!);
  }

  verify(data: string, digest: string): boolean {
    return this.index(data, digest) > -1;
  }

  /** Which key made `digest` for `data`, or -1. */
  index(data: string, digest: string): number {
    const offered = Buffer.from(String(digest));
    for (let i = 0; i < this.#keys.length; i += 1) {
      const expected = Buffer.from(signature(data, this.#keys[i]!));
      if (offered.length === expected.length && timingSafeEqual(offered, expected)) return i;
    }
    return -1;
  }
}

/** Keygrip's: HMAC-SHA1, base64 with `/`, `+` and `=` replaced as in base64url. */
function signature(data: string, key: string): string {
  return createHmac('sha1', key).update(data).digest('base64url');
}
