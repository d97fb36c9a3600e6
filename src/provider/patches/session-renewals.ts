/**
 * A session's id renewed (Session#resetIdentifier: at every sign-in and consent the engine resumes,
 * as OWASP's session management asks; at a sign-out of one app; the account page's renewals) is one
 * step: the record under the new id, then the old id ended naming the new one as its successor
 * (store/adapter.ts renewingSession), so that nothing that ends the session misses it.
 *
 * oidc-provider's Session#save ends the old id, then writes the new one. A sign-out elsewhere, a
 * person disabled or a password changed that ended the session between the resume's read of it and
 * its save was undone: the new id was written whatever had ended the old, and the session lived on,
 * signed in, with the new code it gave its app (the endings pass of 2026-12-06: an account page's
 * "Sign out" of a session that was finishing a consent left it signed in 9 times in 16). And an
 * ending that found the session by its old id just before the renewal ended only the old record.
 *
 * What it changes: with an old id, the engine's save runs without it (so it does not end the old id
 * first) while the adapter knows the new id renews the old. The adapter writes the new record and
 * then ends the old one; when the old one had been ended meanwhile, the new one is ended too: at the
 * authorization endpoint and its resumes the request's answer is then login_required, its code
 * deleted (store/held-writes.ts SessionEnded); elsewhere the save throws SessionEnded, which a
 * sign-out of one app (end_session_confirm) takes as done: the session it would have kept is ended.
 * The new record is written before the old one ends: a store failure between leaves the old id (and
 * the uid's index) in place, and the device approval that names the new one (expiresWithSession)
 * finds it (device-approval-outage.ts). Installed before the other Session#save patches
 * (unchanged-sessions.ts reads `oldId`). Relies on: Session#save ending `oldId` (set by
 * resetIdentifier, not in the payload) before the model's save, which calls adapter.upsert(id).
 * Pinned by test/e2e/session-endings.test.ts.
 */
import { errors, Provider } from 'oidc-provider';
import { renewingSession } from '../../store/adapter.js';
import { SessionEnded, settleFirst } from '../../store/held-writes.js';

type Renewing = { oldId?: string; jti: string };

export function sessionRenewalsInOneStep(provider: Provider): void {
  const Session = provider.Session as unknown as { prototype: { save(this: Renewing, ttl: number): Promise<unknown> } };
  const saveSession = Session.prototype.save;
  if (typeof saveSession !== 'function') throw new Error('oidc-provider Session#save is gone: review src/provider/patches/session-renewals.ts');
  Session.prototype.save = async function (this: Renewing, ttl: number) {
    const oldId = this.oldId;
    if (!oldId) return saveSession.call(this, ttl);
    this.oldId = undefined;
    const route = (Provider.ctx as { oidc?: { route?: string } } | undefined)?.oidc?.route;
    try {
      const saved = await renewingSession(this.jti, oldId, () => saveSession.call(this, ttl));
      // A device approval's writes (the code and this session) go now, inside the engine, which tells
      // the person when the code was answered elsewhere meanwhile (interactions/device.ts), as when
      // the engine's own ending of the old id sent them.
      if (route === 'device_resume') {
        try {
          await settleFirst();
        } catch (error) {
          // Signed out meanwhile: the approval's code is deleted with it; the person is told, not a 500.
          if (error instanceof SessionEnded) throw new errors.LoginRequired('your session ended while this was approved: sign in again on the device');
          throw error;
        }
      }
      return saved;
    } catch (error) {
      // A sign-out of one app keeps the session under a new id: it had been ended anyway.
      if (error instanceof SessionEnded && route === 'end_session_confirm') return this.jti;
      this.oldId = oldId;
      throw error;
    }
  };
}
