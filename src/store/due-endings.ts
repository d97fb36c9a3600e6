/**
 * The timers of endings that every instance and worker shares, kept in the store
 * (provider/backchannel-delivery.ts runs them): logouts an app did not take, to send again; the
 * ends of sessions that hold an app (written by the adapter with each session write), to end and
 * tell when they expire; and the endings a change owes (accounts/owed-endings.ts: a credential's
 * removal, an operator's change), to finish when its request did not. Three sorted sets under one
 * hash tag ({bc}), scored by when each is due (epoch milliseconds on the store's clock); each
 * expires with what it holds.
 *
 * A claim moves what is due to the claimer's lease end in the same step (Kv.claimDue), so of two
 * instances one gets it; the claimer settles it (dropped, or moved on) only while it is still at its
 * lease (a session saved since is due at its new expiry, and stays), and what a claimer that stopped
 * never settled is claimed again once its lease ends.
 */
import { randomBytes } from 'node:crypto';
import type { Kv } from './kv.js';
import { BACKCHANNEL_RETRIES_KEY, OIDC_SESSION_ENDS_KEY, OWED_ENDINGS_KEY } from './keys.js';
import { sessionHandleOf } from './record-keys.js';
import { storeClockOffset } from '../clock.js';

/** A logout token to send again (a new one is signed at each attempt): to whom, for whom, and how many attempts failed. */
export interface LogoutRetry {
  readonly clientId: string;
  /**
   * The client's client_id_issued_at when the ending told it (0: none), so that a client deleted and
   * made again with the id (another app) is not sent the first one's logout. Undefined in a retry
   * kept by an earlier release.
   */
  readonly clientIssuedAt: number | undefined;
  readonly sub: string;
  readonly sid: string | undefined;
  /**
   * Attempts made so far (the first, from the ending, is 1; 0 for one kept before the ending's own
   * attempt, which drops it once made: due only when the ending stopped before it).
   */
  readonly attempts: number;
}

interface Member {
  c: string;
  t?: number;
  s: string;
  i?: string;
  n: number;
  /** Each kept retry its own member, two endings telling one app alike included. */
  r: string;
}

export interface ClaimedRetry {
  readonly member: string;
  readonly retry: LogoutRetry | undefined;
}

/** What a claim returns: at most its count of each kind. Owed endings as kept (their owner reads them). */
export interface Claimed {
  readonly retries: ClaimedRetry[];
  readonly sessions: { member: string; id: string }[];
  readonly owed: string[];
}

export class DueEndings {
  constructor(private readonly kv: Kv) {}

  /** Whether the store keeps shared timers (Redis; not the embedded store). */
  get shared(): boolean {
    return Boolean(this.kv.schedule && this.kv.claimDue && this.kv.settleDue);
  }

  /**
   * Keeps `retry` to be sent at `at` (epoch ms) for `ttl` seconds at most; `replaces`: the claimed
   * member it follows, dropped in the same step. The member kept (for dropRetry).
   */
  async keepRetry(retry: LogoutRetry, at: number, ttl: number, replaces?: string): Promise<string> {
    const member = JSON.stringify({ c: retry.clientId, ...(retry.clientIssuedAt === undefined ? {} : { t: retry.clientIssuedAt }), s: retry.sub, ...(retry.sid === undefined ? {} : { i: retry.sid }), n: retry.attempts, r: randomBytes(6).toString('base64url') } satisfies Member);
    await this.kv.schedule!(BACKCHANNEL_RETRIES_KEY, member, at, ttl, replaces);
    return member;
  }

  /** Drops a retry: a claimed one (delivered, or given up), or one kept before an ending told its app itself. */
  async dropRetry(member: string): Promise<void> {
    await this.kv.schedule!(BACKCHANNEL_RETRIES_KEY, undefined, 0, 1, member);
  }

  /**
   * Claims what is due at `now` until `until` (epoch ms): at most `count` of each kind, in one
   * command. Sessions are given by the id the engine's Session.find takes.
   */
  async claim(now: number, until: number, count: number): Promise<Claimed> {
    const [retries = [], sessions = [], owed = []] = await this.kv.claimDue!([BACKCHANNEL_RETRIES_KEY, OIDC_SESSION_ENDS_KEY, OWED_ENDINGS_KEY], now, until, count);
    return {
      retries: retries.map((member) => ({ member, retry: parseRetry(member) })),
      sessions: sessions.map((member) => ({ member, id: sessionHandleOf(member) })),
      owed,
    };
  }

