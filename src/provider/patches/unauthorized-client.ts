/**
 * A client using a grant type or response type it is not registered for is `unauthorized_client`
 * (RFC 6749 §5.2 at the token endpoint, §4.1.2.1 and §4.2.2.1 at the authorization endpoint; RFC
 * 8628 §3.1 takes §5.2's codes for the device authorization endpoint). oidc-provider answers these
 * with invalid_request ("requested grant type is not allowed for this client", "… is not allowed
 * for this client", "requested response_type is not allowed for this client"). A response type
 * the server does not support at all stays unsupported_response_type, as oidc-provider says.
 *
 * - Token and device authorization endpoints (JSON answers): a provider middleware rewrites exactly
 *   those answers after the engine, as client-auth-required.ts does.
 * - Authorization endpoint: its error goes back to the client's redirect_uri (or our error page)
 *   in whatever response mode was asked, so it is corrected where it is thrown: the only caller of
 *   Client#responseTypeAllowed is that check (actions/authorization/response_parameters.js), and
 *   the wrapped method throws UnauthorizedClient instead of returning false, which the engine's
 *   authorization error handler then answers like any other error.
 */
import type { Context, Middleware } from 'koa';
import { errors, type Provider } from 'oidc-provider';
import { scoped } from '../../http/layers.js';

const GRANT_NOT_ALLOWED = /^(requested grant type|urn:\S+) is not allowed for this client$/;
const JSON_ROUTES = new Set(['token', 'device_authorization', 'backchannel_authentication']);

export function unauthorizedClientAnswers(provider: Provider): Middleware {
  const prototype = provider.Client.prototype as unknown as { responseTypeAllowed(type: string): boolean };
  const responseTypeAllowed = prototype.responseTypeAllowed;
  prototype.responseTypeAllowed = function allowedOrRefused(this: unknown, type: string) {
    if (responseTypeAllowed.call(this, type)) return true;
    throw new errors.UnauthorizedClient('requested response_type is not allowed for this client');
  };
  // Not an async function: a closure and a `then` cost less than its frame and promises.
  return scoped({ routes: [...JSON_ROUTES] }, function unauthorizedClient(ctx, next) {
    return next().then(() => corrected(ctx));
  });
}

function corrected(ctx: Context): void {
  const body = ctx.body as { error?: string; error_description?: string } | undefined;
  const route = (ctx as { oidc?: { route?: string } }).oidc?.route;
  if (ctx.status !== 400 || !route || !JSON_ROUTES.has(route) || body?.error !== 'invalid_request') return;
  if (body.error_description && GRANT_NOT_ALLOWED.test(body.error_description)) body.error = 'unauthorized_client';
}
