/**
 * Reads started ahead, so that what a request will read one after another shares round trips.
 *
 * oidc-provider loads what a token request needs one record at a time (the code or refresh token,
 * then its session, grant and account), each an await of its own: one Redis round trip each. The
 * first record names the others, so the adapter starts their reads as soon as it has it
 * (`readAhead`), all in one tick (ioredis pipelines them), and the reads oidc-provider then makes
 * are answered by those.
 *
 * What keeps this from ever serving something stale: a read started ahead belongs to the request
 * in progress (oidc-provider's `Provider.ctx`, the Koa context of the request) and is used at most
 * once, by the first read of the same key in that request; a write to a key in that request drops
 * its read; nothing outlives the request. A middleware in front of oidc-provider (before its
 * request context exists) names the request explicitly: the same Koa context, which oidc-provider
 * then runs the request in. A read started ahead is issued after the request
 * arrived, like the read it replaces, so anything revoked before then is seen as revoked.
 *
 * Where the store reads several keys in one command (Kv.readMany: Redis, not Cluster), the reads
 * started ahead in one tick, for any request, go out as one command at the end of that tick
 * (a microtask), rather than one command each: what a command costs the process (ioredis's command
 * object, its timer, its reply) is then paid once. A lone read goes out as itself.
 */
import { delegate } from './delegate.js';
import { engineRequest } from './engine-request.js';
import type { Kv, ReadResults, ReadsAhead, StoredRecord } from './kv.js';

type Pending = Map<string, Promise<unknown>>;

const STRING = 's:';
const RECORD = 'r:';

/**
 * `kv` with `readAhead`, and get/getRecord answered by a read started ahead when there is one.
 * `request`: the request in progress (an object living as long as it), undefined outside one.
 */
type WithReadAhead = { readAhead(reads: ReadsAhead, of?: object): void; forgetAhead(keys: readonly string[], of?: object): void };

/** Reads of one tick, sent together by readMany; each `settle` hands a read its answer. */
interface Batch {
  readonly strings: string[];
  readonly records: string[];
  readonly indexed: { index: string; prefix: string }[];
  readonly settle: ((results: ReadResults) => void)[];
  readonly fail: ((error: unknown) => void)[];
}

