/**
 * A property that a refresh token chain carries from its beginning to every token rotated from it,
 * one call a property (grant-given-at.ts, signed-in-through.ts, refresh-chain-marks.ts).
 *
 * oidc-provider stores only a model's IN_PAYLOAD and copies none of our properties to a rotated
 * token, so the property is kept in the payload of a refresh token (and of a code and a device code
 * where the chain's beginning records it too: `issued`) and set on a token as it is first saved: one
 * that has it (read from the store, or set by another patch) keeps it. A refresh token takes it, at
 * a rotation, from the token rotated (`rotated`, by default its value); else, a chain's first token,
 * from what it is made from in its request (`first`: the code or device code redeemed, the request).
 * A token stored before the property was kept has none, and its chain carries none.
 */
import { Provider, type KoaContextWithOIDC } from 'oidc-provider';
import { keptInPayload } from './payload-properties.js';

/** A code, device code or refresh token, as the engine makes or reads it. */
export type Carrying = Readonly<Record<string, unknown>>;
/** What a refresh token is made from in its request (the engine's ctx.oidc.entities). */
export type Sources = { RotatedRefreshToken?: Carrying; AuthorizationCode?: Carrying; DeviceCode?: Carrying };

export type Carried = {
  /** Whether `token` (of any of the models) takes the property at all; by default every one. */
  when?: (token: Carrying) => boolean;
  /** At a rotation: what the new refresh token takes from the one rotated; by default its value. */
  rotated?: (rotated: Carrying) => unknown;
  /** A chain's first refresh token: what it takes from what it is made from (nothing outside a request); by default nothing. */
  first?: (sources: Sources, ctx: KoaContextWithOIDC | undefined) => unknown;
  /** Given, codes and device codes keep the property too, and take this as they are saved until they have it. */
  issued?: (token: Carrying, model: 'AuthorizationCode' | 'DeviceCode') => unknown;
};

type Model = { prototype: { save(...args: unknown[]): Promise<unknown> } };

export function carriedAlongRefreshChain(provider: Provider, property: string, { when, rotated, first, issued }: Carried = {}): void {
  const models: Partial<Record<'RefreshToken' | 'AuthorizationCode' | 'DeviceCode', Model>> = { RefreshToken: provider.RefreshToken as unknown as Model };
  if (issued) Object.assign(models, { AuthorizationCode: provider.AuthorizationCode, DeviceCode: provider.DeviceCode });
  for (const [name, Token] of Object.entries(models)) {
    const save = Token.prototype.save;
    if (typeof save !== 'function') throw new Error('oidc-provider Model#save is gone: review src/provider/patches/carried-along-refresh-chain.ts');
    keptInPayload(Token, property);
    const valueOf = (token: Carrying): unknown => {
      if (name !== 'RefreshToken') return issued?.(token, name as 'AuthorizationCode' | 'DeviceCode');
      const ctx = Provider.ctx as KoaContextWithOIDC | undefined;
      const sources = (ctx?.oidc?.entities ?? {}) as Sources;
      // At a rotation the engine names the new token RefreshToken before saving it, the old one RotatedRefreshToken.
      if (sources.RotatedRefreshToken) return rotated ? rotated(sources.RotatedRefreshToken) : sources.RotatedRefreshToken[property];
      return first?.(sources, ctx);
    };
    Token.prototype.save = function (this: Record<string, unknown>, ...args: unknown[]) {
      if (this[property] !== undefined || (when && !when(this))) return save.apply(this, args);
      const saved = (value: unknown) => {
        if (value !== undefined) this[property] = value;
        return save.apply(this, args);
      };
      // Only a value that must be looked up waits: the others are set and saved as the engine calls save().
      const value = valueOf(this);
      return value instanceof Promise ? value.then(saved) : saved(value);
    };
  }
}
