/**
 * The store on a 3-master Redis Cluster with ioredis's auto-pipelining: every command a turn of the
 * event loop sends goes in one pipeline per node, and ioredis refuses a pipeline whole (every
 * command in it failed, none sent) when one command's first key is another node's.
 *
 * It groups a command by the first key the commands table names for it, or by its first argument
 * for one the table does not know, as a script defined with defineCommand; a script given its
 * number of keys at each call (Kv.claimDue, the back-channel sweep's) had that number first, so it
 * was grouped with `lk:2`'s node (slot 309, the first master) while its keys (`{bc}`, slot 12685)
 * are the third's. Whatever else the turn sent to the first master failed with it: the key ring's
 * refresh did once in CI ("All keys in the pipeline should belong to the same slots allocation group").
 */
import assert from 'node:assert/strict';
import type { Cluster } from 'ioredis';
import type { Config } from '../../src/config.js';
import { DueEndings } from '../../src/store/due-endings.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { slotOf, startRedisCluster, type RedisCluster } from '../helpers/redis.js';

const settings = (clusterNodes: string[]): Config['redis'] => ({
  url: '',
  mode: 'cluster',
  sentinels: [],
  sentinelName: 'x',
  clusterNodes,
  keyPrefix: 'lk:',
  commandTimeout: 2000,
});

describe('store on Redis Cluster: one auto-pipeline per node', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  let kv: RedisKv;
  // Keys over every master (checked below), each read in the same turn as the claim.
  const keys = Array.from({ length: 24 }, (_, at) => `pipelines:${at}`);

  before(async () => {
    cluster = await startRedisCluster(3);
    kv = new RedisKv(connect(settings(cluster.nodes.map(({ host, port }) => `${host}:${port}`))));
    await kv.ping();
    await Promise.all(keys.map((key) => kv.set(key, key, { ttl: 60 })));
  });
  after(async () => {
    await kv?.close();
    await cluster?.stop();
  });

  it('the reads sent with them span every master', async () => {
    const connection = kv.connection as Cluster;
    const masters = new Set(keys.map((key) => connection.slots[slotOf(`lk:${key}`)]![0]));
    assert.equal(masters.size, 3);
  });

  it('a script given its number of keys (the sweep\'s claim) goes with its keys\' node, and the turn\'s other commands with theirs', async () => {
    const due = new DueEndings(kv);
    await due.keepRetry({ clientId: 'pipelines-app', clientIssuedAt: 0, sub: 'someone', sid: undefined, attempts: 1 }, 1, 60);
    for (let round = 0; round < 3; round += 1) {
      // One turn: the claim and the reads, as the sweep, the key ring's refresh and requests send them.
      const [claimed, ...values] = await Promise.all([due.claim(Date.now() + 60_000, Date.now() + 120_000, 10), ...keys.map((key) => kv.get(key))]);
      assert.deepEqual(values, keys);
      assert.deepEqual(claimed.sessions, []);
      if (round === 0) assert.deepEqual(claimed.retries.map(({ retry }) => retry?.clientId), ['pipelines-app']);
    }
  });
});
