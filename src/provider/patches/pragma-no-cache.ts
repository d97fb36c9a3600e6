/**
 * RFC 6749 §5.1: a response carrying tokens, credentials or other sensitive information has
 * `Cache-Control: no-store` "as well as the Pragma response header field with a value of
 * no-cache". oidc-provider sends the first only; HTTP/1.0 caches and the clients that check the
 * letter of §5.1 look for the second. Set on the routes whose answers carry tokens or
 * credentials (their errors too: one header set for the whole route, as Cache-Control is), RFC
 * 7592's client read and update among them.
 */
import type { Middleware } from 'koa';
import { scoped } from '../../http/layers.js';

const ROUTES = ['token', 'device_authorization', 'introspection', 'pushed_authorization_request', 'registration'];

/** `registrationPath`: below it, RFC 7592's read and update answer the client's secret and a registration access token. */
export function pragmaNoCache(registrationPath: string): Middleware {
  // Not an async function: a closure and a `then` cost less than its frame and promises.
  return scoped({ routes: ROUTES, prefixes: [`${registrationPath}/`] }, function pragma(ctx, next) {
    return next().then(() => {
      if (/\bno-store\b/.test(ctx.response.get('cache-control'))) ctx.set('Pragma', 'no-cache');
    });
  });
}
