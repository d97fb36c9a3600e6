/**
 * Counters with expiry and blocking, from rate-limiter-flexible: in Redis when the store is Redis
 * (so every instance shares them), in process memory for the embedded store.
 */
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Cluster, Redis } from 'ioredis';
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

/**
 * What `key` has consumed of `limiter` and how long until that resets, without charging: like
 * the limiter's own get(), but as two plain commands on Redis instead of a MULTI transaction, so
 * that ioredis pipelines them with whatever else the request sends in the same tick.
 */
export async function peek(limiter: RateLimiterAbstract, key: string): Promise<{ consumedPoints: number; msBeforeNext: number } | undefined> {
  if (!(limiter instanceof RateLimiterRedis)) {
    const res = await limiter.get(key);
    return res ? { consumedPoints: res.consumedPoints, msBeforeNext: res.msBeforeNext } : undefined;
  }
  const client = (limiter as unknown as { client: Redis | Cluster }).client;
  const stored = limiter.getKey(key);
  const [consumed, pttl] = await Promise.all([client.get(stored), client.pttl(stored)]);
  if (consumed === null) return undefined;
  return { consumedPoints: Number(consumed), msBeforeNext: pttl < 0 ? -1 : pttl };
}
