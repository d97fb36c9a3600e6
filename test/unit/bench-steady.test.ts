/**
 * When the bench calls a server warm (test/bench/report.ts `steady`): its last three warm-up windows
 * cost the same CPU per iteration within 10%. A server still compiling its paths is not.
 */
import assert from 'node:assert/strict';
import { steady } from '../bench/report.js';

describe('unit: the bench’s steady state after warm-up', () => {
  it('is three windows in a row within 10% of each other', () => {
    assert.equal(steady([0.507, 0.257, 0.29, 0.39, 0.187, 0.18, 0.173]), true);
    assert.equal(steady([0.2, 0.21, 0.219]), true);
  });

  it('is not a server still getting faster, nor two windows that happen to agree', () => {
    // A fresh server's opaque tokens, window by window (docs/performance.md): cold until the fifth.
    assert.equal(steady([0.507, 0.257, 0.29, 0.39]), false);
    assert.equal(steady([0.507, 0.257, 0.26]), false);
    assert.equal(steady([0.2, 0.2]), false);
    assert.equal(steady([]), false);
    assert.equal(steady([0.2, 0.21, 0.221]), false);
  });
});
