/**
 * A request object Latchkey refuses is answered the way its client asked: OpenID Connect Core §6.1
 * lets a client put every parameter in the object, and the OpenID Foundation's suite does (its
 * request-object modules repeat only response_type, client_id, scope and redirect_uri beside it,
 * AbstractBuildRequestObjectRedirectToAuthorizationEndpoint), so `response_mode` and `state` may be
 * in the object alone. Request objects are off (provider.ts), and the engine refuses one
 * (request_not_supported, its step rejectUnsupported) before reading it: the error went to the
 * redirect URI in the query whatever the object asked, so a client that asked form_post (the Form
 * Post plan's oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported) had its
 * error where it never looks (the suite fails it: CheckCallbackHttpMethodIsPost, RejectErrorInUrlQuery),
 * and got no state to tell which request it was.
 *
 * RFC 9101 §5 goes further: only `client_id` and `request` beside the object (openid-client 6's
 * buildAuthorizationUrlWithJAR sends just that), so the redirect URI too may be in the object alone,
 * and such a refusal was the "Invalid sign-in request" page, the app never told.
 *
 * A step put just before rejectUnsupported at `/auth` reads, from a `request` that is a compact JWS
 * or unsecured JWT, the payload's `response_mode`, `state` and `redirect_uri` when they are strings
 * and the request has none of its own, into the parameters the engine's error handler answers with.
 * Nothing is verified, and nothing needs to be: they only say how, where and with what an error is
 * delivered, and anyone who can send the request can put them beside the object as well; the error
 * handler still delivers only to a redirect URI registered for the client (another gets the error
 * page, as beside the object), only in a response mode the
 * server offers (another falls back to the default, as it does beside the object), and a request
 * carrying `request` never gets past rejectUnsupported, so no answer but this error is changed. A
 * `request_uri` (by reference) is not fetched for this, so its error stays in the query
 * (docs/protocol.md).
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import authorizationSteps from 'oidc-provider/lib/actions/authorization/index.js';

type Step = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void> | void;

const ENGINE_STEP = 'rejectUnsupported';
/** The members of a refused object the error is delivered with. */
const DELIVERY = ['response_mode', 'state', 'redirect_uri'] as const;

/** The payload of a compact JWS or unsecured JWT, undefined for anything else (a JWE, not JSON, not an object). */
export function unverifiedPayload(jwt: string): Record<string, unknown> | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3 || !/^[\w-]+$/.test(parts[1]!)) return undefined;
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    return payload && typeof payload === 'object' && !Array.isArray(payload) ? (payload as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function deliverAsTheObjectAsks(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  const params = ctx.oidc.params as Record<string, unknown> | undefined;
  if (params && typeof params.request === 'string') {
    const payload = unverifiedPayload(params.request);
    for (const name of DELIVERY) {
      if (params[name] === undefined && typeof payload?.[name] === 'string' && payload[name]) params[name] = payload[name];
    }
  }
  return next();
}

// The engine builds each endpoint's steps once; this runs as the module loads, before any provider is made.
const steps = authorizationSteps('authorization') as Step[];
const at = steps.findIndex((step) => step.name === ENGINE_STEP);
if (at < 0) throw new Error(`oidc-provider's authorization steps have no ${ENGINE_STEP}: review src/provider/patches/refused-request-objects.ts`);
if (!steps.includes(deliverAsTheObjectAsks)) steps.splice(at, 0, deliverAsTheObjectAsks);
