/**
 * How fast a core is right now, measured from beside the server: a small process pinned to that
 * core runs the same fixed CPU job (SHA-256 and JSON work, about 0.5 ms) every 100 ms and keeps its
 * CPU time. On this Firecracker VM the host's own use of the physical core (another VM on it, or
 * its SMT sibling) is not accounted as steal (/proc/stat's steal is 0): it shows as the job, and
 * every process on the core, taking longer for the same work. A server's CPU per iteration
 * measured while the job beside it was slow is the host's as much as the server's
 * (docs/performance.md, the bistable finding). It takes about 0.5% of the core.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

const JOB = `
const { createHash } = require('node:crypto');
const buffer = Buffer.alloc(65536, 7);
const job = (scale) => {
  let x = 0;
  for (let j = 0; j < 6 * scale; j += 1) createHash('sha256').update(buffer).digest();
  for (let j = 0; j < 40 * scale; j += 1) {
    const o = JSON.parse(JSON.stringify({ a: j, b: [1, 2, 3], c: { d: 'x'.repeat(40) } }));
    x += o.b.length + o.c.d.length;
    const m = new Map();
    for (let k = 0; k < 50; k += 1) m.set('k' + k, { k });
    x += m.size;
  }
  return x;
};
const timed = (scale) => { const before = process.cpuUsage(); job(scale); const used = process.cpuUsage(before); return (used.user + used.system) / 1000; };
for (let i = 0; i < 200; i += 1) job(1);
let samples = [];
setInterval(() => samples.push(timed(1)), Number(process.argv[1]));
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'take') {
    process.stdout.write(JSON.stringify(samples) + '\\n');
    samples = [];
  } else process.stdout.write(JSON.stringify([timed(10)]) + '\\n');
});`;

/** The job's CPU times over a window: their median and mean, ms, and how many. */
export interface CoreProbeWindow {
  readonly medianMs: number;
  readonly meanMs: number;
  readonly samples: number;
}

export interface CoreProbe {
  /** The samples since the last take (or the start), summed up; undefined when there were none. */
  take(): Promise<CoreProbeWindow | undefined>;
  /** The job ten times over, once, now: its CPU ms. */
  once(): Promise<number>;
  stop(): void;
}

export function summarise(samples: readonly number[]): CoreProbeWindow | undefined {
  if (!samples.length) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { medianMs: round(sorted[sorted.length >> 1]!), meanMs: round(sorted.reduce((sum, x) => sum + x, 0) / sorted.length), samples: sorted.length };
}

/** Starts the job on `cpus` (taskset's list), every `intervalMs`. */
export function startCoreProbe(cpus: string, intervalMs = 100): CoreProbe {
  const child: ChildProcess = spawn('taskset', ['-c', cpus, process.execPath, '-e', JOB, String(intervalMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.unref();
  const waiting: ((samples: number[]) => void)[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => waiting.shift()?.(JSON.parse(line) as number[]));
  const ask = (what: string) =>
    new Promise<number[]>((done) => {
      waiting.push(done);
      child.stdin!.write(`${what}\n`);
    });
  process.once('exit', () => child.kill('SIGKILL'));
  return {
    take: async () => summarise(await ask('take')),
    once: async () => (await ask('once'))[0]!,
    stop: () => child.kill('SIGKILL'),
  };
}

/** How many times the core's best of the run the job beside a server may take before its window counts as measured on a slow core. */
export const SLOW_CORE = 1.2;

/**
 * How many times more run.ts measures a window whose core was slow; the window on the fastest core
 * is the row's. Every server alike, the bare provider too.
 */
export const SLOW_CORE_RETRIES = 2;

/** Whether the job beside the server in `window` took more than SLOW_CORE × `bestMs` (the core's best so far). */
export function onSlowCore(window: CoreProbeWindow | undefined, bestMs: number | undefined): boolean {
  return !!window && bestMs !== undefined && window.medianMs > SLOW_CORE * bestMs;
}

/**
 * Of one row's windows measured one after another, the one whose core was fastest (the job beside
 * the server at its lowest median); the first when none was probed.
 */
export function onFastestCore<T extends { readonly coreProbe?: CoreProbeWindow }>(windows: readonly [T, ...T[]]): T {
  return windows.reduce((best, window) => (window.coreProbe && best.coreProbe && window.coreProbe.medianMs < best.coreProbe.medianMs ? window : best));
}

/**
 * The rows whose measured window had the job beside the server slower than `factor` times the
 * core's best this run: the lowest median of the job over the start (servers idle), every
 * measured window and every warm-up window. On those rows the host took part of the core. (The
 * start alone is a poor reference: two seconds, taken whenever the run began.)
 */
export function slowCoreRows(
  scenarios: readonly { id: string; target: string; coreProbe?: CoreProbeWindow; warmUp?: { coreProbeMs?: readonly number[] } }[],
  atStart: CoreProbeWindow | undefined,
  factor = SLOW_CORE,
): { id: string; target: string; ratio: number }[] {
  const medians = [...(atStart ? [atStart.medianMs] : []), ...scenarios.flatMap((s) => [...(s.coreProbe ? [s.coreProbe.medianMs] : []), ...(s.warmUp?.coreProbeMs ?? [])])];
  if (!medians.length) return [];
  const best = Math.min(...medians);
  return scenarios
    .filter((s) => s.coreProbe && s.coreProbe.medianMs > factor * best)
    .map((s) => ({ id: s.id, target: s.target, ratio: Math.round((s.coreProbe!.medianMs / best) * 100) / 100 }));
}
