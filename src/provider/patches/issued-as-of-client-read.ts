/**
 * A client's own token (client_credentials) is issued as of the second its request read the client.
 *
 * Every ending of a client's own tokens is a mark "issued at or before this second" on the
 * revocation list (revocation/list.ts: `client` when it is deleted, `client_grant` when its secret
 * is rotated without grace or client_credentials is taken from it), raised after the client's
 * record changed. oidc-provider stamps a token's `iat` when it saves it, at the end of the request:
 * a request that read the client before the ending and went on past the mark's second (held at its
 * DPoP proof's replay check, or just slow) issued a token after the mark, which no entry ends. The
 * client's JWT then worked at every resource server (and at introspection, after a rotation or
 * client_credentials taken away) for its whole lifetime, after the operator was told it was gone.
 *
 * What it changes in oidc-provider: Client.find notes, for the request (its Koa context), the second
 * before its first read of a client; ClientCredentials#save takes that second as the token's `iat`.
 * The read's answer is at or after it, and an ending the read did not see raises its mark after its
 * change: at or after it too, so the mark ends the token. `exp` stays the engine's (now + lifetime).
 * Pinned by test/unit/provider-patches.test.ts and test/e2e/redteam-endings.test.ts.
 */
import { Provider } from 'oidc-provider';
import { epochSeconds } from '../../clock.js';

type Find = (id: string, ...rest: unknown[]) => Promise<unknown>;

export function ownTokensIssuedAsOfClientRead(provider: Provider): void {
  const Client = provider.Client as unknown as { find: Find };
  const firstRead = new WeakMap<object, number>();
  const find = Client.find.bind(Client);
  Client.find = (id, ...rest) => {
    const request = Provider.ctx as object | undefined;
    if (request && !firstRead.has(request)) firstRead.set(request, epochSeconds());
    return find(id, ...rest);
  };

  const prototype = provider.ClientCredentials.prototype as unknown as { iat?: number; save(...args: unknown[]): Promise<string> };
  const save = prototype.save;
  prototype.save = function (this: { iat?: number }, ...args: unknown[]) {
    const request = Provider.ctx as object | undefined;
    const readAt = request && firstRead.get(request);
    if (this.iat === undefined && readAt !== undefined) this.iat = readAt;
    return save.apply(this, args);
  };
}
