/**
 * Introspection of an opaque token whose client was deleted answers `{ "active": false }`.
 *
 * oidc-provider answers active for an opaque client_credentials token as long as its record lives,
 * even when its client is gone: it looks the client up only to compute pairwise subjects. Tokens
 * under a grant are deleted with the client's grants, but client_credentials tokens belong to no
 * grant. So introspection's allowedPolicy (provider.ts) also asks the revocation list, whose client
 * entry says "every token of this client issued up to the deletion", in the same round trip as it
 * reads the operator grants: a token of a deleted client is not introspectable, so oidc-provider
 * answers it inactive.
 */
import type { RevocationList } from './list.js';

/** Whether the opaque token of `clientId` issued at `iat` belongs to a client deleted since. */
export function ofDeletedClient(list: RevocationList, clientId: unknown, iat: unknown): Promise<boolean> {
  return list.isRevoked({ client_id: clientId, iat });
}
