/**
 * Which claims an ID token carries: by default the claims of the scopes the person granted
 * (`profile` → name…, `email` → email…), as Keycloak and Google do and as client libraries expect
 * (express-openid-connect's req.oidc.user, oidc-client-ts without loadUserInfo, Authlib).
 *
 * oidc-provider's default, `conformIdTokenClaims`, puts only `sub` (and claims requested by name
 * with the `claims` parameter) in an ID token issued next to an access token for userinfo: the
 * rest is fetched at userinfo (OIDC Core §5.4). We switch that off in provider.ts, so the library
 * fills ID tokens from the granted scopes, and narrow them again here, in the account's claims()
 * (the library's documented hook), for the clients that ask for the conform behaviour: the
 * setting `idToken.scopeClaims`, overridden per client by its `id_token_scope_claims` metadata.
 * As in oidc-provider's conform mode, an ID token issued with an access token for another
 * resource server (which cannot be used at userinfo) keeps the claims.
 */
import { errors, type AccountClaims, type ClaimsParameterMember, type KoaContextWithOIDC } from 'oidc-provider';
import { clientMetadata } from './client-metadata.js';
import { claimsBeyondScope } from './scope-claims.js';

/** The client metadata property (boolean): true → scope claims in the ID token; false → sub only. */
export const ID_TOKEN_CLAIMS_PROPERTY = 'id_token_scope_claims';

/** extraClientMetadata validation of the property. */
export function validateIdTokenClaimsSetting(value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new errors.InvalidClientMetadata(`${ID_TOKEN_CLAIMS_PROPERTY} must be a boolean`);
  }
}

/** Whether the ID token of this request carries the claims of the granted scopes. */
function scopeClaimsWanted(ctx: KoaContextWithOIDC | undefined, byDefault: boolean): boolean {
  const client = ctx?.oidc?.client;
  const chosen = client && clientMetadata(client)[ID_TOKEN_CLAIMS_PROPERTY];
  if (typeof chosen === 'boolean' ? chosen : byDefault) return true;
  // An access token for a resource server cannot fetch userinfo: the ID token is the only way.
  return Boolean((ctx?.oidc?.entities.AccessToken as { aud?: unknown } | undefined)?.aud);
}

/**
 * The account's claims() for oidc-provider: everything the client may have (none of the claims of
 * scopes outside its `scope` metadata, whatever its grant says: claimsBeyondScope) for userinfo;
 * for an ID token of a client that does not want scope claims, `sub` and the claims it requested
 * by name.
 */
export function accountClaims(ctx: KoaContextWithOIDC | undefined, byDefault: boolean, account: AccountClaims) {
  const beyond = claimsBeyondScope(ctx?.oidc?.client);
  const all = beyond.size ? (Object.fromEntries(Object.entries(account).filter(([claim]) => !beyond.has(claim))) as AccountClaims) : account;
  return (use: string, _scope: string, requested: Record<string, null | ClaimsParameterMember> = {}): AccountClaims => {
    if (use !== 'id_token' || scopeClaimsWanted(ctx, byDefault)) return all;
    const named = Object.keys(requested).filter((claim) => claim in all);
    return { sub: all.sub, ...Object.fromEntries(named.map((claim) => [claim, all[claim]])) };
  };
}
