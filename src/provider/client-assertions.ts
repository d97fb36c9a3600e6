/**
 * Client assertions (private_key_jwt, RFC 7523 §3): oidc-provider checks the signature, requires
 * exp and jti and refuses a jti seen before, until the assertion expires. Two more rules here:
 *
 * Lifetime. An assertion valid for a year could be kept and replayed by whoever copies it before
 * its first use, and it fills the replay store for that long. So an assertion must say when it was
 * made (iat) and live at most `maxLifetime` seconds (exp - iat), and it must not claim to be made
 * in the future.
 *
 * Audience: our issuer identifier. oidc-provider accepts as `aud` the issuer, the token endpoint URL
 * or the URL of the endpoint called. An endpoint URL says nothing about which authorization server
 * the client meant: a malicious server can advertise our token endpoint (or our issuer) as one of
 * its own endpoints, have the client sign an assertion for it, and replay it here as the client
 * (the 2025 audience injection attack, CVE-2025-27370/27371; draft-ietf-oauth-rfc7523bis, FAPI 2.0
 * §5.3.2.1). So the assertion must name our issuer identifier, either alone (a string, or an array
 * of it alone) or in an array whose other members are our own endpoint URLs the engine accepts
 * (openid-client before v6 sends `[issuer, token_endpoint]`); an array naming anyone else is
 * refused, and so is an assertion naming only an endpoint URL. One explicitly typed as
 * `client-authentication+jwt` (rfc7523bis) must name the issuer alone.
 *
 * Type: untyped, `JWT` or `client-authentication+jwt`; a JWT the client typed as anything else is
 * another kind of JWT of its, not an assertion of its identity (RFC 8725 §3.11).
 *
 * Each of these refusals tells the client why (`client authentication failed: <why>`), where the
 * engine's own say only "client authentication failed": the engine calls this hook once the
 * assertion's signature has verified against the client's keys, so whoever reads the answer holds
 * the client's key, and what it learns is this page's policy. Libraries that follow Core §9 by
 * default (Authlib's PrivateKeyJWT: aud the token endpoint, exp an hour after iat;
 * mod_auth_openidc: aud the token endpoint) otherwise failed with nothing to go on, client or
 * server side (RFC 6749 §5.2: error_description is there to help the client's developer).
 */
import { errors, type Configuration } from 'oidc-provider';

type Hook = NonNullable<Configuration['assertJwtClientAuthClaimsAndHeader']>;
type Context = Parameters<Hook>[0];

/** rfc7523bis §4's explicit type of a client authentication JWT. */
const EXPLICIT_TYPE = 'client-authentication+jwt';

/** Whether `aud` names our issuer as the client assertion's audience (see above). */
export function namesOurIssuer(aud: unknown, issuer: string, endpointUrls: ReadonlySet<string>, explicitlyTyped = false): boolean {
  if (typeof aud === 'string') return aud === issuer;
  if (!Array.isArray(aud) || !aud.includes(issuer)) return false;
  if (explicitlyTyped) return aud.length === 1;
  return aud.every((member) => member === issuer || (typeof member === 'string' && endpointUrls.has(member)));
}

function explicitlyTyped(header: { typ?: unknown }): boolean {
  const { typ } = header;
  if (typeof typ !== 'string') return false;
  const type = typ.toLowerCase();
  return type === EXPLICIT_TYPE || type === `application/${EXPLICIT_TYPE}`;
}

/** A refusal of a verified assertion, which says why (see above); the engine's `error_detail` keeps the bare reason. */
function refused(why: string): InstanceType<typeof errors.InvalidClientAuth> {
  const error = new errors.InvalidClientAuth(why);
  error.error_description = `client authentication failed: ${why}`;
  return error;
}

/** The types a client assertion may carry: none, JWT, or rfc7523bis's explicit one (with or without `application/`). */
const ASSERTION_TYP = /^(application\/)?(client-authentication\+)?jwt$/i;

export function boundedClientAssertions(maxLifetime: number, clockTolerance: number): Hook {
  return (ctx: Context, claims, header) => {
    // Explicit typing (RFC 8725 §3.11): a JWT the client typed as another kind (a DPoP proof, a request
    // object, an access token it signs for its own APIs) is not an assertion of its identity to us,
    // though its signature and claims would pass (any typ was taken before the eighth-round granting audit).
    const { typ } = header as { typ?: unknown };
    if (typ !== undefined && (typeof typ !== 'string' || !ASSERTION_TYP.test(typ))) {
      throw refused(`the client_assertion JWT is typed ${String(typ)}: a client assertion is untyped, JWT or ${EXPLICIT_TYPE}`);
    }
    const { iat, exp, aud } = claims as { iat?: unknown; exp?: unknown; aud?: unknown };
    if (!namesOurIssuer(aud, ctx.oidc.issuer, ctx.oidc.clientJwtAuthExpectedAudience(), explicitlyTyped(header as { typ?: unknown }))) {
      throw refused(`the client_assertion JWT's aud (audience) must be the issuer identifier (${ctx.oidc.issuer})`);
    }
    if (typeof iat !== 'number' || !Number.isFinite(iat)) {
      throw refused('iat (issued at) must be provided in the client_assertion JWT');
    }
    if (iat > Date.now() / 1000 + clockTolerance) {
      throw refused('iat (issued at) of the client_assertion JWT is in the future');
    }
    if (typeof exp === 'number' && exp - iat > maxLifetime) {
      throw refused(`the client_assertion JWT must expire at most ${maxLifetime} seconds after it was issued`);
    }
  };
}
