/**
 * Refresh token rotation (RFC 9700 §4.14.2) that a bad request cannot turn against the client.
 *
 * Every refresh token is single-use: each refresh consumes it and answers a new one, and a consumed
 * token presented again revokes the whole grant (replay detection). oidc-provider consumes the old
 * token before it resolves the `resource` of the request, so a refresh that then failed with
 * invalid_target had already spent the token the client still holds: the client's next, correct
 * refresh looked like a replay and revoked the grant. oidc-provider asks `rotateRefreshToken` just
 * before it consumes, so that is where the resource is checked (the way oidc-provider itself checks
 * it later): a resource the token was not issued for, or one no longer configured, is refused with
 * invalid_target while the token is still unspent.
 *
 * Concurrent refreshes (two tabs, a retry after a timeout) present the same token twice. Within
 * ttl.refreshReuseGrace seconds of its rotation, the second presentation by the same client is
 * rotated again into a sibling under the same grant instead of counting as a replay; that
 * decision needs the store's atomic consumption mark, so it lives in the adapter
 * (store/adapter.ts, withinReuseGrace). Later reuse revokes the grant as before.
 */
import { errors, type KoaContextWithOIDC } from 'oidc-provider';

interface RefreshTokenWithResources {
  readonly resourceIndicators?: Set<string>;
}

export function rotateRefreshTokenAfterChecks(isKnownResource: (resource: string) => Promise<boolean>) {
  return async (ctx: KoaContextWithOIDC): Promise<boolean> => {
    const requested = ctx.oidc.params?.resource;
    if (requested === undefined) return true;
    const token = ctx.oidc.entities.RefreshToken as RefreshTokenWithResources | undefined;
    const resources: unknown[] = Array.isArray(requested) ? requested : [requested];
    if (resources.length !== 1) throw new errors.InvalidTarget('only a single resource indicator value must be requested');
    const [resource] = resources;
    if (typeof resource !== 'string' || !token?.resourceIndicators?.has(resource) || !(await isKnownResource(resource))) {
      throw new errors.InvalidTarget('the refresh token was not issued for this resource');
    }
    return true;
  };
}
