/**
 * Why a warmed server is sometimes slower than another of the same build: each build named is
 * started pinned to core 0 and run through the same phases as the bench gives a server (1-s closed
 * loop windows: by default 8 at 16 connections to warm it, the ramp's 1, 4 and 16, then 12 at 16),
 * and after every window a fixed CPU job runs in a process of its own pinned to the same core (the
 * host's speed at that moment: a slow window whose fixed job was slow too is the host, one whose
 * fixed job was not is the server). Each window prints the server's CPU per iteration (whole
 * process and its main thread alone, ms), the fixed job's CPU (ms), what the server's collector
 * did in it (scavenges with their mean pause, and mark-compacts: state-probe.mjs, preloaded), its
 * young generation's size and its resident set (now/peak, MiB).
 *
 *   node --import tsx test/bench/steady-probe.ts introspect-jwt 'dist;dist;dist' ['16*8,1,4,16,16*12']
 *
 * STEADY_INTERLEAVE=1 runs the servers at once, window by window in turn (server 1's window, then
 * server 2's, ...), so that each window of one server has a neighbour of the others in time.
 * STEADY_FIXED_ONLY=1 prints the fixed job alone, every second (the host's speed over time).
 * Builds are named as in cpu-ab.ts; `NODE_OPTIONS` among a build's settings is added to the probe's,
 * and `NODE_ARGS` goes on the server's node command line (`dist:NODE_ARGS=--min-semi-space-size=64`).
 * Among a build's settings: `STEADY_SKIP=cc-jwt+cc-opaque` sits those scenarios out (a fresh process
 * beside one with the bench's history); `STATE_PROBE_V8_FLAGS=--trace-deopt` sets V8 flags Node
 * refuses in NODE_OPTIONS; `BENCH_SERVER_STDOUT=<file>` keeps the server's stdout, where
 * `STATE_PROBE_MARK=1` marks each window (to count V8's traces by window). A phase `16h1` runs a busy
 * loop on core 1 meanwhile (`h0`: on the servers' core); `0` idles a window.
 *
 *   STEADY_INTERLEAVE=1 node --import tsx test/bench/steady-probe.ts cc-jwt,cc-opaque,introspect-opaque,introspect-jwt \
 *     'dist;dist:STEADY_SKIP=cc-jwt+cc-opaque+introspect-opaque' '16*6,1,4,16,16*8'
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCoreProbe } from './core-probe.js';
import { closedLoop } from './load.js';
import { SCENARIOS } from './scenarios.js';
import { buildSpec, prepareSideBySide, processCpuSeconds, processMemory, startPinnedBuild, type LatchkeyTarget } from './targets.js';

const ids = (process.argv[2] ?? 'introspect-jwt').split(',');
const specs = (process.argv[3] ?? 'dist;dist;dist').split(';');
/** A phase: `<connections>[h<core>][*<windows>]`; `h0`/`h1`: a busy loop of its own on that core meanwhile; 0 connections: idle. */
const phases = (process.argv[4] ?? '16*8,1,4,16,16*12').split(',').flatMap((p) => {
  const [head = '16', n = '1'] = p.split('*');
  const [c, hog] = head.split('h');
  return Array.from({ length: Number(n) }, () => ({ connections: Number(c), hog }));
});
const scenarios = ids.map((id) => {
  const scenario = SCENARIOS.find((s) => s.id === id);
  if (!scenario) throw new Error(`no scenario ${id}`);
  if (scenario.consumesTokens) throw new Error(`${id} uses its tokens up: not for this tool`);
  return scenario;
});

// The fixed job (core-probe.ts) on the servers' core, every 100 ms and once after each window, and
// once on core 1 (the load generator's and Redis's): whether a slow spell is one core's or the machine's.
const fixed0 = startCoreProbe('0');
const fixed1 = startCoreProbe('1', 60_000);
const fixedJob = () => fixed0.once();

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

if (process.env.STEADY_FIXED_ONLY === '1') {
  const seconds = Number(process.argv[5] ?? 60);
  const times: number[] = [];
  for (let i = 0; i < seconds; i += 1) {
    times.push(await fixedJob());
    await sleep(1000);
  }
  console.log(`fixed job ms, one a second: ${times.join(' ')}`);
  fixed0.stop();
  fixed1.stop();
  process.exit(0);
}

