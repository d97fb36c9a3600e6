/**
 * The young generation `serve` runs with (src/heap-flags.ts): added unless a size was given, on
 * node's command line or in NODE_OPTIONS, in either of V8's spellings.
 */
import assert from 'node:assert/strict';
import { heapFlags, SEMI_SPACE_MIB } from '../../src/heap-flags.js';

describe('heap flags of serve', () => {
  const ours = [`--max-semi-space-size=${SEMI_SPACE_MIB}`];

  it('adds the young generation size when none was given', () => {
    assert.deepEqual(heapFlags([], undefined), ours);
    assert.deepEqual(heapFlags(['--import', 'tsx', '--max-old-space-size=512'], '--enable-source-maps --max-semi-space-size-x=1'), ours);
  });

  it('adds nothing when node was given a size, on its command line or in NODE_OPTIONS', () => {
    assert.deepEqual(heapFlags(['--max-semi-space-size=32'], undefined), []);
    assert.deepEqual(heapFlags(['--max_semi_space_size=4'], ''), []);
    assert.deepEqual(heapFlags(['--max-semi-space-size', '8'], undefined), []);
    assert.deepEqual(heapFlags([], '--enable-source-maps  --max-semi-space-size=0'), [], '0 leaves it to V8');
    assert.deepEqual(heapFlags([], '--max_semi_space_size=64'), []);
  });
});
