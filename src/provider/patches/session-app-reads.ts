/**
 * An app becomes one of a session's apps when the person is signed in to it (a grant attached:
 * the engine's loadGrant, ensureClientContainer), never because the session was asked about it.
 *
 * oidc-provider's Session#authorizationFor(clientId), which sidFor and grantIdFor read through,
 * adds an empty entry for the client to `session.authorizations` when asked about a client it has
 * none for (once the session has any entry; a session without one answers a detached `{}`). Every
 * authorization request reads the session's grant for its client (loadExistingGrant), so any app
 * the person's browser was sent to joined the session's apps: one answered `consent_required` to a
 * silent `prompt=none`, or one whose consent page the person declined. A sign-out everywhere then
 * posted that app a logout token naming the person's `sub` (end_session_confirm tells every app of
 * `session.authorizations`), an identifier the person never allowed it; and each such request cost
 * a session write. Now a read of a client the session has no entry for answers a detached `{}`, as
 * the engine does for a session without entries; writes (sidFor, grantIdFor with a value) are
 * unchanged. Pinned in test/unit/provider-patches.test.ts; shown by test/e2e/redteam-granted.test.ts.
 *
 * And an app's entry holds when the person was last signed in to it: Session#grantIdFor(clientId,
 * grantId), which the engine's loadGrant calls when a grant is attached to the session for the app,
 * stamps the entry (session-apps.ts stampSignIn) when the grant is another than the one it named, so
 * an app made again with a deleted app's client_id (its grants refused: provider/consents.ts
 * loadExistingGrant) is signed in to anew, with a later stamp, before any ending tells it
 * (session-apps.ts sessionAppIsClient; twelfth endings pass). An unchanged grant is not stamped: the
 * session is not written for it (patches/unchanged-sessions.ts). Pinned in
 * test/unit/provider-patches.test.ts; shown by test/e2e/redteam-endings-12.test.ts.
 */
import type { Provider } from 'oidc-provider';
import { stampSignIn, type SessionApp } from '../../session-apps.js';

interface SessionAuthorizations {
  authorizations?: Record<string, SessionApp>;
  authorizationFor(clientId: string, value?: unknown): object;
  grantIdFor(clientId: string, value?: string): string | undefined;
}

export function appsOnlyBySignIn(provider: Provider): void {
  const prototype = provider.Session.prototype as unknown as SessionAuthorizations;
  const authorizationFor = prototype.authorizationFor;
  if (typeof authorizationFor !== 'function') throw new Error('oidc-provider Session has no authorizationFor(): review src/provider/patches/session-app-reads.ts');
  prototype.authorizationFor = function authorizationRead(this: SessionAuthorizations, clientId, value) {
    if (value === undefined && !(this.authorizations && Object.hasOwn(this.authorizations, clientId))) return {};
    return authorizationFor.call(this, clientId, value);
  };
  const grantIdFor = prototype.grantIdFor;
  prototype.grantIdFor = function grantIdWrite(this: SessionAuthorizations, clientId, value) {
    const before = this.authorizations?.[clientId]?.grantId;
    const answer = grantIdFor.call(this, clientId, value);
    if (value && value !== before) stampSignIn(this.authorizations![clientId]!);
    return answer;
  };
}
