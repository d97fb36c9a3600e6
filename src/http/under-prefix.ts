/**
 * A router mounted under a path prefix, skipped whole by every other request: @koa/router matches
 * a path against each of its routes before it calls next, which every token, introspection and
 * discovery request would otherwise pay once per router in front of the provider.
 */
import type { Middleware } from 'koa';
import { scoped } from './layers.js';

/**
 * `prefix` is compared case-insensitively, as @koa/router matches (a superset of what the router
 * serves). Scoped by it too: the app's dispatcher (http/layers.ts) does not even call it elsewhere.
 */
export function underPrefix(prefix: string, middleware: Middleware): Middleware {
  const lower = prefix.toLowerCase();
  return scoped({ prefixes: [prefix] }, function underPrefix(ctx, next) {
    return ctx.path.slice(0, lower.length).toLowerCase() === lower ? middleware(ctx, next) : next();
  });
}
