/**
 * Preloaded into a server by steady-probe.ts (NODE_OPTIONS=--import): at each SIGUSR2 it appends
 * one JSON line to STATE_PROBE_OUT with what the process has done and holds so far: its main
 * thread's CPU and the whole process's (the difference is V8's and libuv's other threads:
 * concurrent marking and sweeping, TurboFan jobs), its collections by kind (count and pause ms),
 * its heap spaces, and its active handles and timers. steady-probe.ts sets a slow window's line
 * beside a fast one's.
 */
import { appendFileSync } from 'node:fs';
import process from 'node:process';
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

// V8 flags Node refuses in NODE_OPTIONS (--no-memory-reducer, --min-semi-space-size=N), for experiments.
for (const flag of (process.env.STATE_PROBE_V8_FLAGS ?? '').split(' ').filter(Boolean)) setFlagsFromString(flag);

const KINDS = { 1: 'scavenge', 2: 'minorMarkSweep', 4: 'markCompact', 8: 'incremental', 16: 'weakCallbacks' };
const gc = {};
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = KINDS[entry.detail?.kind] ?? String(entry.detail?.kind);
    const seen = (gc[kind] ??= { count: 0, ms: 0 });
    seen.count += 1;
    seen.ms += entry.duration;
  }
}).observe({ entryTypes: ['gc'] });

process.on('SIGUSR2', () => {
  // A mark in the server's stdout between windows, to count what V8 traced there (--trace-deopt) by window.
  if (process.env.STATE_PROBE_MARK === '1') process.stdout.write('#state-probe window\n');
  const main = process.threadCpuUsage();
  const all = process.cpuUsage();
  const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
  const resources = {};
  for (const name of process.getActiveResourcesInfo()) resources[name] = (resources[name] ?? 0) + 1;
  appendFileSync(
    process.env.STATE_PROBE_OUT,
    `${JSON.stringify({ t: Date.now(), mainCpuMs: (main.user + main.system) / 1000, cpuMs: (all.user + all.system) / 1000, gc, spaces, resources })}\n`,
  );
});
