/**
 * `npm run bench`: Latchkey against a real Redis, every scenario of issue #7, each figure next to a
 * limit measured in the same run, written to bench/results/latest.{json,md}.
 *
 *   npm run bench                   the full run (a few minutes)
 *   npm run bench -- --smoke        about a second per scenario (also BENCH_SMOKE=1)
 *
 * Options (or env): --out DIR (BENCH_OUT), --scenarios id,id (BENCH_SCENARIOS), --server dist|src
 * (BENCH_SERVER), --log-level L (BENCH_LOG_LEVEL, default info, as shipped), --profile id,id
 * (BENCH_PROFILE: profile these scenarios as well as those of missed goals), --no-bare,
 * --no-limits, --no-profile, --no-defaults (skip the default configuration's runs), --no-pin
 * (leave the servers unpinned), --no-scaling (skip `serve --workers 2` against one worker),
 * --generator raw|autocannon (BENCH_GENERATOR: the closed loop's client; raw, the lean one, unless asked).
 * A run with errors still writes its results and exits with status 2.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem, type } from 'node:os';
import { join, relative } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { loadConfig } from '../../src/config.js';
import { ROOT } from '../../src/paths.js';
import { startRedisServer } from '../helpers/redis.js';
import { onFastestCore, onSlowCore, SLOW_CORE_RETRIES, startCoreProbe, type CoreProbe, type CoreProbeWindow } from './core-probe.js';
import { argon2Limit, redisLimit, rs256Limit } from './limits.js';
import { closedLoop, defaultGenerator, PACED_CONNECTIONS, paced, type ClosedLoopOptions, type Generator, type PhaseResult, type Workload } from './load.js';
import { summarizeProfile } from './profile.js';
import { probeRedis, RedisInspector } from './redis-probe.js';
import { attachLimits, CORE_FULL, evaluateGoals, find, markdown, saturation, SERVER_SATURATED, steady, terminal, type Report, type ScenarioResult } from './report.js';
import { SCENARIOS, type Scenario, type Sizes } from './scenarios.js';
import {
  addUser,
  canPin,
  coreBusySeconds,
  machineBusySeconds,
  pin,
  processCpuSeconds,
  processMemory,
  removeDir,
  startBare,
  startLatchkey,
  type ProcessTarget,
  type ServerBuild,
} from './targets.js';

interface Options {
  readonly mode: 'full' | 'smoke';
  readonly out: string;
  readonly only?: Set<string>;
  readonly build: ServerBuild;
  readonly logLevel: string;
  readonly bare: boolean;
  readonly limits: boolean;
  readonly profile: boolean;
  /** Profile these scenarios too, missed goal or not. */
  readonly profileAlso: readonly string[];
  /** Also run Latchkey in its default configuration (rate limits on). */
  readonly defaults: boolean;
  /** Pin the servers to core 0, the bench and Redis to core 1 (needs two cores and taskset). */
  readonly pin: boolean;
  /** Measure `serve --workers 2` against one worker. */
  readonly scaling: boolean;
  /** The closed loop's client (load.ts): the lean one unless asked, autocannon to compare. */
  readonly generator: Generator;
}

interface Timing {
  readonly rampSeconds: number;
  readonly warmupSeconds: number;
  readonly measureSeconds: number;
  readonly loadSeconds: number;
  /**
   * The paced (open-loop) run's rate, as a fraction of the measured peak: 0.8, the p99 goal's load.
   * The smoke run paces at half: its peak comes from a one-second window, and a server that paused
   * for half a second under 80% of it (a collection, a busy runner) had 2,000 requests in flight, so
   * the generator dropped arrivals and the run failed (CI, twice in one day, once on a quiet machine).
   */
  readonly loadFraction: number;
  readonly probeIterations: number;
  readonly limitSeconds: number;
  readonly redisBenchmarkRequests: number;
  readonly profileSeconds: number;
  readonly maxProfiles: number;
  /** Warm-up to a steady state (warmUp): window length, windows at least and at most; 0: none. */
  readonly steady: { readonly windowSeconds: number; readonly minWindows: number; readonly maxWindows: number };
  readonly sizes: Sizes;
}

const TIMING: Record<Options['mode'], Timing> = {
  full: {
    rampSeconds: 1,
    warmupSeconds: 1,
    measureSeconds: 5,
    loadSeconds: 5,
    loadFraction: 0.8,
    probeIterations: 20,
    limitSeconds: 2,
    redisBenchmarkRequests: 100_000,
    profileSeconds: 5,
    maxProfiles: 3,
    steady: { windowSeconds: 1, minWindows: 5, maxWindows: 20 },
    sizes: { introspectionPool: 512, jwtRevocationPool: 1024, sessions: 16, chains: 128 },
  },
  // Not shorter: with half-second windows, a scenario of the default configuration completed
  // nothing on a busy machine (npm test at a load of 18 on two cores), even measured again.
  smoke: {
    rampSeconds: 0.3,
    warmupSeconds: 0.3,
    measureSeconds: 1,
    loadSeconds: 1,
    loadFraction: 0.5,
    probeIterations: 3,
    limitSeconds: 0.5,
    redisBenchmarkRequests: 5000,
    profileSeconds: 1,
    maxProfiles: 1,
    // The smoke run checks that the bench works, not figures: no warm-up beyond the fixed one.
    steady: { windowSeconds: 0, minWindows: 0, maxWindows: 0 },
    sizes: { introspectionPool: 64, jwtRevocationPool: 64, sessions: 4, chains: 64 },
  },
};

