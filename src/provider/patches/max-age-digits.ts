/**
 * OIDC Core §3.1.2.1: `max_age` is the allowable elapsed time "in seconds" since the person last
 * signed in, a count (Registration §2's `default_max_age` is an "Integer value"). oidc-provider's
 * checkMaxAge reads it as JavaScript's `+` does, so `0x10` (16), `1e3` (1000), `1.0`, `+5`, ` 5`
 * and `-0` (a sign-in forced, as 0) were taken, each a number to the engine and perhaps another
 * to whoever else reads the request (Latchkey reads it again for an upstream sign-in:
 * interactions/upstream.ts). Only decimal digits are a count of seconds: anything else is the
 * engine's own refusal, `invalid_request` "invalid max_age parameter value" (RFC 6749 §4.1.2.1, an
 * invalid parameter value), at /auth, pushed and at device authorization. A client's
 * `default_max_age` comes in as the engine's `toString` of an integer, digits.
 */
import { errors } from 'oidc-provider';
import authorizationSteps from 'oidc-provider/lib/actions/authorization/index.js';
import type { Step } from './before-check-scope.js';

const SECONDS = /^[0-9]+$/;

const maxAgeInDigits: Step = function maxAgeInDigits(ctx, next) {
  const maxAge = ctx.oidc.params?.max_age;
  if (maxAge !== undefined && !SECONDS.test(String(maxAge))) throw new errors.InvalidRequest('invalid max_age parameter value');
  return next();
};

// Put before the engine's checkMaxAge as the module loads (the engine builds each endpoint's steps once).
for (const endpoint of ['authorization', 'pushed_authorization_request', 'device_authorization']) {
  const steps = authorizationSteps(endpoint) as Step[];
  if (steps.includes(maxAgeInDigits)) continue;
  const at = steps.findIndex((each) => each.name === 'checkMaxAge');
  if (at < 0) throw new Error(`oidc-provider's ${endpoint} steps have no checkMaxAge: review src/provider/patches/max-age-digits.ts`);
  steps.splice(at, 0, maxAgeInDigits);
}
