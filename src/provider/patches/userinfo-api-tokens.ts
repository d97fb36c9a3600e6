/**
 * Userinfo (OpenID Connect Core §5.3) takes the access token a client asked for without `resource`;
 * an API's token (RFC 8707: a JWT, RFC 9068, whose `aud` is the API) is not one. The engine refuses
 * it with `401 invalid_token` "invalid token provided" (it stores no JWT access token, so it does not
 * find it), which tells a developer whose library called userinfo with the API's token nothing. A
 * token we signed as an access token (`typ` at+jwt), unexpired, for an audience, gets the same 401
 * and `invalid_token` challenge, its description saying which audience the token is for and which
 * token userinfo takes. Any other refusal (a token we did not sign, an expired one) stays the engine's.
 */
import { jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Middleware } from 'koa';
import { presentedToken } from '../../http/bearer.js';
import { scoped } from '../../http/layers.js';

/** The engine's description of every invalid_token (errors.InvalidToken). */
const ENGINE_DESCRIPTION = 'invalid token provided';

interface Options {
  readonly issuer: string;
  /** Our public keys (a function, so that it follows key rotation). */
  readonly keys: JWTVerifyGetKey;
  readonly clockTolerance: number;
}

export function userinfoApiTokens({ issuer, keys, clockTolerance }: Options): Middleware {
  return scoped({ routes: ['userinfo'] }, async function apiTokenAtUserinfo(ctx, next) {
    await next();
    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    if (ctx.status !== 401 || body?.error !== 'invalid_token' || body.error_description !== ENGINE_DESCRIPTION) return;
    const token = presentedToken(ctx)?.token;
    if (token?.split('.').length !== 3) return;
    const audience = await jwtVerify(token, keys, { issuer, typ: 'at+jwt', clockTolerance }).then(
      ({ payload }) => payload.aud,
      () => undefined,
    );
    if (!audience?.length) return;
    // An API's identifier is a URL (apis.ts), but a quote or backslash would end the challenge's quoted string: left out.
    const description = `this access token is for ${[audience].flat().join(' ').replace(/["\\]/g, '')}; userinfo takes a token asked for without resource`;
    ctx.body = { ...body, error_description: description };
    const challenge = ctx.response.get('WWW-Authenticate') as string | string[] | undefined;
    if (challenge?.length) ctx.set('WWW-Authenticate', [challenge].flat().map((value) => value.replace(`error_description="${ENGINE_DESCRIPTION}"`, `error_description="${description}"`)));
  });
}
