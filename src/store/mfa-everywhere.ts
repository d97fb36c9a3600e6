/**
 * Whether a second factor is required of everyone (accounts.mfa.required) as the instance that last
 * started saw it: a start that turns it on is then told apart from one that finds it on already, and
 * ends the access tokens people's sign-ins hold from before (main.ts, RevocationList
 * revokeRaisedEverywhere), as a client's own `require_mfa` raised does (provider/client-endings.ts).
 * One durable key holds "true" or "false".
 *
 * That key alone misses a rolling restart: the first instance started with the requirement ends
 * what was issued up to then, while one not restarted yet goes on signing people in with a password
 * alone; restarted with the requirement in turn, it found it recorded as on already and ended
 * nothing, and what it issued in between stayed good to its `exp`. So an instance without the
 * requirement says when it runs (notRequiredNow, with its lifetimes every minute, and as it stops),
 * and an instance with it ends again at its start whenever such an instance may have issued
 * something after the last ending (notRequiredSince). One that stopped without saying so (killed)
 * may have run up to a minute after it last said it ran: a start within that minute of the ending
 * ends once more (more, never less; apps refresh).
 */
import { epochSeconds } from '../clock.js';
import { MFA_EVERYWHERE_KEY, MFA_NOT_REQUIRED_KEY } from './keys.js';
import type { Kv } from './kv.js';

export interface MfaEverywhereChange {
  /** Required now, and not at the start before. None recorded (the first start of a release that keeps it): no change. */
  readonly turnedOn: boolean;
  /** Records the setting as it is now, unless another instance recorded another since (false then; nothing is written). */
  record(): Promise<boolean>;
}

export async function mfaEverywhereChange(kv: Kv, required: boolean): Promise<MfaEverywhereChange> {
  const text = await kv.get(MFA_EVERYWHERE_KEY);
  const next = String(required);
  return {
    turnedOn: required && text === 'false',
    // Another instance that recorded the same first (started at once) is as good.
    record: async () => text === next || (await kv.compareAndSet(MFA_EVERYWHERE_KEY, text, next)) || (await kv.get(MFA_EVERYWHERE_KEY)) === next,
  };
}

/**
 * An instance without the requirement says it runs now (`running`), or that it stopped now (its
 * close, once it answers nothing more), kept `ttl` seconds (as long as a token it issued now may live).
 */
export async function notRequiredNow(kv: Kv, ttl: number, running = true): Promise<void> {
  await kv.set(MFA_NOT_REQUIRED_KEY, `${running ? 'running' : 'stopped'} ${epochSeconds()}`, { ttl });
}

/**
 * Whether an instance without the requirement may have issued something after `endedAt` (epoch
 * seconds of the last ending of people's access tokens, which ended what was issued up to and in
 * that second; undefined: none) that still lives: it stopped after that second, or said it ran less
 * than `every` seconds (its interval between two sayings) before it or after it.
 */
export async function notRequiredSince(kv: Kv, endedAt: number | undefined, every: number): Promise<boolean> {
  const said = await kv.get(MFA_NOT_REQUIRED_KEY);
  if (said === undefined) return false;
  const [state, at] = said.split(' ');
  const last = Number(at) + (state === 'stopped' ? 0 : every);
  return endedAt === undefined || !Number.isFinite(last) || last > endedAt;
}
