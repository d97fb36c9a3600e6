/**
 * Rate-limit counters.
 *
 * fixedWindows: the HTTP rate limits' counters, every counter of one request in one round trip (a
 * Lua script on Redis, where counting and expiry are atomic per key; in process memory for the
 * embedded store). On Redis, a counter's charge can reserve a lease of allowance that this process
 * then spends without a round trip (see leasedWindows). rateLimiter: rate-limiter-flexible's limiters (blocking, penalties), for the
 * sign-in throttle and the device flow's limits: in Redis when the store is Redis (so every
 * instance shares them), in process memory for the embedded store.
 */
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import { Cluster, type Redis } from 'ioredis';
import type { Kv } from './kv.js';
import { rateLimitKey, rateLimitPrefix } from './keys.js';
import { RedisKv } from './redis.js';
import { defineScript } from './scripts.js';

export interface LimiterOptions {
  /** Distinguishes this limiter's keys from every other's. */
  readonly keyPrefix: string;
  /** Points that may be consumed within `duration`. */
  readonly points: number;
  /** Seconds after the first consumption at which the count resets. */
  readonly duration: number;
}

export function rateLimiter(kv: Kv, options: LimiterOptions): RateLimiterAbstract {
  const keyPrefix = rateLimitPrefix(options.keyPrefix);
  if (kv instanceof RedisKv) return new RateLimiterRedis({ ...options, keyPrefix, storeClient: kv.connection });
  return new RateLimiterMemory({ ...options, keyPrefix });
}

/** A counter of a rateLimiter() to read: the limiter, its keyPrefix (as given to rateLimiter) and the key. */
export interface LimiterRead {
  readonly limiter: RateLimiterAbstract;
  readonly keyPrefix: string;
  readonly key: string;
}

/**
 * Reads counters of rateLimiter()s without charging them: per counter its count (consumed points,
 * 0 when it has none) and the milliseconds until it resets (0 when none). On Redis every counter
 * in one round trip (the fixed windows' script, which reads the same keys rate-limiter-flexible
 * writes: a count and its expiry), where each limiter's own get() is a MULTI of its own; in
 * process memory, the limiters' own reads.
 */
export function limiterReader(kv: Kv): (reads: readonly LimiterRead[]) => Promise<WindowCount[]> {
  if (kv instanceof RedisKv) {
    const windows = redisWindows(kv.connection);
    // A read (by 0) uses no window; the script wants one.
    return (reads) => windows.hit(reads.map(({ keyPrefix, key }) => ({ limiter: keyPrefix, key, by: 0, window: 1 })));
  }
  return (reads) =>
    Promise.all(
      reads.map(async ({ limiter, key }) => {
        const res = await limiter.get(key);
        return res ? { count: res.consumedPoints, ms: Math.max(0, res.msBeforeNext) } : { count: 0, ms: 0 };
      }),
    );
}

/**
 * Charges counters of rateLimiter()s by one each, and answers their counts after it (with the
 * milliseconds until each resets): a try reserved before it is checked, so that tries made at once
 * cannot all pass a read of the count taken before any of them was counted. On Redis every counter
 * in one round trip (the fixed windows' script: INCRBY, keeping the key's expiry, or giving a new
 * one `window` seconds); in process memory, the limiters' own penalty().
 */
export function limiterCharger(kv: Kv): (charges: readonly (LimiterRead & { readonly window: number })[]) => Promise<WindowCount[]> {
  if (kv instanceof RedisKv) {
    const windows = redisWindows(kv.connection);
    return (charges) => windows.hit(charges.map(({ keyPrefix, key, window }) => ({ limiter: keyPrefix, key, by: 1, window })));
  }
  return (charges) =>
    Promise.all(
      charges.map(async ({ limiter, key }) => {
        const res = await limiter.penalty(key, 1);
        return { count: res.consumedPoints, ms: Math.max(0, res.msBeforeNext) };
      }),
    );
}

/**
 * Gives back one try to each counter of rateLimiter()s (rate-limiter-flexible's reward(key, 1)): on
 * Redis as the store's script, sent with the request's other store commands (store/turn-commands.ts)
 * where the limiter's own reward went in a write of its own; in process memory, the limiters' own.
 */
