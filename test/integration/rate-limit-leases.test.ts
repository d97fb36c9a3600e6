/**
 * The rate limits' counters on Redis with leases (store/rate-limit.ts leasedWindows): a charge that
 * reaches Redis reserves allowance that the same process then spends without a round trip. Against
 * a real redis-server and a real 3-master Cluster, each "process" a FixedWindows on its own
 * connection. Round trips are counted by Redis itself: every counter a script touches runs one
 * INCRBY (a charge) or one GET (a read), which INFO commandstats counts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import type { Config } from '../../src/config.js';
import { isStoreOutage } from '../../src/store/outage.js';
import { fixedWindows, type FixedWindows, type WindowCount, type WindowHit } from '../../src/store/rate-limit.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { startRedisCluster, startRedisServer, type RedisServer } from '../helpers/redis.js';

const settings = (overrides: Partial<Config['redis']>): Config['redis'] => ({
  url: '',
  mode: 'standalone',
  sentinels: [],
  sentinelName: 'x',
  clusterNodes: [],
  keyPrefix: 'lk:',
  commandTimeout: 500,
  ...overrides,
});

/** INCRBY and GET calls so far, over every master. */
async function counterCommands(raw: Redis | Cluster): Promise<{ charges: number; reads: number }> {
  const nodes = raw instanceof Cluster ? raw.nodes('master') : [raw];
  const total = { charges: 0, reads: 0 };
  for (const node of nodes) {
    const text = await node.info('commandstats');
    total.charges += Number(/cmdstat_incrby:calls=(\d+)/.exec(text)?.[1] ?? 0);
    total.reads += Number(/cmdstat_get:calls=(\d+)/.exec(text)?.[1] ?? 0);
  }
  return total;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

interface Store {
  /** A new FixedWindows on a connection of its own (another process, as far as leases go). */
  process(): FixedWindows;
  readonly raw: Redis | Cluster;
}

const stores: { name: string; open(): Promise<Store & { stop(): Promise<void> }> }[] = [
  {
    name: 'single redis-server',
    async open() {
      const server = await startRedisServer();
      const kvs: RedisKv[] = [];
      const raw = new Redis(server.url);
      return {
        raw,
        process() {
          const kv = new RedisKv(connect(settings({ url: server.url })));
          kvs.push(kv);
          return fixedWindows(kv);
        },
        async stop() {
          await Promise.all(kvs.map((kv) => kv.close()));
          raw.disconnect();
          await server.stop();
        },
      };
    },
  },
  {
    name: '3-master Redis Cluster',
    async open() {
      const cluster = await startRedisCluster(3);
      const nodes = cluster.nodes.map(({ host, port }) => `${host}:${port}`);
      const kvs: RedisKv[] = [];
      const raw = new Cluster(cluster.nodes);
      await raw.ping(); // the masters are known from here on (counterCommands asks each)
      return {
        raw,
        process() {
          const kv = new RedisKv(connect(settings({ mode: 'cluster', clusterNodes: nodes })));
          kvs.push(kv);
          return fixedWindows(kv);
        },
        async stop() {
          await Promise.all(kvs.map((kv) => kv.close()));
          raw.disconnect();
          await cluster.stop();
        },
      };
    },
  },
];

for (const backend of stores) {
  describe(`rate-limit leases: ${backend.name}`, function () {
    this.timeout(60_000);
    let store: Store & { stop(): Promise<void> };
    let windows: FixedWindows;

    before(async () => {
      store = await backend.open();
      windows = store.process();
    });
    after(async () => store?.stop());

    const counter = () => `leased:${randomUUID()}`;
    const charge = (key: string, lease: number, window = 60): WindowHit => ({ limiter: 'lease-test', key, by: 1, window, lease });
    const read = (key: string): WindowHit => ({ limiter: 'lease-test', key, by: 0, window: 60 });
    const stored = (key: string) => store.raw.get(`lk:ratelimit:lease-test:${key}`);

    it('a counter with a lease of L goes to Redis once per L + 1 charges, and counts 1, 2, 3, ... exactly', async () => {
      const key = counter();
      const before = await counterCommands(store.raw);
      const counts: number[] = [];
      for (let n = 0; n < 12; n += 1) counts.push((await windows.hit([charge(key, 4)]))[0]!.count);
      assert.deepEqual(counts, Array.from({ length: 12 }, (_, i) => i + 1));
      const after = await counterCommands(store.raw);
      assert.equal(after.charges - before.charges, 3, 'charges 1, 6 and 11 reached Redis');
      assert.equal(await stored(key), '15', 'each reached Redis with its lease of 4');
      const served = windows.hitHere(charge(key, 4))!;
      assert.equal(served!.count, 13, 'hitHere serves from the live lease, in the same count');
      assert.ok(served!.ms > 0 && served!.ms <= 60_000, `the window's end: ${served!.ms}`);
    });

    it('a counter charged steadily here reserves its next lease before this one runs out: every charge is served here, in order', async () => {
      const key = counter();
      assert.equal((await windows.hit([charge(key, 10)]))[0]!.count, 1);
      const before = await counterCommands(store.raw);
      const counts: (number | undefined)[] = [];
      let inRedis = await stored(key);
      for (let n = 0; n < 40; n += 1) {
        counts.push(windows.hitHere(charge(key, 10))?.count);
        // Time for a reservation under way to come back, as between requests: not a fixed sleep
        // (under load a round trip outlasts it), but until Redis has run it. Its reply was written
        // before the answer to this GET, which Redis runs after it; a turn of the loop later, this
        // process has read it.
        await sleep(5);
        const now = await stored(key);
        if (now !== inRedis) await sleep(5);
        inRedis = now;
      }
      assert.deepEqual(counts, Array.from({ length: 40 }, (_, i) => i + 2), 'none left to a round trip');
      const reservations = (await counterCommands(store.raw)).charges - before.charges;
      assert.ok(reservations >= 4 && reservations <= 5, `a reservation of 10 per 10 charges or so: ${reservations}`);
      assert.equal(await stored(key), String(1 + 10 * (reservations + 1)), 'each reservation charged nothing itself');
    });

    it('concurrent charges of a counter wait for its reservation under way instead of reserving more', async () => {
      const key = counter();
      const before = await counterCommands(store.raw);
      const replies = await Promise.all(Array.from({ length: 20 }, () => windows.hit([charge(key, 4)])));
      assert.deepEqual(replies.map(([count]) => count!.count).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1));
      assert.equal((await counterCommands(store.raw)).charges - before.charges, 4);
      assert.equal(await stored(key), '20');
    });

    it('a read answers from a live lease, reserves nothing, and goes to Redis for a counter without one', async () => {
      const key = counter();
      await windows.hit([charge(key, 10)]);
      await windows.hit([charge(key, 10)]);
      const before = await counterCommands(store.raw);
      assert.equal((await windows.hit([read(key)]))[0]!.count, 2, 'what was charged, not what was reserved');
      assert.equal(windows.hitHere(read(key))!.count, 2);
      assert.equal((await counterCommands(store.raw)).reads - before.reads, 0, 'no round trip');

      const other = store.process();
      assert.equal(other.hitHere(read(key)), undefined, 'another process has no lease of it');
      assert.equal((await other.hit([read(key)]))[0]!.count, 11, "from Redis: this process's reservation counts for the others");
      assert.equal((await other.hit([read(key)]))[0]!.count, 11, 'a read reserved nothing');
      assert.equal((await counterCommands(store.raw)).reads - before.reads, 2);
    });

    /**
     * Two processes charging one counter (leases of 10) until `charged` answers over the limit, for
     * limits 41 to 60: together they admit no more than it, and not fewer than it less `slack`.
     */
    async function sharedLimits(charged: (process: FixedWindows, hit: WindowHit) => Promise<WindowCount>, slack: number): Promise<void> {
      const [one, two] = [store.process(), store.process()];
      for (let limit = 41; limit <= 60; limit += 1) {
        const key = counter();
        const drain = async (process: FixedWindows) => {
          let admitted = 0;
          while ((await charged(process, charge(key, 10))).count <= limit) admitted += 1;
          return admitted;
        };
        const [first, second] = await Promise.all([drain(one), drain(two)]);
        assert.ok(first + second <= limit, `limit ${limit}: admitted ${first} + ${second}`);
        assert.ok(first + second >= limit - slack, `limit ${limit}: admitted ${first} + ${second}`);
      }
    }

    it('two processes sharing a limit of 50 (leases of 10) admit no more than 50 between them, and not fewer than 30; so for limits 41 to 60', async () => {
      await sharedLimits(async (process, hit) => (await process.hit([hit]))[0]!, 2 * 10);
    });

    it('charged here first, as the HTTP limits do (the next lease reserved ahead), two processes sharing a limit admit no more than it, and not fewer than it less 1.5 leases each', async () => {
      await sharedLimits(async (process, hit) => {
        const count = process.hitHere(hit) ?? (await process.hit([hit]))[0]!;
        await sleep(0);
        return count;
      }, 2 * 15);
    });

    it('the end of the window drops the lease', async () => {
      const key = counter();
      // A window of 2 s: the hits and the read, on a loaded machine, come within it.
      for (let n = 0; n < 3; n += 1) await windows.hit([charge(key, 10, 2)]);
      assert.equal(await stored(key), '11');
      await sleep(2200);
      assert.equal(windows.hitHere(read(key)), undefined, 'nothing left to serve from');
      const before = await counterCommands(store.raw);
      const [fresh] = await windows.hit([charge(key, 10, 2)]);
      assert.equal(fresh!.count, 1, 'a new window starts from 1');
      assert.ok(fresh!.ms > 0 && fresh!.ms <= 2000);
      assert.equal((await counterCommands(store.raw)).charges - before.charges, 1, 'reached Redis, reserving again');
      assert.equal(await stored(key), '11');
    });
  });
}