function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  const value = (flag: string) => {
    const at = argv.indexOf(flag);
    if (at >= 0) return argv[at + 1];
    return argv.find((arg) => arg.startsWith(`${flag}=`))?.slice(flag.length + 1);
  };
  const smoke = argv.includes('--smoke') || env.BENCH_SMOKE === '1';
  const mode = smoke ? 'smoke' : 'full';
  const only = value('--scenarios') ?? env.BENCH_SCENARIOS;
  const build = (value('--server') ?? env.BENCH_SERVER ?? (smoke ? 'src' : 'dist')) as ServerBuild;
  if (build !== 'dist' && build !== 'src') throw new Error(`--server is dist or src, not ${build}`);
  return {
    mode,
    out: value('--out') ?? env.BENCH_OUT ?? join(ROOT, 'bench', 'results', ...(smoke ? ['smoke'] : [])),
    ...(only ? { only: new Set(only.split(',').map((id) => id.trim())) } : {}),
    build,
    logLevel: value('--log-level') ?? env.BENCH_LOG_LEVEL ?? 'info',
    bare: !argv.includes('--no-bare'),
    limits: !argv.includes('--no-limits'),
    profile: !argv.includes('--no-profile'),
    profileAlso: (value('--profile') ?? env.BENCH_PROFILE ?? '').split(',').map((id) => id.trim()).filter(Boolean),
    defaults: !argv.includes('--no-defaults'),
    pin: !argv.includes('--no-pin'),
    scaling: !argv.includes('--no-scaling'),
    generator: defaultGenerator({ BENCH_GENERATOR: value('--generator') ?? env.BENCH_GENERATOR }),
  };
}

const log = (line: string) => console.log(line);
/** The scenario `serve --workers 2` is measured on against one worker. */
const SCALING_SCENARIO = 'cc-jwt';
const r = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
/**
 * How far (either way, as a factor) a default-configuration row's server CPU per iteration may be
 * from the bench configuration's before it is measured again (see runScenario).
 */
const DEFAULTS_STRAY = 1.25;
const describe = (p: PhaseResult) =>
  `${r(p.iterationsPerSecond)}/s p50 ${r(p.latency.p50, 2)} ms p99 ${r(p.latency.p99, 2)} ms errors ${p.errors}${p.errorSamples[0] ? ` (${p.errorSamples[0]})` : ''}`;

/**
 * How steady the machine is: the wall time of a fixed CPU job (SHA-256 of 20 MB) a few times
 * over. On a quiet machine the times agree; when other processes or the host take the cores
 * they spread, and so will every latency percentile measured meanwhile.
 */
async function steadiness(samples: number): Promise<{ minMs: number; medianMs: number; maxMs: number }> {
  const buffer = Buffer.alloc(65_536, 7);
  const times: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    const started = performance.now();
    for (let j = 0; j < 300; j += 1) createHash('sha256').update(buffer).digest();
    times.push(performance.now() - started);
    await new Promise((done) => setTimeout(done, 50));
  }
  times.sort((a, b) => a - b);
  return { minMs: r(times[0]!), medianMs: r(times[Math.floor(times.length / 2)]!), maxMs: r(times.at(-1)!) };
}

/**
 * The machine's cores, read once as the run starts: availableParallelism() follows this process's
 * affinity, and the bench pins itself to one core while it measures (it then said 1, which halved
 * the cores in the report and in the share of CPU taken by others, and pinned the scaling run's
 * load to core 0 alone).
 */
const CORES = availableParallelism();

/**
 * The fixed job beside the servers on their core (core-probe.ts), when they are pinned: how fast
 * the core was in each measured window. The host's own use of the core is not accounted as steal on
 * this VM: it is charged to the server as CPU, the likeliest cause of a warmed server costing up
 * to 2× its CPU per request for minutes (docs/performance.md, the bistable finding).
 */
let coreProbe: CoreProbe | undefined;
/** The job's figures over two seconds with the servers pinned and idle, before the first scenario. */
let coreProbeAtStart: CoreProbeWindow | undefined;
/** The job's lowest median so far this run (the start, every window since): the core at its fastest. */
let coreBestMs: number | undefined;

/**
 * A closed-loop run with the server's CPU time, the CPU other processes took meanwhile, and how
 * busy cores 0 and 1 were (pinned runs: the servers' core and the generator's and Redis's).
 */
async function measured(target: ProcessTarget, inspector: RedisInspector, run: () => Promise<PhaseResult>) {
  const cores = CORES;
  const server = processCpuSeconds(target.pid);
  const machine = machineBusySeconds();
  const perCore = coreBusySeconds();
  const self = process.cpuUsage();
  const redis = await inspector.cpuSeconds();
  await coreProbe?.take(); // drops the samples taken before the window
  const started = performance.now();
  const result = await run();
  const core = await coreProbe?.take();
  if (core) coreBestMs = Math.min(coreBestMs ?? Infinity, core.medianMs);
  const elapsed = (performance.now() - started) / 1000;
  const serverCpu = processCpuSeconds(target.pid) - server;
  const selfUsage = process.cpuUsage(self);
  const generatorCpu = (selfUsage.user + selfUsage.system) / 1e6;
  const redisCpu = (await inspector.cpuSeconds()) - redis;
  const foreign = Math.max(0, machineBusySeconds() - machine - serverCpu - generatorCpu - redisCpu) / (cores * elapsed);
  const perCoreAfter = coreBusySeconds();
  const coreBusy = [0, 1].map((core) => r(Math.min(1, ((perCoreAfter[core] ?? 0) - (perCore[core] ?? 0)) / elapsed), 2)) as [number, number];
  return {
    result,
    serverCpu,
    elapsed,
    coreBusy,
    /** The bench process's own CPU (the load generator) per request, ms. */
    generatorCpuMsPerRequest: r((generatorCpu * 1000) / Math.max(1, result.requests), 3),
    redisCpuMsPerRequest: r((redisCpu * 1000) / Math.max(1, result.requests), 3),
    foreignCpuShare: r(foreign, 3),
    /** The fixed job beside the server on its core during the window (pinned runs). */
    coreProbe: core,
  };
}

