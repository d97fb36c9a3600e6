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
 * endpoint when the authorization request included it (OpenID Connect Core §3.1.3.2: identical).
 * The engine fills in the single registered URI there as well (authorization_code.js,
 * allowOmittingSingleRegisteredRedirectUri), so a code was redeemed without it whatever its request
 * said. Now the request says: a step put before the engine's fill-in, at `/auth` and `/request`,
 * marks a request that left redirect_uri out (REDIRECT_URI_OMITTED, declared in extraParams so that
 * it stays with the request through sign-in, resume and a pushed request's storage; a value the
 * client sent is replaced, and `/auth` with a request_uri keeps what was pushed), and the code
 * made from it records that (`redirectUriOmitted`, one more property of its payload). A code
 * presented without redirect_uri is invalid_request, before it is spent (token-endpoint-finds.ts),
 * unless its request left the URI out: an OpenID request never does (refused above), a plain
 * OAuth 2.0 request may (RFC 6749 §3.1.2.3). Before the red team's protocol pass only a code of an
 * OpenID request was held to it, and a plain OAuth 2.0 request that named its URI was redeemed
 * without it. A code made before this change records nothing and must name its URI.
 */
import { errors, Provider, type KoaContextWithOIDC } from 'oidc-provider';
import authorizationSteps from 'oidc-provider/lib/actions/authorization/index.js';
import { checkAtTokenEndpoint } from './token-endpoint-finds.js';
import { keptInPayload } from './payload-properties.js';

type Step = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void> | void;

const ENGINE_STEP = 'oneRedirectUriClients';

/** The marker of an authorization request that left redirect_uri out (an extraParams name: provider.ts). */
export const REDIRECT_URI_OMITTED = 'latchkey_redirect_uri_omitted';

function openIdNamesRedirectUri(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  const { redirect_uri: redirectUri, scope } = ctx.oidc.params ?? {};
  if (redirectUri === undefined && typeof scope === 'string' && scope.split(' ').includes('openid')) {
    throw new errors.InvalidRequest("missing required parameter 'redirect_uri' (OpenID Connect Core section 3.1.2.1)");
  }
  // A pushed request's parameters (`/auth` with its request_uri) were marked where they were pushed.
  // That holds because the engine stores a push made of parameters as those parameters (this step's
  // marker among them); a pushed request object it would store as the client sent it, marker and
  // all: request objects are off (provider.ts), so `request` is refused (test/e2e/review-session.test.ts).
  if (!('PushedAuthorizationRequest' in ctx.oidc.entities)) {
    (ctx.oidc.params as Record<string, unknown>)[REDIRECT_URI_OMITTED] = redirectUri === undefined ? '1' : undefined;
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

type CodeModel = { prototype: { save(...args: unknown[]): Promise<unknown>; redirectUriOmitted?: boolean } };

/** The token endpoint: a code is redeemed with its redirect_uri unless its request left it out (see above). */
export function codesNameRedirectUri(provider: Provider): void {
  const Code = provider.AuthorizationCode as unknown as CodeModel;
  keptInPayload(Code, 'redirectUriOmitted');
  const save = Code.prototype.save;
  Code.prototype.save = function saveMarked(this: CodeModel['prototype'], ...args: unknown[]) {
    // A code is made at the authorization endpoint or its resume, whose parameters say how it was asked for.
    if (this.redirectUriOmitted === undefined && (Provider.ctx?.oidc?.params as Record<string, unknown> | undefined)?.[REDIRECT_URI_OMITTED] === '1') {
      this.redirectUriOmitted = true;
    }
    return save.apply(this, args);
  };
  checkAtTokenEndpoint([provider.AuthorizationCode], (code) => {
    const body = Provider.ctx?.oidc?.body as Record<string, unknown> | undefined;
    // RFC 6749 §3.1: a parameter sent without a value is as if omitted (the engine reads it so too).
    if (!body?.redirect_uri && (code as { redirectUriOmitted?: boolean }).redirectUriOmitted !== true) {
      throw new errors.InvalidRequest("missing required parameter 'redirect_uri' (RFC 6749 section 4.1.3: the authorization request named it)");
    }
  });
}
