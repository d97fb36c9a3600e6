/**
 * An Authorization header of a scheme other than `Bearer` or `DPoP` carries no access token, and a
 * request that sends one to userinfo or to RFC 7592's client configuration endpoint lacks
 * authentication: RFC 6750 §3.1, "If the request lacks any authentication information (e.g., the
 * client was unaware that authentication is necessary or attempted using an unsupported
 * authentication method), the resource server SHOULD NOT include an error code or other error
 * information" (userinfo answers by RFC 6750 §3, OpenID Connect Core §5.3.3; RFC 7592 §2 takes
 * its registration access token as a bearer token). oidc-provider answered `Basic …` there with
 * `400 invalid_request` ("authorization header scheme must be `Bearer`"), its challenge naming the
 * error. This layer drops such a header before the engine reads it, so that the request is answered
 * as one without a token: `401` and the `Bearer` (and `DPoP`) challenge without an error code, as
 * Latchkey's own APIs (http/bearer.ts) already answer it. A header of no scheme at all, or a
 * `Bearer`/`DPoP` one the engine finds malformed, stays the engine's `invalid_request`.
 */
import type { Middleware } from 'koa';
import { scoped } from '../../http/layers.js';

/** An RFC 9110 auth-scheme token, then a space and credentials: a header that names its scheme. */
const SCHEMED = /^([!#$%&'*+.^_`|~\w-]+) +\S/;
const TOKEN_SCHEMES = new Set(['bearer', 'dpop']);

export function otherSchemesUnauthenticated(registrationPath: string): Middleware {
  return scoped({ routes: ['userinfo'], prefixes: [`${registrationPath}/`] }, function otherSchemes(ctx, next) {
    const scheme = SCHEMED.exec(ctx.request.headers.authorization ?? '')?.[1];
    if (scheme && !TOKEN_SCHEMES.has(scheme.toLowerCase())) delete ctx.request.headers.authorization;
    return next();
  });
}
