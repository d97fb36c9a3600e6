/**
 * Entering a user code at /device (RFC 8628 §3.3), as oidc-provider serves it, with two changes:
 *
 * - verification_uri_complete (`/device?user_code=…`) shows the entry page with the code filled in,
 *   for the person to check against their device and continue, instead of the engine's page that
 *   posts the code at once with an inline script (no script runs on our pages, and §3.3.1 wants
 *   the person to compare the codes). The code is taken out of the query before the engine reads it.
 * - Wrong codes are throttled (§5.1, §5.2): provider.DeviceCode.findByUserCode is wrapped so that,
 *   before the engine looks a code up (and so before it marks the code in use or denied), entry
 *   is refused with 429 while the address has typed too many wrong codes, or the code was tried
 *   wrongly too often (mistyped, expired, already used), within the window. Each such miss is
 *   then counted against both. The page says so (see interactions/device.ts).
 * - After an error on the device pages, the engine's error handler puts a fresh xsrf secret in the
 *   browser's session and its outermost middleware then persists the session; a session that was
 *   never stored (a request without cookies) cannot be persisted, and the request ended in a 500.
 *   forgetUnstoredXsrf, called by the entry page, leaves such a session untouched (the page then
 *   offers a link to a fresh form instead of one that could not be checked).
 * - RFC 8628 §6.1: the code is read as the person may type it on any keyboard. The engine upper-cases
 *   a–z and drops every character but A–Z, 0–9 and _ (so spaces and dashes of any kind), which made a
 *   code typed in full-width characters (ＬＢＫＺ－ＦＴＫＢ, as some phone keyboards type it) empty:
 *   refused, and counted as a wrong code. Its step that reads the code now reads it in NFKC first,
 *   which makes such characters the ASCII ones they stand for.
 * Pinned by test/unit/provider-patches.test.ts, test/conformance/device-authorization.test.ts and
 * test/e2e/device-flow.test.ts.
 */
import { createHash } from 'node:crypto';
import type { Context, Middleware, Next } from 'koa';
import { errors, Provider, type KoaContextWithOIDC } from 'oidc-provider';
import { post as verificationSteps } from 'oidc-provider/lib/actions/code_verification.js';
import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Kv } from '../../store/kv.js';
import { USER_CODE_IP_LIMITER, USER_CODE_LIMITER } from '../../store/keys.js';
import { scoped } from '../../http/layers.js';
import { addressKey } from '../../http/address-key.js';
import { rateLimiter } from '../../store/rate-limit.js';

/** Where interactions/device.ts finds the code of a verification_uri_complete to fill in. */
export const PREFILLED_USER_CODE = 'prefilledUserCode';

export interface UserCodeLimits {
  readonly maxFailuresPerIp: number;
  readonly maxFailuresPerCode: number;
  readonly window: number;
}

class TooManyCodes extends errors.OIDCProviderError {
  constructor(readonly seconds: number) {
    super(429, 'temporarily_unavailable');
    this.error_description = `too many wrong codes; retry in ${seconds} s`;
  }
}

interface FoundCode {
  readonly isExpired: boolean;
  readonly accountId?: string;
  readonly error?: string;
  readonly inFlight?: boolean;
}

export class UserCodeThrottle {
  readonly #perIp: RateLimiterAbstract;
  readonly #perCode: RateLimiterAbstract;

  constructor(kv: Kv, limits: UserCodeLimits) {
    this.#perIp = rateLimiter(kv, { keyPrefix: USER_CODE_IP_LIMITER, points: limits.maxFailuresPerIp, duration: limits.window });
    this.#perCode = rateLimiter(kv, { keyPrefix: USER_CODE_LIMITER, points: limits.maxFailuresPerCode, duration: limits.window });
  }