/** A measured window (measured's answer). */
type Measured = Awaited<ReturnType<typeof measured>>;

/**
 * `window` run until one was not on a slow core (the host took part of it: everything on the core,
 * the server too, took longer for the same work, for seconds or minutes), at most SLOW_CORE_RETRIES
 * times more: the one on the fastest core, and the others, each with how slow its core was.
 */
async function onSteadiestCore<T extends { readonly coreProbe?: CoreProbeWindow }>(window: () => Promise<T>): Promise<{ kept: T; setAside: { window: T; coreRatio: number }[] }> {
  const windows: [T, ...T[]] = [await window()];
  while (windows.length <= SLOW_CORE_RETRIES && onSlowCore(windows.at(-1)!.coreProbe, coreBestMs)) windows.push(await window());
  const kept = onFastestCore(windows);
  return { kept, setAside: windows.filter((w) => w !== kept).map((w) => ({ window: w, coreRatio: r(w.coreProbe!.medianMs / coreBestMs!, 2) })) };
}

interface RunContext {
  readonly options: Options;
  /** Servers on core 0, the generator and Redis on core 1. */
  readonly pinned: boolean;
  readonly timing: Timing;
  readonly inspector: RedisInspector;
  readonly prefix: string;
  readonly results: ScenarioResult[];
}

/** The connection count of the ramp step that reached (within 3%) the highest rate. */
function bestConnections(ramp: readonly PhaseResult[]): number {
  const top = Math.max(...ramp.map((p) => p.iterationsPerSecond));
  return ramp.find((p) => p.iterationsPerSecond >= top * 0.97)!.connections!;
}

/**
 * Runs a scenario on a server in windows at the connection count it will be measured at, until its
 * CPU per iteration is steady (report.ts `steady`; at least minWindows, at most maxWindows). V8
 * compiles a function with its optimising compiler only after a few thousand calls, and again after
 * its inline caches change, so a server's first ten thousand or so requests of a path cost up to
 * 2.5× its later ones (docs/performance.md). A warm-up fixed in seconds gave a server that answers
 * fewer requests a second fewer requests of warm-up, and measured it cold: Latchkey's opaque token
 * at 0.27-0.33 ms of CPU in the bench row, 0.15-0.20 in the default configuration's server measured
 * after it. Every server now reaches its steady state, however fast it is, before its ramp and its
 * measurement. Login too: its hash is steady at once, but the JavaScript around it (authorize, the
 * pages, the resume) is not; exempt, the bench configuration's login row was measured cold (22.2 ms
 * of CPU a login, 0.84× the hash rate) and the default configuration's after it warm (20.7, 0.91×).
 */
async function warmUp(
  scenario: Scenario,
  target: ProcessTarget,
  context: RunContext,
  run: { workload: Workload | undefined; prepare: (needed?: number) => Promise<Workload>; opaqueRate: number; count: (phase: PhaseResult) => PhaseResult },
): Promise<ScenarioResult['warmUp']> {
  const { windowSeconds, minWindows, maxWindows } = context.timing.steady;
  if (maxWindows === 0) return undefined;
  const connections = scenario.ramp ? Math.max(...scenario.ramp) : (scenario.connections ?? 16);
  const windows: number[] = [];
  const coreProbeMs: number[] = [];
  while (windows.length < maxWindows && (windows.length < minWindows || !steady(windows))) {
    let window;
    if (scenario.consumesTokens) {
      // Each revocation uses a token up: a fresh pool a window, about a window's worth.
      const amount = Math.ceil(run.opaqueRate * windowSeconds * 1.2);
      const fresh = await run.prepare(amount);
      window = await measured(target, context.inspector, () => closedLoop(target.url, fresh, { connections, seconds: windowSeconds * 10, amount, generator: context.options.generator }));
    } else {
      window = await measured(target, context.inspector, () => closedLoop(target.url, run.workload!, { connections, seconds: windowSeconds, generator: context.options.generator }));
    }
    run.count(window.result);
    windows.push(r((window.serverCpu * 1000) / Math.max(1, window.result.iterations), 3));
    if (window.coreProbe) coreProbeMs.push(window.coreProbe.medianMs);
  }
  return { windows, steady: steady(windows), ...(coreProbeMs.length ? { coreProbeMs } : {}) };
}

