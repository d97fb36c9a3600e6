/**
 * The middleware Latchkey puts in front of oidc-provider's router (provider.use), as one layer:
 * each request meets only those whose scope admits its path (http/layers.ts), in their order. A
 * scope may name the provider's routes; their paths come from this instance (pathFor), when it is
 * built, so a provider rebuilt on a key ring change makes its own table, once.
 */
import type { Middleware } from 'koa';
import type { Provider } from 'oidc-provider';
import { dispatch } from '../http/layers.js';
import { ROUTE_NAMES } from '../http/rate-limits.js';

/**
 * The names of oidc-provider's routes that a scope may name: a name not among them (a typo) fails
 * at start rather than skip its layer everywhere. Not the routes with a parameter (pathFor without
 * it throws, which would read as a feature that is off), nor `discovery`: oidc-provider registers
 * it under two paths and pathFor gives the first only.
 */
const WITH_PARAMETERS = new Set(['resume', 'client', 'device_resume']);
const ROUTES = new Set<string>(ROUTE_NAMES.filter((name) => name !== 'discovery' && !WITH_PARAMETERS.has(name)));

/** The path of `name` on `provider`; undefined when its feature is off (pathFor throws then). */
function routePath(provider: Provider, name: string): string | undefined {
  if (!ROUTES.has(name)) throw new Error(`a scope names an unknown route: ${name}`);
  try {
    return provider.pathFor(name);
  } catch {
    return undefined;
  }
}

/** Installs `layers` in front of the provider's routes, in this order, dispatched by path. */
export function useLayers(provider: Provider, layers: readonly Middleware[]): void {
  provider.use(dispatch(layers, (name) => routePath(provider, name)));
}
