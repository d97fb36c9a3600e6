/**
 * The key-value operations Latchkey needs from its store. Redis implements them over ioredis
 * (standalone, Sentinel, Cluster); the embedded store implements them in process.
 *
 * Every operation touches exactly one key, so each works unchanged on Redis Cluster, and the ones
 * that must be atomic (consumeRecord, endRecord, addToSet, compareAndSet, ...) are atomic on their
 * key. The exceptions: raiseMarkAndLog spans two keys that the caller gives one hash tag (`{tag}`),
 * so they share a cluster slot; getRecordVia, getVia, readMany, putRecordInSet and putRecordPointedTo span keys in one command only
 * where every key lives on one server, and are two commands on Cluster. TTLs are in seconds; a key written without one is durable data
 * (clients, accounts, the key ring).
 */
import { randomUUID } from 'node:crypto';

export interface StoredRecord {
  /** The JSON payload as written. */
  readonly payload: string;
  /** Epoch seconds (with milliseconds) at which the record was consumed, if it was. */
  readonly consumed?: number;
}

export type ConsumeOutcome = 'consumed' | 'already-consumed' | 'missing';

/** One entry of an append-only log. Ids (`<milliseconds>-<sequence>`) grow with every append. */
export interface LogEntry {
  readonly id: string;
  readonly fields: Readonly<Record<string, string>>;
}

/** Log ids look like Redis stream ids; anything else is not a cursor. */
export const LOG_ID = /^\d{1,16}-\d{1,16}$/;

/** Whether log id `a` sorts after log id `b` (both LOG_ID; 16 digits exceed a double's integers, hence BigInt). */
export function logIdAfter(a: string, b: string): boolean {
  const [aMs, aSeq] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bMs, bSeq] = b.split('-').map(BigInt) as [bigint, bigint];
  return aMs > bMs || (aMs === bMs && aSeq > bSeq);
}

/**
 * What Kv.endRecord found: whether the record had been ended already, the record its ending names as
 * its successor, and the payload of the live record it ended (none when it was ended or gone already,
 * or when the ending names a successor).
 */
export interface RecordEnding {
  readonly already: boolean;
  readonly successor?: string;
  readonly ended?: string;
}

/** Reads a request will make soon (see read-ahead.ts). */
export interface ReadsAhead {
  /** Strings (`get`) the request will read. */
  readonly strings?: readonly string[];
  /** Records (`getRecord`) the request will read. */
  readonly records?: readonly string[];
  /** Records whose id is the string at `index`, keyed `prefix` + id (an index and what it points to). */
  readonly indexed?: readonly { readonly index: string; readonly prefix: string }[];
}

/** What readMany answers: each kind's answers in the order asked. */
export interface ReadResults {
  readonly strings: readonly (string | undefined)[];
  readonly records: readonly (StoredRecord | undefined)[];
  readonly indexed: readonly ({ id: string; record: StoredRecord | undefined } | undefined)[];
}

/** Reads answered from process memory where the store can keep them fresh (tracked-cache.ts). */
export interface CachedReads {
  get(key: string): Promise<string | undefined>;
  members(key: string): Promise<string[]>;
}

export interface Kv {
  /** Which implementation this is, for logs and /readyz. */
  readonly kind: 'redis' | 'embedded';

  get(key: string): Promise<string | undefined>;
  /**
   * Writes a string; with onlyIfAbsent, returns false (and writes nothing) when the key exists.
   * `bounded` (with onlyIfAbsent and a ttl: a single-use mark): on Redis, not written when Redis
   * runs it after the caller stopped waiting (a Redis paused past redis.commandTimeout), as
   * consumeRecord's consumption; the caller has had its outage then.
   */
  set(key: string, value: string, options?: { ttl?: number; onlyIfAbsent?: boolean; bounded?: boolean }): Promise<boolean>;
  /** Deletes keys (each on its own, so they may live on different cluster slots). */
  del(keys: readonly string[]): Promise<void>;

