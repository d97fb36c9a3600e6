/**
 * Step-up: an authorization request that needs a stronger sign-in than the session's asks the
 * person to sign in again. What it needs (accounts/assurance.ts): the lowest level the app names in
 * `acr_values`, raised to `mfa` when the client was registered with `require_mfa` or the operator
 * requires it everywhere (accounts.mfa.required).
 *
 * oidc-provider's login prompt asks only when there is no session, max_age has passed, or a hint or
 * an essential `acr` claim does not match; it treats `acr_values` as voluntary (OIDC Core §3.1.2.1).
 * This adds one check to the login prompt (`acr_level`, after the library's own ones): a session
 * whose `acr` is below what the request needs is sent to the login step. With prompt=none the app
 * gets login_required, as for any other reason to log in.
 *
 * An essential `acr` in the claims parameter is a level too (its lowest value we offer), weighed by
 * the same check: the engine's own `essential_acrs` and `essential_acr` checks, which want the
 * session's `acr` to be one of the values exactly, are taken out of the login prompt. They sent a
 * person whose sign-in is above every value asked (someone with an authenticator app asked `pwd`, a
 * passkey asked `mfa`) back to the login page forever, with no answer to the app (fresh-eyes passes
 * of 2026-12-06). OIDC Core §5.5.1.1 wants the ID token's `acr` to be one of the values asked: it
 * says the highest of them the sign-in meets (essentialAcrInIdTokens); the `acr` kept with the
 * session, code and refresh token stays the one reached, which the token endpoint weighs.
 *
 * A refresh token keeps the `acr` of the sign-in it came from (OIDC Core §12.2), and the engine
 * renews it whatever the client requires now; so does a code or an approved device code redeemed
 * later. requireLevelAtTokenEndpoint wraps the find() of RefreshToken, AuthorizationCode and
 * DeviceCode: on the token endpoint, one of the authenticated client whose `acr` is below what that
 * client requires (require_mfa set after it was issued, or accounts.mfa.required turned on) is
 * invalid_grant (RFC 6749 §5.2), so the app sends the person to sign in again with the stronger factor.
 */
import { errors, interactionPolicy, Provider, type KoaContextWithOIDC } from 'oidc-provider';
import { ACR_VALUES, requiredAcr, satisfies, type Acr } from '../../accounts/assurance.js';
import { FIRST_PARTY_PAGES } from '../../http/first-party-sign-in.js';
import { clientMetadata } from '../client-metadata.js';
import { checkAtTokenEndpoint } from './token-endpoint-finds.js';

/** Client metadata: this client's people must use a second factor. */
export const REQUIRE_MFA_PROPERTY = 'require_mfa';

export function validateRequireMfa(value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw new errors.InvalidClientMetadata(`${REQUIRE_MFA_PROPERTY} must be a boolean`);
}

type ClientLike = { clientId: string; metadata(): Record<string, unknown> } | undefined;

/**
 * The level a request of `client` with `params` needs. The operator's requirement everywhere spares
 * the account page, where a person without a second factor sets one up (someone who has one is
 * asked for it there too, as everywhere).
 */
export function requiredAcrFor(client: ClientLike, params: Record<string, unknown>, mfaEverywhere: boolean): Acr {
  const everywhere = mfaEverywhere && client?.clientId !== FIRST_PARTY_PAGES.account.clientId;
  const asked = requiredAcr(params.acr_values, everywhere || (client !== undefined && clientMetadata(client)[REQUIRE_MFA_PROPERTY] === true));
  const essential = requiredAcr(essentialAcrValues(params.claims), false);
  return ACR_VALUES.indexOf(essential) > ACR_VALUES.indexOf(asked) ? essential : asked;
}

/**
 * The values of an essential `acr` in the claims parameter's id_token member, space-separated.
 * OIDC Core §5.5.1.1: an essential acr that cannot be met is a failed authentication, so it counts
 * like acr_values (a person without the factor is asked to set one up or the app gets
 * unmet_authentication_requirements) instead of sending the person back to the login page forever.
 */
