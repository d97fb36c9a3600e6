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
 */
import { Provider } from 'oidc-provider';
import { delegate } from './delegate.js';
import type { Kv, ReadsAhead, StoredRecord } from './kv.js';

type Pending = Map<string, Promise<unknown>>;

/** The request in progress: oidc-provider's (its Koa context, from its AsyncLocalStorage). */
const providerRequest = () => Provider.ctx as object | undefined;

const STRING = 's:';
const RECORD = 'r:';

/**
 * `kv` with `readAhead`, and get/getRecord answered by a read started ahead when there is one.
 * `request`: the request in progress (an object living as long as it), undefined outside one.
 */
type WithReadAhead = { readAhead(reads: ReadsAhead, of?: object): void; forgetAhead(keys: readonly string[], of?: object): void };

export function withReadAhead<T extends Kv>(kv: T, request: () => object | undefined = providerRequest): T & WithReadAhead {
  const byRequest = new WeakMap<object, Pending>();
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
  const written = (keys: readonly string[], of?: object) => {
    const reads = pending(false, of);
    if (!reads) return;
    for (const key of keys) {
      reads.delete(STRING + key);
      reads.delete(RECORD + key);
    }
  };
  const readAhead = ({ strings = [], records = [], indexed = [] }: ReadsAhead, of?: object) => {
    const reads = pending(true, of);
    if (!reads) return;
    for (const key of strings) start(reads, STRING + key, () => kv.get(key));
    for (const key of records) start(reads, RECORD + key, () => kv.getRecord(key));
    for (const { index, prefix } of indexed) {
      if (reads.has(STRING + index)) continue;
      // Both in one round trip where the store can; else the record as soon as its id is known.
      const both = kv.getRecordVia
        ? kv.getRecordVia(index, prefix)
        : kv.get(index).then(async (id) => (id === undefined ? undefined : { id, record: await kv.getRecord(prefix + id) }));
      start(reads, STRING + index, () =>
        both.then((found) => {
          if (found) start(reads, RECORD + prefix + found.id, () => Promise.resolve(found.record));
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
    putRecord: (key, payload, ttl) => (written([key]), kv.putRecord(key, payload, ttl)),
    ...(kv.putRecordInSet && { putRecordInSet: (key: string, payload: string, ttl: number | undefined, set: string) => (written([key]), kv.putRecordInSet!(key, payload, ttl, set)) }),
    endRecord: (key, ttl) => (written([key]), kv.endRecord(key, ttl)),
    consumeRecord: (key, at) => (written([key]), kv.consumeRecord(key, at)),
    ...(kv.takeRecordOwnedBy && { takeRecordOwnedBy: (key: string, owner: string, now: number) => (written([key]), kv.takeRecordOwnedBy!(key, owner, now)) }),
    compareAndSet: (key, expected, value) => (written([key]), kv.compareAndSet(key, expected, value)),
    deleteIfEquals: (key, value) => (written([key]), kv.deleteIfEquals(key, value)),
  };
  // A plain object over the store: its methods bound, these in their place (no Proxy trap per call).
  return Object.assign(delegate(kv, () => undefined), overrides) as T & WithReadAhead;
}
