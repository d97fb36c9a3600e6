/**
 * A token request's code or refresh token is consumed together with the tokens it makes: one
 * Redis round trip instead of one for the consumption and one per new record.
 *
 * What it changes in oidc-provider: on the token endpoint the adapter's consume() returns at once
 * and the records the request saves are held back (store/adapter.ts); this middleware, the
 * innermost around oidc-provider's routes, sends them together once the grant handler has made its
 * answer, and before that answer leaves. When the consumption lost (another request spent the code
 * or token first: a replay, which revokes the grant as before; or the code or token is gone), the
 * answer becomes that invalid_grant and what the request wrote is deleted, so no token it made is
 * ever handed out or left usable. Store failures surface as they would have (503). oidc-provider
 * has emitted grant.success by then; grant.error follows for the same request. The authenticated
 * client's rate-limit charge is made here too (http/rate-limits.ts).
 *
 * A token request that failed on our side (answered 5xx, 503 above all: the client is told to send it
 * again) sends nothing it held back: its code or refresh token stays unspent, and the same request
 * sent again is answered as the first would have been. Before, a signing key revoked through the CLI
 * with its replacing ring not yet written answered 503 after the code or refresh token was spent, and
 * the client's retry was taken for a replay, which revoked the grant (fifth fresh-eyes passes,
 * test/e2e/revoked-key-signing.test.ts).
 *
 * A code or device code exchange refused for what it asks (invalid_target, invalid_scope: its
 * `resource`, found wrong after oidc-provider consumed the code) leaves the code unspent: its held
 * back consumption is dropped, not sent (store/held-writes.ts forgoConsumption; a read in between sends
 * only what the request wrote, never a consumption alone). Before, the refusal spent the code, and
 * the client's corrected request was taken for a replay, which revoked the grant. A code presented
 * again after its exchange is still refused before this (oidc-provider sees it consumed, revokes
 * the grant); a wrong code_verifier, redirect_uri or client is refused by oidc-provider before it
 * consumes anything, as ever. Pinned by test/e2e/granting-attacks.test.ts ("a code or device code
 * exchanged for a resource that is refused is not spent by it").
 *
 * At the authorization endpoint, and where it resumes after a sign-in (a device approval's resume
 * too: the device code and the session), the records the request
 * saves (the code, the session, a grant made from remembered consent, an interaction) are held back
 * the same way and sent together, with the writes of `alongside` (where the session was last seen),
 * before the redirect leaves. When the session had been ended meanwhile (elsewhere, while this
 * request was in flight) its write is refused by the store and the code deleted: the answer is a
 * login_required page instead of the redirect (store/held-writes.ts SessionEnded). A consumption or
 * deletion in between sends what was held back first, and so does a read once the request holds
 * back a write (or the consumption of the record read), so the request still reads its own writes.
 * Pinned by test/unit/provider-patches.test.ts, test/e2e/deferred-consumption.test.ts and
 * test/e2e/authorization-round-trips.test.ts.
 */
import type { Context, Middleware } from 'koa';
import { errors, type KoaContextWithOIDC, type Provider } from 'oidc-provider';
import type { RateLimits } from '../../http/rate-limits.js';
import { respondWithError } from '../../http/errors.js';
import { forgoConsumption, forgoRequest, SessionEnded, settleRequest } from '../../store/held-writes.js';

/** The grants whose code (a record of these models) a refusal of the request's own parameters leaves unspent. */
const CODE_GRANTS = new Set(['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code']);
const CODES: ReadonlySet<string> = new Set(['AuthorizationCode', 'DeviceCode']);
/**
 * Refusals decided from what the request asks (its `resource`, its `scope`), made after oidc-provider
 * consumed the code: the code is not the problem, and the client's corrected request must find it
 * unspent (as a refused refresh does not spend its token: refresh-rotation.ts). A code presented
 * twice (invalid_grant, its grant revoked), a wrong code_verifier or redirect_uri, another client's
 * code, an expired or denied one are refused as before, the code spent where the engine spends it.
 */
const REFUSALS_OF_THE_REQUEST = new Set(['invalid_target', 'invalid_scope']);

/** A code or device code exchange refused for what it asked, not for its code (REFUSALS_OF_THE_REQUEST). */
function refusedForWhatItAsked(ctx: Context): boolean {
  const { oidc } = ctx as unknown as Partial<KoaContextWithOIDC>;
  if (oidc?.route !== 'token' || ctx.status !== 400 || !CODE_GRANTS.has(oidc.params?.grant_type as string)) return false;
  const error = (ctx.body as { error?: unknown } | undefined)?.error;
  return typeof error === 'string' && REFUSALS_OF_THE_REQUEST.has(error);
}

/** What a request writes once its answer is ready, if anything: started when called. */
export type WriteAlongside = (ctx: Context) => Promise<unknown> | undefined;

/**
 * `limits`: the authenticated client is charged as the answer is settled. `alongside`: writes
 * started in the same tick as what the request held back, so that all go in one round trip.
 */
export function settleDeferredConsumption(provider: Provider, limits?: RateLimits, alongside: readonly WriteAlongside[] = []): Middleware {
  /** What the request's settling failed with: invalid_grant, or login_required for a session ended meanwhile, is its answer; anything else goes on. */
  const failed = (ctx: Context, error: unknown) => {
    if (error instanceof SessionEnded) {
      // Its code was deleted: the redirect carrying it does not leave; the person signs in again.
      ctx.remove('Location');
      return respondWithError(ctx, 401, { error: 'login_required', error_description: 'your session ended while this request was answered: sign in again' });
    }
    if (!(error instanceof errors.InvalidGrant)) {
      // A redirect made before its writes failed (an authorization's code): it does not leave with the error.
      ctx.remove('Location');
      throw error;
    }
    provider.emit('grant.error', ctx as unknown as KoaContextWithOIDC, error);
    ctx.status = error.statusCode;
    ctx.body = { error: error.error, error_description: error.error_description };
  };
  const settle = (ctx: Context) => {
    let pending: Promise<unknown> | undefined;
    try {
      limits?.chargeAuthenticatedClient(ctx);
      // A token request answered 5xx (a 503 asks the client to send it again) spends nothing.
      if (ctx.status >= 500 && (ctx as unknown as Partial<KoaContextWithOIDC>).oidc?.route === 'token') return void forgoRequest(ctx);
      if (refusedForWhatItAsked(ctx)) forgoConsumption(ctx, CODES);
      // Most requests have one of these or none: waited for as they are, not through a Promise.all.
      pending = settleRequest(ctx);
      for (const write of alongside) {
        const started = write(ctx);
        if (started) pending = pending ? Promise.all([pending, started]) : started;
      }
    } catch (error) {
      return failed(ctx, error);
    }
    return pending?.catch((error: unknown) => failed(ctx, error));
  };
  // Not an async function, on every request the engine serves: a closure and a `then` cost less
  // than an async function's frame and promises, and a request with nothing to settle makes no more.
  return function deferredConsumption(ctx, next) {
    return next().then(() => settle(ctx));
  };
}
