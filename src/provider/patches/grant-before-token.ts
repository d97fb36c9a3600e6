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
 * A refresh token's destruction always ends its grant (the engine's revokeGrantPolicy keeps a grant
 * only for an access token's RFC 7009 revocation): the grant's whole ending, its record included,
 * comes first (the adapter's destroy, which the engine calls next anyway, a no-op then). Before
 * the twenty-third endings pass only its artifacts and revocation-list entry did: a revocation
 * refused at the record's deletion had spent the token, and the grant outlived the retry's 200.
 * An access token's keeps the grant: its artifacts and list entry (the adapter's revokeByGrantId).
 */
import type { Provider } from 'oidc-provider';

type TokenModel = { revokeByGrantId(grantId: string): Promise<void>; prototype: { destroy(): Promise<void>; grantId?: string } };
type GrantModel = { adapter: { destroy(grantId: string): Promise<void> } };

export function revokeGrantBeforeToken(provider: Provider): void {
  const grants = provider.Grant as unknown as GrantModel;
  const endings: [TokenModel, (grantId: string) => Promise<void>][] = [
    [provider.AccessToken as unknown as TokenModel, (grantId) => (provider.AccessToken as unknown as TokenModel).revokeByGrantId(grantId)],
    [provider.RefreshToken as unknown as TokenModel, (grantId) => grants.adapter.destroy(grantId)],
  ];
  for (const [model, endGrant] of endings) {
    const destroy = model.prototype.destroy;
    model.prototype.destroy = async function destroyAfterGrant(this: { grantId?: string }) {
      if (this.grantId) await endGrant(this.grantId);
      return destroy.call(this);
    };
  }
}
