/**
 * What a Redis blip does to writes, against a real redis-server that is stopped (SIGSTOP: its
 * connections stay up and the kernel still accepts new ones, so a reconnection hangs in its
 * handshake), killed and restarted. A write whose caller was told it failed is never made
 * afterwards, and a write in flight when the connection drops is failed to its caller (it may or
 * may not have run, as after any timeout) and not sent again on the next connection: otherwise a
 * write answered with 503 (or reported failed by the CLI) could happen seconds later, out of order
 * with what other processes wrote meanwhile.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { isStoreOutage } from '../../src/store/outage.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { eventually } from '../helpers/eventually.js';
import { PREFIX, redisSettings } from '../helpers/backends.js';
import { startRedisCluster, startRedisServer, type RedisCluster, type RedisServer } from '../helpers/redis.js';

/** What a promise came to: its value, or the error it was rejected with. */
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * Short, so that a command tried between two reconnection attempts times out well before the next
 * attempt's handshake does (the pause between attempts grows by 100 ms each: retryStrategy).
 */
const COMMAND_TIMEOUT = 200;

const outcome = <T>(promise: Promise<T>): Promise<{ value: T } | { error: unknown }> =>
  promise.then((value) => ({ value }), (error: unknown) => ({ error }));

describe('Redis store: a write failed to its caller is never made afterwards', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let kv: RedisKv;
  let connection: Redis;

  beforeEach(async () => {
    server = await startRedisServer();
    kv = new RedisKv(connect(redisSettings({ url: server.url, commandTimeout: COMMAND_TIMEOUT })));
    connection = kv.connection as Redis;
    // Connected and ready (on a loaded machine the first connection may take longer than a command may).
    await eventually(() => kv.set('warm', '1'), 50, 100);
  });
  afterEach(async () => {
    server?.resume();
    await kv?.close();
    await server?.stop();
  });

  /** Whether the key is in Redis, once this store's connection answers again (in order: after anything it sent before). */
  async function storedOnceBack(key: string) {
    await eventually(() => kv.ping(), 200, 50);
    const raw = new Redis(server.url);
    try {
      return (await raw.exists(`${PREFIX}${key}`)) === 1;
    } finally {
      raw.disconnect();
    }
  }

  it('a write tried between two attempts to connect again fails as a store outage, and is not made when Redis answers', async () => {
    server.pause();
    // The connection drops (a network blip). Each attempt to connect again is accepted by the kernel
    // and hangs in its handshake until that times out; the pause between attempts grows.
    const longPause = new Promise<void>((done) => {
      const waiting = (delay: number) => {
        if (delay < COMMAND_TIMEOUT * 2) return; // the backoff's longest is 500 ms (store/redis.ts)
        connection.off('reconnecting', waiting);
        done();
      };
      connection.on('reconnecting', waiting);
    });
    connection.stream.destroy();
    await longPause;
    const key = `queued:${randomUUID()}`;
    await assert.rejects(kv.set(key, 'x'), (error) => isStoreOutage(error), 'failed to its caller as an outage (503)');
    // Redis answers again before the next attempt, which then succeeds at once.
    server.resume();
    assert.equal(await storedOnceBack(key), false, 'not made after its caller was told it failed');
  });

  it('a write in flight when the connection drops fails as a store outage, and is not sent again on the next connection', async () => {
    server.pause();
    const key = `in-flight:${randomUUID()}`;
    const write = outcome(kv.set(key, 'x'));
    // Written (auto-pipelining sends it a turn of the event loop later), unanswered.
    await sleep(100);
    connection.stream.destroy();
    // Connected again: accepted by the kernel, the handshake unanswered.
    await eventually(async () => assert.equal(connection.status, 'connect'), 200, 10);
    const result = await write;
    assert.ok('error' in result && isStoreOutage(result.error), `failed to its caller as an outage (503): ${JSON.stringify(result)}`);
    // The stopped server dies with the first connection's unread bytes: only a resend could write the key now.
    await server.kill();
    await server.restart();
    assert.equal(await storedOnceBack(key), false, 'not sent again after its caller was told it failed');
  });
});

describe('Redis Cluster store: a command in flight when its node\'s connection closes is not sent again', function () {
  this.timeout(120_000);
  let cluster: RedisCluster;
  let kv: RedisKv;
  let client: Cluster;

  before(async () => {
    cluster = await startRedisCluster(3);
    kv = new RedisKv(connect(redisSettings({ mode: 'cluster', clusterNodes: cluster.nodes.map(({ host, port }) => `${host}:${port}`), commandTimeout: 1000 })));
    client = kv.connection as Cluster;
    await eventually(() => kv.set('warm', '1'), 50, 100);
  });
  after(async () => {
    for (const { port } of cluster?.nodes ?? []) cluster.resume(port);
    await kv?.close();
    await cluster?.stop();
  });

  /** The master serving `key` (as the store names it), asked of Redis. */
  async function masterOf(key: string): Promise<number> {
    const raw = new Redis(cluster.nodes[0]!.port);
    try {
      const slot = Number(await raw.call('CLUSTER', 'KEYSLOT', `${PREFIX}${key}`));
      const ranges = (await raw.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
      return ranges.find(([low, high]) => slot >= low && slot <= high)![2][1];
    } finally {
      raw.disconnect();
    }
  }

  it('a count in flight when the connection drops fails as a store outage, and is counted at most once', async () => {
    const key = `count:${randomUUID()}`;
    // Connected to the key's master.
    assert.equal(await kv.get(key), undefined);
    const port = await masterOf(key);
    const node = client.nodes('master').find((redis) => redis.options.port === port)!;
    cluster.pause(port);
    const count = outcome(client.incr(key));
    // Written (auto-pipelining sends it a turn of the event loop later), unanswered. Then the
    // connection drops; a new one would hang in its handshake until the node runs again.
    await sleep(400);
    node.stream.destroy();
    await sleep(300);
    // The node runs what it had received on the dropped connection; a resend would count again.
    cluster.resume(port);
    const result = await count;
    assert.ok('error' in result && isStoreOutage(result.error), `failed to its caller as an outage (503): ${JSON.stringify(result)}`);
    await eventually(() => kv.get(key), 100, 50);
    // Anything queued for the node's new connection has been sent once that connection answers.
    await eventually(() => client.nodes('master').find((redis) => redis.options.port === port)!.ping(), 100, 50);
    const counted = Number((await kv.get(key)) ?? 0);
    assert.ok(counted <= 1, `counted ${counted} times for one INCR`);
  });
});
