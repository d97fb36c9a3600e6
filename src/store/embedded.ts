/**
 * The embedded store: the Kv operations in process, for a zero-setup development start.
 *
 * Data written with a TTL (sessions, tokens, codes) lives in memory only. Durable data (clients,
 * users) is also written to a JSON file (mode 0600: it holds client secrets), and the file is
 * polled, so a `latchkey clients add` in another process is seen by a running server within a
 * second. It is one process's store: it does not share sessions between instances. Use Redis for that.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { logIdAfter, type ConsumeOutcome, type Kv, type LogEntry, type RecordEnding, type StoredRecord } from './kv.js';
import { jsonProblem } from '../json-problem.js';

type Value =
  | { type: 'string'; value: string }
  | { type: 'record'; payload: string; consumed?: number }
  | { type: 'ended'; successor?: string }
  | { type: 'set'; members: string[] }
  | { type: 'expiring'; ends: Record<string, number> }
  | { type: 'log'; entries: LogEntry[]; last: [number, number] };
type Entry = Value & { expiresAt?: number };

/**
 * The store's file is not one it can read (a directory, not JSON) or write (a directory Latchkey's
 * user may not write): the operator's to fix, one line. `write`: a write failed (a request is
 * answered 503 for it, as for a Redis that cannot persist).
 */
export class EmbeddedFileUnusable extends Error {
  override name = 'EmbeddedFileUnusable';
  readonly write: boolean;
  constructor(message: string, options: ErrorOptions & { readonly write?: boolean } = {}) {
    super(message, options);
    this.write = options.write ?? false;
  }
}

const SWEEP_INTERVAL_MS = 60_000;
const WATCH_INTERVAL_MS = 500;

export class EmbeddedKv implements Kv {
  readonly kind = 'embedded';
  readonly #entries = new Map<string, Entry>();
  readonly #file: string | undefined;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #unreadable: ((error: EmbeddedFileUnusable) => void) | undefined;
  /** mtime of the file as this instance last wrote or read it. */
  #seenAt = 0;

  /** `unreadable`: told when a change of the file cannot be read (what was read before is kept). */
  constructor(file?: string, unreadable?: (error: EmbeddedFileUnusable) => void) {
    this.#file = file;
    this.#unreadable = unreadable;
    this.#timers.push(setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref());
    if (file) {
      this.#load();
      // Polling the mtime (rather than fs.watch) behaves the same on every platform and filesystem.
      this.#timers.push(setInterval(() => this.#reloadIfChanged(), WATCH_INTERVAL_MS).unref());
    }
  }

  async get(key: string) {
    const entry = this.#read(key, 'string');
    return entry?.value;
  }