export function withReadAhead<T extends Kv>(kv: T, request: () => object | undefined = engineRequest): T & WithReadAhead {
  const byRequest = new WeakMap<object, Pending>();
  // The tick's batch, when the store reads many in one command.
  let batch: Batch | undefined;
  const send = () => {
    const { strings, records, indexed, settle, fail } = batch!;
    batch = undefined;
    // A lone read as itself: no script to run for one key.
    const sent: Promise<ReadResults> =
      settle.length > 1
        ? kv.readMany!({ strings, records, indexed })
        : strings.length
          ? kv.get(strings[0]!).then((value) => ({ strings: [value], records: [], indexed: [] }))
          : records.length
            ? kv.getRecord(records[0]!).then((record) => ({ strings: [], records: [record], indexed: [] }))
            : viaIndex(indexed[0]!).then((found) => ({ strings: [], records: [], indexed: [found] }));
    sent.then(
      (results) => {
        for (const answer of settle) answer(results);
      },
      (error: unknown) => {
        for (const reject of fail) reject(error);
      },
    );
  };
  /** A read joining the tick's batch: `at` is where its answer will be among its kind's. */
  const batched = <V>(add: (batch: Batch) => number, answer: (results: ReadResults, at: number) => V): Promise<V> => {
    if (!batch) {
      batch = { strings: [], records: [], indexed: [], settle: [], fail: [] };
      queueMicrotask(send);
    }
    const joined = batch;
    const at = add(joined);
    return new Promise<V>((resolve, reject) => {
      joined.settle.push((results) => resolve(answer(results, at)));
      joined.fail.push(reject);
    });
  };
  const viaIndex = ({ index, prefix }: { index: string; prefix: string }) =>
    kv.getRecordVia
      ? kv.getRecordVia(index, prefix)
      : kv.get(index).then(async (id) => (id === undefined ? undefined : { id, record: await kv.getRecord(prefix + id) }));
  const readString = (key: string): Promise<string | undefined> =>
    kv.readMany ? batched((b) => b.strings.push(key) - 1, (results, at) => results.strings[at]) : kv.get(key);
  const readRecord = (key: string): Promise<StoredRecord | undefined> =>
    kv.readMany ? batched((b) => b.records.push(key) - 1, (results, at) => results.records[at]) : kv.getRecord(key);
  const readVia = (read: { index: string; prefix: string }) =>
    kv.readMany ? batched((b) => b.indexed.push(read) - 1, (results, at) => results.indexed[at]) : viaIndex(read);
  const pending = (create: boolean, of?: object): Pending | undefined => {
    const ctx = of ?? request();
    if (!ctx) return undefined;
    let reads = byRequest.get(ctx);
    if (!reads && create) byRequest.set(ctx, (reads = new Map()));
    return reads;
  };
  /** The read of `prefix + key` started ahead for the request in progress, taken (used once). */
  const taken = <V>(prefix: string, key: string): Promise<V> | undefined => {
    const reads = pending(false);
    if (!reads) return undefined;
    const name = prefix + key;
    const started = reads.get(name) as Promise<V> | undefined;
    if (started) reads.delete(name);
    return started;
  };
  const start = <V>(reads: Pending, name: string, read: () => Promise<V>): Promise<V> | undefined => {
    if (reads.has(name)) return undefined;
    const started = read();
    started.catch(() => {}); // reported to whoever uses it; one never used is dropped with the request
    reads.set(name, started);
    return started;
  };
  /** Keys a request wrote while it had reads started ahead (a record read through its index is kept only if not among them). */
  const writtenBy = new WeakMap<Pending, Set<string>>();
  const written = (keys: readonly string[], of?: object) => {
    const reads = pending(false, of);
    if (!reads) return;
    let wrote = writtenBy.get(reads);
    if (!wrote) writtenBy.set(reads, (wrote = new Set()));
    for (const key of keys) {
      reads.delete(STRING + key);
      reads.delete(RECORD + key);
      wrote.add(key);
    }
  };
  const readAhead = ({ strings = [], records = [], indexed = [] }: ReadsAhead, of?: object) => {
    const reads = pending(true, of);
    if (!reads) return;
    for (const key of strings) start(reads, STRING + key, () => readString(key));
    for (const key of records) start(reads, RECORD + key, () => readRecord(key));
    for (const read of indexed) {
      const { index, prefix } = read;
      if (reads.has(STRING + index)) continue;
      // Both in one round trip where the store can; else the record as soon as its id is known.
      const both = readVia(read);
      start(reads, STRING + index, () =>
        both.then((found) => {
          // Not the record if the request wrote it meanwhile: the read may have gone out before the write.
          if (found && !writtenBy.get(reads)?.has(prefix + found.id)) start(reads, RECORD + prefix + found.id, () => Promise.resolve(found.record));
          return found?.id;
        }),
      );
    }
  };
  const overrides: Partial<Kv> & WithReadAhead = {
    readAhead,
    forgetAhead: (keys, of) => written(keys, of),
    get: (key) => taken<string | undefined>(STRING, key) ?? kv.get(key),
    getRecord: (key) => taken<StoredRecord | undefined>(RECORD, key) ?? kv.getRecord(key),
    set: (key, value, options) => (written([key]), kv.set(key, value, options)),
    del: (keys) => (written(keys), kv.del(keys)),
    putRecord: (key, payload, ttl, options) => (written([key]), kv.putRecord(key, payload, ttl, options)),
    ...(kv.putRecordInSet && { putRecordInSet: (key: string, payload: string, ttl: number | undefined, set: string) => (written([key]), kv.putRecordInSet!(key, payload, ttl, set)) }),
    ...(kv.putRecordPointedTo && {
      putRecordPointedTo: (key: string, payload: string, ttl: number | undefined, pointer: string, value: string) => (written([key, pointer]), kv.putRecordPointedTo!(key, payload, ttl, pointer, value)),
    }),
    endRecord: (key, ttl, successor) => (written([key]), kv.endRecord(key, ttl, successor)),
    consumeRecord: (key, at, options) => (written([key]), kv.consumeRecord(key, at, options)),
    ...(kv.takeRecordOwnedBy && { takeRecordOwnedBy: (key: string, owner: string, now: number) => (written([key]), kv.takeRecordOwnedBy!(key, owner, now)) }),
    compareAndSet: (key, expected, value, ttl, options) => (written([key]), kv.compareAndSet(key, expected, value, ttl, options)),
    deleteIfEquals: (key, value) => (written([key]), kv.deleteIfEquals(key, value)),
  };
  // A plain object over the store: its methods bound, these in their place (no Proxy trap per call).
  return Object.assign(delegate(kv, () => undefined), overrides) as T & WithReadAhead;
}
