/**
 * Reads of a few key prefixes answered from process memory, kept fresh by Redis itself
 * (server-assisted client-side caching: https://redis.io/docs/latest/develop/reference/client-side-caching/).
 *
 * A dedicated connection (RESP2) turns on `CLIENT TRACKING ... REDIRECT <its own id> BCAST PREFIX
 * <prefix>...` and subscribes to `__redis__:invalidate`. In BCAST mode Redis then names every key
 * under those prefixes that anyone changes (another instance, the CLI, redis-cli, an expiry,
 * FLUSHDB), whatever this process read, so there is no publishing to forget on the writing side.
 *
 * Why a cached answer is as fresh as a read:
 * - Entries are trusted only while that connection is up with tracking confirmed on. Any
 *   close/end/error/reconnect of it, or a drop of the connection the reads go on, drops every
 *   entry, and reads go to Redis until tracking is back: a pub/sub message is only ever lost
 *   with its connection.
 * - A connection can also stop delivering without closing (half-open: a NAT or firewall that
 *   dropped it, a paused proxy; no RST, so nothing tells ioredis). A heartbeat proves the path end
 *   to end: every HEARTBEAT.every ms a sentinel key of this cache's own (tracked like the rest) is
 *   written on the connection the reads go on, and its invalidation must reach this cache within
 *   HEARTBEAT.within ms. Late, every entry goes, reads go to Redis, and the connection is made
 *   again; entries are used again only once a beat on the new one arrived in time. So an
 *   invalidation lost to a silent connection leaves an entry stale for at most every + within
 *   (3 s) after the connection fell silent, not maxAge. The beats are timers, never on a read.
 * - A read that started before an invalidation (or a reset) and returns after it is not kept: a
 *   generation counter, bumped by each of them, must be unchanged when the reply comes.
 * - Redis sends an invalidation before it answers the write that caused it, but on another socket:
 *   a cached answer is given only after the I/O that has already arrived has been handled
 *   (`#settled`), so a request that follows a completed write sees the write (FLUSHDB's
 *   invalidation is the exception: with Redis 7.0 it was seen to arrive microseconds after the
 *   answer). A write of this
 *   process's store does not even wait for that: as it is answered, its keys' entries go (`forget`),
 *   so this process reads its own writes however late the invalidation comes (a lost packet).
 * - Entries are bounded in number (oldest first out) and in age, a backstop rather than the way
 *   they are kept fresh; and in size: a key longer than MAX_KEY_LENGTH is never kept.
 */
import { randomBytes } from 'node:crypto';
import { ReplyError, type Redis, type RedisOptions } from 'ioredis';
import type { CachedReads } from './kv.js';
import { trackedCacheBeatsPrefix } from './keys.js';

/**
 * What the cache's own connection needs over the store's: RESP2, in which Redis delivers
 * invalidations as messages on `__redis__:invalidate` (ioredis passes RESP3's invalidate pushes to
 * no one); and nothing replayed on a new connection (no resubscription, no queued or unanswered
 * command sent again): the set-up is redone, in order, at every `ready`.
 */
export const TRACKING_CONNECTION = {
  protocol: 2,
  autoResubscribe: false,
  autoResendUnfulfilledCommands: false,
  enableOfflineQueue: false,
  enableAutoPipelining: false,
} as const satisfies Partial<RedisOptions>;

export interface TrackedCacheOptions {
  /** Entries kept at most; the oldest goes first. */
  readonly maxEntries: number;
  /** Milliseconds an entry is used at most, even with no invalidation. */
  readonly maxAge: number;
  /** Tracking could not be turned on, or its heartbeat not written (an old Redis, an ACL): reads go to Redis meanwhile. */
  readonly unavailable?: (error: Error) => void;
  /**
   * The connection `source` reads on (its keyPrefix the cache's). When it drops, this cache's own
   * connection reconnects too: after a Sentinel failover both then stand on the new master, never
   * reads on one server and invalidations from another. The heartbeat's sentinel is written on it.
   */
  readonly readsOn: Redis;
  /** How often the invalidation path is proven, and how long a proof may take, in ms (HEARTBEAT). */
  readonly heartbeat?: { readonly every: number; readonly within: number };
  /** Tracking was on and a beat came late (a silent connection): for the log. */
  readonly lapsed?: () => void;
}

