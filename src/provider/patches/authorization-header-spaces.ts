/**
 * An Authorization header may separate its scheme from its credentials by more than one space:
 * `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]` (RFC 9110 §11.4; RFC 6750 §2.1
 * spells the Bearer form `"Bearer" 1*SP b64token`). oidc-provider splits the value on single
 * spaces and refuses anything but two parts as "invalid authorization header value format". This
 * layer folds the spaces after the scheme into one before the engine reads the header, on the
 * routes where it reads one (client authentication, userinfo, registration, and RFC 7592's client
 * read, update and delete below the registration path).
 */
import type { Middleware } from 'koa';
import { scoped } from '../../http/layers.js';

const ROUTES = ['token', 'introspection', 'revocation', 'pushed_authorization_request', 'device_authorization', 'userinfo', 'registration'];
/** A scheme (an RFC 9110 token), two or more spaces, then a single credential without spaces. */
const SPACED = /^([!#$%&'*+.^_`|~\w-]+) {2,}(\S+)$/;

export function foldAuthorizationSpaces(registrationPath: string): Middleware {
  return scoped({ routes: ROUTES, prefixes: [`${registrationPath}/`] }, function authorizationSpaces(ctx, next) {
    const value = ctx.request.headers.authorization;
    if (value?.includes('  ')) {
      const spaced = SPACED.exec(value);
      if (spaced) ctx.request.headers.authorization = `${spaced[1]} ${spaced[2]}`;
    }
    return next();
  });
}
