/**
 * Rate limits on the endpoints programs hammer: token, introspection and revocation (per IP and
 * per client) and dynamic registration (per IP). Counted in the store, so every instance shares
 * them; over the limit: 429 with Retry-After.
 *
 * The per-client count is charged only after the client has authenticated, so nobody can use up
 * another client's allowance by sending its client_id. The refusal happens before the next
 * request is processed when the client is recognisable up front (HTTP Basic, the default
 * method); clients using other methods are bounded per IP and their over-limit requests are
 * answered 429 once counted.
 */
import type { Context, Middleware } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../config.js';
import type { Kv } from '../store/kv.js';
import { rateLimiter } from '../store/rate-limit.js';
import { metrics } from './metrics.js';

// oidc-provider's default routes, which we keep.
const TOKEN_ENDPOINTS = new Set(['/token', '/token/introspection', '/token/revocation']);
const REGISTRATION = '/reg';

type Settings = Config['rateLimit'];

function refuse(ctx: Context, seconds: number, endpoint: string, limit: 'ip' | 'client') {
  metrics.rateLimited.inc({ endpoint, limit });
  ctx.status = 429;
  ctx.set('Retry-After', String(Math.max(1, seconds)));
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error: 'temporarily_unavailable', error_description: `too many requests; retry in ${Math.max(1, seconds)} s` };
}

/** The client_id of an HTTP Basic client (RFC 6749 §2.3.1: form-urlencoded, then base64). */
function basicClientId(ctx: Context): string | undefined {
  const match = /^Basic ([A-Za-z0-9+/]+=*)$/.exec(ctx.get('authorization'));
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** Seconds until `key` may be charged again at `limiter` (limit `points`), or 0. */
async function blockedFor(limiter: RateLimiterAbstract, points: number, key: string): Promise<number> {
  const res = await limiter.get(key);
  return res && res.consumedPoints > points ? Math.ceil(res.msBeforeNext / 1000) : 0;
}

/** For provider.use(): runs around every oidc-provider request. */
export function rateLimits(kv: Kv, settings: Settings): Middleware {
  const limiter = (name: string, points: number) =>
    points > 0 ? rateLimiter(kv, { keyPrefix: `http-${name}`, points, duration: settings.window }) : undefined;
  const perIp = limiter('ip', settings.perIp);
  const perClient = limiter('client', settings.perClient);
  const registrationPerIp = limiter('registration-ip', settings.registrationPerIp);

  /** Charges `key`; returns seconds to wait when that went over the limit, else 0. */
  async function charge(l: RateLimiterAbstract, key: string): Promise<number> {
    const res = await l.penalty(key, 1);
    return res.consumedPoints > l.points ? Math.ceil(res.msBeforeNext / 1000) : 0;
  }

  return async (ctx, next) => {
    const tokenEndpoint = ctx.method === 'POST' && TOKEN_ENDPOINTS.has(ctx.path);
    const registration = ctx.method === 'POST' && ctx.path === REGISTRATION;
    if (!tokenEndpoint && !registration) return next();
    const endpoint = tokenEndpoint ? ctx.path : REGISTRATION;

    const ipLimiter = tokenEndpoint ? perIp : registrationPerIp;
    if (ipLimiter) {
      const wait = await charge(ipLimiter, `${endpoint === REGISTRATION ? 'reg' : 'token'}:${ctx.ip}`);
      if (wait) return refuse(ctx, wait, endpoint, 'ip');
    }
    const announced = tokenEndpoint && perClient ? basicClientId(ctx) : undefined;
    if (announced && perClient) {
      const wait = await blockedFor(perClient, perClient.points, announced);
      if (wait) return refuse(ctx, wait, endpoint, 'client');
    }

    await next();

    // oidc-provider knows the client before checking its credentials: a 401 was not this client.
    const client = ctx.status === 401 ? undefined : (ctx as unknown as KoaContextWithOIDC).oidc?.client;
    if (tokenEndpoint && perClient && client) {
      const wait = await charge(perClient, client.clientId);
      // Over the limit with this request: refuse it unless it was refused anyway.
      if (wait && !announced && ctx.status < 400) refuse(ctx, wait, endpoint, 'client');
    }
  };
}