/**
 * A beat a second, its invalidation due within 2 s: an invalidation lost to a connection that
 * went silent leaves an entry stale for at most 3 s. Within is generous on purpose: a beat late
 * only because the event loop or Redis was busy costs a reconnection and a cold cache.
 */
export const HEARTBEAT = { every: 1000, within: 2000 } as const;

const CHANNEL = '__redis__:invalidate';

/**
 * Longer keys are read through, never kept. Some keys carry what a request names (an API looked up
 * by an authorization request's `resource`, up to the 56 KiB of a body), and an absence is kept
 * too: without this bound, maxEntries requests could pin maxEntries × 56 KiB. Room for a client ID
 * that is a URL (a metadata document's).
 */
const MAX_KEY_LENGTH = 1024;

/** Redis refuses overlapping prefixes for one client; a longer one is covered by its shorter one. */
function withoutOverlaps(prefixes: readonly string[]): string[] {
  return prefixes.filter((prefix, i) => !prefixes.some((other, j) => j !== i && prefix.startsWith(other) && (other !== prefix || j < i)));
}

/** A sentinel written, its invalidation awaited. */
interface Beat {
  readonly key: string;
  /** The write was answered: a late invalidation is then this connection's fault. */
  answered: boolean;
  /** Its deadline passed before its write was answered (Redis or the store's connection slow). */
  late: boolean;
}

type Entry =
  | { readonly kind: 'get'; readonly value: string | undefined; readonly at: number }
  | { readonly kind: 'members'; readonly value: readonly string[]; readonly at: number };

export class TrackedCache implements CachedReads {
  readonly #source: CachedReads;
  readonly #connection: Redis;
  readonly #keyPrefix: string;
  #prefixes: readonly string[];
  readonly #options: TrackedCacheOptions;
  readonly #entries = new Map<string, Entry>();
  #tracking = false;
  /** Bumped by every invalidation and every reset: a read spanning one is not kept. */
  #generation = 0;
  /** Bumped by every connection event, so that a tracking set-up overtaken by one gives up. */
  #session = 0;
  #turn: Promise<void> | undefined;
  readonly #heartbeat: { readonly every: number; readonly within: number };
  /** The prefix of this cache's sentinels, as the store's callers name keys (the store's connection puts its keyPrefix before). */
  readonly #beats: string;
  #beatCount = 0;
  /** The session whose set-up completed (tracking on, subscribed): beats go only on it. */
  #subscribed: number | undefined;
  #awaiting: Beat | undefined;
  /** The set-up's or the awaited beat's deadline. */
  #deadline: NodeJS.Timeout | undefined;
  readonly #ticker: NodeJS.Timeout;
  readonly #readsOnClosed: () => void;
  #closed = false;
  /** A heartbeat's write refused by Redis was reported (once: it is tried again every beat). */
  #refusalTold = false;

