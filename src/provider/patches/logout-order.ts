/**
 * RP-initiated logout ends before it tells: the grants a confirmed sign-out revokes are revoked,
 * and (signing out everywhere) the session is ended in the store, before the first logout token
 * is posted to an app (OpenID Connect Back-Channel Logout 1.0 §2.7, RP-Initiated Logout §2).
 *
 * oidc-provider's end_session_confirm (actions/end_session.js) posts a logout token to every app
 * of the session that registered a backchannel_logout_uri and waits for all their answers (the
 * slowest app's time, up to the outbound timeout), and only then revokes the session's grants and
 * destroys it. Meanwhile an app told of the sign-out still held live tokens, and the browser's
 * session still signed the person in: an authorization request at an app the person had consented
 * to (prompt=none, another tab's silent renewal) got a code, and its grant, which the sign-out's
 * copy of the session did not name, outlived the sign-out (an API's JWT access token active to its
 * end, the revocation feed silent about it).
 *
 * What it changes: the first Client#backchannelLogout of an end_session_confirm request first does
 * what the engine would do after the posts: revokes each grant the engine revokes (with `logout`,
 * every grant of the session that does not outlive sign-out; without, the one of the client that
 * asked) through `grants.revoke`, ends the JWT access tokens of each of those grants it keeps
 * (offline access) through `grants.endSessionBound`, and with `logout` ends the session's stored
 * record (the adapter's destroy: an ending no write brings back, store/adapter.ts). A grant kept
 * whole because the app holds offline access from some sign-in of the session also holds what the
 * session gave it without offline access, bound to the session: the engine ends only the opaque
 * ones of those (their session is checked when they are found; an app signed out of alone is
 * dropped from the session, so a later sign-out everywhere no longer names its grant). The engine
 * then goes on as before with its own copy of the session (its revocations and destroy find nothing
 * left to do), so its events, answer and cookie are unchanged. When no app is told (none registered
 * a backchannel_logout_uri), the same kept grants are ended by the engine's Session#destroy of that
 * request (everywhere), or by its Session#save once it dropped the app signed out of (the app and
 * its grant noted when the request's Session.get loaded the session). Every other call (an
 * operator's ending, accounts/sessions.ts, which tells only apps with a sid too) is left alone. It
 * runs only past the engine's xsrf check, which precedes the posts, the destroy and the drop.
 * Relies on: the route name `end_session_confirm`, Client#backchannelLogout called from it with
 * ctx.oidc.session and ctx.oidc.params.logout set, Session#authorizationFor(clientId).persistsLogout,
 * session.state.clientId, Session.get loading the session, Session#destroy called on
 * ctx.oidc.session when it signs out everywhere, and the app signed out of deleted from
 * session.authorizations before Session#save. Pinned by test/e2e/logout-order.test.ts and
 * test/e2e/redteam-granted-5.test.ts.
 *
 * Every app the engine is about to tell is looked up before anything ends: the engine looks the
 * session's apps up one after another and calls the first one's backchannelLogout (where the ending
 * starts) before it has looked up the next, so a store failing at a later look-up failed the sign-out
 * ("Not signed out") with the session ended already and that app never told, and the person's next
 * try found no session to sign out of (fifth endings pass, 2026-12-02). Now the ending first waits
 * for the look-ups of all of them (a client that is no more, the engine's InvalidClient, is skipped
 * as its clientForLogout skips it), and each client is looked up once per confirmation: the engine's
 * own look-ups in the same request get the same answers, so a failure fails the sign-out with nothing
 * ended, to confirm again. Relies also on Client.find(clientId) as the engine's clientForLogout
 * calls it; pinned also by test/e2e/redteam-endings-5.test.ts and test/unit/provider-patches.test.ts.
 *
 * Nor is an app told whose client was made after the person was last signed in to the app of its id
 * in the session (session-apps.ts sessionAppIsClient): a deleted app's entry, the id given to another
 * app since, which got the person's sub and the old sid (twelfth endings pass). Relies also on the
 * client the engine calls backchannelLogout on having `clientIdIssuedAt`; shown by
 * test/e2e/redteam-endings-12.test.ts.
 */
import { errors, Provider, type KoaContextWithOIDC } from 'oidc-provider';
import type { SessionGrantEndings } from '../../revocation/grants.js';
import { sessionAppIsClient } from '../../session-apps.js';
import { pendingLogout } from '../../pending-logouts.js';

interface LoggedOutSession {
  readonly id: string;
  readonly authorizations?: Record<string, { grantId?: string; sid?: string }>;
  readonly state?: { clientId?: string };
  authorizationFor(clientId: string): { persistsLogout?: boolean } | undefined;
}

interface LogsOut {
  readonly clientId: string;
  readonly clientIdIssuedAt?: number;
  backchannelLogout(sub: string, sid: string): Promise<void>;
}

interface Stored {
  adapter: { destroy(id: string): Promise<void> };
}

