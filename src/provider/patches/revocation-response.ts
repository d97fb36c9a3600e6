/**
 * The answer of the revocation endpoint (RFC 7009 §2.2): 200 with the empty JSON object `{}`,
 * labelled `application/json`.
 *
 * oidc-provider (and our JWT revocation, jwt-access-tokens.ts) answer an empty string, which Koa
 * labels `text/plain`. RFC 7009 §2.2 says the client ignores the body, but client libraries read
 * it by its label: oidc-client-ts's revokeTokens() rejects any Content-Type other than
 * application/json, and @badgateway/oauth2-client's revoke() parses every JSON-labelled answer
 * but a 204, so an empty body labelled JSON failed it ("Unexpected end of JSON input"). `{}` is
 * JSON that says nothing, which both accept; the label matches every other answer of this
 * endpoint (its errors are JSON).
 *
 * Every answer of it, errors included, says `Cache-Control: no-store` and `Pragma: no-cache`, as
 * the token and introspection endpoints' do (RFC 6749 §5.1): its request carries a token and the
 * client's credentials, and the engine set neither header here (fifteenth fresh-eyes pass).
 */
import type { Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { scoped } from '../../http/layers.js';

export function jsonRevocationAnswer(): Middleware {
  return scoped({ routes: ['revocation'] }, async function revocationAnswer(ctx, next) {
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    await next();
    if ((ctx as unknown as KoaContextWithOIDC).oidc?.route !== 'revocation' || ctx.status !== 200) return;
    ctx.body = '{}';
    ctx.type = 'application/json';
  });
}
