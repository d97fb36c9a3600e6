/**
 * Refresh token rotation (RFC 9700 §4.14.2) that a bad request cannot turn against the client,
 * and the checks of what a refresh may carry that must come before the token is spent.
 *
 * Every refresh token is single-use: each refresh consumes it and answers a new one, and a consumed
 * token presented again revokes the whole grant (replay detection). oidc-provider consumes the old
 * token before it resolves the `resource` of the request, so a refresh that then failed with
 * invalid_target had already spent the token the client still holds: the client's next, correct
 * refresh looked like a replay and revoked the grant. oidc-provider asks `rotateRefreshToken` just
 * before it consumes, so that is where the resource is checked (the way oidc-provider itself checks
 * it later): a resource the token was not issued for, one no longer configured, or one removed and
 * added again since the person granted it, is refused with invalid_target while the token is still
 * unspent, whether the request names it or the token's own resource is used.
 *
 * Concurrent refreshes (two tabs, a retry after a timeout) present the same token twice. Within
 * ttl.refreshReuseGrace seconds of its rotation, the second presentation by the same client is
 * rotated again into a sibling under the same grant instead of counting as a replay; that
 * decision needs the store's atomic consumption mark, so it lives in the adapter
 * (store/adapter.ts, withinReuseGrace). Later reuse revokes the grant as before.
 */
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { grantedAt, nothingGrantedAt, offlineAccessHeld, oneResourceNeeded } from './resource-servers.js';
import { scopesBeyond } from './patches/current-registration.js';
import { bindRotatedRefreshTokenToProof } from './patches/dpop-bound-refresh.js';
import { grantGivenAt } from './patches/grant-given-at.js';

interface RefreshTokenWithResources {
  readonly resourceIndicators?: Set<string | undefined>;
  readonly scopes?: Set<string>;
}

/**
 * The API a refresh is for, as oidc-provider resolves it (helpers/resolve_resource.js): the
 * request's `resource`, else the token's own when the new access token is not for userinfo (no
 * `openid` among the scopes asked, or the token's). Undefined: for userinfo.
 */
function resourceOfRefresh(ctx: KoaContextWithOIDC, token: RefreshTokenWithResources | undefined): unknown[] | undefined {
  const requested = ctx.oidc.params?.resource;
  if (requested !== undefined) return Array.isArray(requested) ? requested : [requested];
  const scopes = ctx.oidc.params?.scope ? ctx.oidc.requestParamScopes : (token?.scopes ?? new Set<string>());
  // The engine's resourceIndicators of a token issued for no resource is the set of one undefined.
  const own = [...(token?.resourceIndicators ?? [])].filter((resource) => resource !== undefined);
  return own.length && !scopes.has('openid') ? own : undefined;
}

/**
 * A refresh gives no more than the client may request now (its `scope` metadata, when it has one):
 * an operator or the client may have narrowed it since the person consented. Without offline_access
 * there, no refresh at all (invalid_grant: the refresh token is that offline access). Asked for explicitly,
 * a scope outside it is invalid_scope; otherwise the refresh is narrowed to what is left (the
 * answer's `scope` says so, RFC 6749 §5.1), and the ID token and userinfo follow. Runs before the
 * token is spent, and before the resource check (which depends on the scopes asked).
 */
export function boundRefreshToClientScope(ctx: KoaContextWithOIDC): void {
  const token = ctx.oidc.entities.RefreshToken as RefreshTokenWithResources | undefined;
  if (!token?.scopes) return;
  // The refresh token is offline access: a client that may no longer request offline_access gets no
  // refresh (which would rotate it into a new one), whatever scope it asks for now. Not spent.
  if (!offlineAccessHeld(ctx.oidc.client as unknown as Parameters<typeof offlineAccessHeld>[0], token.scopes)) {
    throw new errors.InvalidGrant('this client may no longer keep offline access (offline_access was taken from what it may request)');
  }
  const asked = ctx.oidc.params?.scope ? [...ctx.oidc.requestParamScopes] : [...token.scopes];
  const beyond = scopesBeyond(ctx.oidc.client, asked);
  if (!beyond.length) return;
  if (ctx.oidc.params?.scope || beyond.length === asked.length) {
    throw new errors.InvalidScope(`this client may no longer request ${beyond.join(' ')}`, beyond.join(' '));
  }
  ctx.oidc.params!.scope = asked.filter((scope) => !beyond.includes(scope)).join(' ');
}

/**
 * `isResourceOf(resource, givenAt)`: whether `resource` is an API now, and one that existed when
 * the chain's grant was given (an API removed and added again since is not the one it was given for).
 */
export function rotateRefreshTokenAfterChecks(isResourceOf: (resource: string, givenAt: number | undefined) => Promise<boolean>) {
  return async (ctx: KoaContextWithOIDC): Promise<boolean> => {
    boundRefreshToClientScope(ctx);
    const token = ctx.oidc.entities.RefreshToken as RefreshTokenWithResources | undefined;
    const resources = resourceOfRefresh(ctx, token);
    if (resources !== undefined) await checkResourceOfRefresh(ctx, token, resources, isResourceOf);
    // Last, once nothing refuses the refresh: the rotated token of a public client that presented a proof is bound to its key.
    bindRotatedRefreshTokenToProof(ctx);
    return true;
  };
}

/** The API a refresh names (or implies) is one the token was issued for, that still exists as it was, and where something was granted. */
async function checkResourceOfRefresh(
  ctx: KoaContextWithOIDC,
  token: RefreshTokenWithResources | undefined,
  resources: unknown[],
  isResourceOf: (resource: string, givenAt: number | undefined) => Promise<boolean>,
): Promise<void> {
  if (resources.length !== 1) throw oneResourceNeeded(ctx, resources);
  const [resource] = resources;
  if (typeof resource !== 'string' || !token?.resourceIndicators?.has(resource) || !(await isResourceOf(resource, grantGivenAt(ctx)))) {
    throw new errors.InvalidTarget('the refresh token was not issued for this resource');
  }
  // Nothing the person granted at the API among the scopes asked: no token for it, refused before the
  // refresh token is spent (checked again with the client's scope metadata when the token is made).
  if (grantedAt(ctx, resource) === false) throw nothingGrantedAt(ctx, resource);
}
