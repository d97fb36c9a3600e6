/**
 * Introspection of an opaque token on the revocation list answers `{ "active": false }`.
 *
 * oidc-provider answers active for an opaque client_credentials token as long as its record lives,
 * even when its client is gone: it looks the client up only to compute pairwise subjects. Tokens
 * under a grant are deleted with the client's grants, but client_credentials tokens belong to no
 * grant, and no token is deleted when its API is removed or an operator narrows a client's grant.
 * So introspection's allowedPolicy (provider.ts) also asks the revocation list, whose client, api,
 * client_grant and sub entries say "every such token issued up to then", in the same round trip as it
 * reads the operator grants: a revoked token is not introspectable, so oidc-provider answers it
 * inactive.
 */
import type { RevocationList } from './list.js';

/** What introspection knows of an opaque token (oidc-provider's model). */
export interface OpaqueToken {
  readonly clientId?: unknown;
  /** The person it was issued to (none for a client's own token). */
  readonly accountId?: unknown;
  readonly iat?: unknown;
  readonly aud?: unknown;
  readonly scope?: unknown;
  /** Issued by client_credentials: the client's own, under no grant. */
  readonly clientCredentials: boolean;
  /**
   * A refresh token: narrowed with its client, not ended (refresh-rotation.ts), so its scopes are not
   * weighed; nor ended by a requirement raised (RevocationList.revokeRaised: it ends access tokens).
   */
  readonly refreshToken?: boolean;
}

/** Whether an opaque token was revoked through its person, its client, its API, or its client's grant at the API. */
export function opaqueRevoked(list: RevocationList, { clientId, accountId, iat, aud, scope, clientCredentials, refreshToken = false }: OpaqueToken): Promise<boolean> {
  // A token under a grant is deleted with it, but a revocation of a person's grants may stop half-way:
  // their sub entry, written first, ends it regardless; and the client, API and client_grant entries.
  return list.isRevoked({ client_id: clientId, sub: accountId, iat, aud, scope: refreshToken ? undefined : scope }, {}, clientCredentials, refreshToken);
}
