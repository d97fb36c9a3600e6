/**
 * A grant that a session names for an app, replaced there by another grant of the same app, ends
 * as a sign-out would end it.
 *
 * Two tabs of one browser at one app's consent page, both opened before the person allowed either:
 * the page adds to the grant the session names for the app only when the sign-in began with one
 * (interactions/consent.ts), so each Allow makes a grant of its own, and the second replaces the
 * first in the session (Session#grantIdFor). oidc-provider then refuses the first grant's
 * session-bound artifacts (its code, opaque access tokens and refresh tokens: token_helpers.js
 * checkSessionBinding compares the grant the session names), but its JWT access tokens are verified
 * alone, and an ending of the session revokes only the grants the session names: after "sign out
 * everywhere", the first tab's JWT access tokens were active at introspection and taken by APIs
 * following the revocation feed to their `exp` (seventh fresh-eyes passes, races).
 *
 * What it changes in oidc-provider: Session#grantIdFor(clientId, grantId) with another grant than
 * the one the session named remembers the replaced one on the session, and Session#save ends it
 * before the session is written, as the session's ending would (patches/logout-order.ts): revoked
 * when it does not outlive sign-out; when it does (offline access), its grant and refresh tokens
 * stay and the JWT access tokens issued up to now go on the revocation list (its session-bound
 * ones; the app refreshes for any other it loses so). Before the write: the engine refuses the
 * replaced grant's session-bound artifacts once the session names the other, so nothing is ended
 * that would have gone on working, and a save that fails leaves nothing of it alive.
 * Pinned by test/e2e/replaced-session-grants.test.ts.
 */
import type { Provider } from 'oidc-provider';
import type { SessionGrantEndings } from '../../revocation/grants.js';

/** Where a session keeps the grants it stopped naming, until it is saved. */
const REPLACED = Symbol('latchkey.replacedGrants');

interface SessionWithGrants {
  authorizations?: Record<string, { grantId?: unknown; persistsLogout?: unknown }>;
  grantIdFor(clientId: string, value?: string): string | undefined;
  save(ttl: number): Promise<unknown>;
  [REPLACED]?: { readonly grantId: string; readonly persistsLogout: boolean }[] | undefined;
}

export function endReplacedSessionGrants(provider: Provider, grants: SessionGrantEndings): void {
  const prototype = provider.Session.prototype as unknown as SessionWithGrants;
  const { grantIdFor, save } = prototype;
  if (typeof grantIdFor !== 'function' || typeof save !== 'function') throw new Error('oidc-provider Session has no grantIdFor() or save(): review src/provider/patches/replaced-session-grants.ts');
  prototype.grantIdFor = function grantReplaced(this: SessionWithGrants, clientId, value) {
    const entry = value === undefined ? undefined : this.authorizations?.[clientId];
    const before = entry?.grantId;
    const answer = grantIdFor.call(this, clientId, value);
    if (typeof before === 'string' && value && value !== before) (this[REPLACED] ??= []).push({ grantId: before, persistsLogout: entry!.persistsLogout === true });
    return answer;
  };
  prototype.save = async function savedWithoutReplaced(this: SessionWithGrants, ttl) {
    const replaced = this[REPLACED];
    if (replaced) {
      await Promise.all(replaced.map(({ grantId, persistsLogout }) => (persistsLogout ? grants.endSessionBound(grantId) : grants.revoke(grantId))));
      this[REPLACED] = undefined;
    }
    return save.call(this, ttl);
  };
}