  /**
   * `source`: the store's uncached reads. `connection`: this cache's own (TRACKING_CONNECTION).
   * `keyPrefix`: what the store puts before every key (invalidations name full keys).
   * `prefixes`: the keys this cache answers for, as the store's callers name them.
   */
  constructor(source: CachedReads, connection: Redis, keyPrefix: string, prefixes: readonly string[], options: TrackedCacheOptions) {
    this.#source = source;
    this.#connection = connection;
    this.#keyPrefix = keyPrefix;
    this.#prefixes = withoutOverlaps(prefixes);
    this.#options = options;
    this.#heartbeat = options.heartbeat ?? HEARTBEAT;
    this.#beats = trackedCacheBeatsPrefix(randomBytes(6).toString('hex'));
    connection.on('messageBuffer', (channel: Buffer, keys: unknown) => {
      if (String(channel) === CHANNEL) this.#invalidate(keys);
    });
    for (const event of ['close', 'end', 'error', 'reconnecting']) connection.on(event, () => this.#reset());
    // ioredis reports a close once the socket is closed, a phase of the event loop after `#settled`
    // resolves; the socket's end of input comes with the data that brought it.
    connection.on('connect', () => connection.stream.once('end', () => this.#reset()));
    connection.on('ready', () => void this.#track());
    this.#readsOnClosed = () => {
      this.#reset();
      if (connection.status === 'ready') connection.disconnect(true);
    };
    options.readsOn.on('close', this.#readsOnClosed);
    this.#ticker = setInterval(() => this.#beat(), this.#heartbeat.every).unref();
    if (connection.status === 'ready') void this.#track();
  }

  /**
   * More prefixes to answer for: one connection serves every reader of the store. A subscribed
   * connection can send nothing but subscriptions, so tracking starts over on a new connection,
   * with every prefix (the set-up at `ready`); meanwhile reads go to Redis.
   */
  watch(prefixes: readonly string[]): void {
    const all = withoutOverlaps([...this.#prefixes, ...prefixes]);
    if (all.length === this.#prefixes.length && all.every((prefix) => this.#prefixes.includes(prefix))) return;
    this.#prefixes = all;
    this.#reset();
    if (this.#connection.status === 'ready') this.#connection.disconnect(true);
  }

  /** True while entries are kept and used (tracking confirmed on, connection up, the last beat in time). */
  get tracking(): boolean {
    return this.#tracking;
  }

  get(key: string): Promise<string | undefined> {
    return this.#read(key, 'get', () => this.#source.get(key));
  }

  async members(key: string): Promise<string[]> {
    // A copy: the caller may change what it gets.
    return [...(await this.#read(key, 'members', () => this.#source.members(key)))];
  }

  /**
   * This process wrote `keys` (its store calls this once the write is answered, or failed): their
   * entries go now, without waiting for the invalidation, which comes on another socket.
   */
  forget(keys: readonly string[]): void {
    const ours = keys.filter((key) => this.#prefixes.some((prefix) => key.startsWith(prefix)));
    if (!ours.length) return;
    // A read of them still on its way is not kept either.
    this.#generation += 1;
    for (const key of ours) this.#entries.delete(key);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#ticker);
    this.#options.readsOn.off('close', this.#readsOnClosed);
    this.#reset();
    await this.#connection.quit().catch(() => this.#connection.disconnect());
  }

  async #read<K extends Entry['kind']>(key: string, kind: K, read: () => Promise<Extract<Entry, { kind: K }>['value']>) {
    type Value = Extract<Entry, { kind: K }>['value'];
    if (!this.#tracking || key.length > MAX_KEY_LENGTH || !this.#prefixes.some((prefix) => key.startsWith(prefix))) return read();
    if (this.#entries.has(key)) {
      await this.#settled();
      const entry = this.#entries.get(key);
      if (entry?.kind === kind && Date.now() - entry.at < this.#options.maxAge) return entry.value as Value;
      this.#entries.delete(key);
    }
    const generation = this.#generation;
    const value = await read();
    if (generation === this.#generation && this.#tracking) this.#keep(key, { kind, value, at: Date.now() } as Entry);
    return value;
  }

  #keep(key: string, entry: Entry) {
    this.#entries.delete(key);
    if (this.#entries.size >= this.#options.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, entry);
  }

  /**
   * Resolves after this turn of the event loop has handled the I/O already received: an
   * invalidation that Redis sent before answering a write is handled before a cached answer is
   * given to a request that arrived after that answer. One timer for all reads in the turn.
   */
  #settled(): Promise<void> {
    return (this.#turn ??= new Promise((done) =>
      setImmediate(() => {
        this.#turn = undefined;
        done();
      }),
    ));
  }

  /** An invalidation message: the full names of the keys changed, or null for "everything" (FLUSHDB, tracking table full). */
  #invalidate(keys: unknown) {
    if (!Array.isArray(keys)) {
      this.#generation += 1;
      this.#entries.clear();
      return;
    }
    const beats = this.#keyPrefix + this.#beats;
    let changed = false;
    for (const full of keys) {
      const name = String(full);
      if (name.startsWith(beats)) {
        // A sentinel (the awaited one, or an earlier one expiring): no entry of a reader's.
        if (this.#awaiting && name === this.#keyPrefix + this.#awaiting.key) this.#proven();
        continue;
      }
      changed = true;
      if (name.startsWith(this.#keyPrefix)) this.#entries.delete(name.slice(this.#keyPrefix.length));
    }
    if (changed) this.#generation += 1;
  }

  /** Entries off until a beat arrives in time; the connection and its subscription stay. */
  #off() {
    this.#generation += 1;
    this.#tracking = false;
    this.#entries.clear();
  }

  #reset() {
    this.#session += 1;
    this.#awaiting = undefined;
    clearTimeout(this.#deadline);
    this.#off();
  }

  /**
   * `then` after `ms`, once the I/O received meanwhile has been handled (after a stalled event
   * loop the timer fires before the poll that would read a proof already arrived).
   */
  #due(ms: number, then: () => void) {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => setImmediate(then), ms).unref();
  }

  /** A sentinel written on the store's connection, whose invalidation must reach this one in time. */
  #beat() {
    if (this.#closed || this.#subscribed !== this.#session || this.#awaiting) return;
    const beat: Beat = { key: `${this.#beats}${(this.#beatCount += 1)}`, answered: false, late: false };
    this.#awaiting = beat;
    const { every, within } = this.#heartbeat;
    this.#due(within, () => this.#late(beat));
    this.#options.readsOn.set(beat.key, '1', 'PX', every + within).then(
      () => {
        beat.answered = true;
        // Answered after its deadline: its invalidation, sent before the answer, is due as soon.
        if (beat.late && this.#awaiting === beat) this.#due(within, () => this.#late(beat));
      },
      (error: Error) => {
        // Not written (the store's connection down or timed out, an ACL): nothing proves the path.
        if (error instanceof ReplyError && error.message.startsWith('NOPERM') && !this.#refusalTold) {
          this.#refusalTold = true;
          this.#options.unavailable?.(error);
        }
        if (this.#awaiting !== beat) return;
        this.#awaiting = undefined;
        clearTimeout(this.#deadline);
        this.#off();
      },
    );
  }

  #proven() {
    this.#awaiting = undefined;
    clearTimeout(this.#deadline);
    if (this.#tracking || this.#subscribed !== this.#session) return;
    // Reads started before are not kept: their generation is older.
    this.#generation += 1;
    this.#tracking = true;
  }

  #late(beat: Beat) {
    if (this.#awaiting !== beat) return;
    if (!beat.answered) {
      // Redis or the store's connection is slow, not necessarily this one: no entry is used until
      // the beat arrives, due within `within` of its write's answer.
      beat.late = true;
      this.#off();
      return;
    }
    this.#lapse();
  }

  /** This connection is silent (a late beat, a set-up unanswered): everything goes, and a new connection is made. */
  #lapse() {
    if (this.#closed) return;
    const wasTracking = this.#tracking;
    this.#reset();
    if (wasTracking) this.#options.lapsed?.();
    // A half-open socket never closes by itself: ioredis ends it (destroyed after its
    // disconnectTimeout) and connects again, and the set-up runs at `ready`.
    if (this.#connection.status === 'ready' || this.#connection.status === 'connect') this.#connection.disconnect(true);
  }

  /**
   * On every (re)connection: tracking redirected to this very connection, then the subscription;
   * entries are used once the first beat arrives. A set-up unanswered within the heartbeat's
   * `within` is a silent connection too.
   */
  async #track() {
    this.#reset();
    const session = this.#session;
    this.#due(this.#heartbeat.within, () => {
      if (session === this.#session && this.#subscribed !== session) this.#lapse();
    });
    try {
      const id = await this.#connection.client('ID');
      const prefixes = [...this.#prefixes, this.#beats].flatMap((prefix) => ['PREFIX', this.#keyPrefix + prefix]);
      await this.#connection.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', ...prefixes);
      await this.#connection.subscribe(CHANNEL);
    } catch (error) {
      if (session !== this.#session) return;
      clearTimeout(this.#deadline);
      this.#options.unavailable?.(error as Error);
      return;
    }
    if (session !== this.#session) return;
    clearTimeout(this.#deadline);
    this.#subscribed = session;
    this.#beat();
  }
}
