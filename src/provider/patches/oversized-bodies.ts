/**
 * A request body larger than the engine reads is answered 413 Content Too Large (RFC 9110
 * §15.5.14), not 400. RFC 9126 §2.3 names it for pushed authorization requests in so many words
 * ("If the request size was beyond the upper bound that the authorization server allows, the
 * authorization server responds with an HTTP 413 (Payload Too Large) status code"); the token,
 * introspection, revocation, userinfo, registration (RFC 7591/7592) and device authorization
 * endpoints read their bodies the same way.
 *
 * oidc-provider reads every form or JSON body through shared/selective_body.js, at most 56 KiB
 * (form-bodies.ts's FORM_BODY_LIMIT, the same limit, for the four endpoints it reads), and answers a
 * larger one `400 invalid_request` "failed to parse the request body", as if it were malformed.
 * What changes: a POST or PUT to one of those endpoints whose Content-Length is over the limit is
 * answered `413 invalid_request` before the engine, and the body is left unread (Node's server
 * discards it, as after the engine's refusal); form-bodies.ts answers 413 too when a body sent
 * without Content-Length (chunked) grows past the limit at the four endpoints it reads; at the
 * others, which the engine reads itself, chunkedBodiesTooLarge turns the engine's refusal of such a
 * body into the same 413 as its error event goes out. A body in a content coding is refused there
 * too, 415 (refusedCoding). Pinned by test/unit/provider-patches.test.ts
 * (the engine's limit, its refusal of a body over it, and the error events that carry it).
 */
import type { EventEmitter } from 'node:events';
import type { Context, Middleware } from 'koa';
import type { Provider } from 'oidc-provider';
import { respondWithError } from '../../http/errors.js';
import { scoped } from '../../http/layers.js';
import { BODY_TOO_LARGE, FORM_BODY_LIMIT } from './form-bodies.js';

/** The engine's routes that read a request body (its selective_body.js urlencoded or json step). */
const READING_ROUTES = [
  'token',
  'introspection',
  'revocation',
  'userinfo',
  'pushed_authorization_request',
  'registration',
  'device_authorization',
  'code_verification',
  'end_session_confirm',
];

/**
 * True (and 415 answered) for a POST or PUT whose body comes in a content coding (RFC 9110 §8.4:
 * gzip, deflate, br…): the engine reads a body's bytes as they come, so a compressed body was
 * refused as if it lacked its parameters ("missing required parameter 'grant_type'"), and one only
 * labelled so was read as plain. RFC 9110 §15.5.16: 415, with `Accept-Encoding` saying what is read
 * (§12.5.3). Also for the forms posted to the authorization and end-session endpoints (post-methods.ts).
 */
export function refusedCoding(ctx: Context): boolean {
  const coding = ctx.method === 'POST' || ctx.method === 'PUT' ? ctx.get('content-encoding').trim().toLowerCase() : '';
  if (coding === '' || coding === 'identity') return false;
  respondWithError(ctx, 415, { error: 'invalid_request', error_description: 'this endpoint reads a body as it is sent, without a Content-Encoding' });
  ctx.set('Accept-Encoding', 'identity');
  return true;
}

/** In front of the engine's router; `registrationPath` for RFC 7592's PUT to <registration>/<client_id>. */
export function oversizedBodies(registrationPath: string): Middleware {
  // Not an async function: most requests go straight on.
  return scoped({ routes: READING_ROUTES, prefixes: [`${registrationPath}/`] }, function oversized(ctx, next) {
    if (refusedCoding(ctx)) return Promise.resolve();
    const length = ctx.method === 'POST' || ctx.method === 'PUT' ? ctx.request.length : undefined;
    if (length === undefined || length <= FORM_BODY_LIMIT) return next();
    respondWithError(ctx, 413, { error: 'invalid_request', error_description: BODY_TOO_LARGE });
    return Promise.resolve();
  });
}

/** The error events of the engine's routes that read a body themselves (not through form-bodies.ts). */
export const ENGINE_READ_ERRORS = [
  'pushed_authorization_request.error',
  'registration_create.error',
  'registration_update.error',
  'device_authorization.error',
  'code_verification.error',
  'end_session_confirm.error',
];

/** What the engine's body reader throws, as the cause of its InvalidRequest, for a body over its limit. */
const ENGINE_TOO_LARGE = 'request entity too large';

/**
 * A chunked body (no Content-Length to refuse it by in front) that grows past the limit at an
 * endpoint the engine reads itself: 413, as a declared one. The engine's error handler has set its
 * 400 and its answer when it emits the route's error event, synchronously, before the response
 * goes out; first among the listeners, so that the request log sees the 413.
 */
export function chunkedBodiesTooLarge(provider: Provider): void {
  const listener = (ctx: Context, error: { cause?: unknown }) => {
    if (!(error?.cause instanceof Error) || error.cause.message !== ENGINE_TOO_LARGE) return;
    ctx.status = 413;
    // A JSON answer is the engine's error object, its own; an HTML one (the device and sign-out forms) keeps its page.
    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    if (body && typeof body === 'object' && body.error === 'invalid_request') body.error_description = BODY_TOO_LARGE;
  };
  // The engine's typings list its events by name; these are of its routes' error handlers (initialize_app.js).
  for (const event of ENGINE_READ_ERRORS) (provider as unknown as EventEmitter).prependListener(event, listener);
}
