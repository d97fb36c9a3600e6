/**
 * Counters with expiry and blocking, from rate-limiter-flexible: in Redis when the store is Redis
 * (so every instance shares them), in process memory for the embedded store.
 */
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Kv } from './kv.js';
import { RedisKv } from './redis.js';

export interface LimiterOptions {
  /** Distinguishes this limiter's keys from every other's. */
  readonly keyPrefix: string;
  /** Points that may be consumed within `duration`. */
  readonly points: number;
  /** Seconds after the first consumption at which the count resets. */
  readonly duration: number;
}

export function rateLimiter(kv: Kv, options: LimiterOptions): RateLimiterAbstract {
  const keyPrefix = `ratelimit:${options.keyPrefix}`;
  if (kv instanceof RedisKv) return new RateLimiterRedis({ ...options, keyPrefix, storeClient: kv.connection });
  return new RateLimiterMemory({ ...options, keyPrefix });
}
