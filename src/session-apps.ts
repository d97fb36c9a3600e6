/**
 * A session's apps are named by client_id only (oidc-provider's session.authorizations, one entry
 * per app the person was signed in to), and an operator may delete a client and make another with
 * its id (registration/clients.ts add: its client_id_issued_at a second after the deletion). The
 * entry then named an app the new client never was: ending the session posted the new app a logout
 * token with the person's sub and the first app's sid (twelfth endings pass, 2026-12-03).
 *
 * Each entry now holds the second the person was last signed in to its app (a grant attached to the
 * session for it: provider/patches/session-app-reads.ts stamps it), and every ending that tells a
 * session's apps (the engine's end_session_confirm through provider/patches/logout-order.ts,
 * accounts/sessions.ts end) tells only an app whose client was made at or before it.
 */
import { epochSeconds } from './clock.js';

/** A session's entry for an app (oidc-provider's session.authorizations[clientId]), with the second it was last given a grant. */
export interface SessionApp {
  sid?: string;
  grantId?: string;
  persistsLogout?: boolean;
  signedInAt?: number;
}

/** The person was signed in to the entry's app now. */
export function stampSignIn(app: SessionApp): void {
  app.signedInAt = epochSeconds();
}

/**
 * Whether the session's entry for `client`'s id is of that client: false when the person was last
 * signed in to it before the client under the id was made (another app, made again with a deleted
 * one's id). An entry without the stamp (kept by an earlier release) is taken as the client's, as
 * it was: those sessions end within ttl.sessionMax.
 */
export function sessionAppIsClient(session: { authorizations?: object }, client: { clientId: string; clientIdIssuedAt?: number }): boolean {
  const at = (session.authorizations as Record<string, SessionApp | undefined> | undefined)?.[client.clientId]?.signedInAt;
  return typeof at !== 'number' || typeof client.clientIdIssuedAt !== 'number' || at >= client.clientIdIssuedAt;
}
