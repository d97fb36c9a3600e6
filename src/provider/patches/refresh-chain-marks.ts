/**
 * What a refresh token chain remembers of how it began, carried from each token to the one rotated
 * from it: oidc-provider copies none of our properties to the rotated token, so each mark is kept in
 * the payload (IN_PAYLOAD) and set again on the new token as it is saved. Read by provider.ts's
 * `ttl.RefreshToken`, which keeps a browser's chain within its first token's lifetime (RFC 9700
 * §4.14.2: a thief refreshing a token stolen from a page does not extend the chain):
 *
 * - `boundLate`: the chain took its DPoP binding at a refresh (it began unbound, so the binding proves
 *   nothing about who took it up: a thief's key would do); set by dpop-bound-refresh.ts.
 * - `heldInBrowser`: the chain's first token was asked for by a page (the request carried `Origin`,
 *   which browsers send with a cross-origin fetch and with every POST), of a public client, whatever
 *   its `application_type`: a browser app registered as `native` with an https redirect URI is
 *   answered by CORS from that origin, and took the whole lifetime at each rotation (seventeenth
 *   passes, test/e2e/browser-held-refresh-seventeenth.test.ts). A native app's own requests send none.
 *
 * A token without a mark stores nothing more (a chain begun before this release has none: it keeps
 * the rule it began under, at most `ttl.grant`).
 */
import { Provider, type KoaContextWithOIDC } from 'oidc-provider';
import { keptInPayload } from './payload-properties.js';

export const BOUND_LATE = 'boundLate';
export const HELD_IN_BROWSER = 'heldInBrowser';
const MARKS = [BOUND_LATE, HELD_IN_BROWSER] as const;
type Mark = (typeof MARKS)[number];

type Marked = Partial<Record<Mark, unknown>>;

/** Whether `token` (a refresh token, or nothing) carries `mark`. */
export function marked(token: unknown, mark: Mark): boolean {
  return (token as Marked | undefined)?.[mark] === true;
}

/** Sets `mark` on a refresh token about to be saved (or rotated from). */
export function mark(token: unknown, which: Mark): void {
  (token as Marked)[which] = true;
}

export function refreshChainMarks(provider: Provider): void {
  const RefreshToken = provider.RefreshToken as unknown as { prototype: Marked & { save(...args: unknown[]): Promise<unknown> } };
  keptInPayload(RefreshToken, ...MARKS);
  const save = RefreshToken.prototype.save;
  if (typeof save !== 'function') throw new Error('oidc-provider Model#save is gone: review src/provider/patches/refresh-chain-marks.ts');
  RefreshToken.prototype.save = function (this: Marked, ...args: unknown[]) {
    const ctx = Provider.ctx as KoaContextWithOIDC | undefined;
    // At a rotation the engine names the new token RefreshToken before saving it, the old one RotatedRefreshToken.
    const rotated = ctx?.oidc?.entities?.RotatedRefreshToken;
    if (rotated) {
      for (const each of MARKS) if (this[each] === undefined && marked(rotated, each)) this[each] = true;
    } else if (this[HELD_IN_BROWSER] === undefined && ctx?.oidc?.client?.clientAuthMethod === 'none' && ctx.get('origin') !== '') {
      this[HELD_IN_BROWSER] = true;
    }
    return save.apply(this, args);
  };
}
