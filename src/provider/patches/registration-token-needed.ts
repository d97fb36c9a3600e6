/**
 * RFC 7591 registration on a server whose registration is not open (registration.open: false, the
 * default) without an initial access token: the engine's `401 invalid_token` said "no access token
 * provided", which tells a developer neither what token nor where one comes from. The description
 * now says both: an initial access token as a Bearer token, made by an operator with `latchkey
 * registration token create`, or the developer page. The status, the error code and the challenge
 * (no error code, as RFC 6750 §3.1 asks of a request without a token) stay the engine's.
 */
import type { Middleware } from 'koa';
import { scoped } from '../../http/layers.js';

/** The engine's description of a registration without a token. */
const ENGINE_DESCRIPTION = 'no access token provided';

export function registrationTokenNeeded(issuer: string): Middleware {
  const description = `registration needs an initial access token, sent as Authorization: Bearer <token>: an operator makes one with latchkey registration token create (or register the app at ${issuer}/developer)`;
  return scoped({ routes: ['registration'] }, async function registrationWithoutToken(ctx, next) {
    await next();
    const body = ctx.body as { error?: unknown; error_description?: unknown } | undefined;
    if (ctx.status === 401 && body?.error === 'invalid_token' && body.error_description === ENGINE_DESCRIPTION) ctx.body = { ...body, error_description: description };
  });
}
