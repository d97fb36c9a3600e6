/**
 * The claims parameter's claim requests are of the types OIDC Core §5.5.1 gives their members:
 * `essential` a boolean, `values` a JSON array; and for the claims Latchkey holds a sign-in to
 * (`acr`, `sub`), `value` and each of `values` a string. Anything else is a malformed request
 * (RFC 6749 §4.1.2.1 invalid_request), at the authorization, pushed request and device
 * authorization endpoints alike (the engine's claimsParameter.assertClaimsParameter hook).
 *
 * The engine checks only that each claim request is null or an object, and its readers of the
 * members disagreed on the rest: `essential: 1` or `"true"` was essential to the engine's truthiness
 * checks and not to step-up.ts (`=== true`), and an `acr` asked with `value: ["mfa"]` was no value
 * to step-up.ts, so such requests got a code whose `acr` was below what they seemed to ask, where a
 * well-formed one got `login_required` or a stronger sign-in.
 */
import { errors, type ClaimsParameter, type KoaContextWithOIDC } from 'oidc-provider';

/** The claims whose `value` or `values` Latchkey holds a sign-in to (step-up.ts, patches/hinted-subject.ts). */
const ENFORCED = new Set(['acr', 'sub']);

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Why a claim request `request` for `claim` is malformed, or undefined when it is not. */
function malformed(claim: string, request: unknown): string | undefined {
  if (request === null) return undefined;
  if (!isObject(request)) return 'must be null or an object';
  if ('essential' in request && typeof request.essential !== 'boolean') return 'essential must be a boolean';
  if ('values' in request && !Array.isArray(request.values)) return 'values must be an array';
  if (ENFORCED.has(claim)) {
    if ('value' in request && typeof request.value !== 'string') return 'value must be a string';
    if (Array.isArray(request.values) && !request.values.every((value) => typeof value === 'string')) return 'values must be strings';
  }
  return undefined;
}

/** claimsParameter.assertClaimsParameter: refuses a claim request of the wrong type (see above). */
export function assertClaimsRequests(_ctx: KoaContextWithOIDC, claims: ClaimsParameter): void {
  for (const container of ['userinfo', 'id_token'] as const) {
    for (const [claim, request] of Object.entries(claims[container] ?? {})) {
      const why = malformed(claim, request);
      if (why) throw new errors.InvalidRequest(`claims.${container}.${claim} ${why}`);
    }
  }
}