interface Probe {
  mainCpuMs: number;
  cpuMs: number;
  gc: Record<string, { count: number; ms: number }>;
  spaces: Record<string, { size: number; used: number }>;
  resources: Record<string, number>;
}

async function snapshot(server: LatchkeyTarget, file: string, seen: number): Promise<Probe> {
  process.kill(server.pid, 'SIGUSR2');
  for (let i = 0; i < 200; i += 1) {
    const lines = (() => {
      try {
        return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
      } catch {
        return [];
      }
    })();
    if (lines.length > seen) return JSON.parse(lines[seen]!) as Probe;
    await sleep(5);
  }
  throw new Error(`no state from ${server.pid}`);
}

/** A process's page faults (minor, major) and involuntary context switches so far. */
function processCounts(pid: number): { minflt: number; majflt: number; involuntary: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  let involuntary = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const status = readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
    involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
  }
  return { minflt: Number(fields[7]), majflt: Number(fields[9]), involuntary };
}

/**
 * With STEADY_WINDOWS=<file>: each window written there as [pid, `w<n> c=<connections>`, from, to]
 * in µs of the monotonic clock, for profile-steps.ts to split a server's CPU profile by window
 * (NODE_OPTIONS=--cpu-prof --cpu-prof-dir=... among a build's settings).
 */
const windows: [number, string, number, number][] = [];

