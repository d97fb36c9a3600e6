/**
 * An authorization request without `scope` (at `/auth`, pushed to `/request`, or a device's at
 * `/device/auth`) is refused at once with `invalid_scope`, as RFC 6749 §3.3 asks of a server with
 * no default scope ("fail the request indicating an invalid scope"; RFC 8628 §3.1 refers to it).
 *
 * oidc-provider accepts such a request, has the person sign in and then answers `access_denied`
 * ("no scope was granted", a detail it does not send): with nothing asked for, nothing can be
 * granted, neither the OpenID scopes nor an API's (which are asked for by name). So the person
 * signed in for nothing, and the app (an OAuth library that leaves `scope` out, as RFC 6749 lets
 * it) got an error that says the person refused. Requests whose scopes were all dropped on the way
 * (offline_access without consent, an API's scope without its resource) are left as they were.
 *
 * A step put before the engine's scope check in the three endpoints' steps. The error is the
 * engine's: at `/auth` it goes back to the client only once the redirect URI has been checked
 * (the engine's error handler checks it), as the engine's own scope errors do.
 */
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { beforeCheckScope } from './before-check-scope.js';

function scopeRequired(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
  // No `scope` member in the answer: there is no scope to name (the engine adds one when it is given).
  if (!ctx.oidc.params?.scope) throw new errors.InvalidScope('a scope is required: openid, or the scopes of an API named with resource', undefined as unknown as string);
  return next();
}

// In the three endpoints' steps, before their scope check (see before-check-scope.ts).
for (const endpoint of ['authorization', 'pushed_authorization_request', 'device_authorization']) beforeCheckScope(endpoint, scopeRequired, 'scope-required.ts');
