/**
 * Reads started ahead (src/store/read-ahead.ts) on a real redis-server through the server's
 * connection settings (auto-pipelining): they share one round trip, each answers at most one
 * read of its request (the one in progress, or one its caller names), a write in the request
 * drops it, and outside a request nothing is kept.
 */
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { withReadAhead } from '../../src/store/read-ahead.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { monitorOf, startRedisServer, type RedisServer } from '../helpers/redis.js';

describe('store: reads started ahead for a request', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let raw: Redis;
  let base: RedisKv;
  const requests = new AsyncLocalStorage<object>();
  let kv: ReturnType<typeof withReadAhead<RedisKv>>;
  const inRequest = <T>(fn: () => Promise<T>) => requests.run({}, fn);
  /** Socket reads Redis has processed so far (INFO's own read included). */
  const reads = async () => Number(/total_reads_processed:(\d+)/.exec(await raw.info('stats'))![1]);

  before(async () => {
    server = await startRedisServer();
    raw = new Redis(server.url);
    const config = loadConfig({ REDIS_URL: server.url });
    base = new RedisKv(connect(config.redis));
    kv = withReadAhead(base, () => requests.getStore());
  });
  after(async () => {
    await base?.close();
    raw?.disconnect();
    await server?.stop();
  });

  it('answers the reads of a request from one round trip started ahead', async () => {
    await base.set('ra:account', 'alice');
    await base.putRecord('ra:grant', '{"g":1}', 60);
    await base.set('ra:uid', 'S1');
    await base.putRecord('ra:session:S1', '{"s":1}', 60);
    const [account, grant, session] = await inRequest(async () => {
      const before = await reads();
      kv.readAhead({ strings: ['ra:account'], records: ['ra:grant'], indexed: [{ index: 'ra:uid', prefix: 'ra:session:' }] });
      const account = await kv.get('ra:account');
      const grant = await kv.getRecord('ra:grant');
      const id = await kv.get('ra:uid');
      const session = await kv.getRecord(`ra:session:${id}`);
      // One read for the three started together (the session with its uid index, in one script),
      // and the closing INFO: four reads one after another would have been five.
      assert.equal((await reads()) - before, 2);
      return [account, grant, session];
    });
    assert.equal(account, 'alice');
    assert.deepEqual(grant, { payload: '{"g":1}' });
    assert.deepEqual(session, { payload: '{"s":1}' });
  });

  it('sends the reads started ahead in one tick as one command, for every request that started them', async () => {
    await base.set('ra:one:account', 'bob');
    await base.putRecord('ra:one:grant', '{"g":9}', 60);
    await base.set('ra:one:uid', 'S9');
    await base.putRecord('ra:one:session:S9', '{"s":9}', 60);
    await base.set('ra:one:other', 'carol');
    // What clients sent (MONITOR's source is "lua" for what a script ran).
    const monitor = await monitorOf(raw);
    const sent: string[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source !== 'lua') sent.push(args[0]!.toLowerCase());
    });
    try {
      const [first, second] = await Promise.all([
        inRequest(async () => {
          kv.readAhead({ strings: ['ra:one:account'], records: ['ra:one:grant'], indexed: [{ index: 'ra:one:uid', prefix: 'ra:one:session:' }] });
          const id = await kv.get('ra:one:uid');
          return [await kv.get('ra:one:account'), await kv.getRecord('ra:one:grant'), await kv.getRecord(`ra:one:session:${id}`)];
        }),
        inRequest(async () => {
          kv.readAhead({ strings: ['ra:one:other'] });
          return kv.get('ra:one:other');
        }),
      ]);
      assert.deepEqual(first, ['bob', { payload: '{"g":9}' }, { payload: '{"s":9}' }]);
      assert.equal(second, 'carol');
      await new Promise((done) => setTimeout(done, 50));
      assert.deepEqual(sent, ['evalsha'], 'the five reads, one command');
    } finally {
      monitor.disconnect();
    }
  });

  it('uses a read started ahead once: a second read of the key goes to Redis', async () => {
    await base.set('ra:once', 'v1');
    await inRequest(async () => {
      kv.readAhead({ strings: ['ra:once'] });
      assert.equal(await kv.get('ra:once'), 'v1');
      await raw.set('lk:ra:once', 'v2');
      assert.equal(await kv.get('ra:once'), 'v2');
    });
  });

  it('drops a read started ahead when the request writes or consumes the key', async () => {
    await base.set('ra:written', 'old');
    await base.putRecord('ra:consumed', '{}', 60);
    await inRequest(async () => {
      kv.readAhead({ strings: ['ra:written'], records: ['ra:consumed'] });
      await kv.set('ra:written', 'new');
      assert.equal(await kv.get('ra:written'), 'new');
      assert.equal(await kv.consumeRecord('ra:consumed', 1234.5), 'consumed');
      assert.deepEqual(await kv.getRecord('ra:consumed'), { payload: '{}', consumed: 1234.5 });
    });
  });

  it('drops a read started ahead when the request ends the record, or writes it with its grant\'s set (endRecord, putRecordInSet)', async () => {
    await base.putRecord('ra:ended', '{}', 60);
    await base.putRecord('ra:in-set', '{"v":1}', 60);
    await inRequest(async () => {
      kv.readAhead({ records: ['ra:ended', 'ra:in-set'] });
      await kv.endRecord('ra:ended', 60);
      assert.equal(await kv.getRecord('ra:ended'), undefined);
      await kv.putRecordInSet!('ra:in-set', '{"v":2}', 60, 'ra:set');
      assert.deepEqual(await kv.getRecord('ra:in-set'), { payload: '{"v":2}' });
    });
  });

  it('a record read ahead through its index, written by the request while that read was on its way, is read again: the write, not the copy from before it', async () => {
    await base.set('ra:late:uid', 'L1');
    await base.putRecord('ra:late:session:L1', '{"s":"before"}', 60);
    await inRequest(async () => {
      kv.readAhead({ indexed: [{ index: 'ra:late:uid', prefix: 'ra:late:session:' }] });
      // The read is sent at the end of this tick; the write goes out after it, before its answer is back.
      await new Promise<void>((done) => setImmediate(done));
      await kv.putRecord('ra:late:session:L1', '{"s":"after"}', 60);
      assert.equal(await kv.get('ra:late:uid'), 'L1');
      assert.deepEqual(await kv.getRecord('ra:late:session:L1'), { payload: '{"s":"after"}' });
    });
  });

  it("drops a read started ahead when the request takes the record (takeRecordOwnedBy)", async () => {
    await base.putRecord('ra:taken', JSON.stringify({ clientId: 'c', exp: Date.now() / 1000 + 60 }), 60);
    await inRequest(async () => {
      kv.readAhead({ records: ['ra:taken'] });
      assert.equal((await kv.takeRecordOwnedBy!('ra:taken', 'c', Date.now() / 1000)).taken, true);
      assert.equal(await kv.getRecord('ra:taken'), undefined);
    });
  });

  it('reads started ahead for a request named by its caller (in front of oidc-provider) answer that request, and no other', async () => {
    await base.putRecord('ra:named', '{"g":2}', 60);
    const request = {};
    kv.readAhead({ records: ['ra:named'] }, request);
    await new Promise((done) => setTimeout(done, 20)); // read by now (another connection's write would race it)
    await raw.hset('lk:ra:named', 'p', '{"g":3}');
    assert.deepEqual(await inRequest(() => kv.getRecord('ra:named')), { payload: '{"g":3}' }, 'another request reads the store');
    assert.deepEqual(await requests.run(request, () => kv.getRecord('ra:named')), { payload: '{"g":2}' }, 'the named request takes the read started for it');
  });

  it('a caller in front of oidc-provider that writes a key it read ahead drops that read, and the request reads the write', async () => {
    await base.putRecord('ra:refused', '{"result":"login"}', 60);
    const request = {};
    kv.readAhead({ records: ['ra:refused'] }, request);
    await new Promise((done) => setTimeout(done, 20)); // read by now
    // Its write, outside the request's context, is not tied to the request by the store: it says so.
    await kv.putRecord('ra:refused', '{"result":"access_denied"}', 60);
    kv.forgetAhead(['ra:refused'], request);
    assert.deepEqual(await requests.run(request, () => kv.getRecord('ra:refused')), { payload: '{"result":"access_denied"}' });
  });

  it('keeps nothing outside a request, and nothing from one request for another', async () => {
    await base.set('ra:outside', 'v1');
    kv.readAhead({ strings: ['ra:outside'] });
    await raw.set('lk:ra:outside', 'v2');
    assert.equal(await kv.get('ra:outside'), 'v2');
    await inRequest(async () => kv.readAhead({ strings: ['ra:outside'] }));
    await raw.set('lk:ra:outside', 'v3');
    assert.equal(await inRequest(() => kv.get('ra:outside')), 'v3');
  });
});