describe('rate-limit leases while Redis is away', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let kv: RedisKv;

  before(async () => {
    server = await startRedisServer();
    kv = new RedisKv(connect(settings({ url: server.url })));
  });
  after(async () => {
    await kv?.close();
    await server?.stop();
  });

  it('a live lease keeps answering; a counter without one fails as a store outage (503), and all recover', async () => {
    const windows = fixedWindows(kv);
    const hit = (key: string): WindowHit => ({ limiter: 'lease-outage', key, by: 1, window: 60, lease: 5 });
    assert.equal((await windows.hit([hit('leased')]))[0]!.count, 1);
    await server.kill();
    assert.equal((await windows.hit([hit('leased')]))[0]!.count, 2, 'served from the lease');
    await assert.rejects(windows.hit([hit('unleased')]), (error) => isStoreOutage(error), 'an outage, answered with 503');
    await assert.rejects(windows.hit([hit('leased'), hit('unleased')]), (error) => isStoreOutage(error), 'one counter without a lease is enough');
    await server.restart();
    // Waited for with PING: until the connection is made again every command fails at once. (Before
    // connect() turned the offline queue off once connected, charges tried meanwhile were sent after
    // their timeout had failed them, and reached the fresh counter: 7 instead of 1 on a loaded machine.)
    let back = false;
    for (let tries = 0; tries < 100 && !back; tries += 1) {
      back = await kv.ping().then(() => true, () => false);
      if (!back) await sleep(50);
    }
    const [recovered] = await windows.hit([hit('unleased')]);
    assert.equal(recovered!.count, 1, 'counted again once Redis is back (its data went with the crash)');
  });
});