  async set(key: string, value: string, options: { ttl?: number; onlyIfAbsent?: boolean; bounded?: boolean } = {}) {
    if (options.onlyIfAbsent && this.#live(key)) return false;
    this.#write(key, { type: 'string', value }, options.ttl);
    return true;
  }

  async del(keys: readonly string[]) {
    let durable = false;
    for (const key of keys) {
      const entry = this.#live(key);
      if (entry && entry.expiresAt === undefined) durable = true;
      this.#entries.delete(key);
    }
    if (durable) this.#persist();
  }

  async getRecord(key: string): Promise<StoredRecord | undefined> {
    const entry = this.#record(key);
    if (!entry) return undefined;
    return entry.consumed === undefined ? { payload: entry.payload } : { payload: entry.payload, consumed: entry.consumed };
  }

  // `bounded` (Kv.putRecord): one process, nothing runs after its caller stopped waiting.
  async putRecord(key: string, payload: string, ttl?: number, _options?: { readonly bounded?: boolean }) {
    if (this.#live(key)?.type === 'ended') return false;
    this.#write(key, { type: 'record', payload }, ttl);
    return true;
  }

  // `bounded` (Kv.replaceRecord): one process, nothing runs after its caller stopped waiting.
  async replaceRecord(key: string, expected: string, payload: string, ttl?: number, _options?: { readonly bounded?: boolean }) {
    const entry = this.#record(key);
    if (entry?.payload !== expected || entry.consumed !== undefined) return false;
    this.#write(key, { type: 'record', payload }, ttl);
    return true;
  }

  async endRecord(key: string, ttl: number, successor?: string): Promise<RecordEnding> {
    const live = this.#live(key);
    if (live?.type === 'ended') return { already: true, ...(live.successor !== undefined && { successor: live.successor }) };
    const expiresAt = live?.expiresAt;
    // At least a millisecond left: a TTL of 0 would write the ending durable, for good.
    this.#write(key, { type: 'ended', ...(successor && { successor }) }, expiresAt === undefined ? Math.max(1, Math.ceil(ttl)) : Math.max(1, expiresAt - Date.now()) / 1000);
    return { already: false, ...(live?.type === 'record' && !successor && { ended: live.payload }) };
  }

  async consumeRecord(key: string, at: number, options: { readonly drop?: boolean } = {}): Promise<ConsumeOutcome> {
    const entry = this.#record(key);
    if (!entry) return 'missing';
    if (options.drop) await this.del([key]);
    if (entry.consumed !== undefined) return 'already-consumed';
    if (options.drop) return 'consumed';
    entry.consumed = at;
    if (entry.expiresAt === undefined) this.#persist();
    return 'consumed';
  }

  async addToSet(key: string, member: string, ttl?: number) {
    const entry = this.#read(key, 'set');
    const members = new Set(entry?.members);
    members.add(member);
    // As in Redis: the TTL only grows, and a durable set stays durable.
    let expiresAt: number | undefined;
    if (ttl) {
      const wanted = Date.now() + ttl * 1000;
      expiresAt = !entry ? wanted : entry.expiresAt === undefined ? undefined : Math.max(entry.expiresAt, wanted);
    }
    this.#entries.set(key, { type: 'set', members: [...members], ...(expiresAt ? { expiresAt } : {}) });
    if (!expiresAt) this.#persist();
  }

  async removeFromSet(key: string, member: string) {
    const entry = this.#read(key, 'set');
    if (!entry) return;
    entry.members = entry.members.filter((m) => m !== member);
    if (!entry.members.length) this.#entries.delete(key);
    if (entry.expiresAt === undefined) this.#persist();
  }

  async members(key: string) {
    return [...(this.#read(key, 'set')?.members ?? [])];
  }

  async addExpiring(key: string, member: string, ttl: number) {
    const now = Date.now();
    const entry = this.#read(key, 'expiring');
    // Ended members dropped; a member's end only moves later; the key's TTL only grows.
    const ends = Object.fromEntries(Object.entries(entry?.ends ?? {}).filter(([, end]) => end > now));
    ends[member] = Math.max(ends[member] ?? 0, now + ttl * 1000);
    this.#entries.set(key, { type: 'expiring', ends, expiresAt: Math.max(entry?.expiresAt ?? 0, now + ttl * 1000) });
  }

  async liveMembers(key: string) {
    const now = Date.now();
    return Object.entries(this.#read(key, 'expiring')?.ends ?? {}).filter(([, end]) => end > now).map(([member]) => member);
  }

  async removeExpiring(key: string, member: string) {
    const entry = this.#read(key, 'expiring');
    if (!entry) return;
    const now = Date.now();
    // Ended members go too, as at addExpiring.
    entry.ends = Object.fromEntries(Object.entries(entry.ends).filter(([other, end]) => other !== member && end > now));
    if (!Object.keys(entry.ends).length) this.#entries.delete(key);
  }

  // `bounded` (Kv.compareAndSet): one process, nothing runs after its caller stopped waiting.
  async compareAndSet(key: string, expected: string | undefined, value: string, ttl?: number, _options?: { readonly bounded?: boolean }) {
    const current = this.#read(key, 'string')?.value;
    if (current !== expected) return false;
    this.#write(key, { type: 'string', value }, ttl);
    return true;
  }

  async deleteIfEquals(key: string, value: string) {
    if (this.#read(key, 'string')?.value !== value) return false;
    await this.del([key]);
    return true;
  }

  async raiseMarkAndLog(
    mark: string,
    value: number,
    ttl: number,
    log: string,
    fields: Readonly<Record<string, string>>,
    retain: number,
  ) {
    const current = Number(this.#read(mark, 'string')?.value);
    if (Number.isFinite(current) && current >= value) return undefined;
    this.#write(mark, { type: 'string', value: String(value) }, Math.max(1, Math.ceil(ttl)));
    const now = Date.now();
    const existing = this.#read(log, 'log');
    // As XADD: the id is the time in ms, or the last id's time with the next sequence number.
    const [lastMs, lastSeq] = existing?.last ?? [0, 0];
    const next: [number, number] = now > lastMs ? [now, 0] : [lastMs, lastSeq + 1];
    const id = `${next[0]}-${next[1]}`;
    const oldest = now - retain * 1000;
    const entries = (existing?.entries ?? []).filter((entry) => Number(entry.id.split('-')[0]) >= oldest);
    entries.push({ id, fields: { ...fields } });
    this.#entries.set(log, { type: 'log', entries, last: next, expiresAt: now + Math.max(1, Math.ceil(retain)) * 1000 });
    return id;
  }

  async readLog(log: string, after: string | undefined, count: number) {
    const entries = this.#read(log, 'log')?.entries ?? [];
    // A cursor past the last line, which this log never gave: its ids went back (Kv.readLog).
    const last = entries.at(-1)?.id;
    const from = after !== undefined && last !== undefined && logIdAfter(after, last) ? undefined : after;
    return entries.filter((entry) => from === undefined || logIdAfter(entry.id, from)).slice(0, count);
  }

  async ping() {}

  async close() {
    for (const timer of this.#timers) clearInterval(timer);
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  #read<T extends Value['type']>(key: string, type: T): Extract<Entry, { type: T }> | undefined {
    const entry = this.#live(key);
    if (!entry) return undefined;
    // Same answer as Redis's WRONGTYPE: a programming error, not a missing key.
    if (entry.type !== type) throw new Error(`embedded store: ${key} holds a ${entry.type}, not a ${type}`);
    return entry as Extract<Entry, { type: T }>;
  }

  /** The record at `key`; undefined when there is none or it was ended (endRecord). */
  #record(key: string): Extract<Entry, { type: 'record' }> | undefined {
    return this.#live(key)?.type === 'ended' ? undefined : this.#read(key, 'record');
  }

  #write(key: string, value: Value, ttl?: number) {
    const previous = this.#live(key);
    this.#entries.set(key, ttl ? { ...value, expiresAt: Date.now() + ttl * 1000 } : value);
    if (!ttl || (previous && previous.expiresAt === undefined)) this.#persist();
  }

  #sweep() {
    for (const key of this.#entries.keys()) this.#live(key);
  }

  #durable(): Record<string, Value> {
    const out: Record<string, Value> = {};
    for (const [key, entry] of this.#entries) if (entry.expiresAt === undefined) out[key] = entry;
    return out;
  }

  #persist() {
    if (!this.#file) return;
    const temporary = `${this.#file}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(this.#file), { recursive: true, mode: 0o700 });
      writeFileSync(temporary, JSON.stringify(this.#durable(), null, 1), { mode: 0o600 });
      renameSync(temporary, this.#file);
      this.#seenAt = statSync(this.#file).mtimeMs;
    } catch (error) {
      // Latchkey run as a user who may not write there (a checkout's data/ made by root, a directory
      // not made yet), a full disk: one line naming the setting, not mkdirSync's stack trace (fourteenth
      // newcomer pass). What failed is not kept: the durable entries go back to the file's, so a
      // request answered 503 for it (store/outage.ts storeRefused) left nothing behind in memory either.
      try {
        rmSync(temporary, { force: true });
      } catch {
        // a directory in its way, or none to remove
      }
      this.#revertToFile();
      throw new EmbeddedFileUnusable(`embedded.file (EMBEDDED_FILE): cannot write ${this.#file} (${(error as Error).message.replace(/\n/g, '\\n')}); expected a path Latchkey can write (its directory made, or makeable, by the user Latchkey runs as)`, { cause: error, write: true });
    }
  }

  /** The durable entries as the file has them (none while there is no file), after a write that failed. */
  #revertToFile() {
    try {
      this.#load();
      if (!existsSync(this.#file!)) for (const [key, entry] of this.#entries) if (entry.expiresAt === undefined) this.#entries.delete(key);
    } catch {
      // unreadable as well: what is in memory is all there is
    }
  }

  #reloadIfChanged() {
    let mtime: number;
    try {
      mtime = statSync(this.#file!).mtimeMs;
    } catch {
      return; // not written yet, or removed: keep what we have
    }
    if (mtime === this.#seenAt) return;
    try {
      this.#load();
    } catch (error) {
      // A hand edit gone wrong must not end the server from a timer: keep what was read, until the next change.
      if (!(error instanceof EmbeddedFileUnusable)) throw error;
      this.#seenAt = mtime;
      this.#unreadable?.(error);
    }
  }

  /** Replaces the durable entries with the file's (the file is their source of truth). */
  #load() {
    let stored: Record<string, Value>;
    let text: string | undefined;
    try {
      this.#seenAt = statSync(this.#file!).mtimeMs;
      text = readFileSync(this.#file!, 'utf8');
      stored = JSON.parse(text) as Record<string, Value>;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      // A parse error quotes the file around its mistake (tokens, sessions): neither it nor its message goes on (json-problem.ts).
      throw new EmbeddedFileUnusable(`embedded.file (EMBEDDED_FILE): cannot read ${this.#file} (${(error instanceof SyntaxError ? `not valid JSON: ${jsonProblem(error, text)}` : (error as Error).message).replace(/\n/g, '\\n')}); expected the embedded store's JSON file, or a path where none is yet`, error instanceof SyntaxError ? {} : { cause: error });
    }
    for (const [key, entry] of this.#entries) if (entry.expiresAt === undefined) this.#entries.delete(key);
    for (const [key, value] of Object.entries(stored)) this.#entries.set(key, value);
  }
}
