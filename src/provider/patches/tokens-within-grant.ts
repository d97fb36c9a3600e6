/**
 * A person's access token, refresh token and ID token are issued with no `exp` past the end of the
 * grant they are issued under: the person's consent to the client, which lives `ttl.grant` after it
 * was saved (ttl.Grant).
 *
 * oidc-provider refuses a code, device code or refresh token whose grant has expired, and checks the
 * grant when it finds a stored (opaque) access token at userinfo and introspection, so those end
 * with it. A JWT access token is not stored: its API verifies it alone (the JWKS, the revocation
 * feed), and so does our introspection (jwt-access-tokens.ts). A grant's expiry is no act: nothing
 * goes on the revocation list, and a JWT issued in the grant's last stretch (a refresh shortly
 * before it ends, a code from a session's grant near its end) lived on to its `exp`, up to a whole
 * access token lifetime (an API's accessTokenTTL) after the consent had ended and every refresh was
 * refused (red team's sixth granting pass). The same as tokens-within-session.ts does for a session.
 * A refresh token and an ID token got nothing past the grant (the engine refuses the one, the other
 * is no access credential), but said they did: a refresh token rotated in the grant's last stretch
 * introspected with an `exp` up to ttl.refreshToken past it and its record outlived it in the
 * store, and an ID token (ttl.idToken, an hour by default) told its app the sign-in was good to
 * rely on after the consent had ended (red team's seventh granting pass): both are bounded alike.
 *
 * What it changes in oidc-provider: AccessToken#save and RefreshToken#save, for a token of the grant
 * the request found (ctx.oidc.entities.Grant, the authorization_code, device_code and refresh_token
 * grants all set it before they make their tokens), lower its `expiresIn` (from which the engine
 * takes `exp`, the stored record's lifetime and the response's `expires_in`) to the seconds left of
 * the grant, counted on this machine's clock as the engine stamped the grant's `exp`; and
 * IdToken.expiresIn, which IdToken#issue asks for an ID token's lifetime (only ID tokens: a logout
 * token's is fixed, a signed userinfo answer has none), lowers it alike for an ID token of the
 * request's grant (its client's). No read more: the engine has just read the grant. Pinned by
 * test/unit/provider-patches.test.ts, test/e2e/redteam-granted-6.test.ts and redteam-granted-7.test.ts.
 */
import { Provider } from 'oidc-provider';
import { machineSeconds } from '../../clock.js';

type GrantFound = { jti?: unknown; exp?: unknown; clientId?: unknown };
type GrantBound = { grantId?: unknown; expiresIn?: number; readonly expiration: number };
type WithinGrant = { oidc?: { entities?: { Grant?: GrantFound } } };
type IdTokenModel = { expiresIn(ctx: unknown, token: unknown, client: { clientId?: unknown } | undefined): number };

/** The grant the request found, if it has an expiry and `matches` it. */
function grantOfRequest(ctx: unknown, matches: (grant: GrantFound) => boolean): (GrantFound & { exp: number }) | undefined {
  const grant = (ctx as WithinGrant | undefined)?.oidc?.entities?.Grant;
  return grant && typeof grant.exp === 'number' && matches(grant) ? (grant as GrantFound & { exp: number }) : undefined;
}

/** `lifetime` seconds, and none past `grant`'s end (at least 1: the engine takes positive integers). */
function withinGrant(lifetime: number, grant: { exp: number }): number {
  return Math.max(1, Math.min(lifetime, grant.exp - machineSeconds()));
}

export function accessTokensWithinGrants(provider: Provider): void {
  for (const model of [provider.AccessToken, provider.RefreshToken]) {
    const prototype = model.prototype as unknown as GrantBound & { save(): Promise<string> };
    const save = prototype.save;
    if (typeof save !== 'function') throw new Error(`oidc-provider ${model.name}#save is gone: review src/provider/patches/tokens-within-grant.ts`);
    prototype.save = async function (this: GrantBound) {
      const grant = grantOfRequest(Provider.ctx, (found) => typeof this.grantId === 'string' && found.jti === this.grantId);
      if (grant) this.expiresIn = withinGrant(this.expiration, grant);
      return save.call(this);
    };
  }

  const IdToken = provider.IdToken as unknown as IdTokenModel;
  const expiresIn = IdToken.expiresIn;
  if (typeof expiresIn !== 'function') throw new Error('oidc-provider IdToken.expiresIn is gone: review src/provider/patches/tokens-within-grant.ts');
  IdToken.expiresIn = function (ctx, token, client) {
    const lifetime = expiresIn.call(this, ctx, token, client);
    const grant = grantOfRequest(ctx, (found) => client !== undefined && found.clientId === client.clientId);
    return grant ? withinGrant(lifetime, grant) : lifetime;
  };
}
