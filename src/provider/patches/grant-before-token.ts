/**
 * A token revoked with its grant: the grant's revocation comes before the token's deletion.
 *
 * oidc-provider destroys an access or refresh token and then revokes its grant (the revocation
 * endpoint, RFC 7009 §2.1; a rotated refresh token presented again, RFC 9700 §4.14.2). When the
 * store failed between the two (the client got an error), the token was gone: the client's retry
 * was answered 200 for an unknown token, the reuse was "not found", and the grant's other tokens,
 * its JWT access tokens among them, kept working. Revoking the grant first leaves the token there
 * to present again until the grant's revocation succeeded.
 *
 * A token's destruction (the revocation endpoint's, the only caller for an access token; a refresh
 * token's reuse) ends its grant whole, its record included, first (the adapter's destroy: the engine's
 * revocation of the grant's tokens that follows finds nothing left). Before the twenty-third endings
 * pass only the grant's artifacts and revocation-list entry went first: a revocation refused at the
 * record's deletion had spent the token, and the grant outlived the retry's 200.
 *
 * An access token's RFC 7009 revocation ended only the grant's tokens issued up to then (the engine's
 * revokeGrantPolicy keeps the grant): a refresh already under way when the app revoked saved its new
 * refresh token after the revocation deleted the grant's, and the chain went on rotating, its access
 * tokens working (3 of 10 runs across two instances, 7 of 10 with concurrent refreshes: granting and
 * endings pass of 2026-12-06). An ended grant is marked (the list's endGrant) before its record goes,
 * and a token made from it later finds no grant. The consent stays remembered: the app's next
 * sign-in makes a new grant without asking (revocation.ts's JWTs do the same: jwt-access-tokens.ts).
 */
import type { Provider } from 'oidc-provider';

type TokenModel = { prototype: { destroy(): Promise<void>; grantId?: string } };
type GrantModel = { adapter: { destroy(grantId: string): Promise<void> } };

export function revokeGrantBeforeToken(provider: Provider): void {
  const grants = provider.Grant as unknown as GrantModel;
  for (const model of [provider.AccessToken, provider.RefreshToken] as unknown as TokenModel[]) {
    const destroy = model.prototype.destroy;
    model.prototype.destroy = async function destroyAfterGrant(this: { grantId?: string }) {
      if (this.grantId) await grants.adapter.destroy(this.grantId);
      return destroy.call(this);
    };
  }
}
