/**
 * What this provider stored ends at its own `exp`, not some seconds later.
 *
 * oidc-provider verifies a stored record as it verifies a JWT from elsewhere (formats/opaque.js
 * `verify`), with `clockTolerance` (15 s, lifetimes.ts CLOCK_TOLERANCE) past its `exp`: the skew
 * allowed to a client's clock, applied to records this provider stamped itself. So an ending by time
 * ended at different moments on different endpoints (fresh-eyes passes of 2026-12-06): an opaque
 * access token read at userinfo for 15 s after introspection had said it inactive; a grant found for
 * 15 s after its end, so `/auth` issued codes without asking consent that the token endpoint then
 * refused (it checks the code's exact expiry); an initial access token registered clients, and an
 * interaction took a password, up to 15 s after theirs.
 *
 * What it changes in oidc-provider: the static `verify` of every stored model (the one find and
 * findByUserCode call with what the store holds) refuses a record whose `exp` has come, on this
 * machine's clock, as the engine's own `isExpired` reads it, unless the find asked with
 * `ignoreExpiration` (the refresh and code grants do, and check `isExpired` themselves). The engine's
 * tolerance stays for what other clocks made: client assertions, request objects, DPoP proofs.
 * ReplayDetection is left as it is: its records are what keeps a client's JWT from being used twice
 * within that tolerance. lifetimes-as-configured.ts, applied after this, bounds the same finds by the
 * lifetime configured now. Pinned by test/unit/provider-patches.test.ts and test/e2e/exact-expiry.test.ts.
 */
import type { Provider } from 'oidc-provider';
import { machineSeconds } from '../../clock.js';

type Stored = { exp?: unknown };
type Verify = (stored: Stored, options?: { ignoreExpiration?: boolean }) => Promise<unknown>;

export const STORED_MODELS = [
  'AccessToken',
  'AuthorizationCode',
  'BackchannelAuthenticationRequest',
  'ClientCredentials',
  'DeviceCode',
  'Grant',
  'InitialAccessToken',
  'Interaction',
  'PushedAuthorizationRequest',
  'RefreshToken',
  'RegistrationAccessToken',
  'Session',
] as const;

export function exactExpiry(provider: Provider): void {
  for (const name of STORED_MODELS) {
    const model = (provider as unknown as Record<string, { verify?: Verify }>)[name];
    const verify = model?.verify;
    if (typeof verify !== 'function') throw new Error(`oidc-provider ${name}.verify is gone: review src/provider/patches/exact-expiry.ts`);
    model!.verify = async function (this: unknown, stored, options) {
      if (!options?.ignoreExpiration && typeof stored?.exp === 'number' && stored.exp <= machineSeconds()) throw new Error('expired');
      return verify.call(this, stored, options);
    };
  }
}
