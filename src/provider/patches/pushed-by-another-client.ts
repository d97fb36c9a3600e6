/**
 * A `request_uri` pushed by another client is refused before anything of its request is taken.
 *
 * oidc-provider copies the pushed request's `state`, `response_mode` and `response_type` into the
 * request's parameters (lib/actions/authorization/process_request_object.js) before it compares the
 * pushed `client_id` with the client's, so the refusal of client B's `/auth?client_id=B&request_uri=
 * <A's>` was sent to B's redirect URI with A's `state`, which B never sent (RFC 6749 §4.1.2.1: the
 * state of this request; sixth fresh-eyes passes of 2026-12-06). The refusal is the engine's own
 * (`invalid_request_object`, "request client_id must equal the one in request parameters"), now
 * made from B's own parameters. The request_uri is not spent, as before.
 *
 * What it changes in oidc-provider: one step after loadPushedAuthorizationRequest at the
 * authorization endpoint, reading the pushed request the engine just loaded (an unsigned JWT it
 * made itself at the push, its `client_id` the pushing client's).
 */
import { decodeJwt } from 'jose';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import authorizationSteps from 'oidc-provider/lib/actions/authorization/index.js';

type Step = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void> | void;

const ENGINE_STEP = 'loadPushedAuthorizationRequest';

function pushedByThisClient(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  const pushed = (ctx.oidc.entities as { PushedAuthorizationRequest?: { request?: unknown } }).PushedAuthorizationRequest;
  if (pushed && typeof pushed.request === 'string' && decodeJwt(pushed.request).client_id !== ctx.oidc.client?.clientId) {
    throw new errors.InvalidRequestObject('request client_id must equal the one in request parameters');
  }
  return next();
}

// The engine builds each endpoint's steps once; this runs as the module loads, before any provider is made.
const steps = authorizationSteps('authorization') as Step[];
const at = steps.findIndex((step) => step.name === ENGINE_STEP);
if (at < 0) throw new Error(`oidc-provider's authorization steps have no ${ENGINE_STEP}: review src/provider/patches/pushed-by-another-client.ts`);
if (!steps.includes(pushedByThisClient)) steps.splice(at + 1, 0, pushedByThisClient);