  /** Reads a record written by putRecord. */
  getRecord(key: string): Promise<StoredRecord | undefined>;
  /**
   * The string at `index` (an id) and the record at `prefix` + that id, in one round trip where
   * the store can (Redis, but not Cluster, where the two may live on different servers).
   */
  getRecordVia?(index: string, prefix: string): Promise<{ id: string; record: StoredRecord | undefined } | undefined>;
  /**
   * The string at `index` (an id) and the strings at each of `prefixes` + that id, in one round
   * trip where the store can (Redis, but not Cluster); undefined, with nothing else read, when the
   * index holds nothing.
   */
  getVia?(index: string, prefixes: readonly string[]): Promise<{ id: string; values: (string | undefined)[] } | undefined>;
  /**
   * get, getRecord and getRecordVia of several keys at once: one command where every key lives on
   * one server (Redis, but not Cluster, where each is read on its own, in one round trip still).
   * What read-ahead.ts starts together for a request goes out this way.
   */
  readMany?(reads: Required<ReadsAhead>): Promise<ReadResults>;
  /**
   * Replaces a record (dropping any consumed mark) and sets or clears its TTL, unless the key holds
   * an ending (endRecord): then nothing is written and the answer is false. One operation on one
   * key, so a write in flight when the record was ended cannot bring it back. `bounded`: on Redis,
   * not written when Redis runs it after the caller stopped waiting (a Redis paused past
   * redis.commandTimeout), as consumeRecord's consumption: the caller has had its outage then, and
   * nothing was written.
   */
  putRecord(key: string, payload: string, ttl?: number, options?: { readonly bounded?: boolean }): Promise<boolean>;
  /**
   * Replaces a record by its ending, which getRecord reads as no record and putRecord does not
   * overwrite, for as long as the record had left to live (or `ttl` seconds when it had no expiry
   * or was gone already). What ends a record that a request in flight may write again (a session).
   * `successor`: the key of the record that replaces it (a session's renewed id), kept with the
   * ending, so that what ends this one later ends that one too. An ending already there is left as
   * it is (no successor set): the answer says so, and names the successor it holds. A live record
   * ended without a successor (an ending, not a renewal): the answer holds its payload as it was at
   * that moment (what a session held when it ended).
   */
  endRecord(key: string, ttl: number, successor?: string): Promise<RecordEnding>;
  /**
   * putRecord, and addToSet of the record's key to `set` with the same TTL, as one command where
   * the store can (Redis, but not Cluster, where the two keys may live on different servers).
   */
  putRecordInSet?(key: string, payload: string, ttl: number | undefined, set: string): Promise<void>;
  /**
   * putRecord, and `pointer` set to `value` with the same TTL only when the record was written
   * (not ended), as one command where the store can (Redis, but not Cluster: there one after the
   * other). How a session's uid index never names a record whose save was refused as ended.
   */
  putRecordPointedTo?(key: string, payload: string, ttl: number | undefined, pointer: string, value: string): Promise<boolean>;
  /**
   * getRecord, and in the same step the record deleted when its payload's `clientId` is `owner` and
   * its `exp` (epoch seconds) is after `now`: `taken` says whether it was. How the revocation
   * endpoint finds a client's own token and deletes it in one round trip (adapter.ts).
   */
  takeRecordOwnedBy?(key: string, owner: string, now: number): Promise<{ record: StoredRecord | undefined; taken: boolean }>;
  /**
   * Replaces a record only while it still holds `expected` (unconsumed): an update of what the
   * caller read, never of what someone changed since. Atomic; false (nothing written) otherwise.
   * `bounded`: on Redis, not written when Redis runs it after the caller stopped waiting, as
   * putRecord's (a client's write: store/adapter.ts upsertIfUnchanged).
   */
  replaceRecord?(key: string, expected: string, payload: string, ttl?: number, options?: { readonly bounded?: boolean }): Promise<boolean>;
  /**
   * Marks a record consumed unless it already is: of concurrent callers exactly one gets 'consumed'.
   * `drop`: the record is deleted too, by the same command, once consumed (by this call or before).
   * On Redis a consumption that runs after its caller stopped waiting (a Redis paused past
   * redis.commandTimeout) neither consumes nor deletes.
   */
  consumeRecord(key: string, at: number, options?: { readonly drop?: boolean }): Promise<ConsumeOutcome>;

  /** Adds a member to a set; the set's TTL becomes the larger of its current one and `ttl`. */
  addToSet(key: string, member: string, ttl?: number): Promise<void>;
  removeFromSet(key: string, member: string): Promise<void>;
  members(key: string): Promise<string[]>;
  /**
   * A set whose members each expire (a sorted set scored by each member's end, epoch ms on the
   * store's clock), for an index that many writers add to and none would ever empty: adds `member`
   * to live `ttl` seconds from now (a member's end only moves later) and, in the same step, drops
   * every member already ended; the key's TTL becomes the larger of its current one and `ttl`.
   * One key: atomic, Cluster-safe.
   */
  addExpiring(key: string, member: string, ttl: number): Promise<void>;
  /** The members of an expiring set (addExpiring) that have not ended. */
  liveMembers(key: string): Promise<string[]>;
  /**
   * Drops `member` from an expiring set and, in the same step, every member already ended (as an
   * add does): a set its readers empty one member at a time (ending every session of a person) is
   * left empty, not holding those that ended since the last add until the key expires.
   */
  removeExpiring(key: string, member: string): Promise<void>;

