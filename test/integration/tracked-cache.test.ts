/**
 * The store's in-process cache that Redis invalidates (src/store/tracked-cache.ts), against a real
 * redis-server of its own (FLUSHDB and restarts must not touch anyone else's): a write by another
 * connection, FLUSHDB, a killed connection and a restarted server each leave nothing stale; a read
 * overtaken by an invalidation is not kept; entries are bounded; Cluster gets no cache; a tracking
 * connection gone silent without closing (half-open) is noticed by the heartbeat within its bound.
 * How many reads reached Redis is counted by Redis itself (INFO commandstats).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { Cluster, Redis } from 'ioredis';
import type { Config } from '../../src/config.js';
import type { CachedReads } from '../../src/store/kv.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { HEARTBEAT, TRACKING_CONNECTION, TrackedCache, type TrackedCacheOptions } from '../../src/store/tracked-cache.js';
import { PREFIX, redisSettings } from '../helpers/backends.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startRelay } from '../helpers/relay.js';

const OPTIONS: Omit<TrackedCacheOptions, 'readsOn'> = { maxEntries: 100, maxAge: 60_000 };
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

const settings = (url: string): Config['redis'] => redisSettings({ url });

/**
 * A TCP proxy to Redis that holds back, by `ms`, what Redis sends on a connection once it turned
 * CLIENT TRACKING on (the cache's own): invalidations arriving late, as after a lost packet.
 */
async function slowInvalidations(port: number, ms: number): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    let tracked = false;
    let queue = Promise.resolve();
    client.on('data', (chunk) => {
      if (/TRACKING/i.test(chunk.toString('latin1'))) tracked = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!tracked) return void client.write(chunk);
      queue = queue.then(() => sleep(ms)).then(() => void client.write(chunk));
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => (client.destroy(), upstream.destroy()));
    }
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

