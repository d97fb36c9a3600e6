/**
 * The test relay's holds (test/helpers/relay.ts) cannot be missed: a hold that a request's traffic
 * never reaches fails the test as the request answers, and so does a request that answered while
 * the hold held another connection's traffic. A hold reached keeps the request's write from Redis
 * until released.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { scriptOn, startRelay, type Relay } from '../helpers/relay.js';

describe('integration: the test relay holds a request or fails the test', () => {
  let redis: RedisServer;
  let relay: Relay;
  let request: Redis;
  let direct: Redis;

  before(async () => {
    redis = await startRedisServer();
    relay = await startRelay(redis.port);
    request = new Redis(relay.url);
    direct = new Redis(redis.url);
  });
  after(async () => {
    request?.disconnect();
    direct?.disconnect();
    relay?.close();
    await redis?.stop();
  });

  /** A read, then a write by script (as the store writes a record). */
  const readThenWrite = async (value: string) => {
    await request.get('held:record');
    return request.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, 'held:record', value);
  };

  it('a hold reached: the write waits for the release; what ran meanwhile is seen first', async () => {
    const held = await relay.hold(scriptOn('held:record'), () => readThenWrite('request'));
    await direct.set('held:ending', 'ran');
    assert.equal(await direct.get('held:record'), null, 'the held write has not reached Redis');
    assert.equal(await held.release(), 'OK');
    assert.equal(await direct.get('held:record'), 'request');
  });

  it('a hold the request never reaches (its trigger names only another key) fails as the request answers', async () => {
    await assert.rejects(relay.hold(scriptOn('held:other'), () => readThenWrite('unheld')), /answered before its hold was reached/);
    assert.equal(await direct.get('held:record'), 'unheld');
  });

  it("a hold reached by another connection's traffic fails at the release: the request answered while held", async () => {
    const elsewhere = new Redis(relay.url);
    try {
      const held = await relay.hold(
        (chunk) => chunk.includes('held:elsewhere'),
        async () => {
          void elsewhere.set('held:elsewhere', '1');
          // Its new connection's set-up and SET reach the relay first (half a second on a loaded runner).
          await new Promise((resolve) => setTimeout(resolve, 500));
          return readThenWrite('also unheld');
        },
      );
      // Answered (not held), however long that takes: then released.
      await held.answer;
      await assert.rejects(held.release(), /answered while held/);
      assert.equal(await direct.get('held:record'), 'also unheld');
    } finally {
      elsewhere.disconnect();
    }
  });
});
