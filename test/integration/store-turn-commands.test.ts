/**
 * The store's commands on a standalone connection (store/turn-commands.ts): a turn's commands,
 * the Kv's own and its scripts', go to Redis in one write, in the order they were sent, without
 * an ioredis auto-pipeline (a Pipeline made each turn, promises wrapped round every command), and
 * keys carry the store's prefix as ioredis put it. Outages: store-outage.test.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import type { Kv } from '../../src/store/kv.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';

const PREFIX = 'turn-test:';

describe('store: a turn\'s commands on a standalone connection', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let kv: Kv;
  let connection: Redis;
  let raw: Redis;

  before(async () => {
    server = await startRedisServer();
    kv = new RedisKv(connect({ ...loadConfig({ REDIS_URL: server.url }).redis, keyPrefix: PREFIX }));
    await kv.ping();
    connection = (kv as RedisKv).connection as Redis;
    raw = new Redis(server.url);
  });
  after(async () => {
    raw?.disconnect();
    await kv?.close();
    await server?.stop();
  });

  /** What `run` made the connection do: pipelines it made, writes on its socket. */
  async function counting<T>(run: () => Promise<T>): Promise<{ result: T; pipelines: number; writes: number }> {
    const counts = { pipelines: 0, writes: 0 };
    const { pipeline } = connection;
    const socket = connection.stream;
    const write = socket.write;
    connection.pipeline = function (this: Redis, ...args: Parameters<Redis['pipeline']>) {
      counts.pipelines++;
      return pipeline.apply(this, args);
    };
    socket.write = function (this: typeof socket, ...args: Parameters<typeof write>) {
      counts.writes++;
      return write.apply(this, args);
    } as typeof write;
    try {
      return { result: await run(), ...counts };
    } finally {
      delete (connection as Partial<Redis>).pipeline;
      socket.write = write;
    }
  }

  it('sends a turn\'s commands, scripts among them, in one write and in order, without an auto-pipeline', async () => {
    const id = randomUUID();
    await kv.putRecord(`r:${id}`, '{"n":1}', 60); // the script's EVAL on this socket is behind us
    const { result, pipelines, writes } = await counting(() =>
      Promise.all([
        kv.set(`s:${id}`, 'one', { ttl: 60 }),
        kv.get(`s:${id}`),
        kv.consumeRecord(`r:${id}`, 5),
        kv.getRecord(`r:${id}`),
        kv.addToSet(`set:${id}`, 'm', 60),
        kv.members(`set:${id}`),
      ]),
    );
    assert.deepEqual(result, [true, 'one', 'consumed', { payload: '{"n":1}', consumed: 5 }, undefined, ['m']]);
    assert.equal(pipelines, 0, 'no ioredis pipeline made');
    assert.equal(writes, 1, 'one write for the turn');
    // Keys under the store's prefix, as ioredis put them; a set's member (an argument) as given.
    assert.equal(await raw.get(`${PREFIX}s:${id}`), 'one');
    assert.equal(await raw.hget(`${PREFIX}r:${id}`, 'c'), '5');
    assert.deepEqual(await raw.smembers(`${PREFIX}set:${id}`), ['m']);
  });
});
