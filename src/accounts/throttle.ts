/**
 * Brute-force protection for sign-in. Failures are counted per username and per client IP (an IPv6
 * client by its /64: http/address-key.ts), in the
 * store, so every instance sees the same counts. When a count reaches its limit, sign-in for that
 * username (or from that IP) pauses; each further pause within a day lasts twice as long, up to
 * maxDelay. While paused no password is checked at all, so a correct guess looks the same as a
 * wrong one.
 *
 * Usernames are keyed by a hash of their normalized form: fixed-length keys, and no usernames
 * (which people mistype their passwords into) stored in clear.
 */
import { createHash } from 'node:crypto';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Kv } from '../store/kv.js';
import { limiterReader, rateLimiter, type LimiterRead } from '../store/rate-limit.js';
import { addressKey } from '../http/address-key.js';
import { normalizeUsername } from './accounts.js';

export interface ThrottleSettings {
  readonly maxFailures: number;
  readonly maxFailuresPerIp: number;
  readonly window: number;
  readonly baseDelay: number;
  readonly maxDelay: number;
}

/** How long the count of past pauses is kept, which is what makes pauses grow. */
const STRIKE_MEMORY = 86_400;

interface Counter {
  readonly failures: RateLimiterAbstract;
  /** The failures limiter's keyPrefix (for reading its counters: limiterReader). */
  readonly failuresPrefix: string;
  readonly strikes: RateLimiterAbstract;
  readonly limit: number;
}

export class LoginThrottle {
  readonly #user: Counter;
  readonly #ip: Counter;
  readonly #read: (reads: readonly LimiterRead[]) => Promise<{ count: number; ms: number }[]>;

  constructor(
    kv: Kv,
    private readonly settings: ThrottleSettings,
  ) {
    const counter = (name: string, limit: number): Counter => ({
      failures: rateLimiter(kv, { keyPrefix: `login-${name}`, points: limit, duration: settings.window }),
      failuresPrefix: `login-${name}`,
      strikes: rateLimiter(kv, { keyPrefix: `login-${name}-pauses`, points: 1, duration: STRIKE_MEMORY }),
      limit,
    });
    this.#user = counter('user', settings.maxFailures);
    this.#ip = counter('ip', settings.maxFailuresPerIp);
    this.#read = limiterReader(kv);
  }

  /** Seconds until sign-in may be tried for this username from this IP; 0 when it may now. */
  async pause(username: string, ip: string): Promise<number> {
    // Both counters in one read (one round trip on Redis).
    const reads = [
      { counter: this.#user, key: userKey(username) },
      { counter: this.#ip, key: addressKey(ip) },
    ];
    const counts = await this.#read(reads.map(({ counter, key }) => ({ limiter: counter.failures, keyPrefix: counter.failuresPrefix, key })));
    const pauses = counts.map(({ count, ms }, i) => (count > reads[i]!.counter.limit ? ms : 0));
    return Math.ceil(Math.max(...pauses) / 1000);
  }

  /** Records a failed attempt; returns the pause (seconds) it started, or 0. */
  async failed(username: string, ip: string): Promise<number> {
    const pauses = await Promise.all([this.#count(this.#user, userKey(username)), this.#count(this.#ip, addressKey(ip))]);
    return Math.max(...pauses);
  }

  /**
   * A completed sign-in clears the username's count (not the IP's: one success must not reset a
   * spray). A right password followed by a second-factor step is not complete yet.
   */
  async succeeded(username: string): Promise<void> {
    await this.#user.failures.delete(userKey(username));
  }

  async #count(counter: Counter, key: string): Promise<number> {
    const res = await counter.failures.penalty(key, 1);
    if (res.consumedPoints < counter.limit) return 0;
    const strikes = (await counter.strikes.penalty(key, 1)).consumedPoints;
    const delay = Math.min(this.settings.baseDelay * 2 ** (strikes - 1), this.settings.maxDelay);
    // block() marks the key over its limit for `delay` seconds; the count starts afresh afterwards.
    await counter.failures.block(key, delay);
    return delay;
  }
}

function userKey(username: string): string {
  return createHash('sha256').update(normalizeUsername(username)).digest('base64url');
}
