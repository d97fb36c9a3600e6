/**
 * A request to one of the engine's endpoints with a method it does not take is answered 405 Method
 * Not Allowed, with the Allow header naming the methods it does take (RFC 9110 §15.5.6: the header
 * "MUST" be sent with a 405). RFC 9126 §2.3 says so of the pushed authorization request endpoint in
 * so many words ("If the request did not use the POST method, the authorization server responds
 * with an HTTP 405"); RFC 6749 §3.2 has the token endpoint take POST only, and so on.
 *
 * oidc-provider's router passes such a request on as unrouted, which the app answered 404 "no such
 * endpoint" (app.ts): wrong, the endpoint is there. This asks the engine's own router
 * (the provider's internal `router`, lib/helpers/initialize_app.js) which methods match the path,
 * so the answer follows whatever the engine serves. OPTIONS keeps its answer (a CORS preflight is
 * the engine's; any other OPTIONS is our 404, e2e options-not-found), and so does a path no
 * method matches.
 */
import type { Context, Middleware } from 'koa';
import type { Provider } from 'oidc-provider';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';
import { respondWithError } from '../../http/errors.js';

interface EngineRouter {
  match(method: string, path: string): unknown;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'] as const;

function router(provider: Provider): EngineRouter {
  const found = (instance(provider) as { router?: Partial<EngineRouter> }).router;
  if (typeof found?.match !== 'function') throw new Error("oidc-provider keeps no router where expected: review src/provider/patches/method-not-allowed.ts");
  return found as EngineRouter;
}

function answerMethodNotAllowed(ctx: Context, engine: EngineRouter): void {
  // A 404 for a request the engine has no route for: the app's own (app.ts), or bare-not-found.ts's.
  if (ctx.status !== 404 || ctx.method === 'OPTIONS' || engine.match(ctx.method, ctx.path)) return;
  const allowed = METHODS.filter((method) => engine.match(method, ctx.path));
  if (!allowed.length) return;
  respondWithError(ctx, 405, { error: 'invalid_request', error_description: `this endpoint does not take ${ctx.method}; it takes ${allowed.join(', ')}` });
  ctx.set('Allow', allowed.join(', '));
}

/** Inside bare-not-found.ts's layer: it sees the 404 first. */
export function methodNotAllowed(provider: Provider): Middleware {
  const engine = router(provider);
  // Not an async function, on every request the engine serves.
  return function notAllowed(ctx, next) {
    return next().then(() => answerMethodNotAllowed(ctx, engine));
  };
}
