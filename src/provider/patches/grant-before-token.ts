/**
 * A token revoked with its grant: the grant's revocation comes before the token's deletion.
 *
 * oidc-provider destroys an access or refresh token and then revokes its grant (the revocation
 * endpoint, RFC 7009 §2.1; a rotated refresh token presented again, RFC 9700 §4.14.2). When the
 * store failed between the two (the client got an error), the token was gone: the client's retry
 * was answered 200 for an unknown token, the reuse was "not found", and the grant's other tokens,
 * its JWT access tokens among them, kept working. Revoking the grant first (its artifacts and its
 * revocation-list entry: the adapter's revokeByGrantId, which the engine calls next anyway, a no-op
 * then) leaves the token there to present again until the grant's revocation succeeded.
 */
import type { Provider } from 'oidc-provider';

type TokenModel = { revokeByGrantId(grantId: string): Promise<void>; prototype: { destroy(): Promise<void>; grantId?: string } };

export function revokeGrantBeforeToken(provider: Provider): void {
  for (const model of [provider.AccessToken, provider.RefreshToken] as unknown as TokenModel[]) {
    const destroy = model.prototype.destroy;
    model.prototype.destroy = async function destroyAfterGrant(this: { grantId?: string }) {
      if (this.grantId) await model.revokeByGrantId(this.grantId);
      return destroy.call(this);
    };
  }
}
