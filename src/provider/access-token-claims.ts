/**
 * RFC 9068 §2.2.1: a person's JWT access token says how and when they signed in (`auth_time`,
 * `acr`, `amr`, as their ID token does), so that an API can ask for a recent or stronger sign-in
 * without a round trip. The values are those of the sign-in the grant step redeems — its code,
 * refresh token (which carries them from the code) or device code — so every access token of that
 * sign-in says the same. A client's own token (client_credentials) has none of these.
 */
import type { KoaContextWithOIDC } from 'oidc-provider';

export function signInClaims(ctx: KoaContextWithOIDC): { auth_time?: number; acr?: string; amr?: string[] } {
  const { AuthorizationCode, RefreshToken, DeviceCode } = ctx.oidc.entities;
  const from = AuthorizationCode ?? RefreshToken ?? DeviceCode;
  if (!from) return {};
  return {
    ...(from.authTime !== undefined && { auth_time: from.authTime }),
    ...(from.acr !== undefined && { acr: from.acr }),
    ...(from.amr !== undefined && { amr: from.amr }),
  };
}