function essentialAcrValues(claims: unknown): string {
  const acr = askedAcr(claims);
  if (!acr || acr.essential !== true) return '';
  return valuesAsked(acr).filter((value): value is string => typeof value === 'string').join(' ');
}

/** The values an `acr` member asks: `values`, or its one `value`. */
const valuesAsked = (acr: AskedAcr): unknown[] => (Array.isArray(acr.values) ? acr.values : [acr.value]);

/**
 * The `acr` an ID token says for a sign-in at `reached` when the request asked `asked` (the claims
 * parameter's `acr` member): `reached` when it is one of the values asked or nothing essential was
 * asked, else the highest value asked that it meets (pwd < mfa < phr).
 */
export function essentialAcrMet(reached: string, asked: AskedAcr | undefined): string {
  if (asked?.essential !== true) return reached;
  const values = valuesAsked(asked).filter((value): value is Acr => (ACR_VALUES as readonly unknown[]).includes(value));
  if (!values.length || values.includes(reached as Acr)) return reached;
  const met = values.filter((value) => satisfies(reached, value));
  return met.length ? met.reduce((high, value) => (ACR_VALUES.indexOf(value) > ACR_VALUES.indexOf(high) ? value : high)) : reached;
}

/** ID tokens say the `acr` essentialAcrMet gives for what their request asked (signed userinfo, where §5.5.1.1 does not apply, the sign-in's own). */
export function essentialAcrInIdTokens(provider: Provider): void {
  type IdTokenLike = { available: { acr?: unknown }; mask?: { acr?: AskedAcr }; set(key: string, value: unknown): void };
  const IdToken = provider.IdToken as unknown as { prototype: IdTokenLike & { issue(options?: { use?: string }): Promise<string> } };
  const issue = IdToken.prototype.issue;
  if (typeof issue !== 'function') throw new Error('oidc-provider IdToken#issue is gone: review src/provider/patches/step-up.ts');
  IdToken.prototype.issue = async function (this: IdTokenLike, options?: { use?: string }) {
    const reached = this.available.acr;
    // set() puts it in the token's extra claims, which override the available ones.
    if (options?.use === 'idtoken' && typeof reached === 'string') {
      const said = essentialAcrMet(reached, this.mask?.acr ?? undefined);
      if (said !== reached) this.set('acr', said);
    }
    return issue.call(this, options);
  };
}

/**
 * A device's grant is never `phr`. A passkey is phishing-resistant because it is bound to our origin:
 * a look-alike site cannot relay its sign-in. The device flow is that relay by design: whoever holds a
 * device code gets what the person approves at /device, and the user code that ties them is sent on
 * as easily as a link (RFC 8628 §5.4, remote phishing). So a device code approved in a session signed
 * in with a passkey says `mfa` (what the passkey with its user verification is, less the binding the
 * device flow does without), and so do the ID token, refresh token and access tokens made from it;
 * `amr` still says what was used. Before the seventeenth passes the device's tokens said `phr`, and an
 * app or API asking for a phishing-resistant sign-in took an attacker's device for one. The browser's
 * session keeps its own level. Written as the approval saves the code (the engine copies the
 * session's `acr` onto it then: device.js deviceVerificationResponse).
 */
export function deviceGrantsBelowPhr(provider: Provider): void {
  const DeviceCode = provider.DeviceCode as unknown as { prototype: { acr?: unknown; save(...args: unknown[]): Promise<unknown> } };
  const save = DeviceCode.prototype.save;
  if (typeof save !== 'function') throw new Error('oidc-provider DeviceCode#save is gone: review src/provider/patches/step-up.ts');
  DeviceCode.prototype.save = function (this: { acr?: unknown }, ...args: unknown[]) {
    if (this.acr === 'phr') this.acr = RELAYED_ACR;
    return save.apply(this, args);
  };
}

/** The most a sign-in relayed to another party (a device's) says. */
export const RELAYED_ACR: Acr = 'mfa';

