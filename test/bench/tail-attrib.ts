/**
 * What the slow requests of an open loop at a fixed rate are made of (issue #18, p99 at 80% of
 * peak), builds side by side: each server (pinned to core 0, a probe preloaded: attrib-probe.mjs)
 * is warmed by a closed loop, then paced at the same arrival rate (Poisson, as the bench's p99 run),
 * and every request slower than SLOW ms at the client is set beside what happened meanwhile: a GC
 * pause of the server, the server's event loop held (a 1-ms timer late by 10 ms or more: synchronous
 * work, a GC pause or the process off its core), Redis slow to answer a PING of the probe's, the
 * load generator's own event loop held, or none
 * of them (queueing: the server was busy with other requests). Counted per 10,000 requests, so
 * runs of different lengths compare, and builds run in turn (A/B/A/B), fresh servers each round.
 *
 *   node --import tsx test/bench/tail-attrib.ts introspect-jwt 2500 10 'dist-before;dist;bare' 2
 *
 * Arguments: scenario, rate (iterations/s), seconds paced, builds (`<dir>[:KEY=value,...]` as
 * cpu-ab.ts, or `bare`), rounds; TAIL_ATTRIB_WARM (seconds of closed loop at 16 connections first,
 * 8), TAIL_ATTRIB_SLOW (ms, 20). Servers on core 0, this process and Redis on core 1. The
 * counts of pauses and stalls per 10,000 requests hold on a busy machine better than the p99 does
 * (another process on the server's core shows as a gap of the server's loop with no GC in it).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { closedLoop, paced, summarize } from './load.js';
import { SCENARIOS, type Sizes } from './scenarios.js';
import { buildSpec, prepareSideBySide, processCpuSeconds, startBare, startPinnedBuild, type ProcessTarget } from './targets.js';

const [id = 'introspect-jwt', rateArg = '2000', secondsArg = '10', buildsArg = 'dist;bare', roundsArg = '2'] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const rounds = Number(roundsArg);
const warm = Number(process.env.TAIL_ATTRIB_WARM ?? 8);
const slowMs = Number(process.env.TAIL_ATTRIB_SLOW ?? 20);
const scenario = SCENARIOS.find((s) => s.id === id);
if (!scenario) throw new Error(`no scenario ${id}`);
const sizes: Sizes = { introspectionPool: 512, jwtRevocationPool: 1024, sessions: 16, chains: 128 };
const probe = join(import.meta.dirname, 'attrib-probe.mjs');
const dir = mkdtempSync(join(tmpdir(), 'tail-attrib-'));
const r = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

type Interval = [start: number, ms: number];
interface Probe {
  gc: [number, number, number][];
  old: [number, number][];
  /** start, length, the main thread's CPU ms meanwhile */
  gaps: [number, number, number][];
  redisStalls: Interval[];
  requests: Interval[];
  origin: number;
  monotonic: number;
}
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}
const profiling = process.env.TAIL_ATTRIB_PROFILE === '1';

