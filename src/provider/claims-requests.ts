/**
 * The claims parameter's claim requests are of the types OIDC Core §5.5.1 gives their members:
 * `essential` a boolean, `values` a JSON array; and for the claims Latchkey holds a sign-in to
 * (`acr`, `sub`), `value` and each of `values` a string. Anything else is a malformed request
 * (RFC 6749 §4.1.2.1 invalid_request), at the authorization, pushed request and device
 * authorization endpoints alike (the engine's claimsParameter.assertClaimsParameter hook), as is
 * one nested deeper than MAX_CLAIMS_DEPTH.
 *
 * The engine checks only that each claim request is null or an object, and its readers of the
 * members disagreed on the rest: `essential: 1` or `"true"` was essential to the engine's truthiness
 * checks and not to step-up.ts (`=== true`), and an `acr` asked with `value: ["mfa"]` was no value
 * to step-up.ts, so such requests got a code whose `acr` was below what they seemed to ask, where a
 * well-formed one got `login_required` or a stronger sign-in.
 */
import { errors, type ClaimsParameter, type KoaContextWithOIDC } from 'oidc-provider';
import { nestedDeeperThan } from '../http/bodies.js';

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

/**
 * The deepest claims parameter taken, in levels of objects and arrays: a claim request is three
 * (container, claim, its `values`), and nested claims (OpenID Connect for Identity Assurance's
 * `verified_claims`) a few more; as deep as the JSON bodies our own routes read (http/bodies.ts).
 * The engine parsed any depth its URL or body limit let in, then copied the object with
 * structuredClone: at the pushed request endpoint a claims parameter 2,000 levels deep (32 KB of a
 * 56 KiB body) overflowed the stack there, a 500 (sixteenth passes, h7); the authorization and
 * device authorization endpoints kept such an object in the interaction or device code for every
 * later step of the sign-in to read.
 */
export const MAX_CLAIMS_DEPTH = 32;

/** claimsParameter.assertClaimsParameter: refuses a claims parameter too deep, or a claim request of the wrong type (see above). */
export function assertClaimsRequests(_ctx: KoaContextWithOIDC, claims: ClaimsParameter): void {
  if (nestedDeeperThan(claims, MAX_CLAIMS_DEPTH)) throw new errors.InvalidRequest(`the claims parameter nests deeper than ${MAX_CLAIMS_DEPTH} levels`);
  for (const container of ['userinfo', 'id_token'] as const) {
    for (const [claim, request] of Object.entries(claims[container] ?? {})) {
      const why = malformed(claim, request);
      if (why) throw new errors.InvalidRequest(`claims.${container}.${claim} ${why}`);
    }
  }
}