describe('tracked cache: in-process reads that Redis invalidates', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  /** Another connection, as the CLI or another instance would be: it writes full key names. */
  let other: Redis;
  let kv: RedisKv;
  let cache: TrackedCache;

  /** How many times Redis ran a command, from its own statistics. */
  async function calls(command: 'get' | 'smembers'): Promise<number> {
    const info = await other.info('commandstats');
    return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
  }
  /** The next invalidation message naming `key` on the tracking connection `on`. */
  const invalidationOf = (on: Redis, key: string) =>
    new Promise<void>((done) => {
      const seen = (_channel: Buffer, keys: unknown) => {
        if (!Array.isArray(keys) || !keys.some((named) => String(named) === key)) return;
        on.off('messageBuffer', seen);
        done();
      };
      on.on('messageBuffer', seen);
    });
  const tracking = (subject: TrackedCache = cache) =>
    eventually(async () => assert.equal(subject.tracking, true, 'tracking on'));

  before(async () => {
    redis = await startRedisServer();
    other = new Redis(redis.url);
    other.on('error', () => {}); // down on purpose in one test
    kv = new RedisKv(connect(settings(redis.url)), undefined, OPTIONS);
    cache = kv.cachedReads(['api:', 'apis', 'api-grants:']) as TrackedCache;
  });
  after(async () => {
    await kv?.close();
    other?.disconnect();
    await redis?.stop();
  });
  beforeEach(() => tracking());

  it('one cache per store: a second reader with its own prefixes shares it, and their keys are invalidated too', async () => {
    const second = kv.cachedReads(['revoked:{rv}:client:']) as TrackedCache;
    assert.equal(second, cache, 'the same cache, on the same connection');
    await tracking();
    await other.set(`${PREFIX}revoked:{rv}:client:c1`, '1');
    assert.equal(await second.get('revoked:{rv}:client:c1'), '1');
    const before = await calls('get');
    assert.equal(await second.get('revoked:{rv}:client:c1'), '1');
    assert.equal(await calls('get'), before, 'kept');
    await other.set(`${PREFIX}revoked:{rv}:client:c1`, '2');
    assert.equal(await second.get('revoked:{rv}:client:c1'), '2');
    await other.set(`${PREFIX}api-grants:shared`, 'v1');
    assert.equal(await cache.get('api-grants:shared'), 'v1');
    await other.set(`${PREFIX}api-grants:shared`, 'v2');
    assert.equal(await cache.get('api-grants:shared'), 'v2', 'the first reader\'s prefixes are still tracked');
  });

  it('a second read costs no round trip; a write by another connection is seen by the very next read', async () => {
    await other.set(`${PREFIX}api-grants:c1`, 'v1');
    const before = await calls('get');
    assert.equal(await cache.get('api-grants:c1'), 'v1');
    assert.equal(await cache.get('api-grants:c1'), 'v1');
    assert.equal(await calls('get'), before + 1, 'one GET for two reads');

    await other.set(`${PREFIX}api-grants:c1`, 'v2');
    assert.equal(await cache.get('api-grants:c1'), 'v2', 'the next read after the write');
    await other.del(`${PREFIX}api-grants:c1`);
    assert.equal(await cache.get('api-grants:c1'), undefined, 'a deletion too');
    assert.equal(await cache.get('api-grants:c1'), undefined);
    await other.set(`${PREFIX}api-grants:c1`, 'v3');
    assert.equal(await cache.get('api-grants:c1'), 'v3', 'an absence is kept, and ended by the write that fills it');
    assert.equal(await calls('get'), before + 4);
  });

  it('sets too; keys outside the prefixes are never kept', async () => {
    await other.sadd(`${PREFIX}apis`, 'https://a.example.test');
    const before = await calls('smembers');
    assert.deepEqual(await cache.members('apis'), ['https://a.example.test']);
    (await cache.members('apis')).push('changed by a caller');
    assert.deepEqual(await cache.members('apis'), ['https://a.example.test'], 'a caller cannot change what is kept');
    assert.equal(await calls('smembers'), before + 1);
    await other.sadd(`${PREFIX}apis`, 'https://b.example.test');
    assert.deepEqual((await cache.members('apis')).sort(), ['https://a.example.test', 'https://b.example.test']);

    const gets = await calls('get');
    await cache.get('oidc:Session:x');
    await cache.get('oidc:Session:x');
    assert.equal(await calls('get'), gets + 2, 'read through');
  });

  it('FLUSHDB (an invalidation of everything) empties it', async () => {
    await other.set(`${PREFIX}api:x`, '{"x":1}');
    await other.set(`${PREFIX}api-grants:c2`, '{}');
    assert.equal(await cache.get('api:x'), '{"x":1}');
    assert.equal(await cache.get('api-grants:c2'), '{}');
    await other.flushdb();
    // With Redis 7.0, FLUSHDB's invalidation (unlike a key write's) was seen to arrive microseconds
    // after its answer, in about 1 run in 30. Entries live 60 s here, so an empty cache within the
    // retries is the invalidation's doing.
    await eventually(async () => {
      assert.equal(await cache.get('api:x'), undefined);
      assert.equal(await cache.get('api-grants:c2'), undefined);
    });
  });

  it('a killed connection empties it; it reads through until tracking is back, then invalidations reach it again', async () => {
    await other.set(`${PREFIX}api-grants:c3`, 'v1');
    assert.equal(await cache.get('api-grants:c3'), 'v1');
    // Every pub/sub connection: this cache's. A write meanwhile has no one to invalidate.
    await other.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await new Promise((done) => setImmediate(done));
    assert.equal(cache.tracking, false, 'the drop is seen as soon as the answer to the kill');
    await other.set(`${PREFIX}api-grants:c3`, 'v2');
    assert.equal(await cache.get('api-grants:c3'), 'v2', 'nothing kept from before');

    await tracking();
    assert.equal(await cache.get('api-grants:c3'), 'v2');
    const before = await calls('get');
    assert.equal(await cache.get('api-grants:c3'), 'v2');
    assert.equal(await calls('get'), before, 'kept again');
    await other.set(`${PREFIX}api-grants:c3`, 'v3');
    assert.equal(await cache.get('api-grants:c3'), 'v3', 'subscribed again');
  });

  it('a drop of the connection the reads go on empties it and reconnects its own (after a failover both stand on the new master)', async () => {
    const subscriber = async () => /id=(\d+)/.exec(String(await other.call('CLIENT', 'LIST', 'TYPE', 'pubsub')))?.[1];
    const before = await subscriber();
    await other.set(`${PREFIX}api-grants:c5`, 'v1');
    assert.equal(await cache.get('api-grants:c5'), 'v1');
    const reads = await (kv.connection as Redis).client('ID');
    await other.call('CLIENT', 'KILL', 'ID', String(reads));
    await eventually(async () => assert.notEqual(await subscriber(), before, 'a new subscriber connection'));
    await tracking();
    assert.equal(await cache.get('api-grants:c5'), 'v1');
  });

  it("this process's own write is seen by its next read, even while Redis's invalidation of it is still on its way", async () => {
    const proxy = await slowInvalidations(redis.port, 300);
    const mine = new RedisKv(connect(settings(`redis://127.0.0.1:${proxy.port}`)), undefined, OPTIONS);
    try {
      const cached = mine.cachedReads(['api-grants:']) as TrackedCache;
      await tracking(cached);
      await mine.set('api-grants:own', 'v1');
      await sleep(400); // its invalidation handled
      assert.equal(await cached.get('api-grants:own'), 'v1');
      assert.equal(await cached.get('api-grants:own'), 'v1', 'kept');
      // As `latchkey apis revoke` through this instance's admin API, then a token request to it.
      await mine.set('api-grants:own', 'v2');
      assert.equal(await cached.get('api-grants:own'), 'v2', 'the write, not the entry from before it');
      await mine.del(['api-grants:own']);
      assert.equal(await cached.get('api-grants:own'), undefined, 'a deletion too');
    } finally {
      await mine.close();
      proxy.close();
    }
  });

  it('a tracking connection gone silent without closing (half-open: no RST) is noticed within the heartbeat\'s bound: a write by another connection is seen, then a new connection tracks again', async () => {
    // Written before the cache tracks: no invalidation of it comes late through the relay.
    await other.set(`${PREFIX}revoked:{rv}:client:c6`, 'v1');
    const relay = await startRelay(redis.port);
    const mine = new RedisKv(connect(settings(relay.url)), undefined, OPTIONS);
    try {
      const cached = mine.cachedReads(['revoked:{rv}:client:']) as TrackedCache;
      await tracking(cached);
      assert.equal(await cached.get('revoked:{rv}:client:c6'), 'v1');
      const before = await calls('get');
      assert.equal(await cached.get('revoked:{rv}:client:c6'), 'v1');
      assert.equal(await calls('get'), before, 'kept');

      // Its own connection (the one that turned tracking on) stops delivering, and stays open.
      assert.equal(relay.silence((sent) => /TRACKING/i.test(sent)), 1, 'the cache\'s connection, alone');
      // As `latchkey clients remove` through another instance: its revocation mark changes.
      await other.set(`${PREFIX}revoked:{rv}:client:c6`, 'v2');
      // The bound is HEARTBEAT.every + HEARTBEAT.within; five times that, well under maxAge (60 s),
      // which was the bound before the heartbeat.
      const bound = HEARTBEAT.every + HEARTBEAT.within;
      await eventually(async () => assert.equal(await cached.get('revoked:{rv}:client:c6'), 'v2', 'the write is seen'), (5 * bound) / 100, 100);

      // A new connection (the relay passes it): tracking confirmed again, entries kept and invalidated again.
      await eventually(async () => assert.equal(cached.tracking, true, 'tracking on again'), (5 * bound) / 100, 100);
      assert.equal(await cached.get('revoked:{rv}:client:c6'), 'v2');
      const again = await calls('get');
      assert.equal(await cached.get('revoked:{rv}:client:c6'), 'v2');
      assert.equal(await calls('get'), again, 'kept again');
      await other.set(`${PREFIX}revoked:{rv}:client:c6`, 'v3');
      // The invalidation comes through the relay, the write's answer straight from Redis: a few polls.
      await eventually(async () => assert.equal(await cached.get('revoked:{rv}:client:c6'), 'v3', 'invalidated again'), 10, 50);
      assert.equal(cached.tracking, true, 'by the invalidation, the connection kept');
    } finally {
      await mine.close();
      relay.close();
    }
  });

  it('a heartbeat whose write goes unanswered (the store\'s connection slow, not the cache\'s) turns memory off without making the cache\'s connection again; it comes back by itself', async () => {
    await other.set(`${PREFIX}revoked:{rv}:client:c7`, 'v1');
    const relay = await startRelay(redis.port);
    // A command timeout longer than the heartbeat's `within`: the beat is late, not failed.
    const mine = new RedisKv(connect(redisSettings({ url: relay.url, commandTimeout: 10_000 })), undefined, OPTIONS);
    const subscribers = async () => String(await other.call('CLIENT', 'LIST', 'TYPE', 'pubsub')).match(/id=\d+/g)?.sort().join(' ');
    try {
      const cached = mine.cachedReads(['revoked:{rv}:client:']) as TrackedCache;
      await tracking(cached);
      assert.equal(await cached.get('revoked:{rv}:client:c7'), 'v1');
      const before = await subscribers();
      // The next heartbeat's SET, and all after it on the store's connection, held.
      await relay.holdFrom((chunk) => chunk.includes('tracked-cache:'));
      const bound = HEARTBEAT.every + HEARTBEAT.within;
      await eventually(async () => assert.equal(cached.tracking, false, 'memory off'), (5 * bound) / 100, 100);
      assert.equal(await subscribers(), before, 'the same connection: it was not the one late');
      relay.release();
      await tracking(cached);
      assert.equal(await subscribers(), before, 'still the same connection');
      await other.set(`${PREFIX}revoked:{rv}:client:c7`, 'v2');
      await eventually(async () => assert.equal(await cached.get('revoked:{rv}:client:c7'), 'v2'), 10, 50);
    } finally {
      await mine.close();
      relay.close();
    }
  });

  it('a restarted server: nothing is answered from memory while it is down, nothing stale after', async () => {
    await other.set(`${PREFIX}api-grants:c4`, 'v1');
    assert.equal(await cache.get('api-grants:c4'), 'v1');
    await redis.kill();
    await eventually(async () => assert.equal(cache.tracking, false));
    await assert.rejects(cache.get('api-grants:c4'), 'read through to a Redis that is down');
    await redis.restart();
    await other.set(`${PREFIX}api-grants:c4`, 'v2');
    // The store's connection has no offline queue: until it is back, a read fails (a 503), never
    // waits; so retry the failures only, and judge the first answer.
    const first = await eventually(() => cache.get('api-grants:c4'));
    assert.equal(first, 'v2');
    await tracking();
    assert.equal(await cache.get('api-grants:c4'), 'v2');
    await other.set(`${PREFIX}api-grants:c4`, 'v3');
    assert.equal(await cache.get('api-grants:c4'), 'v3');
  });

  describe('with a source that the test holds back', () => {
    let connection: Redis;
    let own: TrackedCache;
    let held: { read: ReturnType<typeof deferred>; release: ReturnType<typeof deferred> } | undefined;
    const reads = new Map<string, number>();
    const source: CachedReads = {
      get: async (key) => {
        reads.set(key, (reads.get(key) ?? 0) + 1);
        const value = await kv.get(key);
        if (held) {
          held.read.resolve();
          await held.release.promise;
        }
        return value;
      },
      members: (key) => kv.members(key),
    };

    beforeEach(async () => {
      reads.clear();
      held = undefined;
      connection = new Redis(redis.url, TRACKING_CONNECTION);
    });
    afterEach(async () => own?.close());

    it('a read that an invalidation overtakes is not kept', async () => {
      own = new TrackedCache(source, connection, PREFIX, ['api-grants:'], { ...OPTIONS, readsOn: kv.connection as Redis });
      await tracking(own);
      // Its invalidation handled: it comes on the tracking connection, not with the SET's answer, so
      // a turn of the event loop may not have seen it, and `invalidated` below would take it for the
      // invalidation of 'new' (as it would a heartbeat's: hence the key).
      const oldInvalidated = invalidationOf(connection, `${PREFIX}api-grants:race`);
      await other.set(`${PREFIX}api-grants:race`, 'old');
      await oldInvalidated;
      held = { read: deferred(), release: deferred() };
      const invalidated = invalidationOf(connection, `${PREFIX}api-grants:race`);
      const pending = own.get('api-grants:race');
      await held.read.promise; // Redis answered "old"; the answer is not back with the cache yet
      await other.set(`${PREFIX}api-grants:race`, 'new');
      await invalidated;
      held.release.resolve();
      assert.equal(await pending, 'old', 'the read itself answers what it read');
      held = undefined;
      assert.equal(await own.get('api-grants:race'), 'new', 'but it was not kept');
      assert.equal(await own.get('api-grants:race'), 'new');
      assert.equal(reads.get('api-grants:race'), 2, 'the read that was not overtaken is kept');
    });

    it('holds at most maxEntries, the oldest going first, each for at most maxAge', async () => {
      own = new TrackedCache(source, connection, PREFIX, ['api-grants:'], { maxEntries: 2, maxAge: 1000, readsOn: kv.connection as Redis });
      await tracking(own);
      for (const key of ['api-grants:a', 'api-grants:b', 'api-grants:c']) await own.get(key);
      await own.get('api-grants:c');
      await own.get('api-grants:b');
      assert.equal(reads.get('api-grants:b'), 1);
      await own.get('api-grants:a');
      assert.equal(reads.get('api-grants:a'), 2, 'the oldest was dropped for the third');
      // (maxAge 1 s: the reads above, within it however loaded the machine, find what they kept.)
      await sleep(1100);
      await own.get('api-grants:a');
      assert.equal(reads.get('api-grants:a'), 3, 'older than maxAge: read again');
    });

    it('never keeps a long key (one a request names, such as an API looked up by `resource`): memory stays bounded in bytes', async () => {
      own = new TrackedCache(source, connection, PREFIX, ['api:'], { ...OPTIONS, readsOn: kv.connection as Redis });
      await tracking(own);
      const long = `api:https://api.example.test/${'x'.repeat(50_000)}`;
      assert.equal(await own.get(long), undefined);
      assert.equal(await own.get(long), undefined);
      assert.equal(reads.get(long), 2, 'read through each time');
      const short = 'api:https://api.example.test/short';
      await own.get(short);
      await own.get(short);
      assert.equal(reads.get(short), 1, 'a usual key is kept');
    });
  });

  it('Redis Cluster: no cache (tracking is per node), reads go to the store', async () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: redis.port }], { lazyConnect: true });
    const clustered = new RedisKv(cluster, undefined, OPTIONS);
    assert.equal(clustered.cachedReads(['api:']), undefined);
    cluster.disconnect();
  });

  it('the CLI\'s store (no cache options): no cache', () => {
    const client = new Redis(redis.url, { lazyConnect: true });
    assert.equal(new RedisKv(client).cachedReads(['api:']), undefined);
    client.disconnect();
  });
});
