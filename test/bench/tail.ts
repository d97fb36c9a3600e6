/**
 * The latency tail at 80% of peak (issue #18), side by side in one run: Latchkey as `serve` runs it
 * (V8's default young generation), Latchkey with a 16 MiB one (NODE_OPTIONS=--max-semi-space-size=16,
 * docs/operating.md: throughput or tail latency), and the bare oidc-provider. For each scenario and server:
 * the closed-loop peak, then the open loop at 80% of it (both Latchkeys at 80% of the first one's
 * peak, so that they see the same arrivals), with the slow requests' timeline (clustered =
 * stalls), the server's CPU use and its threads' shares, its GC pauses and event-loop delay (a
 * probe preloaded with --import), and the load generator's own event-loop delay.
 *
 *   node --import tsx test/bench/tail.ts cc-opaque,refresh [seconds=5] [targets=latchkey,semi16,bare]
 *
 * Servers on core 0, this process and Redis on core 1, as in the bench. Timings from a machine
 * where other processes take the cores are not final (check `uptime` first).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { startRedisServer } from '../helpers/redis.js';
import { closedLoop, paced, type PhaseResult, type Workload } from './load.js';
import { RedisInspector } from './redis-probe.js';
import { SCENARIOS, type Sizes } from './scenarios.js';
import { addUser, pin, processCpuSeconds, startBare, startLatchkey, type ProcessTarget } from './targets.js';

const ids = (process.argv[2] ?? 'cc-opaque').split(',');
const seconds = Number(process.argv[3] ?? 5);
const kinds = (process.argv[4] ?? 'latchkey,semi16,bare').split(',');
const sizes: Sizes = { introspectionPool: 512, jwtRevocationPool: 1024, sessions: 16, chains: 128 };
const probe = join(import.meta.dirname, 'stall-probe.mjs');
const dir = mkdtempSync(join(tmpdir(), 'tail-'));
const r = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

pin(process.pid, '1');
const redis = await startRedisServer();
const inspector = new RedisInspector(redis.url);
pin(Number((await inspector.info('server')).process_id), '1');
const probeEnv = (name: string, flags = '') => ({ NODE_OPTIONS: `--import ${probe} ${flags}`.trim(), STALL_PROBE_OUT: join(dir, `${name}.json`) });
const latchkey = await startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'info', cpus: '0', env: probeEnv('latchkey') });
await addUser(latchkey, 'dist');
const servers: (ProcessTarget & { name: string })[] = [];
if (kinds.includes('latchkey')) servers.push({ ...latchkey, name: 'latchkey' });
if (kinds.includes('semi16')) {
  const env = probeEnv('semi16', '--max-semi-space-size=16');
  servers.push({ ...(await startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'info', cpus: '0', dir: latchkey.dir, env })), name: 'semi16' });
}
if (kinds.includes('bare')) servers.push({ ...(await startBare({ signingKey: await latchkey.signingKey(), cpus: '0', env: probeEnv('bare') })), name: 'bare' });

/** CPU seconds by thread name (main thread, V8 workers, libuv pool, ...) of a process. */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // the thread ended
    }
  }
  return out;
}
const threadShares = (before: Map<string, number>, after: Map<string, number>) => {
  const total = [...after].reduce((sum, [name, v]) => sum + v - (before.get(name) ?? 0), 0);
  return [...after].map(([name, v]) => [name, v - (before.get(name) ?? 0)] as const).filter(([, d]) => d > 0).map(([name, d]) => `${name} ${Math.round((d / total) * 100)}%`).join(', ');
};

const phases: { id: string; kind: string; from: number; to: number }[] = [];
const epoch = (t: number) => performance.timeOrigin + t;

