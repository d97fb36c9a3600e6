/**
 * The revocation list: `jti`s of revoked JWT access tokens. A signed JWT cannot be recalled, so
 * whoever accepts one asks this list. Each entry lives until the token would have expired anyway.
 */
import type { Kv } from '../store/kv.js';

const jtiKey = (jti: string) => `revoked:jti:${jti}`;

export class RevocationList {
  constructor(
    private readonly kv: Kv,
    /** Seconds added to each entry's life, matching the clock tolerance verifiers allow. */
    private readonly skew: number,
  ) {}

  /** Revokes a token until its `exp` (epoch seconds). An already expired token needs no entry. */
  async revoke(jti: string, exp: number): Promise<void> {
    const ttl = exp - Math.floor(Date.now() / 1000) + this.skew;
    if (ttl > 0) await this.kv.set(jtiKey(jti), String(exp), { ttl });
  }

  async isRevoked(jti: string): Promise<boolean> {
    return (await this.kv.get(jtiKey(jti))) !== undefined;
  }
}
