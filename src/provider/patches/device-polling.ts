/**
 * Polling of the device authorization grant (RFC 8628 §3.2, §3.5), which oidc-provider leaves to us:
 * it neither tells a device its `interval` nor ever answers `slow_down`.
 *
 * What it changes in oidc-provider:
 * - the device authorization response gains `interval` (deviceFlow.pollInterval), after the
 *   engine built it;
 * - provider.DeviceCode.find is wrapped: on the token endpoint, once the engine has found the code
 *   and authenticated the client it belongs to, a poll of a code still pending that comes sooner
 *   than the interval after the previous one is answered `slow_down`, and that code's interval
 *   grows by 5 seconds for every later poll (§3.5), those after a poll in time too. The pace is
 *   kept in the store, so every instance and worker sees it; a code already approved, denied or
 *   expired is answered at once.
 * Pinned by test/unit/provider-patches.test.ts and test/conformance/device-authorization.test.ts.
 */
import { createHash } from 'node:crypto';
import type { Context, Middleware, Next } from 'koa';
import { errors, Provider, type KoaContextWithOIDC } from 'oidc-provider';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Kv } from '../../store/kv.js';
import { DEVICE_POLL_LIMITER, DEVICE_SLOW_DOWN_LIMITER } from '../../store/keys.js';
import { scoped } from '../../http/layers.js';
import { rateLimiter } from '../../store/rate-limit.js';

/** RFC 8628 §3.5: what each slow_down adds to the interval, in seconds. */
const SLOW_DOWN_STEP = 5;

interface PendingCode {
  readonly jti: string;
  readonly clientId: string;
  readonly isExpired: boolean;
  readonly accountId?: string;
  readonly error?: string;
}

export class DevicePolling {
  /** One point per code for an interval (longer after slow_down): a second poll within it is too soon. */
  readonly #polls: RateLimiterAbstract;
  /** How many times each code was told to slow down (while it lives). */
  readonly #slowDowns: RateLimiterAbstract;

  constructor(
    kv: Kv,
    readonly interval: number,
    codeLifetime: number,
  ) {
    this.#polls = rateLimiter(kv, { keyPrefix: DEVICE_POLL_LIMITER, points: 1, duration: interval });
    this.#slowDowns = rateLimiter(kv, { keyPrefix: DEVICE_SLOW_DOWN_LIMITER, points: Number.MAX_SAFE_INTEGER, duration: codeLifetime });
  }

  /**
   * Records a poll of the code `id`; true when it came too soon. Then the code's interval grows by
   * 5 seconds, and the device must wait that long from now: each poll that comes too soon again
   * pushes it further. A poll in time opens a window as long as the code's interval is now, grown
   * by every slow_down so far: §3.5's increase is "for this and all subsequent requests", so a
   * device that went back to the first interval after waiting out one slow_down is slowed again.
   */
  async tooSoon(id: string): Promise<boolean> {
    // The code's id is its value, a credential until redeemed: counters are keyed by its hash.
    const key = createHash('sha256').update(id).digest('base64url');
    // Keyed to the code's first poll in an interval: a device waits that long after our answer, so
    // its next poll always finds the key gone. Its slow_downs are read alongside.
    const [polled, slowed] = await Promise.all([this.#polls.penalty(key, 1), this.#slowDowns.get(key)]);
    if (polled.consumedPoints <= 1) {
      const slowDowns = slowed?.consumedPoints ?? 0;
      if (slowDowns > 0) await this.#polls.block(key, this.interval + SLOW_DOWN_STEP * slowDowns);
      return false;
    }
    const slowDowns = await this.#slowDowns.penalty(key, 1);
    await this.#polls.block(key, this.interval + SLOW_DOWN_STEP * slowDowns.consumedPoints);
    return true;
  }
}

/** Patches the engine, and returns the middleware for the provider's layers (provider/layers.ts). */
export function pacedDevicePolling(provider: Provider, polling: DevicePolling): Middleware {
  const devicePolling = scoped({ routes: ['device_authorization'] }, async (ctx: Context, next: Next) => {
    await next();
    const body = ctx.body as Record<string, unknown> | undefined;
    if ((ctx as unknown as KoaContextWithOIDC).oidc?.route === 'device_authorization' && ctx.status === 200 && typeof body?.device_code === 'string') {
      ctx.body = { ...body, interval: polling.interval };
    }
  });

  const DeviceCode = provider.DeviceCode as unknown as { find(id: string, ...rest: unknown[]): Promise<PendingCode | undefined> };
  const find = DeviceCode.find.bind(DeviceCode);
  DeviceCode.find = async (id: string, ...rest: unknown[]) => {
    const code = await find(id, ...rest);
    const ctx = Provider.ctx;
    const pending = code && !code.isExpired && !code.accountId && !code.error;
    if (pending && ctx?.oidc?.route === 'token' && ctx.oidc.client?.clientId === code.clientId && (await polling.tooSoon(code.jti))) {
      throw new errors.SlowDown();
    }
    return code;
  };
  return devicePolling;
}
