/**
 * The store's Lua scripts (store/scripts.ts): not copied onto each of ioredis's auto-pipelines
 * (ioredis's defineCommand put every script and its Buffer twin on each pipeline it made, one per
 * turn of the event loop), still sent together in one auto-pipeline, and run once when Redis has
 * lost them (NOSCRIPT, then EVAL).
 */
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { openStore } from '../../src/store/index.js';
import type { Kv } from '../../src/store/kv.js';
import { fixedWindows } from '../../src/store/rate-limit.js';
import { RedisKv } from '../../src/store/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';

const STORE_SCRIPTS = ['putRecord', 'consumeRecord', 'compareAndSet', 'readMany', 'getVia', 'latchkeyHitWindows', 'latchkeyHitWindow'];

describe('store: Lua scripts on the ioredis connection', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let kv: Kv;
  let connection: Redis;

  before(async () => {
    server = await startRedisServer();
    kv = openStore(loadConfig({ REDIS_URL: server.url }));
    await kv.ping();
    assert.ok(kv instanceof RedisKv);
    connection = kv.connection as Redis;
    fixedWindows(kv); // the rate limits' scripts, on the same connection
  });
  after(async () => {
    await kv?.close();
    await server?.stop();
  });

  it('are methods of the connection that no pipeline it makes carries', async () => {
    const pipeline = connection.pipeline();
    for (const name of STORE_SCRIPTS) {
      assert.equal(typeof (connection as unknown as Record<string, unknown>)[name], 'function', name);
      assert.equal(Object.hasOwn(pipeline, name), false, `a pipeline carries ${name}`);
      assert.equal(Object.hasOwn(pipeline, `${name}Buffer`), false, `a pipeline carries ${name}Buffer`);
    }
    await pipeline.exec();
  });

  it('run once, with their effect, after Redis lost them (NOSCRIPT, then EVAL)', async () => {
    assert.equal(await kv.putRecord('scripts:a', '{"n":1}', 60), true);
    await connection.script('FLUSH');
    // Several at once, as a request sends them (one auto-pipeline, each answered NOSCRIPT first).
    const [consumed, again, put] = await Promise.all([kv.consumeRecord('scripts:a', 5), kv.consumeRecord('scripts:a', 6), kv.putRecord('scripts:b', '{"n":2}', 60)]);
    assert.deepEqual([consumed, again, put], ['consumed', 'already-consumed', true]);
    assert.equal((await kv.getRecord('scripts:a'))?.consumed, 5);
    assert.equal((await kv.getRecord('scripts:b'))?.payload, '{"n":2}');
    // Cached again by the EVAL: the next call is one EVALSHA.
    const before = await evalCounts();
    assert.equal(await kv.consumeRecord('scripts:b', 7), 'consumed');
    const after = await evalCounts();
    assert.deepEqual([after.evalsha - before.evalsha, after.eval - before.eval], [1, 0]);
  });

  it('are sent as EVAL first on each connection: a read sent after a write in the same turn sees it, on a Redis without the scripts', async () => {
    await connection.script('FLUSH');
    const fresh = openStore(loadConfig({ REDIS_URL: server.url }));
    try {
      const [put, read, consumed] = await Promise.all([fresh.putRecord('scripts:d', '{"n":4}', 60), fresh.getRecord('scripts:d'), fresh.consumeRecord('scripts:d', 9)]);
      assert.deepEqual([put, read?.payload, consumed], [true, '{"n":4}', 'consumed']);
    } finally {
      await fresh.close();
    }
  });

  async function evalCounts(): Promise<{ eval: number; evalsha: number }> {
    const info = await connection.info('commandstats');
    const calls = (name: string) => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
    return { eval: calls('eval'), evalsha: calls('evalsha') };
  }
});
