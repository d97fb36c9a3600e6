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
 *
 * An endpoint's own path is its own: where a route with a parameter has the same shape (the device
 * resume, `<code_verification>/:uid`, and the device authorization endpoint, `/device/auth`), the
 * methods of the parameter's route are not the endpoint's. `GET /device/auth` ran the device resume
 * with `auth` for an interaction id (a 400 "Connect a device" page to a client that asked the
 * device authorization endpoint, RFC 8628 §3.1: POST), and `PUT /device/auth` named GET and HEAD in
 * its Allow. The paths of the engine's configured endpoints are looked up once, when the provider is
 * built (ownEndpointPaths, a layer scoped to those paths): such a request is answered 405 before the
 * engine, its Allow naming the endpoint's methods.
 */
import type { Context, Middleware, Next } from 'koa';
import type { Provider } from 'oidc-provider';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';
import { respondWithError } from '../../http/errors.js';
import { pathKey, scoped } from '../../http/layers.js';

interface EngineRouter {
  match(method: string, path: string): { route: { path: string } } | undefined;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'] as const;

function router(provider: Provider): EngineRouter {
  const found = (instance(provider) as { router?: Partial<EngineRouter> }).router;
  if (typeof found?.match !== 'function') throw new Error("oidc-provider keeps no router where expected: review src/provider/patches/method-not-allowed.ts");
  return found as EngineRouter;
}

function refuse(ctx: Context, allowed: readonly string[]): void {
  respondWithError(ctx, 405, { error: 'invalid_request', error_description: `this endpoint does not take ${ctx.method}; it takes ${allowed.join(', ')}` });
  ctx.set('Allow', allowed.join(', '));
}

function answerMethodNotAllowed(ctx: Context, engine: EngineRouter, postedAsGet: ReadonlySet<string>): void {
  // A 404 for a request the engine has no route for: the app's own (app.ts), or bare-not-found.ts's.
  if (ctx.status !== 404 || ctx.method === 'OPTIONS' || engine.match(ctx.method, ctx.path)) return;
  const allowed = METHODS.filter((method) => engine.match(method, ctx.path) || (method === 'POST' && postedAsGet.has(pathKey(ctx.path))));
  if (allowed.length) refuse(ctx, allowed);
}

/**
 * Each configured endpoint path (and the end-session confirmation and success pages) with the methods
 * its own routes take (no parameter in their path), where another method there matches a route with a
 * parameter instead: the paths a request must be kept from (`/device/auth`, by default only it).
 */
function shadowedEndpoints(provider: Provider, engine: EngineRouter): Map<string, string[]> {
  const routes = (instance(provider) as { configuration?: { routes?: Record<string, string> } }).configuration?.routes;
  if (!routes) throw new Error('oidc-provider keeps no configuration.routes where expected: review src/provider/patches/method-not-allowed.ts');
  const paths = new Set(Object.values(routes));
  if (routes.end_session) for (const page of ['confirm', 'success']) paths.add(`${routes.end_session}/${page}`);
  const shadowed = new Map<string, string[]>();
  for (const path of paths) {
    const own = METHODS.filter((method) => engine.match(method, path)?.route.path === path);
    const other = METHODS.some((method) => engine.match(method, path)?.route.path.includes('/:'));
    if (own.length && other) shadowed.set(pathKey(path), own);
  }
  return shadowed;
}

/**
 * Inside bare-not-found.ts's layer: it sees the 404 first. `postedAsGet`: the endpoint paths that take
 * POST before the engine does (post-methods.ts: authorization, end-session), named in their Allow too.
 */
export function methodNotAllowed(provider: Provider, postedAsGet: readonly string[]): Middleware {
  const engine = router(provider);
  const posted = new Set(postedAsGet.map(pathKey));
  // Not an async function, on every request the engine serves.
  return function notAllowed(ctx, next) {
    return next().then(() => answerMethodNotAllowed(ctx, engine, posted));
  };
}

/**
 * Before the engine, on the endpoint paths a route with a parameter shadows (scoped to them, so no
 * other request meets it): another method than the endpoint's own is 405 there. Undefined when none is.
 */
export function ownEndpointPaths(provider: Provider): Middleware | undefined {
  const shadowed = shadowedEndpoints(provider, router(provider));
  if (!shadowed.size) return undefined;
  return scoped({ paths: [...shadowed.keys()] }, function ownMethodsOnly(ctx: Context, next: Next) {
    const own = shadowed.get(pathKey(ctx.path));
    if (!own || ctx.method === 'OPTIONS' || own.includes(ctx.method)) return next();
    refuse(ctx, own);
    return Promise.resolve();
  });
}
