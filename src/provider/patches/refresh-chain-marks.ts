/**
 * What a refresh token chain remembers of how it began, carried from each token to the one rotated
 * from it: oidc-provider copies none of our properties to the rotated token, so each mark is kept in
 * the payload (IN_PAYLOAD) and set again on the new token as it is saved (carried-along-refresh-chain.ts). Read by provider.ts's
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
import type { Provider } from 'oidc-provider';
import { carriedAlongRefreshChain } from './carried-along-refresh-chain.js';

export const BOUND_LATE = 'boundLate';
export const HELD_IN_BROWSER = 'heldInBrowser';
type Mark = typeof BOUND_LATE | typeof HELD_IN_BROWSER;

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
  // Set on the token rotated, at the refresh that binds it (dpop-bound-refresh.ts): carried from there.
  carriedAlongRefreshChain(provider, BOUND_LATE);
  carriedAlongRefreshChain(provider, HELD_IN_BROWSER, {
    first: (_sources, ctx) => (ctx?.oidc?.client?.clientAuthMethod === 'none' && ctx.get('origin') !== '') || undefined,
  });
}
