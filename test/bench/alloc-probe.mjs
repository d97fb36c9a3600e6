/**
 * Preloaded into a server by alloc-ab.ts (NODE_OPTIONS=--import): V8's sampling heap profiler,
 * started at SIGUSR2 with the objects the collector has freed kept in the samples (so it counts
 * what was allocated, not what is still alive, which is what --heap-prof shows), and written as a
 * .heapprofile to ALLOC_PROBE_OUT when the process exits. ALLOC_PROBE_SURVIVORS=1 leaves out the
 * objects young-generation collections freed: what is left survived a scavenge (what the scavenger
 * copies and promotes), by where it was allocated.
 */
import { writeFileSync } from 'node:fs';
import inspector from 'node:inspector';
import process from 'node:process';

const session = new inspector.Session();
session.connect();
session.post('HeapProfiler.enable');
process.on('SIGUSR2', () =>
  session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.ALLOC_PROBE_SURVIVORS !== '1' }),
);
process.on('exit', () =>
  session.post('HeapProfiler.stopSampling', (error, result) => {
    if (!error) writeFileSync(process.env.ALLOC_PROBE_OUT, JSON.stringify(result.profile));
  }),
);
