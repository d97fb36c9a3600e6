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
 *
 * The code is redeemed with it too: RFC 6749 §4.1.3 makes redirect_uri REQUIRED at the token
 * endpoint when the authorization request included it (OpenID Connect Core §3.1.3.2: identical),
 * and an OpenID request always does. The engine fills in the single registered URI there as well
 * (authorization_code.js, allowOmittingSingleRegisteredRedirectUri), so such a code was redeemed
 * without it. A code of an OpenID request (openid among its scopes) presented without redirect_uri
 * is invalid_request, before it is spent (token-endpoint-finds.ts). A code of a plain OAuth 2.0
 * request keeps the engine's leave: the code does not record whether that request named the URI.
 */
import { errors, Provider, type KoaContextWithOIDC } from 'oidc-provider';
import authorizationSteps from 'oidc-provider/lib/actions/authorization/index.js';
import { checkAtTokenEndpoint } from './token-endpoint-finds.js';

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

/** The token endpoint: a code of an OpenID request is redeemed with its redirect_uri (see above). */
export function openIdCodesNameRedirectUri(provider: Provider): void {
  checkAtTokenEndpoint([provider.AuthorizationCode], (code) => {
    const body = Provider.ctx?.oidc?.body as Record<string, unknown> | undefined;
    // RFC 6749 §3.1: a parameter sent without a value is as if omitted (the engine reads it so too).
    if (!body?.redirect_uri && code.scope?.split(' ').includes('openid')) {
      throw new errors.InvalidRequest("missing required parameter 'redirect_uri' (RFC 6749 section 4.1.3: the authorization request named it)");
    }
  });
}
