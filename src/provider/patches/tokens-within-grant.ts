/**
 * A person's access token is issued with no `exp` past the end of the grant it is issued under: the
 * person's consent to the client, which lives `ttl.grant` after it was saved (ttl.Grant).
 *
 * oidc-provider refuses a code, device code or refresh token whose grant has expired, and checks the
 * grant when it finds a stored (opaque) access token at userinfo and introspection, so those end
 * with it. A JWT access token is not stored: its API verifies it alone (the JWKS, the revocation
 * feed), and so does our introspection (jwt-access-tokens.ts). A grant's expiry is no act: nothing
 * goes on the revocation list, and a JWT issued in the grant's last stretch (a refresh shortly
 * before it ends, a code from a session's grant near its end) lived on to its `exp`, up to a whole
 * access token lifetime (an API's accessTokenTTL) after the consent had ended and every refresh was
 * refused (red team's sixth granting pass). The same as tokens-within-session.ts does for a session.
 *
 * What it changes in oidc-provider: AccessToken#save, for a token of the grant the request found
 * (ctx.oidc.entities.Grant, the authorization_code, device_code and refresh_token grants all set it
 * before they make the token), lowers its `expiresIn` (from which the engine takes `exp`, the stored
 * record's lifetime and the response's `expires_in`) to the seconds left of the grant, counted on
 * this machine's clock as the engine stamped the grant's `exp`. No read more: the engine has just
 * read the grant. Pinned by test/unit/provider-patches.test.ts and test/e2e/redteam-granted-6.test.ts.
 */
import { Provider } from 'oidc-provider';
import { machineSeconds } from '../../clock.js';

type GrantFound = { jti?: unknown; exp?: unknown };
type GrantBound = { grantId?: unknown; expiresIn?: number; readonly expiration: number };

export function accessTokensWithinGrants(provider: Provider): void {
  const prototype = provider.AccessToken.prototype as unknown as GrantBound & { save(): Promise<string> };
  const save = prototype.save;
  if (typeof save !== 'function') throw new Error('oidc-provider AccessToken#save is gone: review src/provider/patches/tokens-within-grant.ts');
  prototype.save = async function (this: GrantBound) {
    const grant = (Provider.ctx as { oidc?: { entities?: { Grant?: GrantFound } } } | undefined)?.oidc?.entities?.Grant;
    if (grant && typeof this.grantId === 'string' && grant.jti === this.grantId && typeof grant.exp === 'number') {
      this.expiresIn = Math.max(1, Math.min(this.expiration, grant.exp - machineSeconds()));
    }
    return save.call(this);
  };
}
