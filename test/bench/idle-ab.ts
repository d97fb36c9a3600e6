/**
 * What builds cost while nobody asks them anything: each serves pinned to core 0 (this process and
 * Redis on core 1), all at once, and for a few windows of idle time each server's CPU (utime +
 * stime of all its threads, ms a second) and its wake-ups (voluntary context switches of all its
 * threads, a second: each one a sleep the kernel ended, a timer or I/O) are read from /proc.
 * Optionally each is first warmed by a scenario (`IDLE_WARMUP=sso-code:2000`), as after traffic.
 *
 *   cp -r dist dist-before            # the build before the change (npm run build first)
 *   npm run build                     # the build after it, in dist/
 *   node --import tsx test/bench/idle-ab.ts [seconds=30] [windows=3] ['dist-before;dist;bare']
 *
 * Builds are `<dir>[:KEY=value,...]` as in cpu-ab.ts (BENCH_DEFAULTS=1: rate limits on); `bare` is
 * the bare oidc-provider. Idle CPU is small (ms a second): on a busy machine a window's figure
 * also carries the time the kernel took to wake the process; the minimum of the windows is the
 * figure, the median is printed beside it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';
import { closedLoop } from './load.js';
import { SCENARIOS } from './scenarios.js';
import { buildSpec, DEFAULT_LIMITS, prepareSideBySide, processCpuSeconds, startBare, startPinnedBuild, type ProcessTarget } from './targets.js';

const seconds = Number(process.argv[2] ?? 30);
const windows = Number(process.argv[3] ?? 3);
const specs = (process.argv[4] ?? 'dist-before;dist;bare').split(';');
const builds = specs.map((spec) => buildSpec(spec));
for (const build of builds) {
  if (build.dir !== 'bare' && !existsSync(join(ROOT, build.dir, 'cli.js'))) throw new Error(`${build.dir}/cli.js is missing: see the top of test/bench/idle-ab.ts`);
}
const [warmId, warmIterations = '2000'] = (process.env.IDLE_WARMUP ?? '').split(':');

/** Voluntary context switches of every thread of a process so far (threads gone since are not counted). */
function wakeUps(pid: number): number {
  let total = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
      total += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return total;
}

/** The main thread's own CPU seconds (its task's stat), to tell the event loop from V8's and libuv's threads. */
function mainThreadCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const { prepared, close } = await prepareSideBySide();
const settings = process.env.BENCH_DEFAULTS === '1' ? DEFAULT_LIMITS : {};
const signingKey = builds.some((build) => build.dir === 'bare') ? await prepared.signingKey() : undefined;
const servers: [string, ProcessTarget][] = [];
for (const [index, build] of builds.entries()) {
  servers.push([
    specs[index]!,
    build.dir === 'bare'
      ? await startBare({ signingKey: signingKey!, cpus: '0', env: build.settings })
      : await startPinnedBuild(prepared, build.dir, { ...settings, ...build.settings }),
  ]);
}
try {
  if (warmId) {
    const scenario = SCENARIOS.find((s) => s.id === warmId);
    if (!scenario) throw new Error(`no scenario ${warmId}`);
    for (const [name, server] of servers) {
      if (server.kind === 'bare' && !scenario.targets.includes('bare')) continue;
      const workload = await scenario.prepare(server, { introspectionPool: 256, jwtRevocationPool: 256, sessions: 4, chains: 64 }, Number(warmIterations) + 500);
      const result = await closedLoop(server.url, workload, { connections: 4, seconds: 120, amount: Number(warmIterations) });
      if (result.errors) console.error(`  ${name}: ${result.errors} errors while warming`);
    }
  }
  // Whatever the start or the warm-up left to finish (a collection, the first key-ring poll).
  await sleep(5000);
  const cpu = new Map<string, number[]>(servers.map(([name]) => [name, []]));
  const main = new Map<string, number[]>(servers.map(([name]) => [name, []]));
  const wakes = new Map<string, number[]>(servers.map(([name]) => [name, []]));
  for (let window = 0; window < windows; window += 1) {
    const before = servers.map(([, server]) => ({ cpu: processCpuSeconds(server.pid), main: mainThreadCpuSeconds(server.pid), wakes: wakeUps(server.pid) }));
    const start = performance.now();
    await sleep(seconds * 1000);
    const elapsed = (performance.now() - start) / 1000;
    for (const [index, [name, server]] of servers.entries()) {
      cpu.get(name)!.push(((processCpuSeconds(server.pid) - before[index]!.cpu) * 1000) / elapsed);
      main.get(name)!.push(((mainThreadCpuSeconds(server.pid) - before[index]!.main) * 1000) / elapsed);
      wakes.get(name)!.push((wakeUps(server.pid) - before[index]!.wakes) / elapsed);
    }
    console.error(`  window ${window + 1}/${windows} done (load ${loadAverage()})`);
  }
  const min = (values: number[]) => Math.min(...values);
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const show = (values: number[], digits: number) => `${min(values).toFixed(digits)} (median ${median(values).toFixed(digits)})`;
  console.log(`idle, ${windows} windows of ${seconds} s${warmId ? ` after ${warmIterations} ${warmId}` : ''}, load ${loadAverage()}`);
  for (const [name] of servers) {
    console.log(
      `  ${name.padEnd(40)} CPU ${show(cpu.get(name)!, 2)} ms/s, main thread ${show(main.get(name)!, 2)} ms/s, wake-ups ${show(wakes.get(name)!, 1)} /s`,
    );
  }
} finally {
  await Promise.all(servers.map(([, server]) => server.stop()));
  await close();
}
process.exit(0);
