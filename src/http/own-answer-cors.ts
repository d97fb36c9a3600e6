/**
 * CORS on our own refusals at the endpoints a browser app calls (the token, userinfo, revocation,
 * introspection, PAR and device authorization endpoints, discovery and the JWKS).
 *
 * The engine's CORS step is one of its route's steps, so it answers only what reaches it. What our
 * layers answer before it (the per-address limit's 429, a body over the limit's 413, a method the
 * route does not take, 405) and what the app answers when the store is away (503, also when the
 * failure came in a layer before the engine) carried no `Access-Control-Allow-Origin`: a browser
 * shows the app's page nothing of such an answer, not its status, its `error` or its `Retry-After`,
 * and a single-page app's library (oidc-client-ts) reports "Failed to fetch", a network failure,
 * where the answer said "wait this long and try again".
 *
 * Such an answer gets what the engine gives a request before it knows the client: the request's
 * Origin allowed (`Vary: Origin`), with `Retry-After` and `WWW-Authenticate` readable. None of
 * these answers holds more than the refusal, and the engine already lets any origin read the
 * refusals it makes before a client is known (`invalid_client`). An answer the engine's CORS step
 * saw is left as it decided (it sets `Vary: Origin` first, and a client-based refusal removes the
 * allowed origin and keeps that `Vary`), except that a `Retry-After` added after it (a 503) is made
 * readable too. Only error answers, and only when the request named an Origin: nothing on the hot
 * paths' successful answers.
 */
import type { Context } from 'koa';
import type { Provider } from 'oidc-provider';
import { providerRoutes } from './rate-limits.js';

/** The engine's routes with a CORS step (oidc-provider lib/helpers/initialize_app.js's CORS.*). */
const CORS_ROUTES = new Set(['token', 'userinfo', 'revocation', 'introspection', 'pushed_authorization_request', 'device_authorization', 'discovery', 'jwks']);
const READABLE = 'Retry-After, WWW-Authenticate';

const namesOrigin = (vary: ReturnType<Context['res']['getHeader']>) =>
  vary !== undefined && String(vary).split(',').some((name) => name.trim().toLowerCase() === 'origin' || name.trim() === '*');

/** The step requestContext runs on every answer before it is written (see above). */
export function ownAnswerCors(provider: Provider): (ctx: Context) => void {
  const patterns = providerRoutes(provider).filter(({ name }) => CORS_ROUTES.has(name)).map(({ pattern }) => pattern);
  return (ctx) => {
    const origin = ctx.req.headers.origin;
    if (origin === undefined || ctx.status < 400 || ctx.res.headersSent) return;
    const res = ctx.res;
    if (res.hasHeader('access-control-allow-origin')) {
      const exposed = res.getHeader('access-control-expose-headers');
      if (res.hasHeader('retry-after') && exposed !== undefined && !/(^|,)\s*retry-after\s*(,|$)/i.test(String(exposed))) {
        res.setHeader('Access-Control-Expose-Headers', `${String(exposed)}, Retry-After`);
      }
      return;
    }
    if (namesOrigin(res.getHeader('vary')) || !patterns.some((pattern) => pattern.test(ctx.path))) return;
    ctx.vary('Origin');
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Expose-Headers', READABLE);
  };
}
