/**
 * The fixed job the bench runs beside its servers on their core (test/bench/core-probe.ts): a row
 * whose measured window had the job slower than at the start is named, because on this VM the
 * host's use of the core shows only as everything on it taking longer (docs/performance.md).
 */
import assert from 'node:assert/strict';
import { onFastestCore, onSlowCore, slowCoreRows, startCoreProbe, summarise } from '../bench/core-probe.js';

describe('unit: the bench’s fixed job beside the servers', () => {
  it('sums a window up by its median and mean, and nothing when it had no samples', () => {
    assert.deepEqual(summarise([0.5, 0.7, 0.4, 1.6]), { medianMs: 0.7, meanMs: 0.8, samples: 4 });
    assert.equal(summarise([]), undefined);
  });

  it('names the rows whose job ran slower than 1.2× the core’s best of the run, and only those', () => {
    const atStart = { medianMs: 0.5, meanMs: 0.52, samples: 20 };
    const rows = [
      { id: 'introspect-jwt', target: 'latchkey', coreProbe: { medianMs: 0.7, meanMs: 0.9, samples: 50 } },
      { id: 'introspect-jwt', target: 'defaults', coreProbe: { medianMs: 0.55, meanMs: 0.56, samples: 50 } },
      { id: 'login', target: 'latchkey' },
    ];
    assert.deepEqual(slowCoreRows(rows, atStart), [{ id: 'introspect-jwt', target: 'latchkey', ratio: 1.4 }]);
    // A start taken on a busy moment: the best warm-up window is the reference instead.
    const busyStart = { medianMs: 0.8, meanMs: 0.9, samples: 20 };
    const warmed = [...rows, { id: 'discovery', target: 'latchkey', warmUp: { coreProbeMs: [0.6, 0.5, 0.52] }, coreProbe: { medianMs: 0.5, meanMs: 0.5, samples: 50 } }];
    assert.deepEqual(slowCoreRows(warmed, busyStart), [{ id: 'introspect-jwt', target: 'latchkey', ratio: 1.4 }]);
    assert.deepEqual(slowCoreRows([rows[2]!], undefined), []);
  });

  it('counts a window as on a slow core past 1.2× the best so far, and keeps the window on the fastest core', () => {
    const probe = (medianMs: number) => ({ medianMs, meanMs: medianMs, samples: 20 });
    assert.equal(onSlowCore(probe(0.61), 0.5), true);
    assert.equal(onSlowCore(probe(0.6), 0.5), false);
    assert.equal(onSlowCore(undefined, 0.5), false, 'an unprobed window (not pinned) is never measured again');
    assert.equal(onSlowCore(probe(0.9), undefined), false);
    type Window = { n: number; coreProbe?: ReturnType<typeof probe> };
    assert.equal(onFastestCore<Window>([{ n: 1, coreProbe: probe(0.8) }, { n: 2, coreProbe: probe(0.55) }, { n: 3, coreProbe: probe(0.7) }]).n, 2);
    assert.equal(onFastestCore<Window>([{ n: 1 }, { n: 2 }]).n, 1, 'none probed: the first');
  });

  it('samples a core while the caller waits', async () => {
    const probe = startCoreProbe('0', 20);
    try {
      let window;
      for (let i = 0; i < 100 && !window; i += 1) {
        await new Promise((done) => setTimeout(done, 50));
        window = await probe.take();
      }
      assert.ok(window && window.samples >= 1 && window.medianMs > 0);
      assert.ok((await probe.once()) > 0);
    } finally {
      probe.stop();
    }
  });
});
