/**
 * Logouts an ending is about to send, kept before its session goes (patches/backchannel-retry.ts
 * says why): the keeper the provider's clients carry, and `pendingLogout`, which every ending that
 * tells apps by back-channel logout calls before the session goes (accounts/sessions.ts for the
 * operator's and the account page's endings and expiry, patches/logout-order.ts for RP-initiated
 * logout). Its own module, outside both folders: accounts/ and provider/ each use it.
 */

/** The retries' keeper, on the engine's Client prototype under this symbol (set by patches/backchannel-retry.ts). */
export const RETRIES = Symbol('backchannel logout retries');

interface Keeps {
  readonly clientId: string;
  readonly clientIdIssuedAt?: number;
  readonly [RETRIES]?: LogoutRetries;
}

/** Who is to be told, again: never the token (a new one is signed at each attempt). `issuedAt`: the client's client_id_issued_at, if it has one. */
export type KeepRetry = (clientId: string, issuedAt: number | undefined, sub: string, sid: string | undefined) => Promise<void>;

/** Where logouts to send (again) are kept (provider/backchannel-delivery.ts logoutRetryKeeper). */
export interface LogoutRetries {
  /** A post that failed as a delivery: kept to be sent again after the schedule's first delay. */
  readonly keep: KeepRetry;
  /** Before an ending's post (and its session's ending): kept as not yet attempted; the member to drop, none where nothing is kept. */
  pend(clientId: string, issuedAt: number | undefined, sub: string, sid: string | undefined): Promise<string | undefined>;
  drop(member: string): Promise<void>;
}

/**
 * Before a session that holds `client` goes: keeps the app's logout as not yet attempted (told by the
 * sweep when the ending stops before its post), and answers what drops it, to be called once the
 * ending's own post settled (whatever its outcome: a failed delivery is kept again by the post). A
 * failure to keep fails the ending before anything ended; a failure to drop is not said (the app may
 * be told twice).
 */
export async function pendingLogout(client: object, sub: string, sid: string | undefined): Promise<() => Promise<void>> {
  const logsOut = client as Keeps;
  const retries = logsOut[RETRIES];
  const member = await retries?.pend(logsOut.clientId, logsOut.clientIdIssuedAt, sub, sid);
  return async () => {
    if (member !== undefined) await retries!.drop(member).catch(() => {});
  };
}
