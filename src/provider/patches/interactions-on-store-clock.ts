/**
 * A sign-in's interaction is dated on the store's clock (clock.ts epochSeconds), the clock every
 * cutoff its `iat` is compared with is written on.
 *
 * Its `iat` says when the sign-in began, and three checks compare it with a cutoff another process
 * wrote on the store's clock: its client's narrowing (store/adapter.ts endPendingSignIns, checked at
 * the resume by current-registration.ts), the person's ending (accounts.ts endedAt, checked by
 * accounts/session-credentials.ts credentialsHeld) and its client made again with its id
 * (clientIdIssuedAt, interactions/consent.ts). oidc-provider stamps it when the interaction is
 * first saved, on the clock of the machine the instance runs on (opaque.js: `token.iat ||
 * epochTime()`). With instances on one Redis whose clocks differ by some seconds, a sign-in begun
 * at one whose clock ran ahead just before its client was narrowed (a redirect URI taken out and
 * put back) or its person disabled and enabled again was dated after the cutoff and went on to a
 * code; one begun at an instance whose clock ran behind just after a narrowing answered (past the
 * second it waits for) was dated at or before it and refused (twenty-sixth endings pass).
 *
 * What it changes in oidc-provider: Interaction#save sets an interaction's `iat` to the store's
 * epoch second when it has none (its first save; later saves keep it, as opaque.js does). Its `exp`
 * stays the engine's, on this machine's clock, as every expiry the engine reads is
 * (lifetimes-as-configured.ts bounds it by `iat` plus the lifetime: an instance whose clock is
 * ahead of the store's by some seconds bounds its interactions that much earlier, of an hour).
 * Pinned by test/e2e/redteam-endings-26.test.ts.
 */
import type { Provider } from 'oidc-provider';
import { epochSeconds } from '../../clock.js';

type Dated = { iat?: number };

export function interactionsOnStoreClock(provider: Provider): void {
  const prototype = provider.Interaction.prototype as unknown as { save(this: Dated, ...args: unknown[]): Promise<unknown> };
  const save = prototype.save;
  if (typeof save !== 'function') throw new Error('oidc-provider Interaction#save is gone: review src/provider/patches/interactions-on-store-clock.ts');
  prototype.save = function (this: Dated, ...args: unknown[]) {
    if (this.iat === undefined) this.iat = epochSeconds();
    return save.apply(this, args);
  };
}
