/**
 * One spelling per route. oidc-provider's router serves its routes in any ASCII case and with one
 * trailing slash (lib/helpers/router.js: `/TOKEN`, `/reg/`, `/Auth/<uid>`), while the checks
 * Latchkey puts in front of it compare paths as written. A lenient spelling slipped past such a
 * check and still reached the engine: an initial access token stayed usable at `/reg/` and `/REG`
 * (it is made single-use at `/reg` only), and a sign-in resumed at `/AUTH/<uid>` skipped the
 * refusal of a removed credential and the record of which credential signed the session in.
 *
 * So a request the router would serve under another spelling of one of its routes is given the
 * route's own spelling before anything else sees it: the engine answers it as it did, and every
 * check after this sees the one spelling it was written for. A parameter (a uid, a client id)
 * keeps its own text. The patterns are the router's (http/rate-limits.ts providerRoutes).
 */
import type { Middleware } from 'koa';
import type { Provider } from 'oidc-provider';
import { providerRoutes } from '../../http/rate-limits.js';

export function canonicalPaths(provider: Provider): Middleware {
  const routes = providerRoutes(provider);
  const spelled = new Set(routes.filter(({ segments }) => !segments.includes(undefined)).map(({ segments }) => segments.join('/')));
  return (ctx, next) => {
    const path = ctx.path;
    if (spelled.has(path)) return next(); // the usual case: a route's own spelling
    const route = routes.find(({ pattern }) => pattern.test(path));
    if (route) {
      const given = (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path).split('/');
      const canonical = route.segments.map((segment, i) => segment ?? given[i]).join('/');
      if (canonical !== path) ctx.path = canonical;
    }
    return next();
  };
}
