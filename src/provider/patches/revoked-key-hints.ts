/**
 * An id_token_hint signed by a revoked key (`latchkey keys revoke`) is refused at once.
 *
 * oidc-provider validates hints against its own keystore, which drops a revoked key only when this
 * instance follows the ring (within keys.refreshInterval) and builds a new provider. Until then the
 * revocation list's kid entry, written before the ring changes, is what says the key is revoked:
 * IdToken.validate (which both readers of hints, authorization and end-session, go through and
 * whose failure they answer with invalid_request "could not validate id_token_hint") checks it
 * first. One store read per hint; hints are not on a hot path.
 */
import { decodeProtectedHeader } from 'jose';
import type { Provider } from 'oidc-provider';
import type { RevocationList } from '../../revocation/list.js';

export function refuseHintsOfRevokedKeys(provider: Provider, revocations: RevocationList): void {
  const IdToken = provider.IdToken as unknown as { validate(jwt: string, client: unknown): Promise<unknown> };
  const validate = IdToken.validate.bind(IdToken);
  IdToken.validate = async (jwt: string, client: unknown) => {
    const { kid } = decodeProtectedHeader(jwt);
    if (await revocations.isRevoked({}, { kid })) throw new TypeError(`the key ${String(kid)} is revoked`);
    return validate(jwt, client);
  };
}
