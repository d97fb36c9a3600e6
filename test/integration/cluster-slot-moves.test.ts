/**
 * The store on a 3-master Redis Cluster while an operator moves a slot to another master (what
 * `redis-cli --cluster reshard` does, one slot at a time). ioredis follows a MOVED reply only for a
 * pipeline of one slot's commands, or of reads that all failed alike; with auto-pipelining a turn's
 * commands for one node span many slots, so a command of the moved slot sent with a write to
 * another failed with the raw `MOVED <slot> <node>`, and reads of two slots, now two nodes', were
 * refused whole ("All keys in the pipeline should belong to the same slots allocation group"). Both
 * were taken for bugs: 500 at the admin API, the token endpoint, /auth, /reg, … for as long as the
 * resharding ran (bad input and blips, tenth pass). Neither command ran: each is a store blip, 503
 * with Retry-After, and the same commands succeed once the store has learnt where the slot went,
 * which a MOVED reply now makes it ask at once.
 */
import assert from 'node:assert/strict';
import { Redis, type Cluster } from 'ioredis';
import { isStoreOutage } from '../../src/store/outage.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { PREFIX, redisSettings } from '../helpers/backends.js';
import { eventually } from '../helpers/eventually.js';
import { slotOf, startRedisCluster, type RedisCluster } from '../helpers/redis.js';

describe('store on Redis Cluster: a slot moved to another master', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  let kv: RedisKv;
  const direct = new Map<string, Redis>();

  before(async () => {
    cluster = await startRedisCluster(3);
    kv = new RedisKv(connect(redisSettings({ mode: 'cluster', clusterNodes: cluster.nodes.map(({ host, port }) => `${host}:${port}`) })));
    await kv.ping();
    for (const { host, port } of cluster.nodes) direct.set(`${host}:${port}`, new Redis({ host, port, lazyConnect: false }));
  });
  after(async () => {
    for (const connection of direct.values()) connection.disconnect();
    await kv?.close();
    await cluster?.stop();
  });

  /** Three keys the client places on one master, each in a slot of its own. */
  async function keysOnOneMaster(prefix: string): Promise<{ node: string; keys: string[] }> {
    const slots = (kv.connection as Cluster).slots;
    const byNode = new Map<string, string[]>();
    for (let at = 0; ; at += 1) {
      const key = `${prefix}:${at}`;
      const node = slots[slotOf(`${PREFIX}${key}`)]![0]!;
      const keys = byNode.get(node) ?? [];
      if (!keys.some((other) => slotOf(`${PREFIX}${other}`) === slotOf(`${PREFIX}${key}`))) keys.push(key);
      byNode.set(node, keys);
      if (keys.length === 3) return { node, keys };
    }
  }

  /** Moves `key`'s slot, with its keys, from `from` to another master, as redis-cli's reshard does. */
  async function moveSlotOf(key: string, from: string): Promise<void> {
    const slot = slotOf(`${PREFIX}${key}`);
    const to = [...direct.keys()].find((node) => node !== from)!;
    const [source, target] = [direct.get(from)!, direct.get(to)!];
    const [sourceId, targetId] = [await source.call('CLUSTER', 'MYID'), await target.call('CLUSTER', 'MYID')];
    await target.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', sourceId as string);
    await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId as string);
    const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
    const [host, port] = to.split(':');
    if (keys.length) await source.call('MIGRATE', host!, port!, '', 0, 5000, 'KEYS', ...keys);
    for (const connection of direct.values()) await connection.call('CLUSTER', 'SETSLOT', slot, 'NODE', targetId as string);
  }

  /** What a promise came to: its value, or the error it was rejected with. */
  const outcome = <T>(promise: Promise<T>) => promise.then((value) => ({ value }), (error: unknown) => ({ error }));

  function assertBlipsOnly(outcomes: readonly ({ value: unknown } | { error: unknown })[]) {
    for (const each of outcomes) {
      if ('error' in each) assert.ok(isStoreOutage(each.error), `not a store outage: ${String(each.error)}`);
    }
  }

  it("a command of the moved slot sent with another slot's write fails as a store outage, and succeeds sent again", async () => {
    const { node, keys: [moved, other, written] } = await keysOnOneMaster('moved-with-write');
    await Promise.all([kv.set(moved!, 'm', { ttl: 60 }), kv.set(other!, 'o', { ttl: 60 })]);
    await moveSlotOf(moved!, node);
    // One turn: one auto-pipeline to the old master.
    const outcomes = await Promise.all([outcome(kv.get(moved!)), outcome(kv.get(other!)), outcome(kv.set(written!, 'w', { ttl: 60 }))]);
    assert.ok(outcomes.some((each) => 'error' in each), 'the moved slot\'s command was answered: nothing was tried');
    assertBlipsOnly(outcomes);
    // The same turn again, as a client's retry sends it: it fails only until the store has learnt
    // where the slot went (it asks the cluster when told MOVED), not until a lone read of the slot.
    assert.deepEqual(await eventually(() => Promise.all([kv.get(moved!), kv.get(other!), kv.set(written!, 'w', { ttl: 60 })]), 20, 100), ['m', 'o', true]);
  });

  it("reads of the moved slot and another sent together fail as a store outage, and succeed sent again", async () => {
    const { node, keys: [moved, other] } = await keysOnOneMaster('moved-with-read');
    await Promise.all([kv.set(moved!, 'm', { ttl: 60 }), kv.set(other!, 'o', { ttl: 60 })]);
    await moveSlotOf(moved!, node);
    const outcomes = await Promise.all([outcome(kv.get(moved!)), outcome(kv.get(other!))]);
    assert.ok(outcomes.some((each) => 'error' in each), 'the moved slot\'s command was answered: nothing was tried');
    assertBlipsOnly(outcomes);
    assert.deepEqual(await Promise.all([kv.get(moved!), kv.get(other!)]), ['m', 'o']);
  });
});