/** The stacks the profile sampled inside `windows` (epoch ms), by self frame and by the nearest frame of ours. */
function sampledIn(profileDir: string, probeData: Probe, windows: readonly (readonly number[])[]): string {
  const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file || !windows.length) return 'no samples';
  const profile = JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    return `${functionName || '(anon)'} ${url.replace(/^.*\/(node_modules\/)?/, '')}:${lineNumber + 1}`;
  };
  const ours = (id: number) => {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const { url } = byId.get(at)!.callFrame;
      if (url.includes('/dist/') && !url.includes('node_modules')) return label(at);
    }
    return '(none of ours)';
  };
  const self = new Map<string, number>();
  const mine = new Map<string, number>();
  let t = profile.startTime;
  let n = 0;
  for (const [i, id] of profile.samples.entries()) {
    t += profile.timeDeltas[i]!;
    const epoch = probeData.origin + (t / 1000 - probeData.monotonic);
    if (!windows.some(([s = 0, ms = 0]) => epoch >= s && epoch <= s + ms)) continue;
    n += 1;
    self.set(label(id), (self.get(label(id)) ?? 0) + 1);
    mine.set(ours(id), (mine.get(ours(id)) ?? 0) + 1);
  }
  const top = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${v}`).join('; ');
  return `${n} samples; self: ${top(self)}\n    ours: ${top(mine)}`;
}

const { prepared, close } = await prepareSideBySide();
const builds = buildsArg.split(';');
const totals = new Map<string, { lines: string[] }>();

for (let round = 0; round < rounds; round += 1) {
  for (const [index, spec] of builds.entries()) {
    const name = `${index}:${spec}`;
    const out = join(dir, `${index}-${round}.json`);
    const profileDir = join(dir, `${index}-${round}-prof`);
    mkdirSync(profileDir);
    const env = { ATTRIB_PROBE_REDIS: new URL(prepared.env.REDIS_URL!).host, NODE_OPTIONS: `--import ${probe}${profiling ? ` --cpu-prof --cpu-prof-interval=250 --cpu-prof-dir=${profileDir}` : ''}`, ATTRIB_PROBE_OUT: out };
    let server: ProcessTarget;
    if (spec === 'bare') {
      if (!scenario.targets.includes('bare')) continue;
      server = await startBare({ signingKey: await prepared.signingKey(), cpus: '0', env });
    } else {
      const { dir: build, settings } = buildSpec(spec);
      const nodeOptions = [env.NODE_OPTIONS, settings.NODE_OPTIONS].filter(Boolean).join(' ');
      server = await startPinnedBuild(prepared, build, { ...settings, ...env, NODE_OPTIONS: nodeOptions });
    }
    const prepare = (needed?: number) => scenario.prepare(server, sizes, needed);
    const workload = scenario.consumesTokens ? undefined : await prepare();
    let closedCpuMs = 0;
    if (warm > 0) {
      const warmWorkload = workload ?? (await prepare(Math.ceil(rate * warm * 2)));
      await closedLoop(server.url, warmWorkload, { connections: 16, seconds: warm / 2, ...(workload ? {} : { amount: Math.ceil(rate * warm) }) });
      const before = processCpuSeconds(server.pid);
      const closed = await closedLoop(server.url, warmWorkload, { connections: 16, seconds: warm / 2, ...(workload ? {} : { amount: Math.ceil(rate * warm) }) });
      closedCpuMs = ((processCpuSeconds(server.pid) - before) * 1000) / Math.max(1, closed.iterations);
    }
    const paceWorkload = workload ?? (await prepare(Math.ceil(rate * seconds * 1.1) + 50));

    const timeline: Interval[] = [];
    const generatorGaps: Interval[] = [];
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      if (now - last > 10) generatorGaps.push([performance.timeOrigin + last, now - last]);
      last = now;
    }, 1);
    const cpu = processCpuSeconds(server.pid);
    const from = performance.timeOrigin + performance.now();
    const p = await paced(server.url, paceWorkload, rate, seconds, undefined, (at, ms) => timeline.push([performance.timeOrigin + at, ms]));
    const to = performance.timeOrigin + performance.now();
    clearInterval(ticker);
    const busy = (processCpuSeconds(server.pid) - cpu) / ((to - from) / 1000);
    const pacedCpuMs = ((processCpuSeconds(server.pid) - cpu) * 1000) / Math.max(1, p.iterations);
    await server.stop();
    const data = JSON.parse(readFileSync(out, 'utf8')) as Probe;

    const within = <T extends unknown[]>(list: T[]) => list.filter((e) => (e[0] as number) >= from - 1000 && (e[0] as number) <= to);
    const gcs = within(data.gc);
    const gaps = within(data.gaps);
    const serverRequests = within(data.requests);
    const overlaps = (list: Interval[] | [number, number, number][], s: number, e: number, min: number) => list.some(([start, ms]) => ms >= min && start < e && start + ms > s);
    // A gap in which the main thread ran for half its length or more: it was working (GC or JavaScript); less: it was off its core.
    const onCpu = gaps.filter(([, ms, cpuMs]) => cpuMs >= ms / 2);
    const offCpu = gaps.filter(([, ms, cpuMs]) => cpuMs < ms / 2);
    const redisStalls = within(data.redisStalls);
    const causes = { gc: 0, working: 0, offCpu: 0, redis: 0, generatorStall: 0, none: 0 };
    const slow = timeline.filter(([, ms]) => ms > slowMs);
    for (const [s, ms] of slow) {
      const e = s + ms;
      if (overlaps(gcs, s, e, 5)) causes.gc += 1;
      else if (overlaps(onCpu, s, e, 10)) causes.working += 1;
      else if (overlaps(offCpu, s, e, 10)) causes.offCpu += 1;
      else if (overlaps(redisStalls, s, e, 10)) causes.redis += 1;
      else if (overlaps(generatorGaps, s, e, 10)) causes.generatorStall += 1;
      else causes.none += 1;
    }
    const per10k = (n: number) => r((n * 10_000) / Math.max(1, timeline.length), 1);
    const gcByKind = new Map<number, number[]>();
    for (const [, ms, kind] of gcs) gcByKind.set(kind, [...(gcByKind.get(kind) ?? []), ms]);
    const gcText = [...gcByKind]
      .sort((a, b) => a[0] - b[0])
      .map(([kind, list]) => `k${kind} ${list.length}× Σ${r(list.reduce((a, b) => a + b, 0), 0)} max ${r(Math.max(...list), 1)}`)
      .join(', ');
    const gapsNoGc = onCpu.filter(([s, ms]) => !overlaps(gcs, s, s + ms, 1));
    const inServer = summarize(serverRequests.map(([, ms]) => ms));
    const line = [
      `${name.padEnd(24)} round ${round + 1}: ${r(p.iterationsPerSecond, 0)}/s (asked ${rate}) busy ${r(busy, 2)}; server CPU ms/iteration closed (16 connections, the warm-up's second half) ${r(closedCpuMs, 3)}, paced ${r(pacedCpuMs, 3)} (${r(pacedCpuMs / closedCpuMs, 2)}×)`,
      `  client: p50 ${r(p.latency.p50, 2)} p99 ${r(p.latency.p99, 2)} max ${r(p.latency.max, 0)} ms${scenario.tokenStep ? ` (token request p99 ${r(p.steps[scenario.tokenStep]?.p99 ?? 0, 2)})` : ''}; per 10k: >${slowMs} ms ${per10k(slow.length)}, >50 ms ${per10k(timeline.filter(([, ms]) => ms > 50).length)}; errors ${p.errors}`,
      `  slow (>${slowMs} ms) beside: server GC ≥5 ms ${causes.gc}, server loop held ≥10 ms working (no GC) ${causes.working}, off its core ${causes.offCpu}, Redis answering a PING after ≥10 ms ${causes.redis}, generator held ≥10 ms ${causes.generatorStall}, none (queueing) ${causes.none}`,
      `  server: in-server p50 ${r(inServer.p50, 2)} p99 ${r(inServer.p99, 2)} max ${r(inServer.max, 0)} ms; GC ${gcText || 'none'}; GC ≥20 ms per 10k ${per10k(gcs.filter(([, ms]) => ms >= 20).length)}; loop held ≥20 ms per 10k ${per10k(gaps.filter(([, ms]) => ms >= 20).length)} (working ${per10k(onCpu.filter(([, ms]) => ms >= 20).length)}, of which no GC in it ${per10k(gapsNoGc.filter(([, ms]) => ms >= 20).length)}; off its core ${per10k(offCpu.filter(([, ms]) => ms >= 20).length)}), longest ${r(Math.max(0, ...gaps.map(([, ms]) => ms)), 0)} ms (working ${r(Math.max(0, ...onCpu.map(([, ms]) => ms)), 0)})`,
      `  old space after each mark-compact (MiB, the whole life of the server): ${data.old.map(([, mib]) => mib).join(' ')}`,
      `  in-server > ${slowMs} ms per 10k ${per10k(serverRequests.filter(([, ms]) => ms > slowMs).length)}`,
      `  Redis: a PING answered after ≥20 ms per 10k ${per10k(redisStalls.filter(([, ms]) => ms >= 20).length)}, longest ${r(Math.max(0, ...redisStalls.map(([, ms]) => ms)), 0)} ms`,
      `  generator: loop held ≥20 ms per 10k ${per10k(generatorGaps.filter(([, ms]) => ms >= 20).length)}, longest ${r(Math.max(0, ...generatorGaps.map(([, ms]) => ms)), 0)} ms`,
    ];
    if (profiling) line.push(`  sampled in the working stalls ≥10 ms without GC: ${sampledIn(profileDir, data, gapsNoGc.filter(([, ms]) => ms >= 10))}`);
    if (p.errorSamples.length) line.push(`  errors: ${p.errorSamples.slice(0, 2).join(' | ')}`);
    console.log(line.join('\n'));
    if (!totals.has(name)) totals.set(name, { lines: [] });
    totals.get(name)!.lines.push(`paced/closed CPU ${r(pacedCpuMs / closedCpuMs, 2)}×, p99 ${r(p.latency.p99, 1)}, >${slowMs}ms/10k ${per10k(slow.length)}, GC≥20/10k ${per10k(gcs.filter(([, ms]) => ms >= 20).length)}, held≥20 (no GC)/10k ${per10k(gapsNoGc.filter(([, ms]) => ms >= 20).length)}`);
  }
}
console.log('\nsummary:');
for (const [name, { lines }] of totals) console.log(`${name}: ${lines.join(' | ')}`);
await close();
process.exit(0);
