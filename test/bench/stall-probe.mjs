/**
 * Preloaded into a server by tail.ts (NODE_OPTIONS=--import): its GC pauses, and every 100 ms its
 * event-loop delay, CPU use and heap, written as JSON to STALL_PROBE_OUT when it exits. Times are
 * epoch milliseconds, to set beside the load generator's timeline.
 */
import { writeFileSync } from 'node:fs';
import process from 'node:process';
import { setInterval } from 'node:timers';
import { monitorEventLoopDelay, PerformanceObserver, performance } from 'node:perf_hooks';

const gc = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gc.push({ t: performance.timeOrigin + entry.startTime, ms: entry.duration, kind: entry.detail?.kind });
}).observe({ entryTypes: ['gc'] });

const delay = monitorEventLoopDelay({ resolution: 2 });
delay.enable();
const bins = [];
let cpu = process.cpuUsage();
setInterval(() => {
  const used = process.cpuUsage(cpu);
  cpu = process.cpuUsage();
  bins.push({ t: Date.now(), maxDelay: delay.max / 1e6, cpu: (used.user + used.system) / 1e5, heap: process.memoryUsage().heapUsed / 2 ** 20 });
  delay.reset();
}, 100).unref();

process.on('exit', () => writeFileSync(process.env.STALL_PROBE_OUT, JSON.stringify({ gc, bins })));
