/**
 * Our own pages and APIs asked with a method they do not take answer 405 Method Not Allowed with
 * `Allow` naming the methods they do take (RFC 9110 §15.5.6: the header "MUST" be sent with a 405),
 * as the engine's endpoints do (provider/patches/method-not-allowed.ts). Before, a router passed such
 * a request on as unrouted and the app answered 404 "no such endpoint": `GET /account/password`,
 * `PATCH /admin/clients/x`, `POST /` said the page was not there.
 *
 * OPTIONS keeps its answer (a CORS preflight, or the app's 404: e2e options-not-found), and a path
 * no method matches stays 404.
 */
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { jsonError, respondWithError } from './errors.js';

/** The methods an Allow header may name, in the order the engine's patch names them. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

/** Only GET and HEAD, for a page or file of a single path. */
const READ_ONLY: readonly string[] = ['GET', 'HEAD'];

/**
 * Answers 405 with `Allow: allowed`: a page for a person, JSON for a program (by Accept), or JSON
 * whatever is accepted (`json`: an API only programs call, such as the admin API).
 */
function refuseMethod(ctx: Context, allowed: readonly string[], json = false): void {
  const description = `this endpoint does not take ${ctx.method}; it takes ${allowed.join(', ')}`;
  if (json) {
    jsonError(ctx, 405, 'invalid_request', description);
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
  } else {
    respondWithError(ctx, 405, { error: 'invalid_request', error_description: description });
  }
  ctx.set('Allow', allowed.join(', '));
}

/**
 * For a handler of fixed paths that takes GET and HEAD only: true (and the 405 answered) for any
 * other method but OPTIONS, which goes on as before.
 */
export function refusedUnlessRead(ctx: Context, json = false): boolean {
  if (ctx.method === 'GET' || ctx.method === 'HEAD' || ctx.method === 'OPTIONS') return false;
  refuseMethod(ctx, READ_ONLY, json);
  return true;
}

/**
 * `router.routes()`, and after it, for a request that no route took for its method and that ended
 * in a 404 (the app's "no such endpoint"), a 405 naming the methods the router's routes take at
 * that path, if any. A route that took the request and answered 404 itself (an unknown client id)
 * keeps its answer.
 */
export function routesWithAllow(router: Router, json = false): Middleware {
  const routes = router.routes() as Middleware;
  return async function withAllow(ctx, next) {
    await routes(ctx, next);
    if (ctx.status !== 404 || ctx.method === 'OPTIONS' || router.match(ctx.path, ctx.method).route) return;
    const allowed = METHODS.filter((method) => router.match(ctx.path, method).route);
    if (allowed.length) refuseMethod(ctx, allowed, json);
  };
}
