/**
 * JWT access tokens whose signature was checked, remembered by their exact text: a resource server
 * introspects the same token on every call it receives, and the RS256 verification is most of what
 * such an introspection costs. Only what cannot change is remembered (the token is ours, signed by
 * a key of this provider instance's ring, and parses to these claims); whether it expired is checked
 * again at each use, and whether it was revoked is never remembered (the revocation list is read
 * every time). A new key ring builds a new provider instance, and with it a new memo.
 *
 * Found by the token's last TAIL characters (its signature's end), then its whole text compared:
 * a Map keyed by the whole token hashed each request's new copy of it, every character (about
 * 10 K instructions for a 900-character token); the tail is hashed in a few hundred and the exact
 * comparison is a memory compare. Two tokens sharing a tail are never confused (the comparison
 * tells them apart): the later one verified takes the entry.
 *
 * Bounded: past `maxEntries`, the oldest entries go first.
 */
const TAIL = 32;

export class VerifiedTokens<Verified extends { readonly claims: { readonly exp?: number } }> {
  readonly #entries = new Map<string, { readonly token: string; readonly verified: Verified }>();

  constructor(
    private readonly maxEntries: number,
    /** Seconds a token is still accepted after its exp, as the verifier allows. */
    private readonly clockTolerance: number,
  ) {}

  /** The token's verified claims, if it was verified before and has not expired since. */
  get(token: string, now = Date.now() / 1000): Verified | undefined {
    const tail = token.slice(-TAIL);
    const entry = this.#entries.get(tail);
    if (!entry || entry.token !== token) return undefined;
    const { verified } = entry;
    const { exp } = verified.claims;
    if (exp !== undefined && exp + this.clockTolerance <= now) {
      this.#entries.delete(tail);
      return undefined;
    }
    return verified;
  }

  set(token: string, verified: Verified): void {
    const tail = token.slice(-TAIL);
    if (!this.#entries.has(tail) && this.#entries.size >= this.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(tail, { token, verified });
  }

  get size(): number {
    return this.#entries.size;
  }
}
