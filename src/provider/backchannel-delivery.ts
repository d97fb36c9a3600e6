/**
 * Back-channel logout that reaches the app (OpenID Connect Back-Channel Logout 1.0): a logout token
 * its endpoint did not take is sent again, and a session that expires tells its apps as a sign-out does.
 *
 * - Sent again: patches/backchannel-retry.ts keeps who was to be told when a post fails as a delivery
 *   (no answer, 5xx, 408, 429; an answer of the app, 400 included, is its verdict: §2.8); here each is
 *   posted again, a freshly signed token each time (new jti, iat now), after each delay of
 *   backchannel.retrySchedule in turn, then given up and said in the log.
 * - Expiry: Redis drops an expired session in silence, so the store also keeps, with each write of a
 *   session that holds an app, when it expires (store/due-endings.ts); once it has, the session is
 *   ended here as signing out ends it (accounts/sessions.ts endExpired: its grants without offline
 *   access revoked, the session's ending stored, each app with a backchannel_logout_uri told).
 *
 * One sweep every backchannel.sweepInterval seconds at each instance and worker: one command claims
 * what is due in both sets (moved to this sweep's lease end in the same step, so of two instances
 * one gets each), nothing else when nothing is due; nothing on any request's path. A sweep the store
 * fails is skipped and said once per outage; what it had claimed and not settled is claimed again
 * when its lease ends. close() stops the timer and waits for the sweep in progress.
 */
import { errors } from 'oidc-provider';
import type { Logger } from '../ops/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { ProviderInService } from '../provider-in-service.js';
import type { AccountSessions } from '../accounts/sessions.js';
import type { SessionGrantEndings } from '../revocation/grants.js';
import { storeClockOffset } from '../clock.js';
import type { ClaimedRetry, DueEndings } from '../store/due-endings.js';
import { deliverOnce, deliveryFailed, type LogoutRetries } from './patches/backchannel-retry.js';
import { STORED_EXP } from './patches/session-idle.js';
import { OwedEndings } from '../accounts/owed-endings.js';

/**
 * Milliseconds a sweep holds what it claimed: past it, another instance may claim it again. Three
 * times a post's 5 s timeout; and no longer, because a claim whose answer the store was too slow
 * to give (a blip: the sweep failed at the command timeout) may still run on the store afterwards,
 * leaving what it claimed held by nobody until the lease ends.
 */
const LEASE_MS = 15_000;
/** At most this many retries and this many session ends per sweep (the rest, at the next). */
const BATCH = 50;
/** Seconds a kept retry may outlive its schedule's end (a store down meanwhile). */
const RETRY_SLACK = 3600;
/** Seconds before an ending's logout it did not attempt is sent, without a retry schedule: two posts' timeouts. */
const PENDING_S = 10;

/** Epoch milliseconds on the store's clock (clock.ts), which every instance shares. */
const storeNow = () => Date.now() + storeClockOffset();

type Session = Parameters<AccountSessions['endExpired']>[0];
type SessionFinder = { find(id: string, options: { ignoreExpiration: boolean }): Promise<Session | undefined> };

/** Seconds a kept retry lives: its whole schedule, and some. */
const retryTtl = (schedule: readonly number[]) => schedule.reduce((sum, delay) => sum + delay, 0) + RETRY_SLACK;

/**
 * The retry patch's keep (patches/backchannel-retry.ts): who was to be told, kept to send again after
 * the schedule's first delay, by whichever instance sweeps first (the CLI's endings too: a server
 * sends them). Nothing is kept with an empty schedule or on a store without shared timers (embedded).
 * The failed post itself is said by the engine's backchannel.error (ops/events.ts). And its pend
 * (src/pending-logouts.ts): an ending's logout kept before its session goes, dropped once posted;
 * kept with an empty schedule too (it is a first attempt, not a retry), never on the embedded store.
 */
export function logoutRetryKeeper(due: DueEndings, schedule: readonly number[], metrics?: Metrics): LogoutRetries {
  return {
    async keep(clientId, issuedAt, sub, sid) {
      if (!due.shared || !schedule.length) return;
      await due.keepRetry({ clientId, clientIssuedAt: issuedAt ?? 0, sub, sid, attempts: 1 }, storeNow() + schedule[0]! * 1000, retryTtl(schedule));
      metrics?.backchannelLogouts.inc({ outcome: 'retried' });
    },
    // An ending's logout not attempted yet (patches/backchannel-retry.ts pendingLogout): its first
    // attempt is the sweep's, at the schedule's first delay (PENDING_S without a schedule), when the
    // ending stopped before making it.
    async pend(clientId, issuedAt, sub, sid) {
      if (!due.shared) return undefined;
      return due.keepRetry({ clientId, clientIssuedAt: issuedAt ?? 0, sub, sid, attempts: 0 }, storeNow() + (schedule[0] ?? PENDING_S) * 1000, retryTtl(schedule));
    },
    drop: (member) => due.dropRetry(member),
  };
}

