/**
 * Userinfo (OpenID Connect Core §5.3) takes the access token a client asked for without `resource`;
 * an API's token (RFC 8707: a JWT, RFC 9068, whose `aud` is the API) is not one. The engine refuses
 * it with `401 invalid_token` "invalid token provided" (it stores no JWT access token, so it does not
 * find it), which tells a developer whose library called userinfo with the API's token nothing. A
 * token we signed as an access token (`typ` at+jwt), unexpired, for an audience, gets the same 401
 * and `invalid_token` challenge, its description saying which audience the token is for and which
 * token userinfo takes. So does a client's own opaque token (client_credentials), unexpired, which
 * the engine does not look for there: a person's token it is not (fifth fresh-eyes passes). So does a
 * person's DPoP-bound token sent with the Bearer scheme (RFC 9449 §7.2: refused), its description
 * saying how to present it: oidc-client-ts and @axa-fr/oidc-client send it so unless told otherwise,
 * and "invalid token provided" sent their developers looking for an expired or revoked token
 * (seventh passes, client libraries). Any other refusal (a token we did not sign or do not hold, an
 * expired one) stays the engine's.
 */
import { jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Middleware } from 'koa';
import { presentedToken } from '../../http/bearer.js';
import { scoped } from '../../http/layers.js';

/** The engine's description of every invalid_token (errors.InvalidToken). */
const ENGINE_DESCRIPTION = 'invalid token provided';

interface Options {
  readonly issuer: string;
  /** A client's own opaque access token (client_credentials) by its value, if unexpired: its audience. */
  readonly clientCredentials: (token: string) => Promise<{ readonly aud?: string | readonly string[] } | undefined>;
  /** A person's opaque access token by its value, if unexpired: whether it is DPoP-bound. */
  readonly dpopBound: (token: string) => Promise<boolean>;
  /** Our public keys (a function, so that it follows key rotation). */
  readonly keys: JWTVerifyGetKey;
  readonly clockTolerance: number;
}

export function userinfoApiTokens({ issuer, keys, clockTolerance, clientCredentials, dpopBound }: Options): Middleware {
  return scoped({ routes: ['userinfo'] }, async function apiTokenAtUserinfo(ctx, next) {
    await next();
    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    if (ctx.status !== 401 || body?.error !== 'invalid_token' || body.error_description !== ENGINE_DESCRIPTION) return;
    const presented = presentedToken(ctx);
    if (!presented?.token) return;
    const { token } = presented;
    // An API's identifier is a URL (apis.ts), but a quote or backslash would end the challenge's quoted string: left out.
    const named = (audience: string | readonly string[]) => [audience].flat().join(' ').replace(/["\\]/g, '');
    let description: string;
    if (token.split('.').length === 3) {
      const audience = await jwtVerify(token, keys, { issuer, typ: 'at+jwt', clockTolerance }).then(
        ({ payload }) => payload.aud,
        () => undefined,
      );
      if (!audience?.length) return;
      description = `this access token is for ${named(audience)}; userinfo takes a token asked for without resource`;
    } else if (presented.scheme === 'Bearer' && (await dpopBound(token).catch(() => false))) {
      description = 'this access token is DPoP-bound; send it as Authorization: DPoP <token> with a DPoP proof (RFC 9449 section 7.1)';
    } else {
      const own = await clientCredentials(token).catch(() => undefined);
      if (!own) return;
      description = `this access token is a client's own (client_credentials)${own.aud?.length ? ` for ${named(own.aud)}` : ''}; userinfo takes a token a person's sign-in gave`;
    }
    ctx.body = { ...body, error_description: description };
    const challenge = ctx.response.get('WWW-Authenticate') as string | string[] | undefined;
    if (challenge?.length) ctx.set('WWW-Authenticate', [challenge].flat().map((value) => value.replace(`error_description="${ENGINE_DESCRIPTION}"`, `error_description="${description}"`)));
  });
}
