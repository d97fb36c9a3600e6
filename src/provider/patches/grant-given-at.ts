/**
 * When the person gave what a code, device code or refresh token carries: the moment an API named in
 * it is compared with (an API removed and added again under the same identifier since is another
 * API, apis.ts `predates`: what the person allowed at the removed one is not for it).
 *
 * A code is issued just after the consent: its `iat` says when. A refresh token said its chain's
 * first issue (`iiat`), which is the moment its code or device code was redeemed, not when the person
 * allowed it; and a device code said nothing (its `iat` is the device's request, before the person's
 * approval), so the token endpoint did not compare it at all. A device approved before an operator
 * removed an API and made it again, polling after, got the person's token for the new API; a code
 * issued before, redeemed after for userinfo alone, gave a refresh token whose chain began after the
 * new API, and it refreshed into tokens for the new API for as long as it kept refreshing (red team's
 * nineteenth granting pass: both performed).
 *
 * What it changes in oidc-provider: DeviceCode, RefreshToken and AuthorizationCode keep one more
 * property, `grantedAt` (IN_PAYLOAD, epoch seconds on the store's clock as an API's `addedAt`). A
 * device code takes it when it is first saved approved (with its person), a code when it is first
 * saved (issued); a new refresh token takes it from what it is made from in the request (the engine
 * names it before saving it): the refresh token it rotates, else the code or the device code
 * redeemed. One stored before this change has none: a refresh token then counts from its `iiat`, a
 * code from its `iat` and a device code from its `iat` (the device's request, earlier than its
 * approval: what it asks is refused rather than given). grantGivenAt reads it.
 * A code's `iat` is the engine's, on the clock of the machine its instance runs on: a code issued at
 * an instance whose clock ran some seconds ahead of the store's just before an API was removed and
 * added again counted as given after it, and was redeemed for the new API (twenty-sixth endings
 * pass, test/e2e/redteam-endings-26.test.ts); its `grantedAt` is on the store's clock.
 */
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import { epochSeconds } from '../../clock.js';
import { carriedAlongRefreshChain, type Carrying, type Sources } from './carried-along-refresh-chain.js';

const number = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined);

/** When the grant of a refresh token, code or device code (the first found, in that order) was given. */
function givenAt({ RefreshToken, AuthorizationCode, DeviceCode }: { RefreshToken?: Carrying } & Omit<Sources, 'RotatedRefreshToken'>): number | undefined {
  if (RefreshToken) return number(RefreshToken.grantedAt) ?? number(RefreshToken.iiat);
  if (AuthorizationCode) return number(AuthorizationCode.grantedAt) ?? number(AuthorizationCode.iat);
  if (DeviceCode) return number(DeviceCode.grantedAt) ?? number(DeviceCode.iat);
  return undefined;
}

/** At the token endpoint: when the person gave the grant the request redeems (its refresh token, code or device code). */
export function grantGivenAt(ctx: KoaContextWithOIDC): number | undefined {
  if (ctx.oidc.route !== 'token') return undefined;
  return givenAt(ctx.oidc.entities as { RefreshToken?: Carrying } & Sources);
}

export function grantGivenAtKept(provider: Provider): void {
  carriedAlongRefreshChain(provider, 'grantedAt', {
    // A code is issued as the person's consent is given: dated on the store's clock, not by its `iat`
    // (the engine's, on the machine's clock of the instance that issued it: see above). A device code
    // is approved when the engine saves it with its person, once (device.js deviceVerificationResponse).
    issued: (token, model) => (model === 'AuthorizationCode' || typeof token.accountId === 'string' ? epochSeconds() : undefined),
    rotated: (rotated) => givenAt({ RefreshToken: rotated }),
    first: ({ AuthorizationCode, DeviceCode }) => givenAt({ AuthorizationCode, DeviceCode }),
  });
}