export function limiterGiver(kv: Kv): (gives: readonly (LimiterRead & { readonly window: number })[]) => Promise<void> {
  if (kv instanceof RedisKv) {
    const windows = redisWindows(kv.connection);
    return async (gives) => {
      await windows.hit(gives.map(({ keyPrefix, key, window }) => ({ limiter: keyPrefix, key, by: -1, window })));
    };
  }
  // Nothing is given back to a counter whose window ended meanwhile, or that holds nothing (as on Redis).
  return async (gives) => {
    await Promise.all(gives.map(async ({ limiter, key }) => ((await limiter.get(key))?.consumedPoints ?? 0) > 0 && limiter.reward(key, 1)));
  };
}

/** Clears a counter of a rateLimiter() (its delete(key)): on Redis through the store, as limiterGiver. */
export function limiterClearer(kv: Kv): (counter: LimiterRead) => Promise<void> {
  if (kv instanceof RedisKv) return ({ keyPrefix, key }) => kv.del([rateLimitKey(keyPrefix, key)]);
  return async ({ limiter, key }) => {
    await limiter.delete(key);
  };
}

/** One counter of a fixed-window count: `limiter` names the counter family (e.g. `http-ip`). */
export interface WindowHit {
  readonly limiter: string;
  readonly key: string;
  /** Added to the counter; 0 reads it without charging. */
  readonly by: number;
  /** Seconds a window lasts, from the first charge of the counter. */
  readonly window: number;
  /**
   * Allowance to reserve along with a charge that goes to Redis, spent by this process's later
   * charges of the counter without a round trip (0 or absent: none; see leasedWindows).
   */
  readonly lease?: number;
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
  /**
   * Applies `hit` in this process, with no round trip, when it can be (process memory, or a live
   * lease); else does nothing and returns undefined. One hit, not a list: it is on every limited
   * request's path, where a list was two arrays more per call.
   */
  hitHere(hit: WindowHit): WindowCount | undefined;
}

/**
 * Values by counter, as a map per counter family (`limiter`) of maps by key: every lookup on a
 * request's path is by two strings the caller already holds (a family named once, an address or
 * client id), where one map by the counter's whole name made a new string per request, which the
 * map then had to flatten and hash.
 */
class ByCounter<V> {
  readonly #families = new Map<string, Map<string, V>>();

  get(hit: WindowHit): V | undefined {
    return this.#families.get(hit.limiter)?.get(hit.key);
  }

  set(hit: WindowHit, value: V): void {
    let family = this.#families.get(hit.limiter);
    if (!family) this.#families.set(hit.limiter, (family = new Map()));
    family.set(hit.key, value);
  }

  delete(hit: WindowHit): void {
    this.#families.get(hit.limiter)?.delete(hit.key);
  }

  /** Drops every value `ended` says is over (and the families left empty). */
  sweep(ended: (value: V) => boolean): void {
    for (const [limiter, family] of this.#families) {
      for (const [key, value] of family) if (ended(value)) family.delete(key);
      if (family.size === 0) this.#families.delete(limiter);
    }
  }
}