async function runScenario(scenario: Scenario, target: ProcessTarget, context: RunContext): Promise<ScenarioResult> {
  const { timing, inspector, results } = context;
  const loop = (workload: Workload, options: Omit<ClosedLoopOptions, 'generator'>) => closedLoop(target.url, workload, { ...options, generator: context.options.generator });
  const name = `${target.kind.padEnd(8)} ${scenario.id.padEnd(17)}`;
  const errorSamples: string[] = [];
  let errors = 0;
  const count = (phase: PhaseResult) => {
    errors += phase.errors;
    for (const sample of phase.errorSamples) if (errorSamples.length < 5) errorSamples.push(sample);
    return phase;
  };

  // Revocation of opaque tokens uses each token once: every phase gets its own fresh pool.
  const opaqueRate = find(results, 'cc-opaque', target.kind)?.throughput ?? 1000;
  const prepare = (needed?: number) => scenario.prepare(target, timing.sizes, needed);
  const workload: Workload | undefined = scenario.consumesTokens ? undefined : await prepare();

  let redis;
  if (target.kind !== 'bare') {
    const probeWorkload = workload ?? (await prepare(timing.probeIterations));
    redis = await probeRedis(inspector, target.url, probeWorkload, timing.probeIterations, context.prefix);
    errors += redis.errors;
    errorSamples.push(...redis.errorSamples.slice(0, 5 - errorSamples.length));
  }

  const warm = await warmUp(scenario, target, context, { workload, prepare, opaqueRate, count });
  if (warm) log(`${name} warm-up ${warm.windows.length} s, CPU ms/iteration ${warm.windows.join(' ')}${warm.steady ? '' : ' (not steady)'}`);

  const ramp: PhaseResult[] = [];
  const rampForeign: number[] = [];
  let connections = scenario.connections ?? 16;
  // The default configuration is measured at the connection count Latchkey peaked at.
  const peaked = target.kind === 'defaults' ? find(results, scenario.id, 'latchkey')?.connections : undefined;
  if (peaked) {
    connections = peaked;
    // As long a warm-up as the ramp gave the other servers: with one second, V8 was still compiling
    // this server's paths when its measurement began (docs/performance.md, perf-cc's finding).
    const seconds = scenario.ramp ? timing.rampSeconds * scenario.ramp.length : timing.warmupSeconds;
    if (workload) count(await loop(workload, { connections, seconds }));
  } else if (scenario.ramp) {
    for (const c of scenario.ramp) {
      const step = await measured(target, inspector, () => loop(workload!, { connections: c, seconds: timing.rampSeconds }));
      ramp.push(count(step.result));
      rampForeign.push(step.foreignCpuShare);
      log(`${name} ramp    c=${String(c).padEnd(3)} ${describe(step.result)}`);
    }
    connections = bestConnections(ramp);
  } else if (workload) {
    count(await loop(workload, { connections, seconds: timing.warmupSeconds }));
  }

  /**
   * The measurement window of a scenario that does not use tokens up. An iteration longer than the
   * window (a password login on a busy machine in smoke mode) completes nothing; such a scenario is
   * measured again over a window a few iterations long. The second window of a defaults row whose
   * CPU strayed (below) goes through here too: over the plain window it completed nothing now and
   * then, the row's throughput 0 (the bench smoke test's "completed nothing" under npm test's load).
   */
  const measureWindow = async () => {
    const first = await measured(target, inspector, () => loop(workload!, { connections, seconds: timing.measureSeconds }));
    if (first.result.iterations > 0 || first.result.errors > 0) return first;
    const seconds = timing.measureSeconds * 4;
    return measured(target, inspector, () => loop(workload!, { connections, seconds }));
  };
  const measureOnce = scenario.consumesTokens
    ? async () => {
        const needed = Math.max(connections * 4, Math.min(60_000, Math.ceil(opaqueRate * 1.5 * timing.measureSeconds)));
        const fresh = await prepare(needed);
        return measured(target, inspector, () => loop(fresh, { connections, seconds: timing.measureSeconds, amount: needed }));
      }
    : measureWindow;
  const cpuOf = (m: Measured) => r((m.serverCpu * 1000) / Math.max(1, m.result.iterations), 3);
  /** A window on a slow core is measured again (onSteadiestCore); those set aside stay in the log and the JSON. */
  const slowCoreWindows: NonNullable<ScenarioResult['slowCoreWindows']>[number][] = [];
  const onSteadyCore = async (window: () => Promise<Measured>): Promise<Measured> => {
    const { kept, setAside } = await onSteadiestCore(window);
    for (const { window: other, coreRatio } of setAside) {
      count(other.result);
      slowCoreWindows.push({ coreRatio, cpuMsPerIteration: cpuOf(other), iterationsPerSecond: other.result.iterationsPerSecond });
      log(`${name} measured again: its core was slow (the fixed job beside it ${coreRatio}× the core's best), ${cpuOf(other)} ms CPU/iteration, ${describe(other.result)}`);
    }
    return kept;
  };
  let measure = await onSteadyCore(measureOnce);
  // The default configuration's own work is about 2 K instructions a request over the bench
  // configuration's (callgrind, docs/performance.md): a defaults window whose CPU per iteration is
  // far from the bench row's caught the machine or the process in another state (22:15's run:
  // introspection 0.291 against 0.161 ms, 0.98× side by side). Such a row is measured once more
  // and the second window is the row, whatever it gives (the first stays in the log and the JSON).
  const bench = target.kind === 'defaults' && workload ? find(results, scenario.id, 'latchkey') : undefined;
  let firstCpuMsPerIteration: number | undefined;
  if (bench && bench.server.cpuMsPerIteration > 0 && Math.abs(Math.log(cpuOf(measure) / bench.server.cpuMsPerIteration)) > Math.log(DEFAULTS_STRAY)) {
    count(measure.result);
    firstCpuMsPerIteration = cpuOf(measure);
    measure = await onSteadyCore(measureWindow);
    log(`${name} measured again: ${firstCpuMsPerIteration} ms CPU/iteration against the bench row's ${bench.server.cpuMsPerIteration}, then ${cpuOf(measure)}`);
  }
  count(measure.result);
  log(`${name} measure c=${String(connections).padEnd(3)} ${describe(measure.result)}; server ${Math.round((measure.serverCpu / measure.elapsed) * 100)}% busy, cores ${measure.coreBusy.map((x) => `${Math.round(x * 100)}%`).join('/')}${
      measure.coreProbe && coreProbeAtStart ? `, fixed job beside ${r(measure.coreProbe.medianMs / coreProbeAtStart.medianMs, 2)}× its time at the start` : ''
    }`,
  );
  const m = measure.result;

  let load80: ScenarioResult['load80'];
  // Latchkey, and the bare provider as a comparison (the default configuration is not paced).
  if (scenario.tokenEndpoint && target.kind !== 'defaults') {
    const rate = timing.loadFraction * m.iterationsPerSecond;
    const pacedOnce = async () => {
      const paceWorkload = scenario.consumesTokens ? await prepare(Math.ceil(rate * timing.loadSeconds * 1.1) + 50) : workload!;
      const generatorDelay = monitorEventLoopDelay({ resolution: 1 });
      generatorDelay.enable();
      const run = await measured(target, inspector, () => paced(target.url, paceWorkload, rate, timing.loadSeconds));
      generatorDelay.disable();
      return { ...run, generatorMaxDelayMs: r(generatorDelay.max / 1e6, 2) };
    };
    // Paced on a slow core, the rate is more than 80% of what the core could do meanwhile, and a
    // queue builds: run again as a measured window is (its tail and errors stay in the log and the
    // JSON, `load80.slowCoreWindows`, and are not the row's).
    const { kept: run, setAside: slowRuns } = await onSteadiestCore(pacedOnce);
    const setAside = slowRuns.map(({ window: other, coreRatio }) => ({ coreRatio, p99: other.result.latency.p99, errors: other.result.errors }));
    for (const other of setAside) log(`${name} paced again: its core was slow (the fixed job beside it ${other.coreRatio}× the core's best), p99 ${other.p99} ms, errors ${other.errors}`);
    const p = count(run.result);
    const step = scenario.tokenStep ? p.steps[scenario.tokenStep] : undefined;
    load80 = {
      targetRate: r(rate),
      achievedRate: p.iterationsPerSecond,
      p50: p.latency.p50,
      p99: p.latency.p99,
      ...(step ? { tokenStepP99: step.p99 } : {}),
      errors: p.errors,
      generatorCpuMsPerRequest: run.generatorCpuMsPerRequest,
      generatorMaxDelayMs: run.generatorMaxDelayMs,
      foreignCpuShare: run.foreignCpuShare,
      ...(setAside.length ? { slowCoreWindows: setAside } : {}),
    };
    log(`${name} ${String(Math.round(timing.loadFraction * 100)).padEnd(3)}%    ${r(rate)}/s → ${describe(p)}${step ? ` (token request p99 ${step.p99} ms)` : ''}`);
  }

  const tokenStep = scenario.tokenStep ? m.steps[scenario.tokenStep] : undefined;
  return {
    id: scenario.id,
    number: scenario.number,
    title: scenario.title,
    target: target.kind,
    connections,
    ramp: ramp.map((p, i) => ({
      connections: p.connections!,
      iterationsPerSecond: p.iterationsPerSecond,
      p99: p.latency.p99,
      errors: p.errors,
      foreignCpuShare: rampForeign[i]!,
    })),
    measure: m,
    throughput: m.iterationsPerSecond,
    latency: m.latency,
    ...(tokenStep ? { tokenStepLatency: tokenStep } : {}),
    ...(firstCpuMsPerIteration !== undefined ? { measuredAgain: { firstCpuMsPerIteration } } : {}),
    ...(slowCoreWindows.length ? { slowCoreWindows } : {}),
    ...(warm ? { warmUp: warm } : {}),
    server: {
      cpuMsPerIteration: r((measure.serverCpu * 1000) / Math.max(1, m.iterations), 3),
      cpuMsPerRequest: r((measure.serverCpu * 1000) / Math.max(1, m.requests), 3),
      cpuUtilization: r(measure.serverCpu / measure.elapsed, 2),
      rssMiB: processMemory(target.pid).rssMiB,
    },
    saturation: saturation(r(measure.serverCpu / measure.elapsed, 2), context.pinned ? measure.coreBusy : undefined),
    generatorCpuMsPerRequest: measure.generatorCpuMsPerRequest,
    redisCpuMsPerRequest: measure.redisCpuMsPerRequest,
    foreignCpuShare: measure.foreignCpuShare,
    ...(measure.coreProbe ? { coreProbe: measure.coreProbe } : {}),
    ...(load80 ? { load80 } : {}),
    ...(redis ? { redis } : {}),
    errors,
    errorSamples,
  };
}

