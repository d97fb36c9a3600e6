/**
 * RFC 9126 §2.1: a pushed authorization request "MUST NOT" carry `request_uri`, and §2.3 answers
 * a bad push with an error code of RFC 6749 §5.2 or §4.1.2.1. oidc-provider answers it with
 * OpenID Connect's request_uri_not_supported, which says the server has no request_uri at all
 * (it does: the one it hands out here). The push is malformed: invalid_request.
 */
import type { Middleware } from 'koa';
import { jsonError } from '../../http/errors.js';
import { scoped } from '../../http/layers.js';

export function requestUriNotPushed(): Middleware {
  return scoped({ routes: ['pushed_authorization_request'] }, function pushedRequestUri(ctx, next) {
    return next().then(() => {
      const body = ctx.body as { error?: string } | undefined;
      if (ctx.status === 400 && body?.error === 'request_uri_not_supported') {
        jsonError(ctx, 400, 'invalid_request', 'request_uri must not be pushed: a pushed request carries its parameters (RFC 9126 section 2.1)');
      }
    });
  });
}