// KEYS: the counters. ARGV: per key, the increment (0: read only; below 0: given back) and the
// window in ms. Returns per key the count and the ms left. A new counter gets its window; a counter never lives without one.
const HIT_WINDOWS = `local out = {}
for i = 1, #KEYS do
  local by = tonumber(ARGV[2 * i - 1])
  local count, ms
  if by ~= 0 then
    ms = redis.call('PTTL', KEYS[i])
    -- A window in its last millisecond (PTTL 0) is over: a charge starts the next one.
    if ms == 0 then
      redis.call('DEL', KEYS[i])
      ms = -2
    end
    if by < 0 and ms == -2 then
      -- A give-back to a window that ended meanwhile gives nothing: a count of -1 would be a try
      -- more in the next window (a sign-in throttle let one guess more through after each pause).
      count = 0
      ms = 0
    else
      count = redis.call('INCRBY', KEYS[i], by)
      if count < 0 then
        count = 0
        redis.call('SET', KEYS[i], 0, 'KEEPTTL')
      end
      if ms < 0 then
        ms = tonumber(ARGV[2 * i])
        redis.call('PEXPIRE', KEYS[i], ms)
      end
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

/** Same key names as rate-limiter-flexible's (`ratelimit:<limiter>:<key>`, rateLimitKey), so the counts carry over. */
const keyOf = (hit: WindowHit) => rateLimitKey(hit.limiter, hit.key);
const countOf = (reply: number[], i: number): WindowCount => ({ count: Number(reply[2 * i]), ms: Math.max(0, Number(reply[2 * i + 1])) });

function redisWindows(connection: Redis | Cluster): FixedWindows {
  const client = connection as (Redis | Cluster) & HitCommands;
  if (!('latchkeyHitWindows' in client)) {
    defineScript(connection, 'latchkeyHitWindows', { lua: HIT_WINDOWS });
    defineScript(connection, 'latchkeyHitWindow', { lua: HIT_WINDOWS, numberOfKeys: 1 });
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
    hitHere: () => undefined,
  };
}

/** In this process's memory: for the embedded store, and for counters that must never wait for Redis. */
export function memoryWindows(): FixedWindows {
  const counters = new ByCounter<{ count: number; ends: number }>();
  let nextSweep = 0;
  const hitHere = (hit: WindowHit): WindowCount => {
    const now = Date.now();
    if (now >= nextSweep) {
      // Ended windows are dropped at most once a second, so memory stays bounded by the live ones.
      counters.sweep((counter) => counter.ends <= now);
      nextSweep = now + 1000;
    }
    let counter = counters.get(hit);
    if (counter && counter.ends <= now) counter = undefined;
    if (hit.by <= 0) return counter ? { count: counter.count, ms: counter.ends - now } : { count: 0, ms: 0 };
    if (!counter) counters.set(hit, (counter = { count: 0, ends: now + hit.window * 1000 }));
    counter.count += hit.by;
    return { count: counter.count, ms: counter.ends - now };
  };
  // Leases would gain nothing here: every hit is answered in process already.
  return { hit: async (hits) => hits.map(hitHere), hitHere };
}

/** The store's fixed-window counters: in Redis (with leases) for the Redis store, else in process memory. */
export function fixedWindows(kv: Kv): FixedWindows {
  return kv instanceof RedisKv ? leasedWindows(redisWindows(kv.connection)) : memoryWindows();
}

/** Part of a counter's allowance that this process reserved in Redis and spends without a round trip. */
interface Lease {
  /** The counter as Redis last answered this process (its reservations included). */
  stored: number;
  /** Reserved and not spent yet: always above 0 (a spent lease is dropped). */
  left: number;
  /** When the window ends (epoch ms), timed from before the script ran: never after Redis's end. */
  ends: number;
}

const noop = () => {};

/**
 * Local quota leasing over Redis's counters. A charge that goes to Redis with `lease: L` adds L
 * more to the counter, reserved for this process; its later charges of the counter in the same
 * window are served from that reservation with no round trip, each answered with the count it
 * would have seen (Redis's count less what is reserved and unspent), so a caller's comparison with
 * its limit is unchanged. A read (`by: 0`) of a leased counter is answered the same way. A charge
 * served by hitHere that leaves less than half of the lease reserves the next lease in the
 * background (a script that charges nothing), so that a counter charged steadily is always served
 * here: no charge waits for Redis, nor does a read go there between two leases. When the lease is
 * spent all the same, the next charge goes to Redis (and reserves again); when its window ends it
 * is dropped. While a counter's reservation is on its way, hits it does not cover wait for it
 * instead of reserving more.
 *
 * Every charge served is one unit Redis counted (reserved before it was spent) at a position no
 * later than the count it was answered with, so across every process the requests admitted by a
 * `count <= limit` check never exceed the limit; what a process reserved and does not spend only
 * makes others refuse early (at most the processes × 1.5 leases: half of one left and the next). A
 * live lease keeps answering while Redis is away (its renewal fails quietly); a counter without
 * one fails as the script does.
 */
function leasedWindows(store: FixedWindows): FixedWindows {
  const leases = new ByCounter<Lease>();
  /** Counters whose reservation is on its way (settles, never rejects), by their names in Redis. */
  const reserving = new Map<string, Promise<void>>();
  let nextSweep = 0;

  const live = (hit: WindowHit, now: number) => {
    const lease = leases.get(hit);
    if (lease && lease.ends <= now) {
      leases.delete(hit);
      return undefined;
    }
    return lease;
  };
  const covers = (lease: Lease | undefined, hit: WindowHit): lease is Lease => lease !== undefined && hit.by <= lease.left;
  const spend = (lease: Lease, hit: WindowHit, now: number): WindowCount => {
    lease.left -= hit.by;
    if (lease.left === 0) leases.delete(hit);
    return { count: lease.stored - lease.left, ms: lease.ends - now };
  };
  const sweep = (now: number) => {
    if (now < nextSweep) return;
    // Ended leases are dropped at most once a second, so memory stays bounded by the live ones.
    leases.sweep((lease) => lease.ends <= now);
    nextSweep = now + 1000;
  };

  /** What a hit sent to Redis reserves: its lease along with a charge, nothing with a read. */
  const reserveOf = (hit: WindowHit) => (hit.by > 0 ? (hit.lease ?? 0) : 0);

  /**
   * Sends `hits` with what each reserves (`reserves`, by default reserveOf), then records the
   * leases their answers grant.
   */
  async function send(hits: readonly WindowHit[], keys: readonly string[], sentAt: number, reserves = hits.map(reserveOf)): Promise<WindowCount[]> {
    const request = store.hit(hits.map((hit, n) => (reserves[n]! > 0 ? { ...hit, by: hit.by + reserves[n]! } : hit)));
    const settled = request.then(noop, noop);
    hits.forEach((hit, n) => reserves[n]! > 0 && reserving.set(keys[n]!, settled));
    try {
      const replies = await request;
      const now = Date.now();
      return replies.map((reply, n) => {
        const hit = hits[n]!;
        // Still live now, so the script ran in its window: the answer includes its reservation.
        const lease = live(hit, now);
        const reserved = reserves[n]!;
        if (reserved > 0 && reply.ms > 0) {
          const left = (lease?.left ?? 0) + reserved;
          // One connection answers in order, so this count includes the earlier lease's reservations.
          const stored = Math.max(reply.count, lease?.stored ?? 0);
          leases.set(hit, { stored, left, ends: Math.max(sentAt + reply.ms, lease?.ends ?? 0) });
          return { count: stored - left, ms: reply.ms };
        }
        if (!lease) return reply;
        lease.stored = Math.max(lease.stored, reply.count);
        return { count: reply.count - lease.left, ms: reply.ms };
      });
    } finally {
      for (const key of keys) if (reserving.get(key) === settled) reserving.delete(key);
    }
  }

  return {
    hitHere(hit) {
      const now = Date.now();
      sweep(now);
      const lease = live(hit, now);
      if (!covers(lease, hit)) return undefined;
      const count = spend(lease, hit, now);
      if (hit.by > 0 && hit.lease && lease.left * 2 < hit.lease) {
        const key = keyOf(hit);
        // The next lease, reserved while this one still serves; a failure leaves this one to run out.
        if (!reserving.has(key)) send([{ ...hit, by: 0 }], [key], now, [hit.lease]).catch(noop);
      }
      return count;
    },

    async hit(hits) {
      const counts: WindowCount[] = new Array<WindowCount>(hits.length);
      let todo = hits.map((_, i) => i);
      while (todo.length > 0) {
        const now = Date.now();
        sweep(now);
        const sent: number[] = [];
        const waiting: number[] = [];
        const waits = new Set<Promise<void>>();
        for (const i of todo) {
          const hit = hits[i]!;
          const key = keyOf(hit);
          const lease = live(hit, now);
          if (covers(lease, hit)) counts[i] = spend(lease, hit, now);
          else if (reserving.has(key)) {
            waiting.push(i);
            waits.add(reserving.get(key)!);
          } else sent.push(i);
        }
        const sending = sent.length > 0 ? send(sent.map((i) => hits[i]!), sent.map((i) => keyOf(hits[i]!)), now) : undefined;
        const [replies] = await Promise.all([sending, ...waits]);
        sent.forEach((i, n) => (counts[i] = replies![n]!));
        // Served from the lease that arrived, or sent (reserving) in the next turn.
        todo = waiting;
      }
      return counts;
    },
  };
}