/** What a device asking `phr` is told (and the page at /device tells the person from it: interactions/device.ts). */
export const DEVICE_PHR_UNMET = `a device's sign-in is never phishing-resistant (acr ${RELAYED_ACR} at most): its user code can be relayed (RFC 8628 §5.4)`;

/** The claims parameter's id_token `acr` member (OIDC Core §5.5.1). */
type AskedAcr = { essential?: unknown; value?: unknown; values?: unknown };

/** The claims parameter's id_token `acr` member, if it parses. */
function askedAcr(claims: unknown): AskedAcr | undefined {
  let parsed: unknown;
  try {
    parsed = typeof claims === 'string' ? JSON.parse(claims) : claims;
  } catch {
    return undefined;
  }
  return (parsed as { id_token?: { acr?: AskedAcr } } | null)?.id_token?.acr ?? undefined;
}

/** `policy` with the acr_level check on its login prompt, in place of the engine's exact essential acr checks. */
export function withStepUp(policy: interactionPolicy.DefaultPolicy, mfaEverywhere: boolean): interactionPolicy.DefaultPolicy {
  const login = policy.get('login');
  // Fails loudly at start if an upgrade renamed the prompt or the checks this relies on.
  if (!login || !login.checks.get('essential_acrs') || !login.checks.get('essential_acr')) throw new Error('oidc-provider has no login prompt or essential acr checks: review src/provider/patches/step-up.ts');
  login.checks.remove('essential_acrs');
  login.checks.remove('essential_acr');
  login.checks.add(
    // The error is named: a Check added after the prompt was made does not take the prompt's
    // (login_required), and prompt=none would answer the generic interaction_required.
    new interactionPolicy.Check('acr_level', 'a stronger sign-in is required', 'login_required', (ctx: KoaContextWithOIDC) => {
      const { oidc } = ctx;
      // An essential acr none of whose values we offer can never be met: a failed authentication
      // now (OIDC Core §5.5.1.1), rather than the engine's essential_acr check asking to log in forever.
      // (One whose values is no list of strings was refused with the request: claims-requests.ts.)
      const essential = essentialAcrValues(oidc.params?.claims);
      if (essential && !essential.split(' ').some((value) => (ACR_VALUES as readonly string[]).includes(value))) {
        throw new errors.UnmetAuthenticationRequirements('none of the essential acr values is offered (see acr_values_supported)');
      }
      const required = requiredAcrFor(oidc.client as unknown as ClientLike, oidc.params ?? {}, mfaEverywhere);
      // A device's request needing `phr` can never be met (deviceGrantsBelowPhr): said at /device
      // before the person signs in for nothing, and the device is told at its next poll.
      if (required === 'phr' && oidc.deviceCode) {
        throw new errors.UnmetAuthenticationRequirements(DEVICE_PHR_UNMET);
      }
      if (!oidc.session?.accountId) return interactionPolicy.Check.NO_NEED_TO_PROMPT; // no_session asks already
      return satisfies(oidc.acr, required) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );
  return policy;
}

/** Whether a grant signed in at `acr` is as strong as `client` requires now (what a refresh of it is held to; introspection asks too). */
export function refreshLevelMet(client: ClientLike, acr: unknown, mfaEverywhere: boolean): boolean {
  return satisfies(acr, requiredAcrFor(client, {}, mfaEverywhere));
}

/** Refresh tokens, codes and device codes from a sign-in weaker than their client now requires are refused (see above). */
export function requireLevelAtTokenEndpoint(provider: Provider, mfaEverywhere: boolean): void {
  checkAtTokenEndpoint<NonNullable<ClientLike>>([provider.RefreshToken, provider.AuthorizationCode, provider.DeviceCode], (token, client) => {
    // A device code not yet approved has no sign-in to weigh (its polling goes on).
    if (token.accountId && !refreshLevelMet(client, token.acr, mfaEverywhere)) {
      throw new errors.InvalidGrant('the client requires a stronger sign-in than this grant was issued for');
    }
  });
}
