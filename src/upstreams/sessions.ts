/**
 * Which Latchkey sessions an upstream signed in, so that the session can name its upstream (the
 * `idp` claim), RP-initiated logout can end the upstream session too, and the upstream's
 * back-channel logout can find the sessions it ends.
 *
 * Layout (each as long as a session signed in now may live, lifetimes.ts sessionRecordsLifetime:
 * ttl.sessionMax, a session in use living past ttl.session): upstream:session:<session uid> → JSON record;
 * upstream:sid:<upstream>:<upstream sid>, upstream:sub:<upstream>:<upstream sub> and
 * upstream:sessions:<upstream> (every session it signed in, for its removal) → sets of session uids
 * the release before wrote (never pruned: read and taken from until they expire); each now as an
 * expiring set (Kv.addExpiring), upstream:sid-ends:…, upstream:sub-ends:…, upstream:sessions-ends:…,
 * whose members end with their session's record.
 */
import { scoped } from '../http/layers.js';
import type { Kv } from '../store/kv.js';
import {
  federatedBySidEndsKey,
  federatedBySidKey,
  federatedBySubEndsKey,
  federatedBySubKey,
  federatedByUpstreamEndsKey,
  federatedByUpstreamKey,
  federatedSessionKey,
  loggedOutSidKey,
  loggedOutSubKey,
} from '../store/keys.js';

export interface FederatedSession {
  readonly upstream: string;
  readonly sub: string;
  readonly sid: string | undefined;
  /** The upstream's ID token, the id_token_hint of its end_session_endpoint. */
  readonly idToken: string;
  /** Epoch milliseconds when its callback took the upstream's word (absent in records made before it was kept). */
  readonly at?: number;
  /** Epoch seconds when the person signed in at the upstream (its ID token's auth_time), when it said. */
  readonly authTime?: number;
  /** It said no auth_time and owed none (upstreams/client.ts SignedIn.ageUnknown). */
  readonly ageUnknown?: boolean;
  /** The addition of the upstream that took its word (Upstream.made; '' for one added before it was kept; absent in records made before this was). */
  readonly made?: string;
  /** The making of the link it signed in through (links.ts Link.made; absent for a link made before it was kept). */
  readonly link?: string;
}

export class FederatedSessions {
  constructor(
    private readonly kv: Kv,
    /** Seconds: the longest a Latchkey session signed in now may live (lifetimes.ts sessionRecordsLifetime). */
    private readonly ttl: number,
  ) {}

  async record(sessionUid: string, session: FederatedSession): Promise<void> {
    await this.kv.set(federatedSessionKey(sessionUid), JSON.stringify(session), { ttl: this.ttl });
    await this.#index(sessionUid, session);
  }

