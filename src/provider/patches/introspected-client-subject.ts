/**
 * Introspection (RFC 7662) of a client's own opaque token (client_credentials) names the client as its
 * `sub`, as the token's JWT form does.
 *
 * oidc-provider writes `sub` into an introspection answer only for a token issued to a person
 * (`accountId`), so an opaque client_credentials token was answered without one, while the same
 * client's JWT access token carries `sub` = its client_id (RFC 9068 §2.2: with no resource owner
 * the subject is the client; RFC 6749 §4.4: the client is then the resource owner) and our
 * introspection of that JWT says so (jwt-access-tokens.ts). The token's subject depended on the
 * format its API chose. Resource servers that take `sub` as the caller failed on the opaque form
 * only: Apache's mod_oauth2 (`OAuth2TokenVerify introspect`) answered `401 invalid_token`, "Could
 * not determine remote user", where the JWT form passed. A person's token keeps its own `sub`
 * (never a client's: clients cannot choose a client_id that collides with a person's), and an
 * inactive answer stays `{ "active": false }`.
 */
import type { Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { scoped } from '../../http/layers.js';

export function introspectedClientSubject(): Middleware {
  return scoped({ routes: ['introspection'] }, async function clientSubject(ctx, next) {
    await next();
    const { oidc } = ctx as unknown as KoaContextWithOIDC;
    if (oidc?.route !== 'introspection' || ctx.status !== 200) return;
    const body = ctx.body as Record<string, unknown> | undefined;
    const token = oidc.entities.ClientCredentials as { clientId?: string } | undefined;
    if (!token?.clientId || body?.active !== true || body.sub !== undefined || body.client_id !== token.clientId) return;
    body.sub = token.clientId;
  });
}
