/**
 * The answer of the revocation endpoint (RFC 7009 §2.2): 200 with an empty body, labelled
 * `application/json`.
 *
 * oidc-provider (and our JWT revocation, jwt-access-tokens.ts) answer an empty string, which Koa
 * labels `text/plain`. RFC 7009 §2.2 says the client ignores the body, but browser libraries check
 * the label: oidc-client-ts's revokeTokens() rejects any Content-Type other than
 * application/json, and reads an empty body as `{}`. An empty body with that label is what it
 * accepts, keeps the answer empty as RFC 7009 describes, and matches the label of every other
 * answer of this endpoint (its errors are JSON).
 */
import type { Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { scoped } from '../../http/layers.js';

export function emptyJsonRevocationAnswer(): Middleware {
  return scoped({ routes: ['revocation'] }, async function revocationAnswer(ctx, next) {
    await next();
    if ((ctx as unknown as KoaContextWithOIDC).oidc?.route !== 'revocation' || ctx.status !== 200) return;
    ctx.body = '';
    ctx.type = 'application/json';
  });
}