export function endBeforeTelling(provider: Provider, grants: SessionGrantEndings): void {
  const prototype = provider.Client.prototype as unknown as LogsOut;
  const sessions = provider.Session.prototype as unknown as { destroy(): Promise<void>; save(...args: unknown[]): Promise<unknown> };
  const backchannelLogout = prototype.backchannelLogout;
  const ended = new WeakMap<object, Promise<void>>();
  /**
   * The grants of `clientIds` in the session: one kept for offline access has the JWT access tokens
   * bound to the session ended (signing out of its app, or of everything, ends what the session gave
   * it); any other is revoked, unless `keptOnly` (the engine revokes those itself).
   */
  const endGrants = (session: LoggedOutSession, clientIds: readonly string[], keptOnly = false) =>
    Promise.all(
      clientIds.map((clientId) => {
        const grantId = session.authorizations?.[clientId]?.grantId;
        if (!grantId) return undefined;
        if (session.authorizationFor(clientId)?.persistsLogout) return grants.endSessionBound(grantId);
        return keptOnly ? undefined : grants.revoke(grantId);
      }),
    );
  // Each client looked up once per confirmation: the ending's look-ups and the engine's share their answers.
  const Client = provider.Client as unknown as { find(id: unknown, ...rest: unknown[]): Promise<unknown> };
  const find = Client.find.bind(Client);
  const lookedUp = new WeakMap<object, Map<string, Promise<unknown>>>();
  Client.find = (id: unknown, ...rest: unknown[]) => {
    const ctx = Provider.ctx as KoaContextWithOIDC | undefined;
    if (ctx?.oidc?.route !== 'end_session_confirm' || typeof id !== 'string' || rest.length) return find(id, ...rest);
    let byId = lookedUp.get(ctx);
    if (!byId) lookedUp.set(ctx, (byId = new Map()));
    let found = byId.get(id);
    if (!found) byId.set(id, (found = find(id)));
    return found;
  };
  /** What drops each app's logout kept before the session went (pendingLogout), by confirmation and client. */
  const pending = new WeakMap<object, Map<string, () => Promise<void>>>();
  const endFirst = async (ctx: KoaContextWithOIDC) => {
    const session = ctx.oidc.session as unknown as LoggedOutSession;
    const everywhere = Boolean(ctx.oidc.params?.logout);
    const clientIds = everywhere ? Object.keys(session.authorizations ?? {}) : [session.state?.clientId].filter((id): id is string => typeof id === 'string');
    // The apps the engine tells (these same ids), looked up before anything ends.
    const clients = await Promise.all(clientIds.map((clientId) => Client.find(clientId).catch((error: unknown) => (error instanceof errors.InvalidClient ? undefined : Promise.reject(error)))));
    // Each app to be told is kept until told (told later by the sweep when the ending stops after the
    // session went: its retry finds no session to tell it from), as accounts/sessions.ts end does.
    const settles = new Map<string, () => Promise<void>>();
    pending.set(ctx, settles);
    const sub = ctx.oidc.session?.accountId;
    await Promise.all(
      clients.map(async (client, at) => {
        const sid = session.authorizations?.[clientIds[at]!]?.sid;
        if (!sub || !sid || !(client as { backchannelLogoutUri?: string } | undefined)?.backchannelLogoutUri || !sessionAppIsClient(session, client as LogsOut)) return;
        settles.set(clientIds[at]!, await pendingLogout(client!, sub, sid));
      }),
    );
    await endGrants(session, clientIds);
    if (everywhere) await (provider.Session as unknown as Stored).adapter.destroy(session.id);
  };
  // No app told (endFirst not run): the app signed out of and the grant it keeps, noted as the session is loaded.
  const oneApp = new WeakMap<object, { clientId: string; keptGrant: string }>();
  const unseen = (ctx: KoaContextWithOIDC | undefined): ctx is KoaContextWithOIDC => ctx?.oidc?.route === 'end_session_confirm' && !ended.has(ctx);
  const Sessions = provider.Session as unknown as { get(ctx: unknown): Promise<LoggedOutSession> };
  const get = Sessions.get.bind(Sessions);
  Sessions.get = async (ctx) => {
    const session = await get(ctx);
    const clientId = session.state?.clientId;
    const held = clientId ? (session.authorizations?.[clientId] as { grantId?: string; persistsLogout?: boolean } | undefined) : undefined;
    if (unseen(ctx as KoaContextWithOIDC) && clientId && held?.grantId && held.persistsLogout) oneApp.set(ctx as object, { clientId, keptGrant: held.grantId });
    return session;
  };
  const destroy = sessions.destroy;
  sessions.destroy = async function (this: LoggedOutSession) {
    const ctx = Provider.ctx as KoaContextWithOIDC | undefined;
    if (unseen(ctx) && (ctx.oidc.session as unknown) === this) await endGrants(this, Object.keys(this.authorizations ?? {}), true);
    return destroy.call(this);
  };
  const save = sessions.save;
  sessions.save = async function (this: LoggedOutSession, ...args: unknown[]) {
    const ctx = Provider.ctx as KoaContextWithOIDC | undefined;
    const signedOut = ctx && oneApp.get(ctx);
    // Signed out of that app (the engine dropped it from the session): its kept grant, as endFirst would have.
    if (unseen(ctx) && signedOut && !ctx.oidc.params?.logout && !this.authorizations?.[signedOut.clientId]) await grants.endSessionBound(signedOut.keptGrant);
    return save.apply(this, args);
  };
  prototype.backchannelLogout = async function (this: LogsOut, sub, sid) {
    const ctx = Provider.ctx as KoaContextWithOIDC | undefined;
    if (ctx?.oidc?.route === 'end_session_confirm' && ctx.oidc.session) {
      let ending = ended.get(ctx);
      if (!ending) ended.set(ctx, (ending = endFirst(ctx)));
      await ending;
      // An app with no sid in the session was never signed in to in it, only asked about (an entry a
      // session stored before patches/session-app-reads.ts): it is not told the person's sub.
      if (sid === undefined) return;
      // Nor one whose client was made after the person was last signed in to the app of that id: a
      // deleted app's entry, its id given to another app since (session-apps.ts).
      if (!sessionAppIsClient(ctx.oidc.session, this)) return;
      const settle = pending.get(ctx)?.get(this.clientId);
      if (settle) return backchannelLogout.call(this, sub, sid).finally(settle);
    }
    return backchannelLogout.call(this, sub, sid);
  };
}
