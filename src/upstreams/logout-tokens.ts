/**
 * Logout tokens an upstream sent us, remembered by `jti` so that each ends sessions once: a replayed
 * token (captured in transit or from a log) is refused (OpenID Connect Back-Channel Logout 1.0 §2.6
 * step 6 allows it; otherwise a replay would end the sessions of a later sign-in with the same
 * upstream `sid` or `sub`). A jti is kept as long as the token would be accepted, no longer.
 *
 * Layout: upstream:logout-jti:<upstream>:<sha-256 of the jti> → "1", with that TTL; claimed by a
 * set-if-absent, so of two deliveries of one token exactly one is taken, on any instance.
 */
import type { Kv } from '../store/kv.js';
import { usedLogoutTokenKey } from '../store/keys.js';

export class LogoutTokenReplays {
  constructor(private readonly kv: Kv) {}

  /** True the first time this upstream's `jti` is presented; false for a replay. */
  async firstUse(upstream: string, jti: string, acceptedUntil: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(acceptedUntil - Date.now() / 1000));
    return this.kv.set(usedLogoutTokenKey(upstream, jti), '1', { ttl, onlyIfAbsent: true });
  }
}
