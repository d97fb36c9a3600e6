/**
 * What a client got while it was confidential (registered to authenticate at the token endpoint) is
 * redeemed only by it authenticating: a refresh token, code or device code made for it then is
 * `invalid_grant` once the client is public (`token_endpoint_auth_method: none`), before it is spent.
 * RFC 9700 §4.14.2: a confidential client's refresh token is sender-constrained by the client's
 * credential; redeemed with its `client_id` alone, whoever took it from the client's server (a
 * backup, a log) needs nothing else.
 *
 * A stored client made public (admin API, CLI, RFC 7592) ends these at the write (the delegated
 * mark: provider.ts clientReplaced). A client whose metadata changes without a write Latchkey sees
 * did not: an entry of the configuration (`CLIENTS`) changed to `none` and the server restarted, or
 * a Client ID Metadata Document that dropped its key (`private_key_jwt` to `none`) read again when
 * its cached copy expired; its refresh tokens then refreshed with the `client_id` alone (found by
 * the red team's eighth granting pass, 2026-12-02; left as a gap before). Now the mark is the
 * token's own, so every way a client becomes public is held alike.
 *
 * What it changes in oidc-provider: RefreshToken, AuthorizationCode and DeviceCode keep one more
 * property, `issuedConfidential` (IN_PAYLOAD), set when a new one is saved from the client it was
 * made for (the engine constructs each with `client`; one read from the store has none and keeps
 * what it was stored with; a rotated refresh token is a new one, marked from the client as it is at
 * the refresh); and a check at the token endpoint (token-endpoint-finds.ts) refuses a marked one
 * presented by a client that is public now. One made before this change is not marked and is
 * redeemed as before. Made confidential again, the client redeems it with its credential.
 */
import { errors, type Provider } from 'oidc-provider';
import { checkAtTokenEndpoint } from './token-endpoint-finds.js';
import { keptInPayload } from './payload-properties.js';

type Marked = { issuedConfidential?: boolean; client?: { clientAuthMethod?: string }; save(...args: unknown[]): Promise<unknown> };
type Model = { prototype: Marked };

const MARK = 'issuedConfidential';

export function confidentialRedemption(provider: Provider): void {
  const models = [provider.RefreshToken, provider.AuthorizationCode, provider.DeviceCode];
  for (const Token of models as unknown as Model[]) {
    keptInPayload(Token, MARK);
    const save = Token.prototype.save;
    Token.prototype.save = function saveMarked(this: Marked, ...args: unknown[]) {
      const method = this.client?.clientAuthMethod;
      if (this.issuedConfidential === undefined && typeof method === 'string') this.issuedConfidential = method !== 'none';
      return save.apply(this, args);
    };
  }
  checkAtTokenEndpoint<{ clientId: string; clientAuthMethod?: string }>(models, (token, client) => {
    if ((token as { issuedConfidential?: boolean }).issuedConfidential === true && client.clientAuthMethod === 'none') {
      throw new errors.InvalidGrant('this was issued while the client authenticated: it is redeemed only by the client authenticating');
    }
  });
}
