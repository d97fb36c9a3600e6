/**
 * An OpenID Connect authentication request names its redirect_uri: OpenID Connect Core §3.1.2.1
 * makes it REQUIRED (the OpenID Foundation's oidcc-ensure-redirect-uri-in-authorization-request
 * checks it), where RFC 6749 §3.1.2.3 lets a client with a single registered URI leave it out.
 *
 * oidc-provider fills in the single registered URI for every request (its step
 * oneRedirectUriClients, allowOmittingSingleRegisteredRedirectUri). A step put just before it, at
 * `/auth` and `/request`, refuses a request whose scope has `openid` and no redirect_uri with
 * invalid_request; plain OAuth 2.0 requests keep RFC 6749's leave. The engine's error handler then
 * sends the error to that one registered URI, with state and iss, as for any other invalid request.
 */
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import authorizationSteps from 'oidc-provider/lib/actions/authorization/index.js';

type Step = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void> | void;

const ENGINE_STEP = 'oneRedirectUriClients';

function openIdNamesRedirectUri(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  const { redirect_uri: redirectUri, scope } = ctx.oidc.params ?? {};
  if (redirectUri === undefined && typeof scope === 'string' && scope.split(' ').includes('openid')) {
    throw new errors.InvalidRequest("missing required parameter 'redirect_uri' (OpenID Connect Core section 3.1.2.1)");
  }
  return next();
}

// The engine builds each endpoint's steps once; this runs as the module loads, before any provider is made.
for (const endpoint of ['authorization', 'pushed_authorization_request']) {
  const steps = authorizationSteps(endpoint) as Step[];
  const at = steps.findIndex((step) => step.name === ENGINE_STEP);
  if (at < 0) throw new Error(`oidc-provider's ${endpoint} steps have no ${ENGINE_STEP}: review src/provider/patches/openid-redirect-uri.ts`);
  if (!steps.includes(openIdNamesRedirectUri)) steps.splice(at, 0, openIdNamesRedirectUri);
}