const { prepared, close } = await prepareSideBySide();
const probeModule = join(import.meta.dirname, 'state-probe.mjs');
interface Side {
  spec: string;
  server: LatchkeyTarget;
  file: string;
  seen: number;
  workloads: Awaited<ReturnType<(typeof scenarios)[number]['prepare']>>[];
  last: Probe;
  rows: string[];
  cpu: number[];
}
const sides: Side[] = [];
try {
  const startSide = async (spec: string, index: number): Promise<Side> => {
    const { dir, settings } = buildSpec(spec);
    const file = `/tmp/steady-probe-${process.pid}-${index}.jsonl`;
    rmSync(file, { force: true });
    const server = await startPinnedBuild(prepared, dir, {
      ...settings,
      NODE_OPTIONS: `--import ${probeModule} ${settings.NODE_OPTIONS ?? ''}`,
      STATE_PROBE_OUT: file,
    });
    const workloads = [];
    for (const scenario of scenarios) workloads.push(await scenario.prepare(server, { introspectionPool: 256, jwtRevocationPool: 256, sessions: 4, chains: 64 }));
    const side: Side = { spec, server, file, seen: 0, workloads, last: undefined as unknown as Probe, rows: [], cpu: [] };
    side.last = await snapshot(server, file, side.seen++);
    return side;
  };
  const window = async (side: Side, phase: (typeof phases)[number], which: number) => {
    const { connections, hog: hogCore } = phase;
    // STEADY_SKIP=id+id among a build's settings: that server sits those scenarios out (a fresh
    // process beside one with the bench's history).
    if (buildSpec(side.spec).settings.STEADY_SKIP?.split('+').includes(ids[which]!)) return;
    const hog = hogCore === undefined ? undefined : spawn('taskset', ['-c', hogCore, process.execPath, '-e', 'for (;;);'], { stdio: 'ignore' });
    if (hog) await sleep(100);
    try {
      await measureWindow(side, connections, which, hogCore);
    } finally {
      hog?.kill('SIGKILL');
    }
  };
  const measureWindow = async (side: Side, connections: number, which: number, hogCore: string | undefined) => {
    if (side.cpu.length % phases.length === 0) side.rows.push(` ${ids[which]}`);
    // Connections 0: the server idles for the window (what a gap in the load does to its state).
    if (connections === 0) {
      await sleep(1000);
      const state = await snapshot(side.server, side.file, side.seen++);
      const count = (kind: string) => (state.gc[kind]?.count ?? 0) - (side.last.gc[kind]?.count ?? 0);
      const { rssMiB, peakMiB } = processMemory(side.server.pid);
      side.rows.push(`  idle  scav ${count('scavenge')} mc ${count('markCompact')}  new ${((state.spaces.new_space?.size ?? 0) / 2 ** 20).toFixed(1)} MiB  rss ${rssMiB} peak ${peakMiB} MiB`);
      side.cpu.push(0);
      side.last = state;
      return;
    }
    const counts0 = processCounts(side.server.pid);
    const before = processCpuSeconds(side.server.pid);
    await fixed0.take(); // drops the samples taken between windows
    const started = performance.now();
    const from = Number(process.hrtime.bigint() / 1000n);
    const result = await closedLoop(side.server.url, side.workloads[which]!, { connections, seconds: 1 });
    windows.push([side.server.pid, `w${side.cpu.length} c=${connections}`, from, Number(process.hrtime.bigint() / 1000n)]);
    const busy = ((processCpuSeconds(side.server.pid) - before) * 1000) / (performance.now() - started);
    const cpu = ((processCpuSeconds(side.server.pid) - before) * 1000) / Math.max(1, result.iterations);
    const during = (await fixed0.take())?.medianMs ?? 0;
    const counts = processCounts(side.server.pid);
    const state = await snapshot(side.server, side.file, side.seen++);
    const idle = processCpuSeconds(side.server.pid);
    const fixed = await fixedJob();
    const idleMs = (processCpuSeconds(side.server.pid) - idle) * 1000;
    const other = await fixed1.once();
    const per = (key: keyof typeof counts) => ((counts[key] - counts0[key]) / Math.max(1, result.iterations)).toFixed(2);
    const count = (kind: string) => (state.gc[kind]?.count ?? 0) - (side.last.gc[kind]?.count ?? 0);
    const main = (state.mainCpuMs - side.last.mainCpuMs) / Math.max(1, result.iterations);
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    const pause = (kind: string) => count(kind) ? ((state.gc[kind]!.ms - (side.last.gc[kind]?.ms ?? 0)) / count(kind)).toFixed(1) : '-';
    const { rssMiB, peakMiB } = processMemory(side.server.pid);
    side.rows.push(
      `  c=${`${connections}${hogCore === undefined ? '' : `h${hogCore}`}`.padEnd(5)} ${String(result.iterations).padStart(6)} it  busy ${String(Math.round(busy * 100)).padStart(3)}%  cpu ${cpu.toFixed(3)} main ${main.toFixed(3)}  beside ${during.toFixed(3)}  fixed ${fixed.toFixed(1)} (core 1 ${other.toFixed(1)}, server meanwhile ${idleMs.toFixed(0)} ms)  minflt ${per('minflt')} majflt ${per('majflt')} preempted ${per('involuntary')}  scav ${count('scavenge')} (${pause('scavenge')} ms) mc ${count('markCompact')}  new ${mib(state.spaces.new_space?.size ?? 0)} rss ${rssMiB}/${peakMiB} old ${mib(state.spaces.old_space?.used ?? 0)}/${mib(state.spaces.old_space?.size ?? 0)} code ${mib(state.spaces.code_space?.used ?? 0)} MiB${result.errors ? `  ${result.errors} ERRORS` : ''}`,
    );
    side.cpu.push(cpu);
    side.last = state;
  };
  if (process.env.STEADY_INTERLEAVE === '1') {
    for (const [index, spec] of specs.entries()) sides.push(await startSide(spec, index));
    for (const which of ids.keys()) for (const phase of phases) for (const side of sides) await window(side, phase, which);
    for (const side of sides) {
      await side.server.stop();
      console.log(`${side.spec} (pid ${side.server.pid})  resources ${JSON.stringify(side.last.resources)}\n${side.rows.join('\n')}`);
    }
  } else {
    for (const [index, spec] of specs.entries()) {
      const side = await startSide(spec, index);
      sides.push(side);
      for (const which of ids.keys()) for (const phase of phases) await window(side, phase, which);
      await side.server.stop();
      console.log(`${side.spec} (pid ${side.server.pid})  resources ${JSON.stringify(side.last.resources)}\n${side.rows.join('\n')}`);
    }
  }
} finally {
  await Promise.all(sides.map((side) => side.server.stop()));
  if (process.env.STEADY_WINDOWS) writeFileSync(process.env.STEADY_WINDOWS, JSON.stringify(windows));
  fixed0.stop();
  fixed1.stop();
  await close();
}
process.exit(0);