  /**
   * A code typed from `ip`, counted before it is looked up on both counters, so that codes sent at
   * once cannot all pass a read taken before any of them was counted (a burst of guesses was looked
   * up whole before the outsider's attack pass). Seconds to wait when either is over its allowance
   * (the try is then given back: nothing was looked up), else 0; a code that was no miss is given
   * back with hit().
   */
  async attempt(ip: string, code: string): Promise<number> {
    const counted = await Promise.all([this.#perIp.penalty(addressKey(ip), 1), this.#perCode.penalty(codeKey(code), 1)]);
    const limits = [this.#perIp.points, this.#perCode.points];
    const wait = Math.max(...counted.map((res, i) => (res.consumedPoints > limits[i]! ? Math.ceil(res.msBeforeNext / 1000) : 0)));
    if (wait) await this.hit(ip, code);
    return wait;
  }

  /** A try counted by attempt() that was no miss: given back. */
  async hit(ip: string, code: string): Promise<void> {
    await Promise.all([this.#perIp.reward(addressKey(ip), 1), this.#perCode.reward(codeKey(code), 1)]);
  }
}

/** Codes are keyed by a hash: a live code is a credential for a moment, and never stored in clear here. */
const codeKey = (code: string) => createHash('sha256').update(code).digest('base64url');

/** True when this request's browser session was never stored: then its xsrf secret is dropped, not persisted. */
export function forgetUnstoredXsrf(ctx: KoaContextWithOIDC): boolean {
  const session = ctx.oidc.session as unknown as { exp?: unknown; touched?: boolean } | undefined;
  if (!session || typeof session.exp === 'number') return false;
  session.touched = false;
  return true;
}

/** Patches the engine, and returns the middleware for the provider's layers (provider/layers.ts). */
export function userCodeEntry(provider: Provider, throttle: UserCodeThrottle): Middleware {
  const path = provider.pathFor('code_verification').toLowerCase();
  const prefilledCode = scoped({ paths: [path] }, (ctx: Context, next: Next) => {
    const prefilled = ctx.query.user_code;
    if (ctx.method === 'GET' && ctx.path.toLowerCase().replace(/\/$/, '') === path && prefilled !== undefined) {
      if (typeof prefilled === 'string') ctx.state[PREFILLED_USER_CODE] = prefilled;
      const { user_code: _dropped, ...rest } = ctx.query;
      ctx.query = rest;
    }
    return next();
  });

  const DeviceCode = provider.DeviceCode as unknown as {
    findByUserCode(code: string, ...rest: unknown[]): Promise<FoundCode | undefined>;
  };
  const findByUserCode = DeviceCode.findByUserCode.bind(DeviceCode);
  DeviceCode.findByUserCode = async (code: string, ...rest: unknown[]) => {
    const ctx = Provider.ctx as unknown as Context | undefined;
    if (!ctx) return findByUserCode(code, ...rest);
    // Counted before the lookup: codes sent at once are held to the allowances too.
    const wait = await throttle.attempt(ctx.ip, code);
    if (wait) {
      ctx.set('Retry-After', String(wait));
      throw new TooManyCodes(wait);
    }
    const found = await findByUserCode(code, ...rest);
    // What the engine refuses next (code_verification.js): unknown, expired, or already used: a miss, counted already.
    if (!(!found || found.isExpired || found.error || found.accountId || found.inFlight)) await throttle.hit(ctx.ip, code);
    return found;
  };
  return prefilledCode;
}

type Step = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>;

/**
 * The engine's step that reads the typed code (and normalises it) reads it in NFKC. The engine reads
 * its lists of steps when a Provider is made, so this runs as the module loads; it fails at start-up
 * if the engine no longer has that step.
 */
function codesReadInNfkc(steps: Step[]) {
  if (steps.some((step) => step.name === 'userCodeInNfkc')) return;
  const at = steps.findIndex((step) => step.name === 'loadDeviceCodeByUserInput');
  if (at < 0) throw new Error("oidc-provider's code_verification has no loadDeviceCodeByUserInput step: review src/provider/patches/user-code-entry.ts");
  const load = steps[at]!;
  steps[at] = function userCodeInNfkc(ctx, next) {
    const params = ctx.oidc.params as { user_code?: unknown };
    if (typeof params.user_code === 'string') params.user_code = params.user_code.normalize('NFKC');
    return load(ctx, next);
  };
}
codesReadInNfkc(verificationSteps as Step[]);
