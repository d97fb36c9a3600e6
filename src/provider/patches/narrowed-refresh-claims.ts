/**
 * A refresh that narrows the scope (RFC 6749 §6: the client asks for fewer scopes than the refresh
 * token holds, to hand a token of less to a part of itself it trusts less) narrows the person's
 * claims with it, whichever way they were asked: by a scope, or by name with the `claims` parameter
 * (OIDC Core §5.5) as well.
 *
 * oidc-provider fills a refreshed ID token and the refreshed access token's userinfo answer from
 * two sources: the claims of the token's scopes (narrowed, held since the ninth-round granting audit)
 * and the claims the sign-in asked for by name, which the refresh token carries whole
 * (lib/actions/grants/refresh_token.js: `at.claims = refreshToken.claims`, and issueIdToken reads
 * `source.claims` of the refresh token). So a person's email and name asked both ways (`scope=openid
 * email profile offline_access` with `claims` naming them, as many libraries do) were still in the ID
 * token and at userinfo of a token narrowed to `openid offline_access`, whose `scope` (in the token
 * answer and at introspection) said they were not (red team's sixth granting pass).
 *
 * Now, at a refresh whose `scope` leaves out OpenID scopes its refresh token holds, the claims of
 * those scopes are taken out of what was asked by name: from the access token's claims (saved, so
 * userinfo reads the narrowed ones) and from the ID token's mask before it is signed. Claims asked by
 * name alone (no scope of theirs ever asked, the person allowed them by name) are kept, as is the
 * refresh token (its scope is unchanged: a later refresh without narrowing gets them back).
 * Pinned by test/unit/provider-patches.test.ts and test/e2e/redteam-granted-6.test.ts.
 */
import { Provider } from 'oidc-provider';
import { SCOPE_CLAIMS } from '../scope-claims.js';

type ClaimsMember = Record<string, unknown>;
type ClaimsParameter = { userinfo?: ClaimsMember; id_token?: ClaimsMember; [member: string]: unknown };
type RefreshContext = {
  oidc?: {
    route?: string;
    params?: { grant_type?: unknown; scope?: unknown };
    requestParamScopes?: Set<string>;
    entities?: { RotatedRefreshToken?: { scopes?: Set<string> }; RefreshToken?: { scopes?: Set<string> } };
  };
};

/** No claims: what every token saved outside a narrowing refresh gets, without a set made for it. */
const NONE: ReadonlySet<string> = new Set();

/** The claims of the OpenID scopes this request's refresh token holds and its `scope` leaves out; none outside a narrowing refresh. */
export function claimsLeftOut(ctx: RefreshContext | undefined): ReadonlySet<string> {
  const oidc = ctx?.oidc;
  if (oidc?.route !== 'token' || oidc.params?.grant_type !== 'refresh_token' || typeof oidc.params.scope !== 'string') return NONE;
  const held = (oidc.entities?.RotatedRefreshToken ?? oidc.entities?.RefreshToken)?.scopes;
  const asked = oidc.requestParamScopes;
  if (!held || !asked) return NONE;
  return new Set(Object.entries(SCOPE_CLAIMS).flatMap(([scope, claims]) => (scope !== 'openid' && held.has(scope) && !asked.has(scope) ? claims : [])));
}

/** `member` without the claims `out`. */
function without(member: unknown, out: ReadonlySet<string>): unknown {
  if (!member || typeof member !== 'object' || Array.isArray(member)) return member;
  return Object.fromEntries(Object.entries(member).filter(([claim]) => !out.has(claim)));
}

interface Models {
  AccessToken: { prototype: { claims?: ClaimsParameter; save(): Promise<string> } };
  IdToken: { prototype: { mask?: ClaimsMember; issue(options?: object): Promise<string> } };
}

export function narrowedRefreshClaims(provider: Provider): void {
  const { AccessToken, IdToken } = provider as unknown as Models;
  const save = AccessToken.prototype.save;
  const issue = IdToken.prototype.issue;
  if (typeof save !== 'function' || typeof issue !== 'function') throw new Error('oidc-provider AccessToken#save or IdToken#issue is gone: review src/provider/patches/narrowed-refresh-claims.ts');

  AccessToken.prototype.save = async function (this: { claims?: ClaimsParameter }) {
    const out = claimsLeftOut(Provider.ctx as RefreshContext | undefined);
    if (out.size && this.claims) {
      const claims: ClaimsParameter = { ...this.claims };
      for (const member of ['userinfo', 'id_token'] as const) if (claims[member]) claims[member] = without(claims[member], out) as ClaimsMember;
      this.claims = claims;
    }
    return save.call(this);
  };

  IdToken.prototype.issue = async function (this: { mask?: ClaimsMember }, options?: object) {
    const out = claimsLeftOut(Provider.ctx as RefreshContext | undefined);
    if (out.size && this.mask) this.mask = without(this.mask, out) as ClaimsMember;
    return issue.call(this, options);
  };
}