/**
 * Scenario by scenario, Latchkey and then the bare provider back to back (both servers are up;
 * the idle one costs nothing), so that a ratio compares two runs a few seconds apart.
 */
async function runAll(targets: readonly ProcessTarget[], context: RunContext) {
  for (const scenario of SCENARIOS) {
    if (context.options.only && !context.options.only.has(scenario.id)) continue;
    for (const target of targets) {
      // The default configuration runs wherever Latchkey does.
      const kind = target.kind === 'defaults' ? 'latchkey' : target.kind;
      if (scenario.targets.includes(kind)) context.results.push(await runScenario(scenario, target, context));
    }
  }
}

/** Which scenarios to profile, for which missed goals (in the goals' order). */
function profileTargets(report: Pick<Report, 'goals'>, max: number): Map<string, string[]> {
  const wanted = new Map<string, string[]>();
  for (const goal of report.goals) {
    // G6 (round trips) is explained by the command list, G7 is documentation: no profile needed.
    if (goal.pass !== false || goal.id === 'G6' || goal.id === 'G7') continue;
    if (!wanted.has(goal.scenario) && wanted.size >= max) continue;
    wanted.set(goal.scenario, [...new Set([...(wanted.get(goal.scenario) ?? []), goal.id])]);
  }
  return wanted;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2), process.env);
  const timing = TIMING[options.mode];
  const startedAt = new Date();
  const started = performance.now();
  const loadAverageAtStart = loadavg().map((v) => r(v, 2));
  const steadinessAtStart = await steadiness(options.mode === 'smoke' ? 3 : 15);
  log(`latchkey bench (${options.mode}): results to ${relative(process.cwd(), options.out) || '.'}`);

  const redisServer = await startRedisServer();
  const inspector = new RedisInspector(redisServer.url);
  const results: ScenarioResult[] = [];
  const limits: Report['limits'] = {};
  const memory: Report['memory'] = {};
  const dirs: string[] = [];
  let latchkey = await startLatchkey({ redisUrl: redisServer.url, build: options.build, logLevel: options.logLevel });
  dirs.push(latchkey.dir);
  const config = loadConfig(latchkey.env);
  const context: { -readonly [K in keyof RunContext]: RunContext[K] } = { options, timing, inspector, prefix: config.redis.keyPrefix, results, pinned: false };
  const signingKey = await latchkey.signingKey();
  try {
    await addUser(latchkey, options.build);

    if (options.limits) {
      const cores = CORES;
      limits.rs256 = await rs256Limit(signingKey, cores, timing.limitSeconds);
      log(`limit    RS256: ${limits.rs256.signaturesPerSecond} signatures/s on ${cores} threads, ${limits.rs256.cpuMsPerSignature} ms CPU each; ${limits.rs256.verificationsPerSecond} verifications/s`);
      limits.argon2id = await argon2Limit(config.accounts.argon2, Math.max(cores, 2), Math.max(timing.limitSeconds, 1));
      log(`limit    argon2id: ${limits.argon2id.hashesPerSecond} hashes/s`);
      limits.redis = await redisLimit(redisServer.port, timing.redisBenchmarkRequests);
      await inspector.client.del('key:__rand_int__');
      log(`limit    redis: ${limits.redis.available ? `GET ${limits.redis.getPerSecond}/s SET ${limits.redis.setPerSecond}/s, one connection ${limits.redis.getPerSecondOneConnection}/s` : limits.redis.note}`);
    }

    // Servers on core 0, the load generator (this process) and Redis on core 1, so that a server's
    // CPU and throughput per core are its own. After the limits, which use every core.
    const pinned = options.pin && CORES >= 2 && canPin();
    context.pinned = pinned;
    const serverCpus = pinned ? '0' : undefined;
    // Login is held against argon2id on the cores the server has: one hash at a time, on the core
    // the server is pinned to (measured there, not on whichever core was free).
    if (limits.argon2id) {
      limits.argon2idServerCores = pinned
        ? { ...(await argon2Limit(config.accounts.argon2, 1, Math.max(timing.limitSeconds, 1), serverCpus)), cores: 1 }
        : { ...limits.argon2id, cores: CORES };
      log(`limit    argon2id on the server's cores: ${limits.argon2idServerCores.hashesPerSecond} hashes/s`);
    }
    if (pinned) {
      pin(process.pid, '1');
      pin(Number((await inspector.info('server')).process_id), '1');
      pin(latchkey.pid, '0');
    }
    const bare = options.bare ? await startBare({ signingKey, ...(serverCpus ? { cpus: serverCpus } : {}) }) : undefined;
    const defaults = options.defaults
      ? await startLatchkey({ redisUrl: redisServer.url, build: options.build, logLevel: options.logLevel, dir: latchkey.dir, defaults: true, ...(serverCpus ? { cpus: serverCpus } : {}) })
      : undefined;
    // Not in the smoke run, whose figures mean little: two seconds saved.
    if (pinned && options.mode !== 'smoke') {
      coreProbe = startCoreProbe('0');
      await new Promise((done) => setTimeout(done, 2000));
      coreProbeAtStart = await coreProbe.take();
      coreBestMs = coreProbeAtStart?.medianMs;
      log(`fixed job beside the servers on core 0, idle: ${coreProbeAtStart?.medianMs} ms (median of ${coreProbeAtStart?.samples})`);
    }
    try {
      await runAll([latchkey, ...(defaults ? [defaults] : []), ...(bare ? [bare] : [])], context);
      memory.latchkeyPeakMiB = processMemory(latchkey.pid).peakMiB;
      if (bare) memory.barePeakMiB = processMemory(bare.pid).peakMiB;
    } finally {
      coreProbe?.stop();
      coreProbe = undefined;
      await bare?.stop();
      await defaults?.stop();
    }
    await latchkey.stop();

    // `serve --workers 2` against one worker on the same scenario, neither pinned.
    let scaling: Report['scaling'];
    let scalingErrors = 0;
    if (options.scaling && (!options.only || options.only.has(SCALING_SCENARIO))) {
      if (pinned) pin(process.pid, `0-${CORES - 1}`);
      const scenario = SCENARIOS.find((s) => s.id === SCALING_SCENARIO)!;
      const rates: number[] = [];
      let workers = 1;
      try {
        for (workers of [1, 2]) {
          const server = await startLatchkey({ redisUrl: redisServer.url, build: options.build, logLevel: options.logLevel, dir: latchkey.dir, workers });
          try {
            const workload = await scenario.prepare(server, timing.sizes);
            await closedLoop(server.url, workload, { connections: 16, seconds: timing.warmupSeconds, generator: options.generator });
            const run = await closedLoop(server.url, workload, { connections: 16, seconds: timing.measureSeconds, generator: options.generator });
            scalingErrors += run.errors;
            rates.push(run.iterationsPerSecond);
            log(`scaling  ${SCALING_SCENARIO} --workers ${workers}: ${describe(run)}`);
          } finally {
            await server.stop();
          }
        }
        scaling = { scenario: SCALING_SCENARIO, connections: 16, oneWorker: rates[0]!, twoWorkers: rates[1]!, ratio: r(rates[1]! / rates[0]!, 2), errors: scalingErrors };
      } catch (error) {
        // A server that does not start is an error of the run (the exit status says so), but the
        // scenarios measured before it are kept: they are most of the run's time.
        const failed = `with ${workers} worker${workers > 1 ? 's' : ''}: ${error instanceof Error ? error.message : String(error)}`.slice(0, 2000);
        scalingErrors += 1;
        scaling = { scenario: SCALING_SCENARIO, connections: 16, failed };
        log(`scaling  ${SCALING_SCENARIO} failed ${failed}`);
      }
      if (pinned) pin(process.pid, '1');
    }

    attachLimits(results, limits);
    const byId = (pick: (s: Scenario) => boolean) => SCENARIOS.filter(pick).map((s) => s.id);
    const tokenSteps = Object.fromEntries(SCENARIOS.filter((s) => s.tokenStep).map((s) => [s.id, s.tokenStep!]));
    const goals = evaluateGoals(results, limits, byId((s) => s.tokenEndpoint), byId((s) => s.hotPath), tokenSteps);

    // Where a goal is missed: a CPU profile of Latchkey under that scenario's load.
    const profiles: Report['profiles'] = [];
    if (options.profile) {
      const profileDir = join(options.out, 'profiles');
      const wanted = profileTargets({ goals }, timing.maxProfiles);
      for (const id of options.profileAlso) if (!wanted.has(id)) wanted.set(id, ['asked for']);
      for (const [id, goalIds] of wanted) {
        if (!find(results, id)) continue;
        const scenario = SCENARIOS.find((s) => s.id === id)!;
        const scratch = join(profileDir, `.${id}`);
        rmSync(scratch, { recursive: true, force: true });
        mkdirSync(scratch, { recursive: true });
        latchkey = await startLatchkey({ redisUrl: redisServer.url, build: options.build, logLevel: options.logLevel, dir: latchkey.dir, profileDir: scratch, ...(serverCpus ? { cpus: serverCpus } : {}) });
        const connections = find(results, id)?.connections ?? 16;
        const needed = scenario.consumesTokens ? Math.ceil((find(results, 'cc-opaque')?.throughput ?? 1000) * timing.profileSeconds) : undefined;
        const workload = await scenario.prepare(latchkey, timing.sizes, needed);
        const loadStarted = performance.now();
        const cpuBefore = processCpuSeconds(latchkey.pid);
        const run = await closedLoop(latchkey.url, workload, { connections, seconds: timing.profileSeconds, generator: options.generator, ...(needed ? { amount: needed } : {}) });
        const processCpuMs = Math.round((processCpuSeconds(latchkey.pid) - cpuBefore) * 1000);
        await latchkey.stop();
        const windowMs = performance.now() - loadStarted;
        const written = readdirSync(scratch).find((file) => file.endsWith('.cpuprofile'));
        if (!written) {
          log(`profile  ${id}: no profile was written`);
          continue;
        }
        const file = join(profileDir, `${id}.cpuprofile`);
        renameSync(join(scratch, written), file);
        rmSync(scratch, { recursive: true, force: true });
        const summary = summarizeProfile(file, windowMs);
        profiles.push({
          ...summary,
          file: relative(ROOT, file),
          scenario: id,
          goals: goalIds,
          iterations: run.iterations,
          processCpuMs,
          errors: run.errors,
        });
        log(`profile  ${id}: ${describe(run)}; top: ${summary.topFrames.slice(0, 3).map((f) => `${f.frame} ${f.selfPct}%`).join(', ')}`);
      }
    }

    const report: Report = {
      schema: 1,
      mode: options.mode,
      startedAt: startedAt.toISOString(),
      wallSeconds: r((performance.now() - started) / 1000),
      machine: {
        cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
        cores: CORES,
        memoryGiB: r(totalmem() / 2 ** 30),
        node: process.version,
        redis: await inspector.version(),
        os: `${type()} ${release()}`,
        loadAverageAtStart,
        loadAverageAtEnd: loadavg().map((v) => r(v, 2)),
        steadinessAtStart,
        ...(coreProbeAtStart ? { coreProbeAtStart } : {}),
        steadinessAtEnd: await steadiness(options.mode === 'smoke' ? 3 : 15),
      },
      settings: {
        server: options.build === 'dist' ? 'node dist/cli.js serve (compiled)' : 'node --import tsx src/cli.ts serve',
        nodeEnv: 'production',
        logLevel: options.logLevel,
        pinned: pinned ? 'servers on core 0; the load generator and Redis on core 1' : 'not pinned',
        generator: options.generator,
        rsaBits: config.keys.rsaBits,
        argon2: config.accounts.argon2,
        ...timing,
      },
      limits,
      scenarios: results,
      memory,
      ...(scaling ? { scaling } : {}),
      goals,
      profiles,
      notes: [
        options.generator === 'raw'
          ? 'Every server runs in its own process; the load generator (closed loop: a lean HTTP/1.1 client over keep-alive sockets, test/bench/raw-http.ts, 0.5–0.8× the CPU a request of autocannon\'s) runs in the bench process, Redis in a redis-server the bench starts (no persistence). All on this one machine.'
          : 'Every server runs in its own process; the load generator (autocannon as a library, closed loop, asked for with --generator autocannon) runs in the bench process, Redis in a redis-server the bench starts (no persistence). All on this one machine.',
        `Server busy: the server's CPU time over the measured window (100%: one core). A row below ${SERVER_SATURATED * 100}% did not measure the server and says so: "generator-bound" when core 1 (the load generator and Redis) was at least ${CORE_FULL * 100}% busy by /proc/stat and core 0 was not; its rate is only a lower bound of the server's, and a goal that such a rate cannot decide is not measured (no rate is extrapolated).`,
        "Server CPU: utime + stime of the server process from /proc/<pid>/stat across the measured run, so the load generator's CPU is not counted.",
        'Throughput and latency: closed loop (each connection sends its next request when the answer arrives) at the connection count of the ramp step (1, 4, 16 connections) that gave the highest rate; login, discovery and JWKS use a fixed count.',
        `p99 at 80% of peak: open loop, Poisson arrivals at ${timing.loadFraction} × the measured rate${timing.loadFraction === 0.8 ? '' : ' (the smoke run paces at less: its figures mean little)'} on at most ${PACED_CONNECTIONS} keep-alive connections (like a client's pool or a proxy's upstream pool), latency from each request's scheduled start, so time spent queued, for the server or for a connection, is counted. autocannon's rate limit is not used: it sends each connection's per-second quota back to back, which is a saturated burst.`,
        'Raw RS256: jose SignJWT of an access-token-sized payload with the same 2048-bit key Latchkey signs with, on one worker thread per core; CPU per signature from a one-thread run (process CPU ÷ signatures).',
        'argon2id: the argon2 package at Latchkey\'s configured parameters, in a process of its own: as many hashes in flight as cores; and one at a time in a process pinned to the server\'s core (taskset), the rate of the one core a pinned server has, which login is held against (server CPU per login against the CPU of one hash: test/bench/login-ab.ts).',
        'Bare oidc-provider: the same oidc-provider version with its MemoryAdapter (over a larger LRU so pooled tokens are not evicted), the same clients, resource servers, key and TTLs, its development login pages, no Redis, no middleware and no request log. It cannot introspect or revoke JWT access tokens, so those rows are held against its opaque equivalents.',
        `Latchkey runs with NODE_ENV=production and LOG_LEVEL=${options.logLevel} (one JSON request log line per request, written to /dev/null) and its metrics listener on; the bench configuration ("latchkey" rows) turns the rate limits off, the default configuration ("defaults" rows) keeps them on with the shipped allowances, counting in Redis. "defaults" runs at the connection count where "latchkey" peaked, without its own ramp or 80% run, and is measured a second time (that window is the row) when its server CPU per iteration strays beyond ${DEFAULTS_STRAY}× either way from the "latchkey" row's: the two configurations differ by about 2 K instructions a request.`,
        pinned
          ? 'Pinned (taskset): every server runs on core 0, the bench process (the load generator) and Redis on core 1, so server CPU and throughput are per core and not mixed with the load generator\'s. The limits (RS256, argon2id, redis-benchmark) are measured before pinning, on every core.'
          : 'Not pinned: the servers, the load generator and Redis share every core.',
        `Scaling: \`serve --workers 2\` against one worker on ${SCALING_SCENARIO} at 16 connections, neither pinned (the load generator shares the cores), a closed-loop run each.`,
        'Revocation of opaque tokens revokes each token once (fresh tokens per run); JWT revocation revokes a pool of JWTs in turn (a repeat costs the same: verify + SET).',
        'Figures from a machine where other processes compete for the CPU are not final; foreignCpuShare in latest.json says how much they took during each measured run.',
      ],
      errors: results.reduce((sum, s) => sum + s.errors, 0) + scalingErrors,
    };
    mkdirSync(options.out, { recursive: true });
    writeFileSync(join(options.out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(options.out, 'latest.md'), markdown(report));
    log('');
    log(terminal(report));
    log('');
    log(`wrote ${relative(process.cwd(), join(options.out, 'latest.md'))} and latest.json in ${r(report.wallSeconds, 0)} s`);
    if (report.errors) {
      const failures = results.filter((s) => s.errors).map((s) => `${s.target}/${s.id}: ${s.errorSamples[0] ?? ''}`);
      if (scaling && 'failed' in scaling) failures.push(`scaling: ${scaling.failed}`);
      log(`${report.errors} errors: ${failures.join('; ')}`);
      return 2;
    }
    return 0;
  } finally {
    await latchkey.stop().catch(() => {});
    await inspector.close();
    await redisServer.stop();
    for (const dir of dirs) removeDir(dir);
  }
}

main().then(
  (status) => process.exit(status),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
