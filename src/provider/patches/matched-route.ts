/**
 * The name of the route a request matched, for metrics labels (route names, never paths, keep the
 * label set bounded).
 *
 * What it relies on: oidc-provider's ctx.oidc.route for its own endpoints, else the private
 * `_matchedRoute` (the matched path pattern) that @koa/router sets on ctx for Latchkey's routes.
 * Neither changes a behaviour; an upgrade that drops `_matchedRoute` only turns those labels
 * into "other" (test/integration/provider-patches.test.ts notices).
 */
import type { Context } from 'koa';

export function matchedRoute(ctx: Context): string {
  const oidc = (ctx as unknown as { oidc?: { route?: string } }).oidc;
  return String(oidc?.route ?? (ctx as unknown as { _matchedRoute?: string })._matchedRoute ?? 'other');
}
