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
import { limiterCharger, limiterClearer, limiterGiver, limiterReader, rateLimiter, type LimiterRead } from '../store/rate-limit.js';
import { LOGIN_CODE_FAILURES_LIMITER, loginFailuresLimiter, loginPausesLimiter } from '../store/keys.js';
import { addressKey } from '../http/address-key.js';
import { normalizeUsername } from './accounts.js';

export interface ThrottleSettings {
  readonly maxFailures: number;
  readonly maxFailuresPerIp: number;
  readonly window: number;
  readonly baseDelay: number;
  readonly maxDelay: number;
  /** Wrong second-factor codes per username, with no completed sign-in between, after which authenticator-app codes are refused unchecked. */
  readonly maxCodeFailures: number;
}

/** How long the count of past pauses is kept, which is what makes pauses grow. */
const STRIKE_MEMORY = 86_400;
/**
 * How long wrong second-factor codes are counted towards maxCodeFailures, from the first: the
 * pauses are a rate, which a patient thief holding the password outlasts (five codes every
 * maxDelay, about 480 a day, for ever: one chance in 700 a day of a six-digit code); this is a
 * budget (NIST SP 800-63B §5.2.2: no more than 100 consecutive failed attempts).
 */
const CODE_FAILURE_MEMORY = 30 * 86_400;

/** A count of failures and its limit. */
interface Tally {
  readonly failures: RateLimiterAbstract;
  /** The failures limiter's keyPrefix (for reading its counters: limiterReader). */
  readonly failuresPrefix: string;
  readonly limit: number;
}

/** A count of failures whose limit starts a pause, and the pauses it started within a day. */
interface Counter extends Tally {
  readonly strikes: RateLimiterAbstract;
}

export class LoginThrottle {
  readonly #user: Counter;
  readonly #ip: Counter;
  /** Wrong second-factor codes per username since its last completed sign-in: a budget, not a pause. */
  readonly #codes: Tally;
  readonly #read: (reads: readonly LimiterRead[]) => Promise<{ count: number; ms: number }[]>;
  readonly #charge: ReturnType<typeof limiterCharger>;
  readonly #giveBack: ReturnType<typeof limiterGiver>;
  readonly #clear: ReturnType<typeof limiterClearer>;

