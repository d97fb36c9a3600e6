/**
 * Every token the token endpoint issues (a client's own, client_credentials; a person's access and
 * refresh tokens, for a code, a refresh token or a device code) is issued as of the second its
 * request read the client.
 *
 * Every ending of a client's tokens is a mark "issued at or before this second" on the revocation
 * list (revocation/list.ts: `client` when it is deleted, `client_grant` when its secret is rotated
 * without grace or client_credentials is taken from it, `delegated` when it is made public), raised
 * after the client's record changed. oidc-provider stamps a token's `iat` when it saves it, at the
 * end of the request: a request that read the client before the ending and went on past the mark's
 * second (held at a store round trip after its reads, or just slow) issued a token after the mark,
 * which no entry ends. The client's JWT then worked at every resource server (and at introspection,
 * after a rotation or client_credentials taken away) for its whole lifetime, after the operator
 * was told it was gone; a person's refresh in flight as the client was made public got an access
 * token the `delegated` mark missed (residuals pass of 2026-12-01).
 *
 * What it changes in oidc-provider: Client.find notes, for the request (its Koa context), the second
 * before its first read of a client; ClientCredentials#save, AccessToken#save and RefreshToken#save
 * take that second as the token's `iat`. The read's answer is at or after it, and an ending the read
 * did not see raises its mark after its change: at or after it too, so the mark ends the token.
 * `exp` is counted from that `iat` when the engine has not set one (it counts from the signing
 * second, which gave exp - iat one more than the announced lifetime across a second). Pinned by
 * test/unit/provider-patches.test.ts, test/e2e/redteam-endings.test.ts,
 * test/e2e/redteam-residuals.test.ts and test/e2e/session-bound-jwt.test.ts.
 */
import { Provider } from 'oidc-provider';
import { epochSeconds } from '../../clock.js';

type Find = (id: string, ...rest: unknown[]) => Promise<unknown>;
type Saved = { prototype: { iat?: number; exp?: number; readonly expiration?: number; save(...args: unknown[]): Promise<string> } };

export function tokensIssuedAsOfClientRead(provider: Provider): void {
  const Client = provider.Client as unknown as { find: Find };
  const firstRead = new WeakMap<object, number>();
  const find = Client.find.bind(Client);
  Client.find = (id, ...rest) => {
    const request = Provider.ctx as object | undefined;
    if (request && !firstRead.has(request)) firstRead.set(request, epochSeconds());
    return find(id, ...rest);
  };

  for (const Model of [provider.ClientCredentials, provider.AccessToken, provider.RefreshToken] as unknown as Saved[]) {
    const prototype = Model.prototype;
    const save = prototype.save;
    prototype.save = function (this: { iat?: number; exp?: number; readonly expiration?: number }, ...args: unknown[]) {
      const request = Provider.ctx as object | undefined;
      const readAt = request && firstRead.get(request);
      if (this.iat === undefined && readAt !== undefined) {
        this.iat = readAt;
        // Its lifetime counted from that iat too (the engine counts it from the signing second, so
        // a request that crossed a second gave exp - iat one more than the lifetime it announces).
        const lifetime = this.expiration;
        if (this.exp === undefined && lifetime) this.exp = readAt + lifetime;
      }
      return save.apply(this, args);
    };
  }
}