export interface BackchannelDeliveryOptions {
  readonly due: DueEndings;
  readonly providers: ProviderInService;
  readonly sessions: AccountSessions;
  readonly grants: Pick<SessionGrantEndings, 'revoke'>;
  /** Seconds before each attempt after the first (backchannel.retrySchedule). */
  readonly schedule: readonly number[];
  /** Seconds between sweeps (backchannel.sweepInterval). */
  readonly interval: number;
  /** The endings a change of credentials owes (accounts/owed-endings.ts): those its request did not finish are finished here. */
  readonly owed: Pick<OwedEndings, 'finish'>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** ttl.sessionMax as configured now: a session ends then after its sign-in, whatever expiry it was saved with. */
  readonly sessionMax: number;
}

type Bounds = { exp?: unknown; loginTs?: unknown; [STORED_EXP]?: unknown };

export class BackchannelDelivery {
  readonly #options: BackchannelDeliveryOptions;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<boolean> | undefined;
  #stopped = false;
  /** The store failed the last sweep (said once, until one succeeds). */
  #failing = false;

  constructor(options: BackchannelDeliveryOptions) {
    this.#options = options;
  }

  start(): void {
    if (!this.#options.due.shared || this.#stopped) return;
    this.#next();
  }

  /** Stops sweeping; waits for the sweep in progress. */
  async close(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#sweeping;
  }

  /**
   * Sessions whose end comes earlier under the configuration now than the one they were saved with
   * (ttl.session or ttl.sessionMax lowered and restarted) are due then, not at their stored expiry:
   * their grants without offline access, and so the JWTs bound to them (at introspection and at the
   * APIs following the feed), end with them (thirteenth fresh-eyes passes). A session reader saw them
   * end already (session-idle.ts, session-max.ts); the sweep ended them only at their stored expiry.
   * Each scheduled session is read once, in batches; what moved is counted.
   */
  async endsAsConfigured(): Promise<number> {
    const { due, providers } = this.#options;
    if (!due.shared) return 0;
    const scheduled = await due.scheduledSessions();
    let moved = 0;
    for (let at = 0; at < scheduled.length && !this.#stopped; at += BATCH) {
      await Promise.all(
        scheduled.slice(at, at + BATCH).map(async ({ member, id }) => {
          const session = (await (providers.current.Session as unknown as SessionFinder).find(id, { ignoreExpiration: true })) as Bounds | undefined;
          const stored = session?.[STORED_EXP] ?? session?.exp;
          const end = session && this.#end(session);
          if (end === undefined || typeof stored !== 'number' || end >= stored) return;
          await due.moveSession(member, end * 1000);
          moved += 1;
        }),
      );
    }
    return moved;
  }

  /** When a session ends as configured now (epoch seconds): its expiry (idle, lowered by session-idle.ts) and ttl.sessionMax after its sign-in. */
  #end(session: Bounds): number | undefined {
    const ends = [session.exp, typeof session.loginTs === 'number' ? session.loginTs + this.#options.sessionMax : undefined].filter((value): value is number => typeof value === 'number');
    return ends.length ? Math.min(...ends) : undefined;
  }

  /** One sweep now (tests; the timer's own otherwise). */
  async sweep(): Promise<void> {
    await this.#sweepOnce();
  }

  /** The sweep in progress, or a new one; whether it claimed a whole batch (more may be due). */
  #sweepOnce(): Promise<boolean> {
    const sweeping = (this.#sweeping ??= this.#sweep().finally(() => {
      this.#sweeping = undefined;
    }));
    return sweeping;
  }

  #next(at = this.#options.interval * 1000): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      // A whole batch claimed: the rest at once, not a sweep interval later.
      this.#sweepOnce().then(
        (full) => this.#next(full ? 0 : undefined),
        () => this.#next(),
      );
    }, at);
    this.#timer.unref();
  }


  async #sweep(): Promise<boolean> {
    const { due, logger } = this.#options;
    const now = storeNow();
    const until = now + LEASE_MS;
    let claimed: Awaited<ReturnType<DueEndings['claim']>>;
    try {
      claimed = await due.claim(now, until, BATCH);
    } catch (error) {
      if (!this.#failing) logger.warn({ event: 'backchannel.sweep_failed', err: (error as Error).message }, 'the store failed the back-channel logout sweep: tried again at the next');
      this.#failing = true;
      return false;
    }
    if (this.#failing) logger.info({ event: 'backchannel.sweep_resumed' }, 'the back-channel logout sweep reads the store again');
    this.#failing = false;
    await Promise.all([
      ...claimed.retries.map((retry) => this.#retry(retry).catch((error: unknown) => this.#failed('retry', error))),
      ...claimed.sessions.map(({ member, id }) => this.#expire(member, id, until).catch((error: unknown) => this.#failed('session', error))),
      ...claimed.owed.map((member) => this.#finishOwed(member, until).catch((error: unknown) => this.#failed('owed', error))),
    ]);
    return [claimed.retries, claimed.sessions, claimed.owed].some((batch) => batch.length === BATCH);
  }

  /** A claimed item the store failed half-way: left at its lease, claimed again once it ends. */
  #failed(kind: string, error: unknown): void {
    this.#options.logger.warn({ event: 'backchannel.sweep_item_failed', kind, err: (error as Error).message }, 'a back-channel logout step failed: tried again once its lease ends (15 s)');
  }

  async #retry({ member, retry }: ClaimedRetry): Promise<void> {
    const { due, providers, schedule, logger, metrics } = this.#options;
    const drop = async (reason: string, fields: object = {}) => {
      await due.dropRetry(member);
      metrics.backchannelLogouts.inc({ outcome: 'dropped' });
      logger.warn({ event: 'backchannel.dropped', reason, ...(retry ? { client_id: retry.clientId, attempts: retry.attempts } : {}), ...fields }, 'a logout token the app did not take is given up');
    };
    if (!retry) return drop('unreadable');
    const client = await providers.current.Client.find(retry.clientId).catch((error: unknown) => (error instanceof errors.InvalidClient ? undefined : Promise.reject(error)));
    if (!client?.backchannelLogoutUri) return drop('client_gone');
    // Deleted since, and another client made with the id (registration/clients.ts add): another app,
    // which never had the person's session, is not sent their logout (their sub and sid).
    if (retry.clientIssuedAt !== undefined && (client.clientIdIssuedAt ?? 0) !== retry.clientIssuedAt) return drop('client_gone');
    const attempts = retry.attempts + 1;
    try {
      await deliverOnce(client, retry.sub, retry.sid);
    } catch (error) {
      const cause = error instanceof Error ? error.message : String(error);
      if (!deliveryFailed(error)) return drop('refused', { attempts, cause });
      if (attempts > schedule.length) return drop('schedule_ended', { attempts, cause });
      const delay = schedule[attempts - 1]!;
      await due.keepRetry({ ...retry, attempts }, storeNow() + delay * 1000, retryTtl(schedule), member);
      metrics.backchannelLogouts.inc({ outcome: 'retried' });
      logger.info({ event: 'backchannel.retry_kept', client_id: retry.clientId, attempts, in_s: delay, cause }, 'the app did not take the logout token: sent again later');
      return;
    }
    await due.dropRetry(member);
    metrics.backchannelLogouts.inc({ outcome: 'delivered' });
    logger.info({ event: 'backchannel.delivered', client_id: retry.clientId, attempts }, 'a logout token the app did not take at first is delivered');
  }

  async #expire(member: string, id: string, until: number): Promise<void> {
    const { due, providers, sessions, grants, logger, metrics } = this.#options;
    const session = await (providers.current.Session as unknown as SessionFinder).find(id, { ignoreExpiration: true });
    // Gone, or ended otherwise (signed out, its person disabled): nothing left to end or tell.
    if (!session) return void (await due.settleSession(member, until));
    // Used since, with a later expiry (written before this claim moved it): due then. Its end as
    // configured now: a session read past ttl.sessionMax after its sign-in has ended, whatever its stored expiry.
    const end = this.#end(session as Bounds);
    if (end !== undefined && end * 1000 > storeNow()) return void (await due.settleSession(member, until, end * 1000));
    await sessions.endExpired(session, grants);
    await due.settleSession(member, until);
    metrics.backchannelLogouts.inc({ outcome: 'expired' });
    logger.info({ event: 'session.expired', apps: Object.keys(session.authorizations ?? {}).length }, 'an expired session is ended and its apps told');
  }

  /** An ending whose request stopped before it was done (a 503): finished now, then dropped. */
  async #finishOwed(member: string, until: number): Promise<void> {
    const { due, owed, logger } = this.#options;
    const ending = OwedEndings.parse(member);
    if (!ending) {
      await due.dropOwed(member, until);
      return void logger.warn({ event: 'account.owed_ending_dropped', reason: 'unreadable' }, 'an owed ending is dropped unfinished');
    }
    const ended = await owed.finish(ending);
    await due.dropOwed(member, until);
    const what =
      'upstream' in ending ? { upstream: ending.upstream, changed: 'upstream' }
      : 'api' in ending ? { api: ending.api, changed: 'api' }
      : 'clientGrants' in ending ? { client_id: ending.clientGrants, changed: 'client-grants' }
      : 'client' in ending ? { client_id: ending.client, changed: ending.from ? 'client-change' : 'client-deletion' }
      : 'personEnded' in ending ? { sub: ending.personEnded, changed: ending.withdrawnFrom === undefined ? 'person' : 'withdrawn', ...(ending.withdrawnFrom !== undefined && { client_id: ending.withdrawnFrom }) }
      : { sub: ending.sub, changed: ending.changed.kind };
    logger.info({ event: 'account.owed_ending_finished', ...what, sessions_signed_out: ended }, 'an ending a change cut off owed is finished');
  }
}