  constructor(
    kv: Kv,
    private readonly settings: ThrottleSettings,
  ) {
    const counter = (name: 'user' | 'ip', limit: number): Counter => ({
      failures: rateLimiter(kv, { keyPrefix: loginFailuresLimiter(name), points: limit, duration: settings.window }),
      failuresPrefix: loginFailuresLimiter(name),
      strikes: rateLimiter(kv, { keyPrefix: loginPausesLimiter(name), points: 1, duration: STRIKE_MEMORY }),
      limit,
    });
    this.#user = counter('user', settings.maxFailures);
    this.#ip = counter('ip', settings.maxFailuresPerIp);
    this.#codes = {
      failures: rateLimiter(kv, { keyPrefix: LOGIN_CODE_FAILURES_LIMITER, points: settings.maxCodeFailures, duration: CODE_FAILURE_MEMORY }),
      failuresPrefix: LOGIN_CODE_FAILURES_LIMITER,
      limit: settings.maxCodeFailures,
    };
    this.#read = limiterReader(kv);
    this.#charge = limiterCharger(kv);
    this.#giveBack = limiterGiver(kv);
    this.#clear = limiterClearer(kv);
  }

  /**
   * A try of this username from this IP, reserved before its password or code is checked: counted
   * at once on both counters (one round trip), so tries made at the same moment cannot all pass a
   * count read before any of them was counted (30 wrong passwords sent at once were all checked
   * before the outsider's attack pass, against a limit of 5). Answers the pause in seconds when
   * either counter is over its limit (nothing may then be checked), else 0. A try that turns out not
   * to be a failure is given back (notFailed); a failure was counted here, and attemptFailed() starts
   * the pause it reaches.
   */
  async attempt(username: string, ip: string): Promise<number> {
    const tries = this.#tries(username, ip);
    const counts = await this.#charge(tries.map(({ counter, key }) => this.#failure(counter, key)));
    const pauses = counts.map(({ count, ms }, i) => (count > tries[i]!.counter.limit ? ms : 0));
    const pause = Math.ceil(Math.max(...pauses) / 1000);
    // A try refused for a pause is no try: given back on a counter it did not take over its limit (a
    // paused address charges no username, a paused username no address). Not on one it did: a pause
    // started meanwhile resets that count to its limit (block), and giving back tries charged before
    // it would take the count under the limit, letting more guesses of the same burst be checked
    // (10 of 30 once, against 5). Such a count ends with its window or its pause whatever it holds.
    if (pause) await this.#giveBack(tries.filter((_, i) => !pauses[i]).map(({ counter, key }) => this.#failure(counter, key)));
    return pause;
  }

  /**
   * A second-factor code of this username, reserved (counted) before it is checked, as attempt()
   * does, on the count of wrong codes since the person's last completed sign-in: true when that
   * count is past maxCodeFailures, and an authenticator-app code must then not be checked (a
   * recovery code, 80 random bits, still may). A code that turns out right, or was not checked, is
   * given back (codeNotFailed); a completed sign-in clears the count (succeeded).
   */
  async codeAttempt(username: string): Promise<boolean> {
    const [count] = await this.#charge([this.#failure(this.#codes, userKey(username), CODE_FAILURE_MEMORY)]);
    return count!.count > this.#codes.limit;
  }

  /** A code reserved by codeAttempt() that was no failure (not checked, or unreadable): given back. */
  async codeNotFailed(username: string): Promise<void> {
    await this.#giveBack([this.#failure(this.#codes, userKey(username), CODE_FAILURE_MEMORY)]);
  }

  /** A try reserved by attempt() that was no failure (the right password, a right code, a form refused before anything was checked): given back. */
  async notFailed(username: string, ip: string): Promise<void> {
    await this.#giveBack(this.#tries(username, ip).map(({ counter, key }) => this.#failure(counter, key)));
  }

  /** A try reserved by attempt() failed: it is counted already; returns the pause (seconds) it started, or 0. */
  async attemptFailed(username: string, ip: string): Promise<number> {
    const tries = this.#tries(username, ip);
    const counts = await this.#read(tries.map(({ counter, key }) => this.#failure(counter, key)));
    const pauses = await Promise.all(tries.map(({ counter, key }, i) => (counts[i]!.count >= counter.limit ? this.#pause(counter, key) : 0)));
    return Math.max(...pauses);
  }

  /** A try reserved by attempt() completed a sign-in, second factor included: the username's count is cleared, the address's try given back. */
  async succeededAttempt(username: string, ip: string): Promise<void> {
    await Promise.all([this.succeeded(username), this.#giveBack([this.#failure(this.#ip, addressKey(ip))])]);
  }

  /**
   * A completed sign-in clears the username's count (not the IP's: one success must not reset a
   * spray). A right password followed by a second-factor step is not complete yet.
   */
  async succeeded(username: string): Promise<void> {
    const key = userKey(username);
    await Promise.all([this.#clear(this.#failure(this.#user, key)), this.#clear(this.#failure(this.#codes, key, CODE_FAILURE_MEMORY))]);
  }

  /** A counter's failures count under `key`, as the store's limiter functions name it. */
  #failure(counter: Tally, key: string, window = this.settings.window) {
    return { limiter: counter.failures, keyPrefix: counter.failuresPrefix, key, window };
  }

  /** The username's and the address's counters, and their keys. */
  #tries(username: string, ip: string): { counter: Counter; key: string }[] {
    return [
      { counter: this.#user, key: userKey(username) },
      { counter: this.#ip, key: addressKey(ip) },
    ];
  }

  /** Starts the pause of a counter at its limit: each further pause within a day twice as long. */
  async #pause(counter: Counter, key: string): Promise<number> {
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
