/**
 * A device authorization asking for a fresh sign-in (`max_age=0`, OIDC Core §3.1.2.1: "the
 * End-User MUST be actively re-authenticated") gets one at /device. oidc-provider turns `max_age=0`
 * into `prompt=login` as it takes the request, stores it with the device code, and then drops
 * `prompt` at /device as a front-channel parameter: a person already signed in there went straight
 * to the consent, and the ID token's auth_time said a sign-in older than the app allowed. This
 * check of the login prompt asks for the sign-in unless the session's last one came after the
 * device's request (so the consent that follows the fresh sign-in is not sent back to sign in
 * again). Pinned by test/e2e/pending-endings.test.ts.
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

const AT_DEVICE = new Set(['code_verification', 'device_resume']);

export function withDeviceFreshLogin(policy: interactionPolicy.DefaultPolicy): interactionPolicy.DefaultPolicy {
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider has no login prompt: review src/provider/patches/device-fresh-login.ts');
  login.checks.add(
    new interactionPolicy.Check('device_fresh_login', 'the device asked for a fresh sign-in', (ctx: KoaContextWithOIDC) => {
      const { route, session, result } = ctx.oidc;
      const device = (ctx.oidc as { deviceCode?: { iat?: number; params?: { prompt?: unknown } } }).deviceCode;
      if (!AT_DEVICE.has(route) || !device || typeof device.params?.prompt !== 'string') return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      if (!device.params.prompt.split(' ').includes('login') || result?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const signedIn = (session as { loginTs?: number } | undefined)?.loginTs;
      return typeof signedIn === 'number' && typeof device.iat === 'number' && signedIn >= device.iat
        ? interactionPolicy.Check.NO_NEED_TO_PROMPT
        : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );
  return policy;
}
