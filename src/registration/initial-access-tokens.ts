/**
 * An initial access token registers one client (`latchkey registration token create`, README):
 * an operator who hands one to a developer hands out one registration, not as many as fit in its
 * lifetime. oidc-provider accepts an initial access token for every registration until it
 * expires, so this middleware (installed with provider.use) spends it on the first successful one.
 *
 * The token is claimed in the store before the registration runs (set-if-absent, so of concurrent
 * registrations with one token exactly one proceeds), deleted once the registration succeeded, and
 * released if it failed: a developer whose metadata was refused may correct it and try again.
 */
import { createHash } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Provider } from 'oidc-provider';
import { bearerToken } from '../http/bearer.js';
import { jsonError } from '../http/errors.js';
import type { Kv } from '../store/kv.js';
import { scoped } from '../http/layers.js';

/** Seconds a claim outlives a registration that never finished (a crash mid-request). */
const CLAIM_TTL = 60;

export function singleUseInitialAccessTokens(provider: Provider, kv: Kv, realm: string): Middleware {
  const path = provider.pathFor('registration');
  return scoped({ paths: [path] }, async function initialAccessTokens(ctx, next) {
    if (ctx.method !== 'POST' || ctx.path !== path) return next();
    const token = bearerToken(ctx);
    if (!token) return next(); // oidc-provider answers the missing token
    const claim = `registration:initial-access-token:${createHash('sha256').update(token).digest('base64url')}`;
    if (!(await kv.set(claim, String(Date.now()), { ttl: CLAIM_TTL, onlyIfAbsent: true }))) {
      ctx.set('Cache-Control', 'no-store');
      ctx.set('WWW-Authenticate', `Bearer realm="${realm}", error="invalid_token", error_description="initial access token already used"`);
      return jsonError(ctx, 401, 'invalid_token', 'this initial access token has already been used');
    }
    let registered = false;
    try {
      await next();
      registered = ctx.status === 201;
      if (registered) await (await provider.InitialAccessToken.find(token))?.destroy();
    } finally {
      if (!registered) await kv.del([claim]);
    }
  });
}
