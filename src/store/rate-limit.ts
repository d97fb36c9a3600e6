/**
 * Rate-limit counters.
 *
 * fixedWindows: the HTTP rate limits' counters, every counter of one request in one round trip (a
 * Lua script on Redis, where counting and expiry are atomic per key; in process memory for the
 * embedded store). rateLimiter: rate-limiter-flexible's limiters (blocking, penalties), for the
 * sign-in throttle and the device flow's limits: in Redis when the store is Redis (so every
 * instance shares them), in process memory for the embedded store.
 */
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { Cluster, type Redis } from 'ioredis';
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

/** One counter of a fixed-window count: `limiter` names the counter family (e.g. `http-ip`). */
export interface WindowHit {
  readonly limiter: string;
  readonly key: string;
  /** Added to the counter; 0 reads it without charging. */
  readonly by: number;
  /** Seconds a window lasts, from the first charge of the counter. */
  readonly window: number;
}

export interface WindowCount {
  /** The counter after the hit (0 when it has no window running). */
  readonly count: number;
  /** Milliseconds until its window ends (0 when it has none). */
  readonly ms: number;
}

export interface FixedWindows {
  /** Applies every hit, in one round trip where the store allows; a count per hit, in order. */
  hit(hits: readonly WindowHit[]): Promise<WindowCount[]>;
}

// KEYS: the counters. ARGV: per key, the increment (0: read only) and the window in ms. Returns
// per key the count and the ms left. A new counter gets its window; a counter never lives without one.
const HIT_WINDOWS = `local out = {}
for i = 1, #KEYS do
  local by = tonumber(ARGV[2 * i - 1])
  local count, ms
  if by > 0 then
    count = redis.call('INCRBY', KEYS[i], by)
    ms = redis.call('PTTL', KEYS[i])
    if ms < 0 then
      ms = tonumber(ARGV[2 * i])
      redis.call('PEXPIRE', KEYS[i], ms)
    end
  else
    count = tonumber(redis.call('GET', KEYS[i]) or '0')
    ms = count > 0 and redis.call('PTTL', KEYS[i]) or 0
  end
  out[2 * i - 1] = count
  out[2 * i] = ms
end
return out`;

type HitCommands = {
  latchkeyHitWindows(numberOfKeys: number, ...args: (string | number)[]): Promise<number[]>;
  /** The same script on one key: its declared key is what ioredis routes by on Cluster. */
  latchkeyHitWindow(key: string, by: number, windowMs: number): Promise<number[]>;
};

/** Same key names as rate-limiter-flexible's (`ratelimit:<limiter>:<key>`), so the counts carry over. */
const keyOf = (hit: WindowHit) => `ratelimit:${hit.limiter}:${hit.key}`;
const countOf = (reply: number[], i: number): WindowCount => ({ count: Number(reply[2 * i]), ms: Math.max(0, Number(reply[2 * i + 1])) });

function redisWindows(connection: Redis | Cluster): FixedWindows {
  const client = connection as (Redis | Cluster) & HitCommands;
  if (!('latchkeyHitWindows' in client)) {
    connection.defineCommand('latchkeyHitWindows', { lua: HIT_WINDOWS });
    connection.defineCommand('latchkeyHitWindow', { lua: HIT_WINDOWS, numberOfKeys: 1 });
  }
  return {
    async hit(hits) {
      if (hits.length === 0) return [];
      // On Cluster the counters live on different slots: one script per counter, sent together
      // (auto-pipelined per node).
      if (connection instanceof Cluster || hits.length === 1) {
        const replies = await Promise.all(hits.map((hit) => client.latchkeyHitWindow(keyOf(hit), hit.by, hit.window * 1000)));
        return replies.map((reply) => countOf(reply, 0));
      }
      const args: (string | number)[] = [];
      for (const hit of hits) args.push(hit.by, hit.window * 1000);
      const reply = await client.latchkeyHitWindows(hits.length, ...hits.map(keyOf), ...args);
      return hits.map((_, i) => countOf(reply, i));
    },
  };
}

/** In this process's memory: for the embedded store, and for counters that must never wait for Redis. */
export function memoryWindows(): FixedWindows {
  const counters = new Map<string, { count: number; ends: number }>();
  let nextSweep = 0;
  return {
    async hit(hits) {
      const now = Date.now();
      if (now >= nextSweep) {
        // Ended windows are dropped at most once a second, so memory stays bounded by the live ones.
        for (const [key, counter] of counters) if (counter.ends <= now) counters.delete(key);
        nextSweep = now + 1000;
      }
      return hits.map((hit) => {
        const key = keyOf(hit);
        let counter = counters.get(key);
        if (counter && counter.ends <= now) counter = undefined;
        if (hit.by <= 0) return counter ? { count: counter.count, ms: counter.ends - now } : { count: 0, ms: 0 };
        if (!counter) counters.set(key, (counter = { count: 0, ends: now + hit.window * 1000 }));
        counter.count += hit.by;
        return { count: counter.count, ms: counter.ends - now };
      });
    },
  };
}

/** The store's fixed-window counters: in Redis for the Redis store, else in process memory. */
export function fixedWindows(kv: Kv): FixedWindows {
  return kv instanceof RedisKv ? redisWindows(kv.connection) : memoryWindows();
}
