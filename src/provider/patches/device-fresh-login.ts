/**
 * A device authorization asking for a fresh sign-in (`max_age=0`, OIDC Core §3.1.2.1: "the
 * End-User MUST be actively re-authenticated") gets one at /device. oidc-provider turns `max_age=0`
 * into `prompt=login` as it takes the request, stores it with the device code, and then drops
 * `prompt` at /device as a front-channel parameter: a person already signed in there went straight
 * to the consent, and the ID token's auth_time said a sign-in older than the app allowed. This
 * check of the login prompt asks for the sign-in unless the session's last one came after the
 * device's request (so the consent that follows the fresh sign-in is not sent back to sign in
 * again). Pinned by test/e2e/pending-endings.test.ts.
 *
 * Both times are compared on the store's clock: the device code keeps its request's second on it
 * (`requestedAt`, IN_PAYLOAD, from its first save: deviceRequestsOnStoreClock), and the session its
 * sign-in's (accounts/sessions.ts SIGNED_IN_ON_STORE). The engine's `iat` and `loginTs` are the
 * machine clocks of the instances that took the request and the sign-in: a sign-in made at an
 * instance ahead some seconds before a request taken at one behind counted as after it, and the
 * person went to the consent without signing in again (twenty-seventh endings pass,
 * test/e2e/redteam-endings-26.test.ts). Either stored before this change: the engine's two times.
 * A session whose sign-in took an upstream's earlier auth_time, or one of unknown age
 * (patches/sign-in-time.ts), counts from that time (test/e2e/factors-tenth.test.ts).
 */
import { interactionPolicy, type KoaContextWithOIDC, type Provider } from 'oidc-provider';
import { SIGNED_IN_ON_STORE, signInTimeForChecks } from '../../accounts/sessions.js';
import { epochSeconds } from '../../clock.js';
import { keptInPayload } from './payload-properties.js';

const AT_DEVICE = new Set(['code_verification', 'device_resume']);

/** The device code's property: its request's second on the store's clock. */
const REQUESTED_AT = 'requestedAt';

/** A device code keeps its request's second on the store's clock (`requestedAt`), from its first save (the device authorization request). */
export function deviceRequestsOnStoreClock(provider: Provider): void {
  const DeviceCode = provider.DeviceCode as unknown as { prototype: { [REQUESTED_AT]?: number; save(...args: unknown[]): Promise<unknown> } };
  keptInPayload(DeviceCode, REQUESTED_AT);
  const save = DeviceCode.prototype.save;
  if (typeof save !== 'function') throw new Error('oidc-provider DeviceCode#save is gone: review src/provider/patches/device-fresh-login.ts');
  DeviceCode.prototype.save = function (this: { [REQUESTED_AT]?: number }, ...args: unknown[]) {
    if (this[REQUESTED_AT] === undefined) this[REQUESTED_AT] = epochSeconds();
    return save.apply(this, args);
  };
}

export function withDeviceFreshLogin(policy: interactionPolicy.DefaultPolicy): interactionPolicy.DefaultPolicy {
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider has no login prompt: review src/provider/patches/device-fresh-login.ts');
  login.checks.add(
    new interactionPolicy.Check('device_fresh_login', 'the device asked for a fresh sign-in', (ctx: KoaContextWithOIDC) => {
      const { route, session, result } = ctx.oidc;
      const device = (ctx.oidc as { deviceCode?: { iat?: number; [REQUESTED_AT]?: unknown; params?: { prompt?: unknown } } }).deviceCode;
      if (!AT_DEVICE.has(route) || !device || typeof device.params?.prompt !== 'string') return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      if (!device.params.prompt.split(' ').includes('login') || result?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const signIn = session as { loginTs?: number; [SIGNED_IN_ON_STORE]?: unknown } | undefined;
      // A sign-in that took an upstream's word for an earlier one (its auth_time), or for one of unknown
      // age, is of that time, not of the moment it finished here: after the device's request only when
      // that time is (the engine's clock, the upstream's time being on no store's). A sign-in through an
      // upstream elsewhere after the request, answered from its session of hours ago, made the device's.
      const checked = session && signIn?.loginTs !== undefined ? signInTimeForChecks(session) : undefined;
      if (checked !== undefined && checked < signIn!.loginTs!) {
        return typeof device.iat === 'number' && checked >= device.iat ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
      }
      const onStore = typeof signIn?.[SIGNED_IN_ON_STORE] === 'number' && typeof device[REQUESTED_AT] === 'number';
      const signedIn = onStore ? signIn?.[SIGNED_IN_ON_STORE] : signIn?.loginTs;
      const requested = onStore ? device[REQUESTED_AT] : device.iat;
      return typeof signedIn === 'number' && typeof requested === 'number' && signedIn >= requested
        ? interactionPolicy.Check.NO_NEED_TO_PROMPT
        : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );
  return policy;
}
