import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Cluster, Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { connect } from '../../src/store/redis.js';

const require = createRequire(import.meta.url);

describe('store/shared-pipeline-length.ts', () => {
  let client: Redis | Cluster;
  before(() => {
    client = connect(loadConfig({ REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }).redis);
  });
  after(() => client.quit());

  it('ioredis defines each pipeline\'s length with a getter of its own; through connect(), every pipeline shares one getter and still counts its own queue', async () => {
    assert.match(
      readFileSync(require.resolve('ioredis/built/Pipeline.js'), 'utf8'),
      /const _this = this;\s*Object\.defineProperty\(this, "length", \{\s*get: function \(\) \{\s*return _this\._queue\.length;\s*\},\s*\}\);/,
    );
    const one = client.pipeline();
    const two = client.pipeline();
    const [first, second] = [Object.getOwnPropertyDescriptor(one, 'length')!, Object.getOwnPropertyDescriptor(two, 'length')!];
    assert.equal(first.get, second.get, 'one getter for every pipeline');
    // As ioredis defines it: own, not configurable, not enumerable, no setter.
    assert.deepEqual([first.configurable, first.enumerable, first.set], [false, false, undefined]);
    assert.throws(() => Object.defineProperty(one, 'length', { get: () => 0 }), TypeError);
    one.ping().ping();
    two.ping();
    assert.deepEqual([one.length, two.length], [2, 1]);
    assert.deepEqual(await one.exec(), [[null, 'PONG'], [null, 'PONG']]);
    assert.deepEqual(await two.exec(), [[null, 'PONG']]);
    // Auto-pipelined commands (a pipeline per turn) still answer.
    assert.deepEqual(await Promise.all([client.ping(), client.echo('x')]), ['PONG', 'x']);
    // Any other definition goes through unchanged.
    const plain = {};
    const getter = () => 42;
    Object.defineProperty(plain, 'length', { get: getter });
    assert.equal(Object.getOwnPropertyDescriptor(plain, 'length')!.get, getter);
  });
});