  /**
   * Replaces a string only if it still holds `expected` (`undefined`: only if it is absent), durable
   * or, with `ttl`, for `ttl` seconds. Atomic; false when someone else changed it first.
   * `bounded`: on Redis, not written when Redis runs it after the caller stopped waiting (a Redis
   * paused past redis.commandTimeout runs what waited once it resumes, after the caller answered
   * 503), as putRecord's: the caller has had its outage then, and nothing was written.
   */
  compareAndSet(key: string, expected: string | undefined, value: string, ttl?: number, options?: { readonly bounded?: boolean }): Promise<boolean>;
  /** Deletes a key only if it holds `value` (how the holder of a lock releases it, and no one else). */
  deleteIfEquals(key: string, value: string): Promise<boolean>;

  /**
   * Atomically: when `mark` is absent or holds a number below `value`, sets it to `value` with `ttl`
   * and appends `fields` to the log `log`, dropping log entries older than `retain` seconds (the log
   * itself expires `retain` seconds after its last append). Returns the appended entry's id, or
   * undefined when the mark already stood at `value` or above (then nothing is written).
   * `mark` and `log` must share a hash tag, so they share a cluster slot.
   */
  raiseMarkAndLog(
    mark: string,
    value: number,
    ttl: number,
    log: string,
    fields: Readonly<Record<string, string>>,
    retain: number,
  ): Promise<string | undefined>;
  /**
   * Up to `count` entries of a log, oldest first, after the entry `after` (exclusive), or from its
   * start. An `after` past the log's last entry, which this log never gave, is read as from its
   * start: ids come from the store's clock, so a log made again after its clock stepped back (the
   * log expired, a restore onto another host) writes its lines behind the cursors its readers hold.
   */
  readLog(log: string, after: string | undefined, count: number): Promise<LogEntry[]>;

  /**
   * Starts reads the request in progress will make soon, so that they share a round trip; its
   * reads of those keys are then answered by them (the server's store; see read-ahead.ts).
   * `request`: the request they are for (its Koa context), when the caller runs in front of
   * oidc-provider, before the request in progress is known to the store.
   */
  readAhead?(reads: ReadsAhead, request?: object): void;

  /**
   * Drops the reads started ahead of `keys` for `request`: for a caller in front of oidc-provider
   * that writes one of them, a write the store cannot tie to the request by itself.
   */
  forgetAhead?(keys: readonly string[], request?: object): void;

  /**
   * get and members of the keys under `prefixes` from process memory, kept as fresh as a read by
   * the store (tracked-cache.ts); undefined where the store cannot (Redis Cluster: tracking is per
   * node) or has no reason to (the embedded store reads memory anyway, the CLI's lives a moment).
   * For small, hot, rarely written data (APIs, operator grants, the list of upstreams); never for revocation marks,
   * tokens, sessions or accounts.
   */
  cachedReads?(prefixes: readonly string[]): CachedReads | undefined;

  /**
   * Due work in sorted sets (scores: epoch milliseconds), for the timers every instance shares
   * (provider/backchannel-delivery.ts). Absent on the embedded store (one process, development).
   * schedule: adds `member` due at `at` (or moves it there) and, in the same step, drops `replaces`;
   * the set's TTL becomes the larger of its current one and `ttl`. One key: atomic, Cluster-safe.
   */
  schedule?(key: string, member: string | undefined, at: number, ttl: number, replaces?: string): Promise<void>;
  /**
   * Claims what is due at `now` in each of `keys` (at most `count` from each): every member claimed is
   * moved to `until`, in the same step, so of concurrent claimers exactly one gets it, and one that
   * stops before it settles it leaves it to be claimed again then. The keys share a hash tag.
   */
  claimDue?(keys: readonly string[], now: number, until: number, count: number): Promise<string[][]>;
  /**
   * Settles a claimed member: only while it is still due at `until` (nothing moved it since),
   * dropped, or moved to `at`. True when it was.
   */
  settleDue?(key: string, member: string, until: number, at?: number): Promise<boolean>;