  /**
   * Keeps an ending owed (`ending`: its owner's JSON, one member each, made unique here) to be
   * finished at `at` (epoch ms) unless dropped first; kept `ttl` seconds at most. The member.
   */
  async owe(ending: object, at: number, ttl: number): Promise<string> {
    const member = JSON.stringify({ ...ending, r: randomBytes(6).toString('base64url') });
    await this.kv.schedule!(OWED_ENDINGS_KEY, member, at, ttl);
    return member;
  }

  /** Drops an owed ending: finished by its request, or (`until`: claimed until then) by a sweep. */
  async dropOwed(member: string, until?: number): Promise<void> {
    await (until === undefined ? this.kv.schedule!(OWED_ENDINGS_KEY, undefined, 0, 1, member) : this.kv.settleDue!(OWED_ENDINGS_KEY, member, until));
  }

  /** The sessions whose end is scheduled after now (the store's clock): each member, and the id Session.find takes. */
  async scheduledSessions(): Promise<{ member: string; id: string }[]> {
    return (await this.kv.liveMembers(OIDC_SESSION_ENDS_KEY)).map((member) => ({ member, id: sessionHandleOf(member) }));
  }

  /** Moves a scheduled session end to `at` (epoch ms): one that comes earlier under the configuration now. */
  async moveSession(member: string, at: number): Promise<void> {
    await this.kv.schedule!(OIDC_SESSION_ENDS_KEY, member, at, 1);
  }

  /** A claimed session end settled: dropped, or (`at`: saved since with a later expiry) due then. Only while still at the claim's `until`. */
  settleSession(member: string, until: number, at?: number): Promise<boolean> {
    return this.kv.settleDue!(OIDC_SESSION_ENDS_KEY, member, until, at);
  }
}

/** Seconds after it is kept that the sweep finishes an ending its request has not dropped: two requests' worth. */
export const OWED_S = 10;

/** What keeps an ending owed while its request runs (OwedKeeper; the store's adapter and Apis take it by this shape). */
export interface KeepsOwed {
  owe(ending: object): Promise<string | undefined>;
  drop(member: string | undefined): Promise<void>;
}

/**
 * Keeps an ending owed while the request that makes it runs (accounts/owed-endings.ts says which
 * endings, and finishes one the sweep claims): due OWED_S later on the store's clock, kept at most
 * as long as the longest grant or session lives (one no instance swept by then has nothing left to
 * end). On a store without shared timers (the embedded one) nothing is kept.
 */
export class OwedKeeper implements KeepsOwed {
  readonly #due: DueEndings;
  readonly #ttl: number;

  constructor(kv: Kv, ttl: { readonly grant: number; readonly session: number }) {
    this.#due = new DueEndings(kv);
    this.#ttl = Math.max(ttl.grant, ttl.session);
  }

  /** Kept as owed before anything of it ends; the member to drop once done (undefined: nothing kept). A failure fails the change before it began. */
  async owe(ending: object): Promise<string | undefined> {
    if (!this.#due.shared) return undefined;
    return this.#due.owe(ending, Date.now() + storeClockOffset() + OWED_S * 1000, this.#ttl);
  }

  /**
   * Done: no longer owed. Not said when it fails: the change is done whole, and the sweep runs the
   * ending once more (which ends nothing more than what was signed in or issued since).
   */
  async drop(member: string | undefined): Promise<void> {
    if (member !== undefined) await this.#due.dropOwed(member).catch(() => {});
  }
}

function parseRetry(member: string): LogoutRetry | undefined {
  try {
    const { c, t, s, i, n } = JSON.parse(member) as Partial<Member>;
    if (typeof c !== 'string' || typeof s !== 'string' || typeof n !== 'number') return undefined;
    return { clientId: c, clientIssuedAt: typeof t === 'number' ? t : undefined, sub: s, sid: typeof i === 'string' ? i : undefined, attempts: n };
  } catch {
    return undefined;
  }
}
