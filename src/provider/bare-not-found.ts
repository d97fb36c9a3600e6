/**
 * oidc-provider answers an OPTIONS request that is not a CORS preflight (no
 * Access-Control-Request-Method), at its CORS-enabled routes (token, userinfo, JWKS, discovery,
 * introspection, revocation, PAR), with a 404 and no body, which Koa then fills with a text/plain
 * "Not Found". Every other 404 is our JSON error or error page (by Accept); so is this one.
 */
import type { Context, Middleware } from 'koa';
import { respondWithError } from '../http/errors.js';

function answerBareNotFound(ctx: Context): void {
  if (ctx.status === 404 && ctx.body == null) {
    respondWithError(ctx, 404, { error: 'not_found', error_description: 'no such endpoint' });
  }
}

export function bareNotFound(): Middleware {
  // Not an async function, on every request the engine serves: a closure and a `then` cost less
  // than an async function's frame and promises.
  return function notFound(ctx, next) {
    return next().then(() => answerBareNotFound(ctx));
  };
}
