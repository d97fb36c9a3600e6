/**
 * The key-value operations Latchkey needs from its store. Redis implements them over ioredis
 * (standalone, Sentinel, Cluster); the embedded store implements them in process.
 *
 * Every operation touches exactly one key, so each one works unchanged on Redis Cluster, and the
 * ones that must be atomic (consumeRecord, addToSet) are atomic on their key. TTLs are in seconds;
 * a key written without one is durable data (clients, accounts).
 */
export interface StoredRecord {
  /** The JSON payload as written. */
  readonly payload: string;
  /** Epoch seconds at which the record was consumed, if it was. */
  readonly consumed?: number;
}

export type ConsumeOutcome = 'consumed' | 'already-consumed' | 'missing';

export interface Kv {
  /** Which implementation this is, for logs and /readyz. */
  readonly kind: 'redis' | 'embedded';

  get(key: string): Promise<string | undefined>;
  /** Writes a string; with onlyIfAbsent, returns false (and writes nothing) when the key exists. */
  set(key: string, value: string, options?: { ttl?: number; onlyIfAbsent?: boolean }): Promise<boolean>;
  /** Deletes keys (each on its own, so they may live on different cluster slots). */
  del(keys: readonly string[]): Promise<void>;

  /** Reads a record written by putRecord. */
  getRecord(key: string): Promise<StoredRecord | undefined>;
  /** Replaces a record (dropping any consumed mark) and sets or clears its TTL. */
  putRecord(key: string, payload: string, ttl?: number): Promise<void>;
  /** Marks a record consumed unless it already is: of concurrent callers exactly one gets 'consumed'. */
  consumeRecord(key: string, at: number): Promise<ConsumeOutcome>;

  /** Adds a member to a set; the set's TTL becomes the larger of its current one and `ttl`. */
  addToSet(key: string, member: string, ttl?: number): Promise<void>;
  removeFromSet(key: string, member: string): Promise<void>;
  members(key: string): Promise<string[]>;

  /** Round trip to the store; throws when it is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
