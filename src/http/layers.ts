/**
 * Middleware that concerns some paths only says which (`scoped`), and one dispatcher per level
 * (`dispatch`: the app's, and the provider's in provider/layers.ts) sends each request through the
 * layers that concern its path only, in their order. The chain of each declared path is composed
 * once, when the dispatcher is made; a request whose path concerns none of the scoped layers meets
 * only the unscoped ones (every request's), or goes straight on to `next`.
 *
 * A scope is a superset of what its middleware acts on, never an exact copy: the middleware keeps
 * its own test, and the dispatcher only skips a layer for a path on which that test cannot pass. A
 * declared path stands for that path in any case and with or without one trailing slash (the rule
 * of oidc-provider's router, lib/helpers/router.js, which is wider than a case-sensitive `===`), a
 * declared prefix for every path that starts with it in any case (the rule of `underPrefix`).
 */
import type { Middleware } from 'koa';

export interface Scope {
  /** Exact paths (ASCII, no trailing slash), each in any case, with or without one trailing slash. */
  readonly paths?: readonly string[];
  /** Path prefixes (ASCII): every path that starts with one, in any case. */
  readonly prefixes?: readonly string[];
  /** oidc-provider route names: their paths (as `paths`), for the provider's dispatcher only. */
  readonly routes?: readonly string[];
}

const SCOPE = Symbol('latchkey.scope');
type Scoped = Middleware & { [SCOPE]?: Scope };

/** `middleware`, marked as acting on `scope` only (a dispatcher skips it elsewhere). */
export function scoped<M extends (ctx: never, next: never) => unknown>(scope: Scope, middleware: M): M {
  const marked = middleware as M & { [SCOPE]?: Scope };
  if (marked[SCOPE]) throw new Error('middleware already has a scope');
  for (const path of [...(scope.paths ?? []), ...(scope.prefixes ?? [])]) {
    // eslint-disable-next-line no-control-regex
    if (!/^\/[\x00-\x7f]*$/.test(path)) throw new Error(`a scope's path must be ASCII and start with "/": ${path}`);
  }
  for (const path of scope.paths ?? []) {
    if (path.length > 1 && path.endsWith('/')) throw new Error(`a scope's exact path has no trailing slash: ${path}`);
  }
  Object.defineProperty(marked, SCOPE, { value: scope });
  return marked;
}

export function scopeOf(middleware: Middleware): Scope | undefined {
  return (middleware as Scoped)[SCOPE];
}

/**
 * The key of a path in a dispatcher's table: lower case, without one trailing slash. Every path a
 * declared path's matching admits (see the top) has that path's key: oidc-provider's router folds
 * case only where the result is ASCII for an ASCII route, and lower-casing an ASCII path is exact.
 */
export function pathKey(path: string): string {
  const lower = path.toLowerCase();
  return lower.length > 1 && lower.charCodeAt(lower.length - 1) === 0x2f ? lower.slice(0, -1) : lower;
}

/**
 * `path.slice(0, prefix.length).toLowerCase() === prefix` for a lower-case ASCII `prefix`, without
 * two strings per prefix and request when the path is ASCII (a non-ASCII character, which may
 * lower-case to ASCII like the Kelvin sign, takes the comparison as written).
 */
function startsWithFolded(path: string, prefix: string): boolean {
  if (path.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i += 1) {
    let code = path.charCodeAt(i);
    if (code > 0x7f) return path.slice(0, prefix.length).toLowerCase() === prefix;
    if (code >= 0x41 && code <= 0x5a) code += 0x20;
    if (code !== prefix.charCodeAt(i)) return false;
  }
  return true;
}

const passThrough: Middleware = (_ctx, next) => next();

/** koa-compose's semantics (each layer's answer a promise; next() once), for a chain fixed in advance. */
export function compose(chain: readonly Middleware[]): Middleware {
  if (chain.length === 0) return passThrough;
  if (chain.length === 1) return chain[0]!;
  return function composed(ctx, next) {
    let index = -1;
    const dispatch = (i: number): Promise<unknown> => {
      if (i <= index) return Promise.reject(new Error('next() called multiple times'));
      index = i;
      const layer = i === chain.length ? next : chain[i]!;
      try {
        return Promise.resolve(layer(ctx, () => dispatch(i + 1)));
      } catch (error) {
        return Promise.reject(error);
      }
    };
    return dispatch(0);
  };
}

/**
 * One middleware for `layers`, in their order: a request meets each unscoped layer, and each scoped
 * one whose scope admits its path. `routePath` turns a scope's oidc-provider route names into paths
 * (undefined: a route whose feature is off); without it a scope must name none.
 */
export function dispatch(layers: readonly Middleware[], routePath?: (name: string) => string | undefined): Middleware {
  const entries = layers.map((middleware) => {
    const scope = scopeOf(middleware);
    if (!scope) return { middleware, keys: undefined, prefixes: [] as string[] };
    if (scope.routes?.length && !routePath) throw new Error('route names in a scope outside the provider');
    const routed = (scope.routes ?? []).map((name) => routePath!(name)).filter((path): path is string => path !== undefined);
    for (const path of routed) {
      if (path.includes('/:')) throw new Error(`a scope's route has parameters: ${path}`);
    }
    const keys = new Set([...(scope.paths ?? []), ...routed].map(pathKey));
    return { middleware, keys, prefixes: (scope.prefixes ?? []).map((prefix) => prefix.toLowerCase()) };
  });
  const chainOf = (admits: (entry: (typeof entries)[number]) => boolean) =>
    compose(entries.filter((entry) => !entry.keys || admits(entry)).map((entry) => entry.middleware));

  // Declared paths: their chains, composed now. A prefix is tested on the key and on the key with
  // its slash, the two lower-case forms of a path with that key.
  const exact = new Map<string, Middleware>();
  for (const entry of entries) {
    for (const key of entry.keys ?? []) {
      if (exact.has(key)) continue;
      exact.set(
        key,
        chainOf(({ keys, prefixes }) => keys!.has(key) || prefixes.some((prefix) => key.startsWith(prefix) || `${key}/`.startsWith(prefix))),
      );
    }
  }

  // Any other path: the unscoped layers and those of the prefixes it starts with (a chain per set
  // of prefixes, composed once: there are few).
  const prefixes = [...new Set(entries.flatMap((entry) => entry.prefixes))];
  if (prefixes.length > 30) throw new Error('too many prefixes for one dispatcher');
  const byPrefixes = new Map<number, Middleware>();
  const chainOfPrefixes = (mask: number) => {
    let chain = byPrefixes.get(mask);
    if (!chain) {
      const started = new Set(prefixes.filter((_, i) => mask & (1 << i)));
      chain = chainOf((entry) => entry.prefixes.some((prefix) => started.has(prefix)));
      byPrefixes.set(mask, chain);
    }
    return chain;
  };

  return function dispatcher(ctx, next) {
    const path = ctx.path;
    const chain = exact.get(pathKey(path));
    if (chain) return chain(ctx, next);
    let mask = 0;
    for (let i = 0; i < prefixes.length; i += 1) {
      if (startsWithFolded(path, prefixes[i]!)) mask |= 1 << i;
    }
    return chainOfPrefixes(mask)(ctx, next);
  };
}
