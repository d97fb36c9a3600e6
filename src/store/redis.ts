/**
 * The Redis store: an ioredis connection (standalone, Sentinel or Cluster) and the Kv operations
 * on it. Composite operations are Lua scripts on a single key, so they are atomic and cluster-safe.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../config.js';
import { getViaInTurn, logIdAfter, type CachedReads, type ConsumeOutcome, type Kv, type LogEntry, type ReadResults, type ReadsAhead, type RecordEnding, type StoredRecord } from './kv.js';
import { followStoreClock, storeMilliseconds } from '../clock.js';
import { defineScript } from './scripts.js';
import { sharePipelineLength } from './shared-pipeline-length.js';
import { turnCommandsOf, type Arg, type TurnCommands } from './turn-commands.js';
import { TRACKING_CONNECTION, TrackedCache, type TrackedCacheOptions } from './tracked-cache.js';

type RedisSettings = Config['redis'];

// Records are hashes: p = payload, c = consumed-at (absent until consumed); an ended record is
// the hash e = 1 alone, which putRecord leaves as it is (checked in the same script: no round trip
// more) and answers 0. Replacing a record drops its consumed mark; no TTL (0) leaves it durable.
const PUT_RECORD = `local function putRecord(key, payload, ttl)
  if redis.call('HEXISTS', key, 'e') == 1 then return 0 end
  redis.call('DEL', key)
  redis.call('HSET', key, 'p', payload)
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
  return 1
end`;
// A set's TTL only ever grows; a member added without TTL makes the set durable.
const ADD_TO_SET = `local function addToSet(key, member, ttl)
  local existed = redis.call('EXISTS', key)
  redis.call('SADD', key, member)
  if ttl <= 0 then redis.call('PERSIST', key) return end
  local current = redis.call('TTL', key)
  if existed == 0 or (current >= 0 and current < ttl) then redis.call('EXPIRE', key, ttl) end
end`;

const SCRIPTS = {
  putRecord: {
    numberOfKeys: 1,
    lua: `${PUT_RECORD}
return putRecord(KEYS[1], ARGV[1], tonumber(ARGV[2]))`,
  },
  // Kv.putRecord bounded. ARGV: payload, ttl, the caller's last millisecond as consumeRecord's. -2 too late.
  putRecordBounded: {
    numberOfKeys: 1,
    lua: `${PUT_RECORD}
if ARGV[3] ~= '' then
  local now = redis.pcall('TIME')
  if type(now) == 'table' and now[2] and tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[3]) then return -2 end
end
return putRecord(KEYS[1], ARGV[1], tonumber(ARGV[2]))`,
  },
  // Only while the record holds ARGV[1], unconsumed (Kv.replaceRecord). ARGV[4] (bounded): the caller's last millisecond as consumeRecord's, -2 too late.
  replaceRecord: {
    numberOfKeys: 1,
    lua: `${PUT_RECORD}
if ARGV[4] and ARGV[4] ~= '' then
  local now = redis.pcall('TIME')
  if type(now) == 'table' and now[2] and tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[4]) then return -2 end
end
if redis.call('HGET', KEYS[1], 'p') ~= ARGV[1] or redis.call('HEXISTS', KEYS[1], 'c') == 1 then return 0 end
return putRecord(KEYS[1], ARGV[2], tonumber(ARGV[3]))`,
  },
  // Keeps the record's remaining lifetime (ARGV[1] seconds when it had none, or was gone); ARGV[2]
  // its successor's key ('' for none). An ending already there stays as it is: {1, its successor}.
  // Else {0, '', the payload it ended ('' when there was no record, or for a renewal: ARGV[2] set)}.
  endRecord: {
    numberOfKeys: 1,
    lua: `if redis.call('HEXISTS', KEYS[1], 'e') == 1 then return {1, redis.call('HGET', KEYS[1], 'n') or ''} end
local ttl = redis.call('PTTL', KEYS[1])
local payload = ARGV[2] == '' and redis.call('HGET', KEYS[1], 'p') or ''
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'e', '1')
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'n', ARGV[2]) end
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {0, '', payload}`,
  },
  // Kv.consumeRecord. ARGV: when (seconds, with ms), the last millisecond on Redis's clock at which
  // the caller still waits for the answer ('' for no bound), and '1' to delete the record once
  // consumed: run later (a Redis paused past the caller's commandTimeout runs what waited in its
  // socket once it resumes, after the caller answered 503), it consumes and deletes nothing (-2),
  // so the code, refresh token or sign-in is still there for the retry. Under an ACL without TIME
  // (operating.md asks for TIME: raiseMarkAndLog and addExpiring need it) there is no bound.
  consumeRecord: {
    numberOfKeys: 1,
    lua: `if redis.call('HEXISTS', KEYS[1], 'p') == 0 then return -1 end
if ARGV[2] ~= '' then
  local now = redis.pcall('TIME')
  if type(now) == 'table' and now[2] and tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[2]) then return -2 end
end
local consumed = redis.call('HSETNX', KEYS[1], 'c', ARGV[1])
if ARGV[3] == '1' then redis.call('DEL', KEYS[1]) end
return consumed`,
  },
  // Kv.set bounded: ARGV value, ttl, and the caller's last millisecond as consumeRecord's. 1 set, 0 present, -2 too late.
  setIfAbsentBounded: {
    numberOfKeys: 1,
    lua: `if ARGV[3] ~= '' then
  local now = redis.pcall('TIME')
  if type(now) == 'table' and now[2] and tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[3]) then return -2 end
end
if redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') then return 1 end
return 0`,
  },
  addToSet: {
    numberOfKeys: 1,
    lua: `${ADD_TO_SET}
addToSet(KEYS[1], ARGV[1], tonumber(ARGV[2]))
return 1`,
  },
  // Kv.addExpiring. ARGV: member, ttl (seconds). Scores are each member's end (epoch ms, Redis's
  // clock); ZADD GT: a member's end only moves later (Redis >= 6.2, as raiseMarkAndLog's MINID).
  addExpiring: {
    numberOfKeys: 1,
    lua: `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], 'GT', now + ttl * 1000, ARGV[1])
if redis.call('TTL', KEYS[1]) < ttl then redis.call('EXPIRE', KEYS[1], ttl) end
return 1`,
  },
  // Kv.liveMembers: the members whose end is after now (Redis's clock).
  liveMembers: {
    numberOfKeys: 1,
    lua: `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')`,
  },
  // Kv.removeExpiring. ARGV: member. Ended members go too (Redis's clock), as at addExpiring.
  removeExpiring: {
    numberOfKeys: 1,
    lua: `local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZREM', KEYS[1], ARGV[1])`,
  },
  // KEYS: record, set. ARGV: payload, ttl, the record's key as the set's member (unprefixed, as
  // addToSet is given it). Two keys: only where every key lives on one server (not Cluster).
  putRecordInSet: {
    numberOfKeys: 2,
    lua: `${PUT_RECORD}
${ADD_TO_SET}
local ttl = tonumber(ARGV[2])
putRecord(KEYS[1], ARGV[1], ttl)
addToSet(KEYS[2], ARGV[3], ttl)
return 1`,
  },
  // KEYS: record, pointer. ARGV: payload, ttl, the pointer's value, set only when the record was
  // written (not ended). Two keys: only where every key lives on one server (not Cluster).
  putRecordPointedTo: {
    numberOfKeys: 2,
    lua: `${PUT_RECORD}
local ttl = tonumber(ARGV[2])
local landed = putRecord(KEYS[1], ARGV[1], ttl)
if landed == 1 then
  if ttl > 0 then redis.call('SET', KEYS[2], ARGV[3], 'EX', ttl) else redis.call('SET', KEYS[2], ARGV[3]) end
end
return landed`,
  },
  // The record (payload, consumed-at or '') and whether it was deleted: when its payload names the
  // client ARGV[1] and has not expired at ARGV[2] (takeRecordOwnedBy). One key: Cluster-safe.
  takeRecordOwnedBy: {
    numberOfKeys: 1,
    lua: `local record = redis.call('HMGET', KEYS[1], 'p', 'c')
if not record[1] then return false end
local ok, payload = pcall(cjson.decode, record[1])
local taken = 0
if ok and type(payload) == 'table' and payload.clientId == ARGV[1] and type(payload.exp) == 'number' and payload.exp > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  taken = 1
end
return {record[1], record[2] or '', taken}`,
  },
  // Kv.compareAndSet (bounded: ARGV[5] the caller's last millisecond as consumeRecord's, -2 too late).
  compareAndSet: {
    numberOfKeys: 1,
    lua: `if ARGV[5] and ARGV[5] ~= '' then
  local now = redis.pcall('TIME')
  if type(now) == 'table' and now[2] and tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) > tonumber(ARGV[5]) then return -2 end
end
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '0' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
end
return 1`,
  },
  deleteIfEquals: {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
  },
  // Kv.schedule. ARGV: member ('' for none), at, ttl, the member it replaces ('' for none).
  schedule: {
    numberOfKeys: 1,
    lua: `if ARGV[4] ~= '' then redis.call('ZREM', KEYS[1], ARGV[4]) end
if ARGV[1] == '' then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local ttl = tonumber(ARGV[3])
if redis.call('TTL', KEYS[1]) < ttl then redis.call('EXPIRE', KEYS[1], ttl) end
return 1`,
  },
  // Kv.claimDue over every key given (one hash tag). ARGV: now, until, count.
  claimDue: {
    lua: `local out = {}
for i = 1, #KEYS do
  local due = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
  for _, member in ipairs(due) do redis.call('ZADD', KEYS[i], 'XX', ARGV[2], member) end
  out[i] = due
end
return out`,
  },
  // Kv.settleDue. ARGV: member, until, at ('' to drop).
  settleDue: {
    numberOfKeys: 1,
    lua: `local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1]) end
return 1`,
  },
  // KEYS: mark, log. ARGV: value, ttl, retain, then field/value pairs. MINID trims by the ids'
  // millisecond part, i.e. by time of append (Redis >= 6.2).
  raiseMarkAndLog: {
    numberOfKeys: 2,
    lua: `local current = redis.call('GET', KEYS[1])
if current and tonumber(current) and tonumber(current) >= tonumber(ARGV[1]) then return false end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local retain = tonumber(ARGV[3])
local now = redis.call('TIME')
local oldest = math.max(0, tonumber(now[1]) - retain) * 1000
local id = redis.call('XADD', KEYS[2], 'MINID', '~', string.format('%d', oldest), '*', unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[2], retain)
return id`,
  },
  // An index and the record it points to, in one round trip. The record's key is derived from the
  // index's value, so it cannot be declared: only where every key lives on one server (not Cluster).
  getRecordVia: {
    numberOfKeys: 1,
    lua: `local id = redis.call('GET', KEYS[1])
if not id then return false end
return {id, redis.call('HGETALL', ARGV[1] .. id)}`,
  },
  // An index and the strings at each prefix (ARGV, prefixed) + its value, in one round trip (getVia):
  // as getRecordVia, only where every key lives on one server. A missing one answers false.
  getVia: {
    numberOfKeys: 1,
    lua: `local id = redis.call('GET', KEYS[1])
if not id then return false end
local out = {id}
for i = 1, #ARGV do out[i + 1] = redis.call('GET', ARGV[i] .. id) end
return out`,
  },
  // Several reads in one command (readMany). ARGV: how many strings, records and indexed records,
  // then the strings' keys, the records' keys, and each index's key with its records' prefix (all
  // prefixed: undeclared keys, so only where every key lives on one server, not Cluster). A missing
  // string or index answers false (a value in a Lua table, where nil would end the reply there).
  readMany: {
    numberOfKeys: 0,
    lua: `local strings, records, indexed = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out, at = {}, 4
for _ = 1, strings do out[#out + 1] = redis.call('GET', ARGV[at]) at = at + 1 end
for _ = 1, records do out[#out + 1] = redis.call('HGETALL', ARGV[at]) at = at + 1 end
for _ = 1, indexed do
  local id = redis.call('GET', ARGV[at])
  if id then out[#out + 1] = {id, redis.call('HGETALL', ARGV[at + 1] .. id)} else out[#out + 1] = false end
  at = at + 2
end
return out`,
  },
} as const;

type Scripted = {
  putRecord(key: string, payload: string, ttl: number): Promise<number>;
  putRecordBounded(key: string, payload: string, ttl: number, until: number | ''): Promise<number>;
  replaceRecord(key: string, expected: string, payload: string, ttl: number, until?: number | ''): Promise<number>;
  endRecord(key: string, ttl: number, successor: string): Promise<[number, string, string?]>;
  consumeRecord(key: string, at: number, until: number | '', drop: '1' | ''): Promise<number>;
  setIfAbsentBounded(key: string, value: string, ttl: number, until: number | ''): Promise<number>;
  takeRecordOwnedBy(key: string, owner: string, now: number): Promise<[string, string, number] | null>;
  addToSet(key: string, member: string, ttl: number): Promise<number>;
  addExpiring(key: string, member: string, ttl: number): Promise<number>;
  liveMembers(key: string): Promise<string[]>;
  removeExpiring(key: string, member: string): Promise<number>;
  putRecordInSet(key: string, set: string, payload: string, ttl: number, member: string): Promise<number>;
  putRecordPointedTo(key: string, pointer: string, payload: string, ttl: number, value: string): Promise<number>;
  compareAndSet(key: string, hasExpected: '0' | '1', expected: string, value: string, ttl: number | '', until?: number | ''): Promise<number>;
  deleteIfEquals(key: string, value: string): Promise<number>;
  schedule(key: string, member: string, at: number, ttl: number, replaces: string): Promise<number>;
  claimDue(numberOfKeys: number, ...args: (string | number)[]): Promise<string[][]>;
  settleDue(key: string, member: string, until: number, at: number | ''): Promise<number>;
  raiseMarkAndLog(mark: string, log: string, value: number, ttl: number, retain: number, ...fields: string[]): Promise<string | null>;
  getRecordVia(index: string, recordPrefix: string): Promise<[string, string[]] | null>;
  getVia(index: string, ...prefixes: string[]): Promise<(string | null)[] | null>;
  readMany(...args: (string | number)[]): Promise<(string | null | string[] | [string, string[]])[]>;
};
type Client = (Redis | Cluster) & Scripted;

function hostPort(value: string) {
  const at = value.lastIndexOf(':');
  return { host: value.slice(0, at), port: Number(value.slice(at + 1)) };
}

/** Credentials and TLS from REDIS_URL, for the topologies that are not given a URL directly. */
function urlOptions(url: string): RedisOptions {
  if (!url) return {};
  const parsed = new URL(url);
  return {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/**
 * The longest wait between two reconnection attempts, in ms. With no offline queue, requests get 503
 * from Redis's return until the next attempt succeeds: at 2 s, about 600 ms of 503s (a thousand at
 * full speed) followed a 6 s outage (docs/performance.md, outage-ab.ts); an attempt on a Redis that
 * is down costs a refused connection.
 */
const RECONNECT_BACKOFF_MAX = 500;
/** At most this many ms before its commandTimeout, a consumption is refused by Redis (consumeRecord): the way back, and the clocks' disagreement (clock.ts CLOCK_AGREEMENT_MS). */
const CONSUME_MARGIN_MS = 50;
const backoff = (attempt: number) => Math.min(attempt * 100, RECONNECT_BACKOFF_MAX);

/**
 * Tuned for a request path: commands fail after commandTimeout instead of queueing forever while
 * Redis is away, and reconnection backs off up to RECONNECT_BACKOFF_MAX.
 *
 * A command whose caller was told it failed is never sent afterwards, and one in flight when the
 * connection drops is failed to its caller (it may or may not have run, as after any timeout), not
 * sent again on the next connection: ioredis's defaults would send both once connected (its offline
 * queue and its resend of unanswered commands keep commands their timeout already failed), so a
 * write answered with 503 could happen seconds later, out of order with other processes' writes.
 * Until the first connection is ready commands wait for it (start-up, and the CLI, send at once);
 * from then on, while the connection is down, a command fails at once (a store outage, 503) and
 * every unanswered command fails when it drops. Cluster: no resend after a node's connection closed
 * or a CLUSTERDOWN either (MOVED and ASK, refused before running, are still followed).
 */
export function connect(settings: RedisSettings): Redis | Cluster {
  // Each auto-pipeline's own `length` getter kept it alive through young-generation collections.
  sharePipelineLength();
  const common: RedisOptions = {
    keyPrefix: settings.keyPrefix,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    commandTimeout: settings.commandTimeout,
    connectTimeout: 5000,
    retryStrategy: backoff,
    // After a failover the old master comes back as a replica: reconnect (to the new master,
    // through Sentinel). The refused command did not run; it fails as an outage (503) rather than
    // waiting in a queue for the new master, where its caller may already have been told it failed.
    reconnectOnError: (error: Error) => error.message.startsWith('READONLY'),
  };
  switch (settings.mode) {
    case 'sentinel':
      return onceReady(new Redis({
        ...common,
        ...urlOptions(settings.url),
        sentinels: settings.sentinels.map(hostPort),
        name: settings.sentinelName,
      }));
    case 'cluster': {
      const { keyPrefix, ...redisOptions } = common;
      const options: ClusterOptions = {
        keyPrefix,
        enableAutoPipelining: true,
        redisOptions: { ...redisOptions, ...urlOptions(settings.url) },
        clusterRetryStrategy: backoff,
        // A node's connection closed with the command unanswered, or the cluster is down: fail it
        // (an outage) instead of sending it again after a delay, by which its timeout may have failed it.
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
      };
      return onceReady(followsMovedSlots(new Cluster(settings.clusterNodes.map(hostPort), options)));
    }
    default:
      return onceReady(onlyItsDatabase(new Redis(settings.url, common)));
  }
}

/**
 * Cluster: learns where a slot went once a command of it is answered MOVED. ioredis follows the
 * redirection (and learns it) only for a pipeline whose commands all failed alike or were reads;
 * a turn's auto-pipeline to a master spans many slots, so the moved slot's command sent with a
 * write to another slot failed to its caller (an outage: store/outage.ts) and the old master stayed
 * in the slots map, failing every such turn again until a lone read of the slot came (bad input and
 * blips, tenth pass: 500s, then 503s, through a resharding).
 */
function followsMovedSlots(cluster: Cluster): Cluster {
  const send = cluster.sendCommand.bind(cluster);
  cluster.sendCommand = (command, stream, node) => {
    command.promise.catch((error: Error) => {
      if (error.message.startsWith('MOVED ')) cluster.refreshSlotsCache();
    });
    return send(command, stream, node);
  };
  return cluster;
}

/** Redis's refusal of a URL's database (`/99` where it has 16). */
export const WRONG_DATABASE = /DB index is out of range|invalid DB index/i;

/**
 * ioredis goes on with database 0 when Redis refuses the URL's (SELECT 99: "ERR DB index is out of
 * range"), so the server or the CLI would act on another database's data: the connection is closed
 * instead, and the refusal is the start-up failure's reason (store/index.ts connectionError).
 */
function onlyItsDatabase(client: Redis): Redis {
  client.on('error', (error: Error) => {
    if (WRONG_DATABASE.test(error.message)) client.disconnect();
  });
  return client;
}

/**
 * From the first `ready` on: no offline queue (a command sent while the connection is down fails
 * at once) and no retry across a dropped connection (what was in flight fails when it drops).
 */
function onceReady<T extends Redis | Cluster>(client: T): T {
  client.once('ready', () => {
    client.options.enableOfflineQueue = false;
    if (client instanceof Redis) client.options.maxRetriesPerRequest = 0;
  });
  return client;
}

/** A record from HGETALL's reply inside a script (field, value, field, value, ...). */
function recordOfFlat(flat: readonly string[]): StoredRecord | undefined {
  const hash: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) hash[flat[i]!] = flat[i + 1]!;
  return recordOf(hash);
}

/** A record from its hash: p = payload, c = consumed-at. */
function recordOf(hash: Record<string, string>): StoredRecord | undefined {
  if (hash.p === undefined) return undefined;
  return hash.c === undefined ? { payload: hash.p } : { payload: hash.p, consumed: Number(hash.c) };
}

/** Connection news, for the log: lost (once per outage, not once per retry) and back. */
export interface ConnectionEvents {
  lost(error: Error): void;
  restored(): void;
}

export class RedisKv implements Kv {
  readonly kind = 'redis';
  readonly #client: Client;
  readonly #cache: Omit<TrackedCacheOptions, 'readsOn'> | undefined;
  /** The one cache of cachedReads, made at its first call; later calls add their prefixes to it. */
  #tracked: TrackedCache | undefined;
  /** Standalone and Sentinel: the commands, keys prefixed here (turn-commands.ts); Cluster: ioredis's methods. */
  readonly #commands: TurnCommands | undefined;
  readonly #keyPrefix: string;
  /** ms a caller waits for a command's answer, if there is a commandTimeout: a margin before it (#until). */
  readonly #waitsFor: number | undefined;

  /** `cache`: how cachedReads caches (the server's store); without it, cachedReads gives none. */
  constructor(client: Redis | Cluster, events?: ConnectionEvents, cache?: Omit<TrackedCacheOptions, 'readsOn'>) {
    this.#cache = cache;
    this.#commands = client instanceof Cluster ? undefined : turnCommandsOf(client);
    this.#keyPrefix = client.options.keyPrefix ?? '';
    const timeout = client instanceof Cluster ? client.options.redisOptions?.commandTimeout : client.options.commandTimeout;
    this.#waitsFor = timeout ? timeout - Math.min(CONSUME_MARGIN_MS, Math.floor(timeout / 4)) : undefined;
    // Not ioredis's defineCommand, which copies every script onto each auto-pipeline (scripts.ts).
    for (const [name, definition] of Object.entries(SCRIPTS)) defineScript(client, name, definition);
    let down = false;
    // Without an error listener ioredis reports every failed reconnect as an unhandled error.
    client.on('error', (error: Error) => {
      if (down) return;
      down = true;
      events?.lost(error);
    });
    client.on('ready', () => {
      if (!down) return;
      down = false;
      events?.restored();
    });
    this.#client = client as Client;
  }

  /** The underlying connection, for the few modules (rate limiting) whose libraries take one. */
  get connection(): Redis | Cluster {
    return this.#client;
  }

  /** Standalone and Sentinel: a command whose first argument is its one key, sent with the turn's others (turn-commands.ts). */
  #keyed<T>(name: string, key: string, ...rest: Arg[]): Promise<T> {
    return this.#commands!.send<T>(name, [this.#keyPrefix + key, ...rest]);
  }

  async get(key: string) {
    return (await (this.#commands ? this.#keyed<string | null>('get', key) : this.#client.get(key))) ?? undefined;
  }

  /** `write`, after which this process's caches drop what they kept of `keys` (tracked-cache.ts forget). */
  async #writing<T>(keys: readonly string[], write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } finally {
      this.#tracked?.forget(keys);
    }
  }

  async set(key: string, value: string, options: { ttl?: number; onlyIfAbsent?: boolean; bounded?: boolean } = {}) {
    const { ttl, onlyIfAbsent } = options;
    if (options.bounded && onlyIfAbsent && ttl) {
      const reply = await this.#writing([key], () => this.#inTime((until) => this.#client.setIfAbsentBounded(key, value, ttl, until)));
      if (reply === -2) throw new Error('the write reached Redis after the caller stopped waiting for it (Command timed out)');
      return reply === 1;
    }
    const reply = await this.#writing([key], () => {
      if (this.#commands) {
        const rest: Arg[] = [value];
        if (ttl) rest.push('EX', ttl);
        if (onlyIfAbsent) rest.push('NX');
        return this.#keyed<string | null>('set', key, ...rest);
      }
      if (ttl && onlyIfAbsent) return this.#client.set(key, value, 'EX', ttl, 'NX');
      if (ttl) return this.#client.set(key, value, 'EX', ttl);
      if (onlyIfAbsent) return this.#client.set(key, value, 'NX');
      return this.#client.set(key, value);
    });
    return reply === 'OK';
  }

  async del(keys: readonly string[]) {
    // One DEL per key: a multi-key DEL would be a cross-slot error on Cluster. Auto-pipelining
    // still sends them together.
    await this.#writing(keys, () => Promise.all(keys.map((key) => (this.#commands ? this.#keyed<number>('del', key) : this.#client.del(key)))));
  }

  async getRecord(key: string): Promise<StoredRecord | undefined> {
    return recordOf(await (this.#commands ? this.#keyed<Record<string, string>>('hgetall', key) : this.#client.hgetall(key)));
  }

  async getRecordVia(index: string, prefix: string): Promise<{ id: string; record: StoredRecord | undefined } | undefined> {
    if (this.#client instanceof Cluster) {
      const id = await this.get(index);
      return id === undefined ? undefined : { id, record: await this.getRecord(prefix + id) };
    }
    const reply = await this.#client.getRecordVia(index, `${this.#client.options.keyPrefix ?? ''}${prefix}`);
    if (!reply) return undefined;
    const [id, flat] = reply;
    return { id, record: recordOfFlat(flat) };
  }

  async getVia(index: string, prefixes: readonly string[]): Promise<{ id: string; values: (string | undefined)[] } | undefined> {
    if (this.#client instanceof Cluster) return getViaInTurn(this, index, prefixes);
    const keyPrefix = this.#client.options.keyPrefix ?? '';
    const reply = await this.#client.getVia(index, ...prefixes.map((prefix) => keyPrefix + prefix));
    if (!reply) return undefined;
    const [id, ...values] = reply;
    return { id: id!, values: prefixes.map((_, at) => values[at] ?? undefined) };
  }

  async readMany({ strings, records, indexed }: Required<ReadsAhead>): Promise<ReadResults> {
    if (this.#client instanceof Cluster) {
      const [s, r, i] = await Promise.all([
        Promise.all(strings.map((key) => this.get(key))),
        Promise.all(records.map((key) => this.getRecord(key))),
        Promise.all(indexed.map(({ index, prefix }) => this.getRecordVia(index, prefix))),
      ]);
      return { strings: s, records: r, indexed: i };
    }
    const keyPrefix = this.#client.options.keyPrefix ?? '';
    const args: (string | number)[] = [strings.length, records.length, indexed.length];
    for (const key of strings) args.push(keyPrefix + key);
    for (const key of records) args.push(keyPrefix + key);
    for (const { index, prefix } of indexed) args.push(keyPrefix + index, keyPrefix + prefix);
    const reply = await this.#client.readMany(...args);
    let at = 0;
    const next = () => reply[at++];
    return {
      strings: strings.map(() => (next() as string | null) ?? undefined),
      records: records.map(() => recordOfFlat(next() as string[])),
      indexed: indexed.map(() => {
        const found = next() as [string, string[]] | null;
        return found ? { id: found[0], record: recordOfFlat(found[1]) } : undefined;
      }),
    };
  }

  async putRecord(key: string, payload: string, ttl?: number, options: { readonly bounded?: boolean } = {}) {
    if (!options.bounded) return (await this.#writing([key], () => this.#client.putRecord(key, payload, ttl ?? 0))) === 1;
    const reply = await this.#writing([key], () => this.#inTime((until) => this.#client.putRecordBounded(key, payload, ttl ?? 0, until)));
    if (reply === -2) throw new Error('the write reached Redis after the caller stopped waiting for it (Command timed out)');
    return reply === 1;
  }

  async replaceRecord(key: string, expected: string, payload: string, ttl?: number, options: { readonly bounded?: boolean } = {}) {
    if (!options.bounded) return (await this.#writing([key], () => this.#client.replaceRecord(key, expected, payload, ttl ?? 0))) === 1;
    const reply = await this.#writing([key], () => this.#inTime((until) => this.#client.replaceRecord(key, expected, payload, ttl ?? 0, until)));
    if (reply === -2) throw new Error('the write reached Redis after the caller stopped waiting for it (Command timed out)');
    return reply === 1;
  }

  async endRecord(key: string, ttl: number, successor = ''): Promise<RecordEnding> {
    const [already, next, ended] = await this.#writing([key], () => this.#client.endRecord(key, Math.max(1, Math.ceil(ttl)), successor));
    return { already: already === 1, ...(next ? { successor: next } : {}), ...(ended ? { ended } : {}) };
  }

  async putRecordInSet(key: string, payload: string, ttl: number | undefined, set: string) {
    if (this.#client instanceof Cluster) {
      await Promise.all([this.putRecord(key, payload, ttl), this.addToSet(set, key, ttl)]);
      return;
    }
    await this.#writing([key, set], () => this.#client.putRecordInSet(key, set, payload, ttl ?? 0, key));
  }

  async putRecordPointedTo(key: string, payload: string, ttl: number | undefined, pointer: string, value: string) {
    if (this.#client instanceof Cluster) {
      const landed = await this.putRecord(key, payload, ttl);
      if (landed) await this.set(pointer, value, ttl ? { ttl } : {});
      return landed;
    }
    return (await this.#writing([key, pointer], () => this.#client.putRecordPointedTo(key, pointer, payload, ttl ?? 0, value))) === 1;
  }

  /**
   * Until when, on Redis's clock as followed (clock.ts storeMilliseconds: counted on the monotonic
   * clock, which a step of this machine's does not move), a caller sending a command now waits for
   * its answer ('' without a command timeout): a margin before its commandTimeout, for the way
   * back and the clocks' disagreement. Single-use writes are refused by Redis after it.
   */
  #until(): number | '' {
    const waits = this.#waitsFor;
    return waits ? Math.round(storeMilliseconds()) + waits : '';
  }

  /**
   * Sends a bounded single-use write (`until`: #until's). Refused as late (-2) though answered well
   * within the command timeout, it was not late: Redis's clock moved against the one followed since
   * it was last read (Redis's stepped forward, or this process was suspended with its VM; main.ts
   * follows it once a minute), which would refuse every code exchange and refresh until then. The
   * clock is followed again and the write sent once more (nothing was written).
   */
  async #inTime(send: (until: number | '') => Promise<number>): Promise<number> {
    const sent = performance.now();
    const reply = await send(this.#until());
    if (reply !== -2 || !this.#waitsFor || performance.now() - sent >= this.#waitsFor) return reply;
    await followStoreClock(() => this.time());
    return send(this.#until());
  }

  async consumeRecord(key: string, at: number, options: { readonly drop?: boolean } = {}): Promise<ConsumeOutcome> {
    const reply = await this.#writing([key], () => this.#inTime((until) => this.#client.consumeRecord(key, at, until, options.drop ? '1' : '')));
    // Run too late for the caller (an answer that still arrived, just before its timeout): nothing consumed, an outage to retry.
    if (reply === -2) throw new Error('the consumption reached Redis after the caller stopped waiting for it (Command timed out)');
    return reply === 1 ? 'consumed' : reply === 0 ? 'already-consumed' : 'missing';
  }

  async takeRecordOwnedBy(key: string, owner: string, now: number) {
    const reply = await this.#writing([key], () => this.#client.takeRecordOwnedBy(key, owner, now));
    if (!reply) return { record: undefined, taken: false };
    const [payload, consumed, taken] = reply;
    return { record: consumed === '' ? { payload } : { payload, consumed: Number(consumed) }, taken: taken === 1 };
  }

  async addToSet(key: string, member: string, ttl?: number) {
    await this.#writing([key], () => this.#client.addToSet(key, member, ttl ?? 0));
  }

  async removeFromSet(key: string, member: string) {
    await this.#writing([key], () => (this.#commands ? this.#keyed<number>('srem', key, member) : this.#client.srem(key, member)));
  }

  async members(key: string) {
    return this.#commands ? this.#keyed<string[]>('smembers', key) : this.#client.smembers(key);
  }

  async addExpiring(key: string, member: string, ttl: number) {
    await this.#writing([key], () => this.#client.addExpiring(key, member, Math.max(1, Math.ceil(ttl))));
  }

  async liveMembers(key: string) {
    return this.#client.liveMembers(key);
  }

  async removeExpiring(key: string, member: string) {
    await this.#writing([key], () => this.#client.removeExpiring(key, member));
  }

  async compareAndSet(key: string, expected: string | undefined, value: string, ttl?: number, options: { readonly bounded?: boolean } = {}) {
    const seconds = ttl === undefined ? '' : Math.max(1, Math.ceil(ttl));
    const hasExpected = expected === undefined ? '0' : '1';
    if (!options.bounded) return (await this.#writing([key], () => this.#client.compareAndSet(key, hasExpected, expected ?? '', value, seconds))) === 1;
    const reply = await this.#writing([key], () => this.#inTime((until) => this.#client.compareAndSet(key, hasExpected, expected ?? '', value, seconds, until)));
    if (reply === -2) throw new Error('the write reached Redis after the caller stopped waiting for it (Command timed out)');
    return reply === 1;
  }

  async deleteIfEquals(key: string, value: string) {
    return (await this.#writing([key], () => this.#client.deleteIfEquals(key, value))) === 1;
  }

  async schedule(key: string, member: string | undefined, at: number, ttl: number, replaces?: string) {
    await this.#writing([key], () => this.#client.schedule(key, member ?? '', Math.round(at), Math.max(1, Math.ceil(ttl)), replaces ?? ''));
  }

  async claimDue(keys: readonly string[], now: number, until: number, count: number) {
    return this.#writing(keys, () => this.#client.claimDue(keys.length, ...keys, Math.round(now), Math.round(until), count));
  }

  async settleDue(key: string, member: string, until: number, at?: number) {
    return (await this.#writing([key], () => this.#client.settleDue(key, member, Math.round(until), at === undefined ? '' : Math.round(at)))) === 1;
  }

  async raiseMarkAndLog(
    mark: string,
    value: number,
    ttl: number,
    log: string,
    fields: Readonly<Record<string, string>>,
    retain: number,
  ) {
    const pairs = Object.entries(fields).flat();
    const id = await this.#writing([mark], () => this.#client.raiseMarkAndLog(mark, log, value, Math.max(1, Math.ceil(ttl)), Math.max(1, Math.ceil(retain)), ...pairs));
    return id ?? undefined;
  }

  async readLog(log: string, after: string | undefined, count: number): Promise<LogEntry[]> {
    const range = (start: string) =>
      this.#commands ? this.#keyed<[string, string[]][]>('xrange', log, start, '+', 'COUNT', count) : this.#client.xrange(log, start, '+', 'COUNT', count);
    const newest = () => (this.#commands ? this.#keyed<[string, string[]][]>('xrevrange', log, '+', '-', 'COUNT', 1) : this.#client.xrevrange(log, '+', '-', 'COUNT', 1));
    // Sent together: nothing after the cursor, and the log's last line before it, is a log whose ids went back.
    const [rows, [last]] = after === undefined ? [await range('-'), []] : await Promise.all([range(`(${after}`), newest()]);
    const read = !rows.length && after !== undefined && last !== undefined && logIdAfter(after, last[0]) ? await range('-') : rows;
    return read.map(([id, flat]) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      return { id, fields };
    });
  }

  cachedReads(prefixes: readonly string[]): CachedReads | undefined {
    if (!this.#cache || this.#client instanceof Cluster) return undefined;
    if (this.#tracked) {
      this.#tracked.watch(prefixes);
      return this.#tracked;
    }
    // Its own connection (once subscribed, a connection can send nothing else).
    const connection = this.#client.duplicate(TRACKING_CONNECTION);
    const source: CachedReads = { get: (key) => this.get(key), members: (key) => this.members(key) };
    return (this.#tracked = new TrackedCache(source, connection, this.#client.options.keyPrefix ?? '', prefixes, { ...this.#cache, readsOn: this.#client }));
  }

  async ping() {
    await this.#client.ping();
  }

  async evictionPolicy(): Promise<string | undefined> {
    const masters = this.#client instanceof Cluster ? this.#client.nodes('master') : [this.#client];
    const policies = await Promise.all(masters.map(async (node) => /^maxmemory_policy:(\S+)/m.exec(await node.info('memory'))?.[1]));
    return policies.find((policy) => policy !== undefined && policy !== 'noeviction');
  }

  async acknowledgesUnreplicated(): Promise<boolean> {
    const cluster = this.#client instanceof Cluster;
    // Sentinel fails over to a replica even if none is connected at this moment.
    const sentinel = !cluster && Boolean((this.#client as Redis).options.sentinels?.length);
    const masters = this.#client instanceof Cluster ? this.#client.nodes('master') : [this.#client];
    const infos = await Promise.all(masters.map((node) => node.info('replication')));
    // min_slaves_good_slaves is said only while min-replicas-to-write and min-replicas-max-lag are both set.
    return infos.some((info) => (sentinel || Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0) > 0) && !/^min_slaves_good_slaves:/m.test(info));
  }

  async acknowledgesUnpersisted(): Promise<boolean> {
    const masters = this.#client instanceof Cluster ? this.#client.nodes('master') : [this.#client];
    const unpersisted = await Promise.all(
      masters.map(async (node) => {
        const info = await node.info('persistence');
        if (!/^aof_enabled:0\b/m.test(info)) return false;
        // Without save points and without an RDB file it comes back empty, which the store's epoch
        // ends everything after (revocation/list.ts); with them, on an older snapshot. CONFIG refused
        // (a managed Redis): it may. Without save points it still writes a snapshot when asked (a
        // backup's SAVE or BGSAVE, a replica's sync without diskless sync) and loads it at every
        // start: one written since it started, or loaded when it did, or INFO silent on both (before
        // Redis 7), and it comes back on that (review of the fifteenth passes, h6).
        const saves = /^rdb_saves:(\d+)/m.exec(info)?.[1];
        const loaded = /^rdb_last_load_keys_loaded:(\d+)/m.exec(info)?.[1];
        if (saves === undefined || loaded === undefined || Number(saves) > 0 || Number(loaded) > 0) return true;
        const save = await node.config('GET', 'save').catch(() => undefined);
        return !Array.isArray(save) || String(save[1] ?? '').trim() !== '';
      }),
    );
    return unpersisted.some(Boolean);
  }

  async time(): Promise<number> {
    const [seconds, micros] = await this.#client.time();
    return Number(seconds) * 1000 + Number(micros) / 1000;
  }

  async close() {
    await this.#tracked?.close();
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}