  /** Expiring sets: every sign-in adds a member, and each ends with its session's record. */
  async #index(sessionUid: string, session: FederatedSession): Promise<void> {
    await this.kv.addExpiring(federatedBySubEndsKey(session.upstream, session.sub), sessionUid, this.ttl);
    await this.kv.addExpiring(federatedByUpstreamEndsKey(session.upstream), sessionUid, this.ttl);
    if (session.sid) await this.kv.addExpiring(federatedBySidEndsKey(session.upstream, session.sid), sessionUid, this.ttl);
  }

  /**
   * Keeps the record of the upstream session `sessionUid` rests on, and its indexes, as long as the
   * session may now live (ttl.sessionMax from now): at another sign-in on the same session that is
   * not through the upstream (prompt=login with the password, the account page's "sign in again"),
   * which moves the session's end (its loginTs) but leaves it resting on the upstream's sign-in (its
   * credentials accumulate: accounts/session-credentials.ts). Written at the upstream's sign-in only,
   * the record ended ttl.sessionMax after it, and the upstream's back-channel logout with it, while
   * the session lived on (sixteenth passes, review h9). Only over what was read: a logout or removal
   * that forgot it meanwhile is not undone. Nothing when there is none.
   */
  async keep(sessionUid: string): Promise<void> {
    const json = await this.kv.get(federatedSessionKey(sessionUid));
    if (!json || !(await this.kv.compareAndSet(federatedSessionKey(sessionUid), json, json, this.ttl))) return;
    await this.#index(sessionUid, JSON.parse(json) as FederatedSession);
  }

  /** The live members of an expiring index and those the release before put in its plain set. */
  private async indexed(ends: string, before: string): Promise<string[]> {
    const [live, old] = await Promise.all([this.kv.liveMembers(ends), this.kv.members(before)]);
    return [...new Set([...live, ...old])];
  }

  async find(sessionUid: string): Promise<FederatedSession | undefined> {
    const json = await this.kv.get(federatedSessionKey(sessionUid));
    return json ? (JSON.parse(json) as FederatedSession) : undefined;
  }

  /** The uids of the sessions an upstream logout names (by its sid, else by its sub). */
  async sessionsOf(upstream: string, { sid, sub }: { sid?: string; sub?: string }): Promise<string[]> {
    const uids = sid ? await this.indexed(federatedBySidEndsKey(upstream, sid), federatedBySidKey(upstream, sid)) : await this.indexed(federatedBySubEndsKey(upstream, sub!), federatedBySubKey(upstream, sub!));
    const records = await Promise.all(uids.map(async (uid) => [uid, await this.find(uid)] as const));
    // With both, the session must match both (OIDC Back-Channel Logout §2.4). And the sid named must be
    // the one the session rests on now: a session signed in again through the upstream (a new sid)
    // stays in the old sid's index, which is not pruned as its record is written again, and a logout of
    // that old upstream session ended it (ninth pass over second factors and upstreams).
    return records.filter(([, record]) => record && record.upstream === upstream && (!sub || record.sub === sub) && (!sid || record.sid === sid)).map(([uid]) => uid);
  }

  /**
   * Remembers an upstream's back-channel logout (its sid, else its sub; with both, the sid's only
   * for that sub), so that a sign-in it vouched for before, still under way (waiting for its second
   * factor, no session yet for the logout to find), does not complete (loggedOutSince).
   */
  async loggedOut(upstream: string, { sid, sub }: { sid?: string; sub?: string }, at = Date.now()): Promise<void> {
    if (sid) await this.kv.set(loggedOutSidKey(upstream, sid), JSON.stringify({ at, ...(sub && { sub }) }), { ttl: this.ttl });
    else if (sub) await this.kv.set(loggedOutSubKey(upstream, sub), JSON.stringify({ at }), { ttl: this.ttl });
  }

  /** Whether the upstream logged out the session `signedIn` came from since its callback took it (after `at`, epoch ms). */
  async loggedOutSince(signedIn: Pick<FederatedSession, 'upstream' | 'sub' | 'sid' | 'at'>): Promise<boolean> {
    const at = signedIn.at ?? 0;
    const [bySidMark, bySubMark] = await Promise.all([
      signedIn.sid ? this.kv.get(loggedOutSidKey(signedIn.upstream, signedIn.sid)) : undefined,
      this.kv.get(loggedOutSubKey(signedIn.upstream, signedIn.sub)),
    ]);
    const sidMark = bySidMark ? (JSON.parse(bySidMark) as { at: number; sub?: string }) : undefined;
    const subMark = bySubMark ? (JSON.parse(bySubMark) as { at: number }) : undefined;
    return (sidMark !== undefined && sidMark.at > at && (sidMark.sub === undefined || sidMark.sub === signedIn.sub)) || (subMark !== undefined && subMark.at > at);
  }

  /** The uids of every session the upstream signed in (sessions recorded before this index existed are not in it). */
  async sessionsThrough(upstream: string): Promise<string[]> {
    const uids = await this.indexed(federatedByUpstreamEndsKey(upstream), federatedByUpstreamKey(upstream));
    const records = await Promise.all(uids.map((uid) => this.find(uid)));
    return uids.filter((_, at) => records[at]?.upstream === upstream);
  }

  async forget(sessionUid: string): Promise<void> {
    const record = await this.find(sessionUid);
    if (!record) return;
    await this.kv.del([federatedSessionKey(sessionUid)]);
    await Promise.all([
      this.kv.removeExpiring(federatedBySubEndsKey(record.upstream, record.sub), sessionUid),
      this.kv.removeFromSet(federatedBySubKey(record.upstream, record.sub), sessionUid),
      this.kv.removeExpiring(federatedByUpstreamEndsKey(record.upstream), sessionUid),
      this.kv.removeFromSet(federatedByUpstreamKey(record.upstream), sessionUid),
      ...(record.sid ? [this.kv.removeExpiring(federatedBySidEndsKey(record.upstream, record.sid), sessionUid), this.kv.removeFromSet(federatedBySidKey(record.upstream, record.sid), sessionUid)] : []),
    ]);
  }
}

/**
 * provider.use middleware: when a sign-in through an upstream resumes the authorization request or
 * the device flow's verification (RFC 8628; `resumePaths`), the interaction result carrying
 * `upstream` (see interactions/upstream.ts), the session it signed in is recorded with its
 * upstream, once the engine has saved it; another sign-in on a session an upstream signed in keeps
 * that record as long as the session now may live (FederatedSessions.keep).
 */
export function recordFederatedSessions(resumePaths: readonly string[], federated: FederatedSessions) {
  // Scoped by the prefixes its own test stays within (http/layers.ts).
  return scoped({ prefixes: resumePaths.map((path) => `${path}/`) }, async (ctx: { path: string; oidc?: unknown }, next: () => Promise<unknown>): Promise<void> => {
    await next();
    // Before, only the authorization request's: a device approved after an upstream sign-in had a
    // session its upstream's logout (and removal) did not find.
    if (!resumePaths.some((path) => ctx.path.startsWith(`${path}/`))) return;
    const oidc = ctx.oidc as
      | { result?: { login?: { accountId?: string }; upstream?: FederatedSession }; session?: { uid?: string; accountId?: string }; entities?: { Interaction?: { session?: { accountId?: string }; lastSubmission?: { login?: unknown } } } }
      | undefined;
    const upstream = oidc?.result?.upstream;
    const session = oidc?.session;
    if (!session?.uid || !session.accountId || session.accountId !== oidc?.result?.login?.accountId) return;
    // Signed in another way on a session an upstream signed in before: what that sign-in rests on
    // is kept as long as the session now may live (FederatedSessions.keep). Only when this step
    // signed in (not a login carried over from an earlier step of the same sign-in: the consent's
    // resume) a session that was signed in when the interaction began (the engine's copy of it in the
    // interaction): a first sign-in (most) reads nothing more. The engine's `new` said too little: a
    // browser's session is made and saved at its first authorization request, so every first password
    // sign-in read the record (a round trip: a rehearsal's round-trip count).
    if (upstream) await federated.record(session.uid, upstream);
    else if (resignedIn(oidc?.entities?.Interaction)) await federated.keep(session.uid);
  });
}

/** A sign-in made at this step (none carried over from the last) on a session signed in when its interaction began. */
function resignedIn(interaction: { session?: { accountId?: string }; lastSubmission?: { login?: unknown } } | undefined): boolean {
  return Boolean(interaction?.session?.accountId) && interaction?.lastSubmission?.login === undefined;
}
