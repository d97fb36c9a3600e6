/**
 * Introspection of an opaque token whose client was deleted answers `{ "active": false }`.
 *
 * oidc-provider answers active for an opaque client_credentials token as long as its record lives,
 * even when its client is gone: it looks the client up only to compute pairwise subjects. Tokens
 * under a grant are deleted with the client's grants, but client_credentials tokens belong to no
 * grant. So this middleware (installed with provider.use after jwtAccessTokenEndpoints, so that it
 * sees only the provider's own answers, i.e. opaque tokens) checks an active answer against the
 * revocation list, whose client entry says "every token of this client issued up to the deletion".
 */
import type { Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { RevocationList } from './list.js';

export function deletedClientsAtIntrospection(list: RevocationList): Middleware {
  return async function opaqueOfDeletedClients(ctx, next) {
    await next();
    if ((ctx as unknown as KoaContextWithOIDC).oidc?.route !== 'introspection' || ctx.status !== 200) return;
    const body = ctx.body as { active?: unknown; client_id?: unknown; iat?: unknown } | undefined;
    if (body?.active !== true) return;
    if (await list.isRevoked({ client_id: body.client_id, iat: body.iat })) ctx.body = { active: false };
  };
}
