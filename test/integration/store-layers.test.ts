/**
 * The server's store (openStore with metrics) is the backend under two layers, timing and reads
 * started ahead: plain objects over it, not Proxies (a Proxy ran a trap at every property read of
 * every store call). What the layers must keep: the backend's class and connection, every operation
 * timed by outcome, the cache factory untimed (reads ahead: read-ahead.test.ts).
 */
import assert from 'node:assert/strict';
import { types } from 'node:util';
import { loadConfig } from '../../src/config.js';
import { Metrics } from '../../src/ops/metrics.js';
import { openStore } from '../../src/store/index.js';
import type { Kv } from '../../src/store/kv.js';
import { RedisKv } from '../../src/store/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';

const count = (text: string, operation: string, outcome: string) =>
  Number(new RegExp(`^latchkey_store_command_duration_seconds_count\\{operation="${operation}",outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);

describe('store: the server store\'s layers (timing, reads ahead)', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let kv: Kv;
  let metrics: Metrics;

  before(async () => {
    server = await startRedisServer();
    metrics = new Metrics();
    kv = openStore(loadConfig({ REDIS_URL: server.url }), undefined, metrics);
    await kv.ping();
  });
  after(async () => {
    await kv?.close();
    await server?.stop();
  });

  it('are plain objects over the backend: its class, its fields and its connection read through', () => {
    assert.equal(types.isProxy(kv), false);
    assert.ok(kv instanceof RedisKv);
    assert.equal(kv.kind, 'redis');
    assert.equal((kv as RedisKv).connection.status, 'ready');
    assert.equal(typeof (kv as Kv).readAhead, 'function');
  });

  it('time every operation by outcome, and not the cache factory', async () => {
    await kv.set('layers:a', '1');
    assert.equal(await kv.get('layers:a'), '1');
    assert.equal(await kv.get('layers:missing'), undefined);
    await kv.addToSet('layers:set', 'x');
    // A string read as a set: Redis refuses (WRONGTYPE), an error outcome.
    await assert.rejects(kv.members('layers:a'));
    const cache = kv.cachedReads?.(['layers:']);
    assert.ok(cache);
    const text = await metrics.registry.metrics();
    assert.equal(count(text, 'set', 'ok'), 1);
    assert.equal(count(text, 'get', 'ok'), 2);
    assert.equal(count(text, 'addToSet', 'ok'), 1);
    assert.equal(count(text, 'members', 'error'), 1);
    assert.doesNotMatch(text, /operation="cachedReads"/);
    assert.doesNotMatch(text, /operation="constructor"/);
  });

  it('pass the session ending and the grant write through, timed (endRecord, putRecordInSet)', async () => {
    await kv.putRecordInSet!('layers:record', '{}', 60, 'layers:grant');
    await kv.endRecord('layers:record', 60);
    assert.equal(await kv.putRecord('layers:record', '{}', 60), false, 'the ending holds through the layers');
    assert.deepEqual(await kv.members('layers:grant'), ['layers:record']);
    const text = await metrics.registry.metrics();
    assert.equal(count(text, 'putRecordInSet', 'ok'), 1);
    assert.equal(count(text, 'endRecord', 'ok'), 1);
    assert.equal(count(text, 'putRecord', 'ok'), 1);
  });

  it("pass a revocation's read-and-delete through, timed (takeRecordOwnedBy)", async () => {
    await kv.putRecord('layers:token', JSON.stringify({ clientId: 'c', exp: Date.now() / 1000 + 60 }), 60);
    assert.equal((await kv.takeRecordOwnedBy!('layers:token', 'c', Date.now() / 1000)).taken, true);
    assert.equal(await kv.getRecord('layers:token'), undefined);
    assert.equal(count(await metrics.registry.metrics(), 'takeRecordOwnedBy', 'ok'), 1);
  });
});
