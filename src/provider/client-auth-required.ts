/**
 * RFC 6749 §5.2 lists "no client authentication included" under invalid_client, answered with
 * 401 and a WWW-Authenticate challenge. oidc-provider answers that case with 400 invalid_request;
 * this middleware (installed with provider.use) corrects exactly that answer, on every endpoint
 * that authenticates clients (token, introspection, revocation, pushed authorization requests).
 */
import type { Middleware } from 'koa';

const NO_MECHANISM = 'no client authentication mechanism provided';

export function clientAuthenticationRequired(realm: string): Middleware {
  return async function clientAuthRequired(ctx, next) {
    await next();
    const body = ctx.body as { error?: string; error_description?: string } | undefined;
    if (ctx.status !== 400 || body?.error !== 'invalid_request' || body.error_description !== NO_MECHANISM) return;
    ctx.status = 401;
    ctx.set('WWW-Authenticate', `Basic realm="${realm}"`);
    ctx.body = { error: 'invalid_client', error_description: 'client authentication is required' };
  };
}
