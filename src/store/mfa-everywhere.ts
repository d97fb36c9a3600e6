/**
 * Whether a second factor is required of everyone (accounts.mfa.required) as the instance that last
 * started saw it: a start that turns it on is then told apart from one that finds it on already, and
 * ends the access tokens people's sign-ins hold from before (main.ts, RevocationList
 * revokeRaisedEverywhere), as a client's own `require_mfa` raised does (provider/client-endings.ts).
 * One durable key holds "true" or "false".
 */
import { MFA_EVERYWHERE_KEY } from './keys.js';
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
