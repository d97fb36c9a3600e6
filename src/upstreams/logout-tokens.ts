/**
 * Logout tokens an upstream sent us, remembered by `jti` so that each ends sessions once: a replayed
 * token (captured in transit or from a log) is refused (OpenID Connect Back-Channel Logout 1.0 §2.6
 * step 6 allows it; otherwise a replay would end the sessions of a later sign-in with the same
 * upstream `sid` or `sub`). A jti is kept as long as the token would be accepted, no longer.
 *
 * A token is spent once what it asks is done, not before: an ending that fails half-way (a store
 * failing in its middle, answered 503 or an error) leaves the token to be sent again, as the upstream
 * does with a logout it was not answered (Back-Channel Logout 1.0 §2.8), and the retry ends what the
 * first try did not. Before the fifth endings pass (2026-12-02) it was spent first, so the retry was
 * refused as a replay and the sessions it named outlived the upstream's logout. Two deliveries of one
 * token at the same moment may both do its work (the same work); once one has finished, every later
 * one is refused, on any instance.
 *
 * Layout: upstream:logout-jti:<upstream>:<sha-256 of the jti> → "1", with that TTL.
 */
import type { Kv } from '../store/kv.js';
import { usedLogoutTokenKey } from '../store/keys.js';

export class LogoutTokenReplays {
  constructor(private readonly kv: Kv) {}

  /** Whether this upstream's `jti` was spent already (a replay). */
  async spent(upstream: string, jti: string): Promise<boolean> {
    return (await this.kv.get(usedLogoutTokenKey(upstream, jti))) !== undefined;
  }

  /** Spends this upstream's `jti` once its logout is done, for as long as the token would be accepted. */
  async spend(upstream: string, jti: string, acceptedUntil: number): Promise<void> {
    const ttl = Math.max(1, Math.ceil(acceptedUntil - Date.now() / 1000));
    await this.kv.set(usedLogoutTokenKey(upstream, jti), '1', { ttl, onlyIfAbsent: true });
  }
}