for (const id of ids) {
  const scenario = SCENARIOS.find((s) => s.id === id)!;
  let latchkeyRate: number | undefined;
  for (const server of servers) {
    if (!scenario.targets.includes(server.kind)) continue;
    const prepare = (needed?: number) => scenario.prepare(server, sizes, needed);
    const workload: Workload | undefined = scenario.consumesTokens ? undefined : await prepare();
    let connections = scenario.connections ?? 16;
    if (scenario.ramp) {
      let best = 0;
      for (const c of scenario.ramp) {
        const p = await closedLoop(server.url, workload!, { connections: c, seconds: 1 });
        if (p.iterationsPerSecond > best * 1.03) [best, connections] = [p.iterationsPerSecond, c];
      }
    } else if (workload) await closedLoop(server.url, workload, { connections, seconds: 1 });
    let peak: PhaseResult;
    const peakWorkload = scenario.consumesTokens ? await prepare(20_000) : workload!;
    const peakCpu = processCpuSeconds(server.pid);
    if (scenario.consumesTokens) peak = await closedLoop(server.url, peakWorkload, { connections, seconds: 5, amount: 20_000 });
    else peak = await closedLoop(server.url, peakWorkload, { connections, seconds: 5 });
    const peakCpuMs = ((processCpuSeconds(server.pid) - peakCpu) * 1000) / Math.max(1, peak.iterations);
    let rate = 0.8 * peak.iterationsPerSecond;
    if (server.kind === 'latchkey') rate = latchkeyRate ??= rate;
    const paceWorkload = scenario.consumesTokens ? await prepare(Math.ceil(rate * seconds * 1.1) + 50) : workload!;
    const timeline: [number, number][] = [];
    const eld = monitorEventLoopDelay({ resolution: 1 });
    const cpu = processCpuSeconds(server.pid);
    const threads = threadCpu(server.pid);
    const from = performance.now();
    eld.enable();
    const p = await paced(server.url, paceWorkload, rate, seconds, undefined, (at, ms) => timeline.push([at - from, ms]));
    eld.disable();
    const to = performance.now();
    const util = (processCpuSeconds(server.pid) - cpu) / ((to - from) / 1000);
    const pacedCpuMs = ((processCpuSeconds(server.pid) - cpu) * 1000) / Math.max(1, p.iterations);
    phases.push({ id, kind: server.name, from: epoch(from), to: epoch(to) });
    // Slow requests (> 20 ms) per 100 ms of schedule: clustered = stalls, spread = queueing.
    const bins = new Map<number, number>();
    for (const [at, ms] of timeline) if (ms > 20) bins.set(Math.floor(at / 100), (bins.get(Math.floor(at / 100)) ?? 0) + 1);
    const slow = [...bins.values()].reduce((a, b) => a + b, 0);
    const top = [...bins].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([b, n]) => `${b * 100}ms:${n}`);
    console.log(
      `${id.padEnd(18)} ${server.name.padEnd(9)} peak ${r(peak.iterationsPerSecond, 0)}/s @c=${connections} (p99 ${r(peak.latency.p99, 2)}) | 80%: ${r(rate, 0)}/s → ${r(p.iterationsPerSecond, 0)}/s p50 ${r(p.latency.p50, 2)} p99 ${r(p.latency.p99, 2)} max ${r(p.latency.max, 0)} ms err ${p.errors} | server CPU ${r(util, 2)} of a core; ms/iter closed ${r(peakCpuMs, 3)} paced ${r(pacedCpuMs, 3)} | gen ELD max ${r(eld.max / 1e6, 1)} p99 ${r(eld.percentile(99) / 1e6, 1)} ms | >20ms: ${slow} in ${bins.size} bins; top ${top.join(' ')}`,
    );
    console.log(`  threads: ${threadShares(threads, threadCpu(server.pid))}`);
    if (p.errorSamples.length) console.log('  errors:', p.errorSamples.slice(0, 2).join(' | '));
  }
}

for (const server of servers) await server.stop();
if (!kinds.includes('latchkey')) await latchkey.stop();
await inspector.close();
await redis.stop();

for (const kind of kinds) {
  let data: { gc: { t: number; ms: number; kind: number }[]; bins: { t: number; maxDelay: number; cpu: number; heap: number }[] };
  try {
    data = JSON.parse(readFileSync(join(dir, `${kind}.json`), 'utf8'));
  } catch {
    continue;
  }
  for (const phase of phases.filter((ph) => ph.kind === kind)) {
    const gcs = data.gc.filter((g) => g.t >= phase.from && g.t <= phase.to);
    const byKind = new Map<number, number[]>();
    for (const g of gcs) byKind.set(g.kind, [...(byKind.get(g.kind) ?? []), g.ms]);
    const gcText = [...byKind].map(([k, list]) => `kind${k}: ${list.length}× total ${r(list.reduce((a, b) => a + b, 0), 0)} max ${r(Math.max(...list), 1)} ms`).join('; ');
    const bins = data.bins.filter((b) => b.t >= phase.from && b.t <= phase.to);
    const delays = bins.map((b) => b.maxDelay).sort((a, b) => b - a);
    const heap = bins.map((b) => b.heap);
    console.log(
      `  server ${kind} ${phase.id}: GC ${gcText || 'none'} | ELD max per 100ms (top 5): ${delays.slice(0, 5).map((d) => r(d, 0)).join(',')} | heap ${r(Math.min(...heap), 0)}-${r(Math.max(...heap), 0)} MiB`,
    );
  }
}
process.exit(0);