  /** Round trip to the store; throws when it is unreachable. */
  ping(): Promise<void>;
  /**
   * The store's eviction policy when it may drop keys under memory pressure (Redis's
   * maxmemory-policy, on any master, other than noeviction), else undefined: what has a TTL (every
   * revocation entry, a session's ending, every single-use mark) is what the volatile-* policies
   * drop first, so a revoked token would work again and a spent code be taken twice.
   */
  evictionPolicy?(): Promise<string | undefined>;
  /**
   * Whether a master that may fail over (Redis Sentinel's, or one with replicas) answers a write
   * before any replica has it (min-replicas-to-write 0, or min-replicas-max-lag 0): an ending it
   * acknowledged just before a failover is lost with it, and what it ended works again.
   */
  acknowledgesUnreplicated?(): Promise<boolean>;
  /**
   * Whether a master answers a write it appends to no file (appendonly no, Redis's default) while it
   * keeps RDB snapshots (save points, also Redis's default; or CONFIG refused, so it may): a
   * restart (a crash, an OOM kill, a container killed) brings back its last RDB snapshot, and every
   * ending acknowledged since is undone without a trace the store's epoch could see (it is in the
   * snapshot), so what it ended works again.
   */
  acknowledgesUnpersisted?(): Promise<boolean>;
  /**
   * The store's clock, in epoch milliseconds (Redis's TIME): the one clock every process of a
   * deployment stamps and compares on (clock.ts followStoreClock). Undefined for the embedded
   * store, which one process alone uses.
   */
  time?(): Promise<number>;
  close(): Promise<void>;
}

/**
 * `each` of `items`, `size` at a time: the store calls of one batch share round trips (sent in one
 * tick, auto-pipelined), where one item after another would be a round trip each, and all at once
 * would queue every call of a large set together. The results, in order.
 */
export async function inBatches<T, R>(items: readonly T[], size: number, each: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let at = 0; at < items.length; at += size) results.push(...(await Promise.all(items.slice(at, at + size).map(each))));
  return results;
}

/**
 * What Kv.getVia answers, read in turn: the index, then the strings at each of `prefixes` + its id
 * (two round trips). For a store without getVia, and Redis Cluster's (its keys on other servers).
 */
export async function getViaInTurn(kv: Pick<Kv, 'get'>, index: string, prefixes: readonly string[]): Promise<{ id: string; values: (string | undefined)[] } | undefined> {
  const id = await kv.get(index);
  return id === undefined ? undefined : { id, values: await Promise.all(prefixes.map((prefix) => kv.get(prefix + id))) };
}

/** What `holding` answers when another held the key all the time it waited. */
export const STILL_HELD: unique symbol = Symbol('still held');

/**
 * Runs `work` holding `key`, and answers what it answered: the key set-if-absent to a random token
 * for `ttl` seconds (a holder stopped half-way lets go when it expires; bounded, so a take that Redis
 * runs after its caller gave up holds nothing), released by that token only (deleteIfEquals, as the
 * key ring's lock). While another holds it, tried again every `poll` ms (with jitter) for up to `wait`
 * ms; STILL_HELD when it stayed held. For a check and the write it allows that span keys no single
 * command can (other cluster slots): of two run at once, the second reads after the first wrote.
 */
export async function holding<T>(
  kv: Pick<Kv, 'set' | 'deleteIfEquals'>,
  key: string,
  work: () => Promise<T>,
  { ttl, wait, poll = 25 }: { readonly ttl: number; readonly wait: number; readonly poll?: number },
): Promise<T | typeof STILL_HELD> {
  const token = randomUUID();
  const deadline = Date.now() + wait;
  const take = () =>
    kv.set(key, token, { ttl, onlyIfAbsent: true, bounded: true }).catch((error: unknown) => {
      // Taken, maybe, its answer lost (the connection cut as Redis ran it): let go as a release lost
      // to a blip is, or the key held every retry of the person's off for its whole TTL ("another
      // change … at the same moment": thirteenth blips pass).
      void lettingGo(kv, key, token, RELEASE_TRIES);
      throw error;
    });
  while (!(await take())) {
    if (Date.now() >= deadline) return STILL_HELD;
    await new Promise((done) => setTimeout(done, poll / 2 + Math.random() * poll));
  }
  try {
    return await work();
  } finally {
    await lettingGo(kv, key, token, RELEASE_TRIES);
  }
}

/** How many times `holding` tries to let go of its key, RELEASE_RETRY_MS apart, before leaving it to its TTL. */
const RELEASE_TRIES = 20;
const RELEASE_RETRY_MS = 500;

/**
 * Lets go of a key `holding` held; a release lost to a blip (the connection cut, as the work's own
 * failure was) is tried again in the background once the store is back, so the next holder need not
 * wait the whole TTL (a person's make cut off held its name's reservation 30 s; twelfth fresh-eyes
 * passes' leftovers). Safe late: it deletes only this holder's token.
 */
async function lettingGo(kv: Pick<Kv, 'deleteIfEquals'>, key: string, token: string, tries: number): Promise<void> {
  try {
    await kv.deleteIfEquals(key, token);
  } catch {
    if (tries > 1) setTimeout(() => void lettingGo(kv, key, token, tries - 1), RELEASE_RETRY_MS).unref();
  }
}
