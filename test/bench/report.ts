/**
 * The results: their shape (latest.json), the goals of issues #7 and #18 with PASS/MISS, and the Markdown
 * and terminal tables.
 */
import { SLOW_CORE, SLOW_CORE_RETRIES, slowCoreRows, type CoreProbeWindow } from './core-probe.js';
import type { Argon2Limit, RedisLimit, Rs256Limit } from './limits.js';
import type { Latency, PhaseResult } from './load.js';
import type { ProfileSummary } from './profile.js';
import type { RedisProbe } from './redis-probe.js';
import type { TargetKind } from './scenarios.js';

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly redis: string;
  readonly os: string;
  readonly loadAverageAtStart: number[];
  readonly loadAverageAtEnd: number[];
  /** Wall time of one fixed CPU job (SHA-256 of 20 MB), several times at the start and at the end. */
  readonly steadinessAtStart: { minMs: number; medianMs: number; maxMs: number };
  readonly steadinessAtEnd: { minMs: number; medianMs: number; maxMs: number };
  /**
   * A small fixed CPU job run every 100 ms beside the servers on their core (core-probe.ts), over two
   * seconds with the servers idle before the first scenario: each row's `coreProbe` is held against it.
   */
  readonly coreProbeAtStart?: CoreProbeWindow;
}

export interface ScenarioResult {
  readonly id: string;
  readonly number: string;
  readonly title: string;
  readonly target: TargetKind;
  readonly connections: number;
  readonly ramp: { connections: number; iterationsPerSecond: number; p99: number; errors: number; foreignCpuShare: number }[];
  readonly measure: PhaseResult;
  /** Iterations (tokens, flows, documents) per second in the measured run. */
  readonly throughput: number;
  readonly latency: Latency;
  /** The token request's own latency in a multi-step flow. */
  readonly tokenStepLatency?: Latency;
  readonly server: { cpuMsPerIteration: number; cpuMsPerRequest: number; cpuUtilization: number; rssMiB: number };
  /** Whether the measured run loaded the server fully, and if not, which side was full. */
  readonly saturation: Saturation;
  /** The load generator's (bench process's) and Redis's CPU per request in the measured run, ms. */
  readonly generatorCpuMsPerRequest: number;
  readonly redisCpuMsPerRequest: number;
  /** Share of the machine's cores busy with other processes during the measured run. */
  readonly foreignCpuShare: number;
  /**
   * The fixed job beside the server on its core during the measured run (pinned runs): slower than
   * at the start (machine.coreProbeAtStart), the host took part of the core, and the row's CPU per
   * iteration with it.
   */
  readonly coreProbe?: CoreProbeWindow;
  readonly load80?: {
    readonly targetRate: number;
    readonly achievedRate: number;
    readonly p50: number;
    readonly p99: number;
    readonly tokenStepP99?: number;
    readonly errors: number;
    readonly generatorCpuMsPerRequest: number;
    /**
     * The longest the load generator's own event loop was held during the run, ms: latency counts
     * from each request's scheduled start, so a stall of the generator (its GC, another process on
     * its core) shows up as latency as much as a stall of the server.
     */
    readonly generatorMaxDelayMs: number;
    readonly foreignCpuShare: number;
    /** Paced runs on a slow core, set aside for one on a faster core (as `slowCoreWindows` below): their p99 and errors. */
    readonly slowCoreWindows?: readonly { readonly coreRatio: number; readonly p99: number; readonly errors: number }[];
  };
  readonly redis?: RedisProbe;
  readonly errors: number;
  readonly errorSamples: string[];
  /**
   * A default-configuration row measured twice: its first window's server CPU per iteration, which
   * strayed from the bench configuration's row (test/bench/run.ts DEFAULTS_STRAY).
   */
  readonly measuredAgain?: { readonly firstCpuMsPerIteration: number };
  /**
   * Windows of this row measured on a slow core and set aside for one on a faster core (run.ts
   * SLOW_CORE_RETRIES): the fixed job beside the server as a multiple of the core's best of the
   * run, and what the server did in them.
   */
  readonly slowCoreWindows?: readonly { readonly coreRatio: number; readonly cpuMsPerIteration: number; readonly iterationsPerSecond: number }[];
  /**
   * The warm-up before the ramp and the measurement (test/bench/run.ts warmUp): server CPU per
   * iteration, ms, of each of its windows, and whether its last three agreed (else it stopped at
   * its most windows, and the row may be measured before the server was steady).
   */
  readonly warmUp?: { readonly windows: readonly number[]; readonly steady: boolean; readonly coreProbeMs?: readonly number[] };
  /** What this figure is held against in the table. */
  limit?: { name: string; value: number; ratio: number };
}

/**
 * Below this share of its core busy (its CPU time over the measured window, all threads; 1 is one
 * core), a row did not measure the server: something else set the rate.
 */
export const SERVER_SATURATED = 0.9;
/** A core at least this busy (by /proc/stat, whatever ran on it) had nothing left to give. */
export const CORE_FULL = 0.9;

/** A server is steady when this many warm-up windows in a row cost the same CPU per iteration within STEADY. */
export const STEADY_WINDOWS = 3;
export const STEADY = 1.1;

/** Whether the last STEADY_WINDOWS of `windows` (CPU per iteration) agree within STEADY. */
export function steady(windows: readonly number[]): boolean {
  const last = windows.slice(-STEADY_WINDOWS);
  return last.length === STEADY_WINDOWS && Math.max(...last) <= STEADY * Math.min(...last);
}

export interface Saturation {
  /** The server's CPU time over the measured window (server.cpuUtilization): 1 is one core, its own when pinned. */
  readonly serverBusy: number;
  /** Pinned runs: how busy core 0 (the servers') and core 1 (the load generator's and Redis's) were over the window. */
  readonly coreBusy?: readonly [number, number];
  /** serverBusy ≥ SERVER_SATURATED: the row's rate is the server's. */
  readonly saturated: boolean;
  /**
   * Not saturated while core 1 was full and core 0 was not: the load generator (with Redis beside
   * it) could send no more while the server's core had room, so the rate is the generator's and
   * only a lower bound of the server's. (With core 0 full as well, other processes took the
   * server's core: that row is not saturated, but not generator-bound.)
   */
  readonly generatorBound: boolean;
}

export function saturation(serverBusy: number, coreBusy?: readonly [number, number]): Saturation {
  const saturated = serverBusy >= SERVER_SATURATED;
  const generatorBound = !saturated && coreBusy !== undefined && coreBusy[1] >= CORE_FULL && coreBusy[0] < CORE_FULL;
  return { serverBusy, ...(coreBusy ? { coreBusy } : {}), saturated, generatorBound };
}

const percent = (share: number) => `${Math.round(share * 100)}%`;

/** Why a row that did not load its server fully had the rate it had (see Saturation). */
function shortOf({ coreBusy, generatorBound }: Saturation): string {
  if (generatorBound) return `generator-bound (core 1 ${percent(coreBusy![1])} busy)`;
  if (!coreBusy) return 'not saturated';
  const why = coreBusy[0] >= CORE_FULL ? 'other processes took the server\'s core' : 'neither core full: too few connections, or waiting';
  return `not saturated (core 0 ${percent(coreBusy[0])}, core 1 ${percent(coreBusy[1])} busy: ${why})`;
}

/** The scenario table's "server busy" cell: the share, and for a row that is not the server's, why. */
export function busyLabel(s: Saturation): string {
  return s.saturated ? percent(s.serverBusy) : `${percent(s.serverBusy)}: ${shortOf(s)}`;
}

/** Why a row's rate is not its server's, for a goal's note; undefined when it is. */
function unsaturated(s: ScenarioResult | undefined): string | undefined {
  if (!s || s.saturation.saturated) return undefined;
  return `the ${s.target} ${s.id} row's server was only ${percent(s.saturation.serverBusy)} busy, ${shortOf(s.saturation)}`;
}

export interface Goal {
  readonly id: string;
  readonly goal: string;
  readonly scenario: string;
  readonly measured: number | null;
  readonly limit: number | null;
  readonly ratio: number | null;
  /** e.g. "≤ 1.3×", "< 50 ms" */
  readonly target: string;
  readonly unit: string;
  /** null: not measured in this run. */
  readonly pass: boolean | null;
  readonly note?: string;
}

export interface Report {
  readonly schema: 1;
  readonly mode: 'full' | 'smoke';
  readonly startedAt: string;
  readonly wallSeconds: number;
  readonly machine: Machine;
  readonly settings: Record<string, unknown>;
  readonly limits: {
    rs256?: Rs256Limit;
    argon2id?: Argon2Limit;
    /** argon2id on the cores the servers run on (one hash at a time when they are pinned to one core): what login is held against. */
    argon2idServerCores?: Argon2Limit & { cores: number };
    redis?: RedisLimit;
  };
  readonly scenarios: ScenarioResult[];
  readonly memory: { latchkeyPeakMiB?: number; barePeakMiB?: number };
  /** `serve --workers 2` against one worker, iterations per second on the same scenario. */
  /** `failed`: a server of the scaling run did not start or serve (why); the rest of the report stands. */
  readonly scaling?:
    | { scenario: string; connections: number; oneWorker: number; twoWorkers: number; ratio: number; errors: number }
    | { scenario: string; connections: number; failed: string };
  readonly goals: Goal[];
  readonly profiles: (ProfileSummary & {
    scenario: string;
    goals: string[];
    iterations: number;
    /** The process's CPU time (all threads) during the profiled load. */
    processCpuMs: number;
    errors: number;
  })[];
  readonly notes: string[];
  readonly errors: number;
}

const r = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

export function find(scenarios: readonly ScenarioResult[], id: string, target: TargetKind = 'latchkey') {
  return scenarios.find((s) => s.id === id && s.target === target);
}

/** The baseline or limit each Latchkey figure is held against in the scenario table. */
export function attachLimits(scenarios: ScenarioResult[], limits: Report['limits']): void {
  const nearest: Record<string, string> = { 'introspect-jwt': 'introspect-opaque', 'revoke-jwt': 'revoke-opaque' };
  for (const scenario of scenarios) {
    if (scenario.target === 'bare') continue;
    if (scenario.id === 'login') {
      const argon2 = limits.argon2idServerCores;
      if (argon2) {
        const value = argon2.hashesPerSecond;
        const cores = argon2.cores === 1 ? 'the one core the server is pinned to' : `${argon2.cores} cores`;
        // By CPU too: a rate measured while something else used the core is not the core's rate.
        const byCpu = argon2.cpuMsPerHash && scenario.server.cpuMsPerIteration ? `; by CPU ${r(argon2.cpuMsPerHash / scenario.server.cpuMsPerIteration)}×: ${r(argon2.cpuMsPerHash, 2)} ms a hash` : '';
        scenario.limit = { name: `argon2id hashes/s (${cores}${byCpu})`, value, ratio: r(scenario.throughput / value) };
      }
      continue;
    }
    const baseId = nearest[scenario.id] ?? scenario.id;
    const base = find(scenarios, baseId, 'bare');
    if (base) {
      const name = baseId === scenario.id ? 'bare oidc-provider, same scenario' : `bare oidc-provider, ${baseId} (nearest)`;
      scenario.limit = { name, value: base.throughput, ratio: r(scenario.throughput / base.throughput) };
    }
  }
}

export function evaluateGoals(scenarios: readonly ScenarioResult[], limits: Report['limits'], tokenEndpointIds: readonly string[], hotPathIds: readonly string[], tokenSteps: Record<string, string>): Goal[] {
  const goals: Goal[] = [];
  const ratioGoal = (id: string, goal: string, scenario: string, measured: number | undefined, limit: number | undefined, min: number, note?: string) => {
    const ratio = measured !== undefined && limit ? r(measured / limit) : null;
    goals.push({
      id,
      goal,
      scenario,
      measured: measured ?? null,
      limit: limit ?? null,
      ratio,
      target: `≥ ${min}×`,
      unit: '/s',
      pass: ratio === null ? null : ratio >= min,
      ...(note ? { note } : {}),
    });
  };

  const ccJwt = find(scenarios, 'cc-jwt');
  const cpu = ccJwt?.server.cpuMsPerIteration;
  const signature = limits.rs256?.cpuMsPerSignature;
  const cpuRatio = cpu !== undefined && signature ? r(cpu / signature) : null;
  const bareCpu = find(scenarios, 'cc-jwt', 'bare')?.server.cpuMsPerIteration;
  goals.push({
    id: 'G1',
    goal: 'client_credentials JWT: server CPU per token ≤ 1.3 × one raw RS256 signature',
    scenario: 'cc-jwt',
    measured: cpu ?? null,
    limit: signature ?? null,
    ratio: cpuRatio,
    target: '≤ 1.3×',
    unit: 'ms CPU',
    pass: cpuRatio === null ? null : cpuRatio <= 1.3,
    ...(bareCpu !== undefined && signature
      ? { note: `the bare oidc-provider spends ${r(bareCpu, 3)} ms CPU per token in the same run (${r(bareCpu / signature)}× a signature)` }
      : {}),
  });
  const bareJwt = find(scenarios, 'cc-jwt', 'bare');
  const g2 = [unsaturated(ccJwt), unsaturated(bareJwt)].filter(Boolean).join('; ') || undefined;
  ratioGoal('G2', 'client_credentials JWT: throughput ≥ bare oidc-provider', 'cc-jwt', ccJwt?.throughput, bareJwt?.throughput, 1, g2);

  for (const [id, base] of [
    ['cc-opaque', 'cc-opaque'],
    ['introspect-opaque', 'introspect-opaque'],
    ['introspect-jwt', 'introspect-opaque'],
  ] as const) {
    const bareRow = find(scenarios, base, 'bare');
    const note = [id === base ? undefined : 'the bare provider cannot introspect JWT access tokens; held against its opaque introspection', unsaturated(find(scenarios, id)), unsaturated(bareRow)];
    ratioGoal('G3', `${id}: ≥ 0.8 × bare oidc-provider (in-memory) while using Redis`, id, find(scenarios, id)?.throughput, bareRow?.throughput, 0.8, note.filter(Boolean).join('; ') || undefined);
  }
  // G4 holds two rates of one server against each other; a rate is the server's only when the
  // server was saturated. A generator-bound document rate is a lower bound (a PASS at it stands, a
  // MISS does not), a generator-bound token rate the reverse; what cannot be judged is not measured.
  // No rate is extrapolated: the server CPU per iteration of the two goes into the note instead.
  for (const id of ['discovery', 'jwks']) {
    const doc = find(scenarios, id);
    const ratio = doc && ccJwt?.throughput ? r(doc.throughput / ccJwt.throughput) : null;
    const met = ratio === null ? null : ratio >= 10;
    const docShort = unsaturated(doc);
    const tokenShort = unsaturated(ccJwt);
    // Met: stands on a saturated token row. Missed: stands on a saturated document row.
    const undecidedBy = met === null ? undefined : met ? tokenShort : docShort;
    const pass = undecidedBy ? null : met;
    const notes: string[] = [];
    if (undecidedBy === docShort && docShort) notes.push(`not measured: ${docShort}, so ${fmt(doc!.throughput)}/s is what this run achieved, not the server's capacity`);
    else if (docShort) notes.push(`${docShort}: its rate is a lower bound`);
    if (undecidedBy === tokenShort && tokenShort) notes.unshift(`not measured: ${tokenShort}, so the token rate is a lower bound and the ratio an upper one`);
    else if (tokenShort) notes.push(`${tokenShort}: the token rate is a lower bound`);
    if (notes.length && doc?.server.cpuMsPerIteration && cpu) {
      notes.push(`by server CPU per iteration, ${fmt(doc.server.cpuMsPerIteration, 3)} ms against the token's ${fmt(cpu, 3)}: ${fmt(cpu / doc.server.cpuMsPerIteration, 2)}×`);
    }
    goals.push({
      id: 'G4',
      goal: `${id}: ≥ 10 × the token endpoint rate (client_credentials JWT)`,
      scenario: id,
      measured: doc?.throughput ?? null,
      limit: ccJwt?.throughput ?? null,
      ratio,
      target: '≥ 10×',
      unit: '/s',
      pass,
      ...(notes.length ? { note: notes.join('; ') } : {}),
    });
  }
  for (const id of tokenEndpointIds) {
    const s = find(scenarios, id);
    const p99 = s?.load80 ? (s.load80.tokenStepP99 ?? s.load80.p99) : undefined;
    // The same open loop at 80% of the bare provider's own peak: what the harness and the engine
    // alone show, so that a tail of the load generator's making is not taken for Latchkey's.
    const bare = find(scenarios, id, 'bare')?.load80;
    const bareP99 = bare ? (bare.tokenStepP99 ?? bare.p99) : undefined;
    goals.push({
      id: 'G5',
      goal: `${id}: p99 latency at 80% of peak < 50 ms${tokenSteps[id] ? ` (the ${tokenSteps[id]} request)` : ''}`,
      scenario: id,
      measured: p99 ?? null,
      limit: 50,
      ratio: p99 !== undefined ? r(p99 / 50) : null,
      target: '< 50 ms',
      unit: 'ms',
      pass: p99 === undefined ? null : p99 < 50,
      ...(bare && bareP99 !== undefined ? { note: `the bare oidc-provider at 80% of its own peak in the same run: p99 ${r(bareP99, 2)} ms @ ${r(bare.achievedRate)}/s` } : {}),
    });
  }
  for (const id of hotPathIds) {
    const s = find(scenarios, id);
    const step = tokenSteps[id];
    const trips = s?.redis ? (step ? s.redis.steps[step]?.roundTrips : s.redis.roundTripsPerIteration) : undefined;
    goals.push({
      id: 'G6',
      goal: `${id}: ≤ 3 Redis round trips per token request${step ? ` (the ${step} request)` : ''}`,
      scenario: id,
      measured: trips ?? null,
      limit: 3,
      ratio: trips !== undefined ? r(trips / 3) : null,
      target: '≤ 3',
      unit: 'round trips',
      pass: trips === undefined ? null : trips <= 3,
    });
  }
  // Issue 18: the default configuration (rate limits on) against the bare provider, and what the
  // rate limits add to a token request's round trips.
  for (const s of scenarios.filter((x) => x.target === 'defaults' && x.id !== 'login')) {
    const nearest: Record<string, string> = { 'introspect-jwt': 'introspect-opaque', 'revoke-jwt': 'revoke-opaque' };
    const again = s.measuredAgain
      ? `measured twice: the first window's ${s.measuredAgain.firstCpuMsPerIteration} ms CPU per iteration strayed from the bench configuration's ${find(scenarios, s.id)?.server.cpuMsPerIteration}`
      : undefined;
    const bareRow = find(scenarios, nearest[s.id] ?? s.id, 'bare');
    const short = [again, unsaturated(s), unsaturated(bareRow)].filter(Boolean).join('; ') || undefined;
    ratioGoal('G8', `${s.id}: default configuration (rate limits on) ≥ 0.9 × bare oidc-provider`, s.id, s.throughput, bareRow?.throughput, 0.9, short);
  }
  for (const id of tokenEndpointIds) {
    const step = tokenSteps[id];
    const tripsOf = (s: ScenarioResult | undefined) => (s?.redis ? (step ? s.redis.steps[step]?.roundTrips : s.redis.roundTripsPerIteration) : undefined);
    const on = tripsOf(find(scenarios, id, 'defaults'));
    const off = tripsOf(find(scenarios, id));
    const extra = on !== undefined && off !== undefined ? r(on - off) : undefined;
    if (on === undefined) continue;
    goals.push({
      id: 'G9',
      goal: `${id}: rate limits on add ≤ 1 Redis round trip per token request${step ? ` (the ${step} request)` : ''}`,
      scenario: id,
      measured: extra ?? null,
      limit: 1,
      ratio: null,
      target: '≤ 1',
      unit: 'round trips',
      pass: extra === undefined ? null : extra <= 1,
    });
  }
  // Issue 18: every scenario at least the bare provider's rate (cc-jwt is G2), and login against
  // the argon2id hash rate by CPU (what one login costs beyond its one hash), in both configurations.
  const nearestBare: Record<string, string> = { 'introspect-jwt': 'introspect-opaque', 'revoke-jwt': 'revoke-opaque' };
  for (const s of scenarios.filter((x) => x.target === 'latchkey' && x.id !== 'cc-jwt' && x.id !== 'login')) {
    const bareRow = find(scenarios, nearestBare[s.id] ?? s.id, 'bare');
    const note = [nearestBare[s.id] ? `held against the bare provider's ${nearestBare[s.id]}` : undefined, unsaturated(s), unsaturated(bareRow)];
    ratioGoal('G10', `${s.id}: ≥ 1 × bare oidc-provider`, s.id, s.throughput, bareRow?.throughput, 1, note.filter(Boolean).join('; ') || undefined);
  }
  const hash = limits.argon2idServerCores?.cpuMsPerHash;
  for (const s of scenarios.filter((x) => x.id === 'login' && x.target !== 'bare')) {
    const perLogin = s.server.cpuMsPerIteration;
    const ratio = hash && perLogin ? r(hash / perLogin) : null;
    goals.push({
      id: 'G11',
      goal: `login (${s.target === 'defaults' ? 'default configuration' : 'bench configuration'}): ≥ 0.9 × the argon2id hash rate, by CPU (one hash's CPU ÷ one login's)`,
      scenario: 'login',
      measured: perLogin ?? null,
      limit: hash ?? null,
      ratio,
      target: '≥ 0.9×',
      unit: 'ms CPU',
      pass: ratio === null ? null : ratio >= 0.9,
    });
  }
  const login = find(scenarios, 'login')?.redis?.state;
  const session = login?.find((k) => k.kind === 'Session')?.bytesPerKey;
  const grant = login?.find((k) => k.kind === 'Grant')?.bytesPerKey;
  goals.push({
    id: 'G7',
    goal: 'Redis state per session and per grant measured (bytes, MEMORY USAGE)',
    scenario: 'login',
    measured: session ?? null,
    limit: grant ?? null,
    ratio: null,
    target: 'measured',
    unit: 'bytes (session / grant)',
    pass: session !== undefined && grant !== undefined ? true : null,
  });
  return goals;
}

// --- Rendering -------------------------------------------------------------------------------------

const fmt = (value: number | null | undefined, digits = 1) => {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return String(r(value, digits));
};
const verdict = (pass: boolean | null) => (pass === null ? 'n/a' : pass ? 'PASS' : 'MISS');

function table(headers: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

function scenarioRows(report: Report): string[][] {
  return report.scenarios.map((s) => [
    s.number,
    s.id,
    s.target,
    String(s.connections),
    s.warmUp ? `${s.warmUp.windows.length}${s.warmUp.steady ? '' : ', not steady'}` : '–',
    fmt(s.throughput),
    fmt(s.latency.p50, 2),
    fmt(s.latency.p99, 2),
    String(s.errors),
    fmt(s.server.cpuMsPerIteration, 3),
    busyLabel(s.saturation),
    s.limit ? `${fmt(s.limit.value)} (${s.limit.name})` : '–',
    s.limit ? `${fmt(s.limit.ratio, 2)}×` : '–',
    s.load80 ? `${fmt(s.load80.tokenStepP99 ?? s.load80.p99, 2)} @ ${fmt(s.load80.achievedRate)}/s (generator held ≤ ${fmt(s.load80.generatorMaxDelayMs, 1)} ms)` : '–',
    `${fmt(Math.max(s.foreignCpuShare, s.load80?.foreignCpuShare ?? 0) * 100, 0)}%`,
  ]);
}

const SCENARIO_HEADERS = ['#', 'scenario', 'server', 'conns', 'warm-up s', 'per s', 'p50 ms', 'p99 ms', 'errors', 'server CPU ms/iter', 'server busy', 'limit (same run)', 'ratio', 'p99 ms at 80% of peak', 'CPU taken by others'];

function goalRows(goals: readonly Goal[]): string[][] {
  return goals.map((g) => [
    g.id,
    g.goal,
    `${fmt(g.measured, 3)} ${g.unit}`,
    g.id === 'G7' ? `grant ${fmt(g.limit, 0)} bytes` : fmt(g.limit, 3),
    g.ratio === null ? '–' : `${fmt(g.ratio, 2)}×`,
    g.target,
    verdict(g.pass),
  ]);
}

export function markdown(report: Report): string {
  const m = report.machine;
  const out: string[] = [];
  out.push('# Latchkey benchmark results', '');
  out.push(
    `Run ${report.startedAt} (${report.mode} mode, ${fmt(report.wallSeconds, 0)} s) with \`npm run bench\`. ` +
      `Machine: ${m.cpuModel}, ${m.cores} cores, ${fmt(m.memoryGiB, 0)} GiB; Node ${m.node}; Redis ${m.redis}; ${m.os}. ` +
      `Load average at start ${m.loadAverageAtStart.map((v) => v.toFixed(2)).join(' ')}, at end ${m.loadAverageAtEnd.map((v) => v.toFixed(2)).join(' ')}.`,
    '',
  );
  const steady = (x: Machine['steadinessAtStart']) => `${fmt(x.minMs)}/${fmt(x.medianMs)}/${fmt(x.maxMs)} ms`;
  out.push(
    `Steadiness: a fixed CPU job (SHA-256 of 20 MB) took ${steady(m.steadinessAtStart)} (min/median/max) at the start and ${steady(m.steadinessAtEnd)} at the end; ` +
      'on a quiet machine these agree within a few percent.',
    '',
  );
  const spread = Math.max(m.steadinessAtStart.maxMs, m.steadinessAtEnd.maxMs) / Math.min(m.steadinessAtStart.minMs, m.steadinessAtEnd.minMs);
  if (spread > 1.3) {
    out.push(`> **The machine was not steady**: the same CPU job took up to ${fmt(spread, 2)}× its fastest time. Latency percentiles (p99 above all) and ratios between runs made minutes apart are inflated and shaky; re-run on an idle machine before quoting them.`, '');
  }
  const busiest = Math.max(0, ...report.scenarios.flatMap((s) => [s.foreignCpuShare, s.load80?.foreignCpuShare ?? 0]));
  if (busiest > 0.1) {
    out.push(`> **Other processes were using the machine**: up to ${fmt(busiest * 100, 0)}% of its cores during a measured run (see \`foreignCpuShare\` in latest.json). Treat these figures as provisional.`, '');
  }
  const slowCore = slowCoreRows(report.scenarios, m.coreProbeAtStart);
  if (slowCore.length) {
    out.push(
      `> **The servers' core was slow** in the measured run of ${slowCore.map((x) => `${x.id} (${x.target}, ${fmt(x.ratio, 2)}×)`).join(', ')}: a fixed CPU job beside the server took that many times its best time of the run (\`coreProbe\` in latest.json). The core did less work for the same time (the host took part of it, or processes beside the server fought it for its caches), and those rows' CPU per iteration is inflated with it (a row whose core read slow as it was measured was measured up to ${SLOW_CORE_RETRIES} times more, for a faster core): measure them again.`,
      '',
    );
  }
  const setAside = report.scenarios.filter((s) => s.slowCoreWindows?.length);
  const pacedAside = report.scenarios.filter((s) => s.load80?.slowCoreWindows?.length);
  if (setAside.length || pacedAside.length) {
    const measuredText = setAside
      .map((s) => `${s.id} (${s.target}: ${s.slowCoreWindows!.map((w) => `${fmt(w.coreRatio, 2)}× with ${w.cpuMsPerIteration} ms CPU`).join(', ')} set aside, ${s.server.cpuMsPerIteration} ms kept)`)
      .join(', ');
    const pacedText = pacedAside
      .map((s) => `${s.id} (${s.target}: ${s.load80!.slowCoreWindows!.map((w) => `${fmt(w.coreRatio, 2)}× with p99 ${w.p99} ms${w.errors ? ` and ${w.errors} errors` : ''}`).join(', ')} set aside, p99 ${s.load80!.p99} ms kept)`)
      .join(', ');
    out.push(
      `Run again because the core was slow (the fixed job beside the server over ${SLOW_CORE}× its best time of the run), the window on the fastest core kept (\`slowCoreWindows\` in latest.json): ${[
        measuredText && `measured, ${measuredText}`,
        pacedText && `paced at 80% of peak, ${pacedText}`,
      ]
        .filter(Boolean)
        .join('; ')}.`,
      '',
    );
  }
  if (report.mode === 'smoke') out.push('> Smoke run: about a second per scenario. It proves the harness works; its figures mean little.', '');

  const passed = report.goals.filter((g) => g.pass === true).length;
  const missed = report.goals.filter((g) => g.pass === false).length;
  out.push('## Goals (issues #7 and #18)', '', `${passed} met, ${missed} missed, ${report.goals.length - passed - missed} not measured.`, '');
  out.push(table(['', 'goal', 'measured', 'limit', 'ratio', 'target', 'result'], goalRows(report.goals)), '');
  const notes = report.goals.filter((g) => g.note);
  for (const g of notes) out.push(`- ${g.id} ${g.scenario}: ${g.note}.`);
  if (notes.length) out.push('');

  out.push('## Scenarios', '');
  out.push(
    '"per s" is iterations per second: tokens, documents, or whole flows for the multi-step scenarios (5: authorize + token; 6: four requests). ' +
      'Latency is per iteration, measured closed-loop at the connection count that gave the peak. ' +
      '"warm-up s": before its ramp and measurement, each server ran the scenario in 1-s windows until three in a row cost the same CPU per iteration within 10% (five at least) (V8 compiles a path\'s functions fully only after thousands of requests; the windows are in latest.json); "not steady": it had not after 20. ' +
      '"server CPU" is the server process\'s CPU time (user + system, all its threads) per iteration. ' +
      `"server busy" is that CPU time over the measured window (100%: its whole core); a row below ${percent(SERVER_SATURATED)} did not measure the server, and says why: "generator-bound" when core 1 (the load generator and Redis) was at least ${percent(CORE_FULL)} busy, and the server's was not, so the rate is the generator's and only a lower bound of the server's. ` +
      '"p99 at 80% of peak" is the token request\'s p99 in an open-loop run at 80% of the peak rate (Poisson arrivals), the rate achieved, and the longest the load generator\'s own event loop was held meanwhile (latency counts from the scheduled start, so a stall of the generator counts as one of the server). ' +
      '"CPU taken by others": the share of the machine\'s cores that processes other than the server, the bench and Redis used during the measured runs (from /proc/stat); above a few percent, the row is not a clean measurement.',
    '',
  );
  out.push(table(SCENARIO_HEADERS, scenarioRows(report)), '');
  const multi = report.scenarios.filter((s) => Object.keys(s.measure.steps).length > 1);
  if (multi.length) {
    out.push('Per request in the multi-step scenarios (closed loop):', '');
    const rows = multi.flatMap((s) =>
      Object.entries(s.measure.steps).map(([step, l]) => [s.id, s.target, step, fmt(l.p50, 2), fmt(l.p99, 2), String(l.errors)]),
    );
    out.push(table(['scenario', 'server', 'request', 'p50 ms', 'p99 ms', 'errors'], rows), '');
  }

  out.push('## Limits, measured in the same run', '');
  const l = report.limits;
  const limitRows: string[][] = [];
  if (l.rs256) {
    limitRows.push(['RS256 signatures/s, jose, all cores', `${fmt(l.rs256.signaturesPerSecond)} (${l.rs256.threads} worker threads)`]);
    limitRows.push(['RS256 signature, CPU time (one thread)', `${fmt(l.rs256.cpuMsPerSignature, 3)} ms (${fmt(l.rs256.singleThreadSignaturesPerSecond)}/s on one thread)`]);
    limitRows.push(['RS256 verifications/s, jose, all cores', fmt(l.rs256.verificationsPerSecond)]);
  }
  for (const argon2 of [l.argon2id, l.argon2idServerCores?.concurrency === l.argon2id?.concurrency ? undefined : l.argon2idServerCores]) {
    if (!argon2) continue;
    limitRows.push([
      `argon2id hashes/s (m=${argon2.memoryCost} KiB, t=${argon2.timeCost}, p=${argon2.parallelism})`,
      `${fmt(argon2.hashesPerSecond)} (${argon2.concurrency} at a time${argon2.cpus ? `, pinned to core ${argon2.cpus}` : ''}${argon2.cpuMsPerHash ? `; ${fmt(argon2.cpuMsPerHash, 2)} ms CPU each` : ''})`,
    ]);
  }
  if (l.redis) {
    if (l.redis.available) {
      limitRows.push(['redis-benchmark GET/s, 50 connections', fmt(l.redis.getPerSecond)]);
      limitRows.push(['redis-benchmark SET/s, 50 connections', fmt(l.redis.setPerSecond)]);
      limitRows.push(['redis-benchmark GET/s, one connection (round trip)', `${fmt(l.redis.getPerSecondOneConnection)} (p50 ${fmt(l.redis.roundTripMs, 3)} ms)`]);
    } else {
      limitRows.push(['redis-benchmark', l.redis.note ?? 'not measured']);
    }
  }
  out.push(table(['limit', 'value'], limitRows), '');
  out.push('The bare oidc-provider baselines are the `bare` rows of the scenario table.', '');

  const probed = report.scenarios.filter((s) => s.redis);
  if (probed.length) {
    out.push('## Redis per request', '');
    out.push(
      'One iteration at a time on one connection. Round trips: Redis socket reads per request (commands that ioredis pipelines together count once; a request during which a timer of the server sent a command, its heartbeat or key-ring poll, is left out). ' +
        'Commands: what Redis ran (INFO commandstats deltas; the commands a Lua script runs are counted as well as its EVALSHA). ' +
        'Stored: keys the iterations created, by MEMORY USAGE. Redis-bound ceiling: redis-benchmark GET/s ÷ commands per iteration.',
      '',
    );
    const rows = probed.map((s) => {
      const p = s.redis!;
      const steps = Object.entries(p.steps);
      const trips = steps.length > 1 ? steps.map(([name, st]) => `${name} ${fmt(st.roundTrips)}`).join(', ') : fmt(p.roundTripsPerIteration);
      const mix = steps.map(([name, st]) => (steps.length > 1 ? `${name}: ` : '') + (st.sample.join(', ') || 'none')).join('; ');
      const ceiling = l.redis?.getPerSecond && p.commandsPerIteration ? fmt(l.redis.getPerSecond / p.commandsPerIteration) : '–';
      return [s.target === 'defaults' ? `${s.id} (defaults)` : s.id, trips, fmt(p.commandsPerIteration), mix, fmt(p.keysCreatedPerIteration), fmt(p.bytesPerIteration, 0), ceiling];
    });
    out.push(table(['scenario', 'round trips', 'commands', 'commands of one iteration', 'keys created', 'bytes stored', 'Redis-bound ceiling /s'], rows), '');

    out.push('## State stored in Redis', '', 'Per kind of key, from the scenario that creates it (bytes by MEMORY USAGE, TTL when measured).', '');
    const seen = new Map<string, string[]>();
    for (const s of probed.filter((x) => x.target === 'latchkey')) {
      for (const k of s.redis!.state) {
        if (!seen.has(k.kind)) seen.set(k.kind, [k.kind, fmt(k.bytesPerKey, 0), k.ttlSeconds < 0 ? 'none' : `${fmt(k.ttlSeconds, 0)} s`, s.id]);
      }
    }
    out.push(table(['kind', 'bytes per key', 'TTL', 'measured in'], [...seen.values()]), '');
  }

  if (report.scaling) {
    const sc = report.scaling;
    out.push('## Scaling', '');
    out.push(
      'failed' in sc
        ? `\`serve --workers 2\` against one worker, ${sc.scenario}: **not measured**, a server of the run failed: ${sc.failed}`
        : `\`serve --workers 2\` against one worker, ${sc.scenario} at ${sc.connections} connections (closed loop, not pinned): ` +
            `${fmt(sc.oneWorker)}/s with one worker, ${fmt(sc.twoWorkers)}/s with two: **${fmt(sc.ratio, 2)}×**` +
            `${sc.errors ? ` (${sc.errors} errors)` : ''}. The load generator runs on the same cores, so two workers cannot reach 2×.`,
      '',
    );
  }

  out.push('## Memory', '');
  out.push(`Peak resident set (VmHWM) of the server process over the whole run: Latchkey ${fmt(report.memory.latchkeyPeakMiB)} MiB, bare oidc-provider ${fmt(report.memory.barePeakMiB)} MiB.`, '');

  if (report.profiles.length) {
    out.push('## Profiles of the missed goals', '');
    for (const p of report.profiles) {
      out.push(`### ${p.scenario} (${p.goals.join(', ')})`, '');
      const elsewhere = Math.max(0, p.processCpuMs - p.busyMs);
      out.push(
        `\`node --cpu-prof\` of the Latchkey process under the scenario's closed-loop load: ${fmt(p.iterations, 0)} iterations, ` +
          `${fmt(p.processCpuMs / Math.max(1, p.iterations), 3)} ms process CPU each (profiling adds overhead). ` +
          `The JavaScript thread was busy ${fmt(p.busyMs, 0)} ms of ${fmt(p.sampledMs, 0)} ms sampled; the process used ${fmt(p.processCpuMs, 0)} ms CPU in all, ` +
          `so about ${fmt(elsewhere, 0)} ms ran on other threads (libuv's pool: WebCrypto RSA signing, argon2; V8's GC helpers), which a CPU profile does not sample. ` +
          'Samples are taken on the wall clock: on a busy machine, time the thread spent waiting for a core is counted where it was waiting. ' +
          `File: \`${p.file}\` (open it in Chrome DevTools → Performance).`,
        '',
      );
      out.push(
        'Inclusive: share of JS-thread busy time with the component anywhere on the stack. Koa middleware (koa, koa-compose, @koa/router, latchkey) ' +
          'calls the rest of the chain from inside itself, so its inclusive share contains everything after it; for libraries that do not call back ' +
          '(jose, ioredis, pino, node:crypto) it is their own cost.',
        '',
      );
      // "node core" and "native" sit under nearly every stack: only their self time says anything.
      const components = p.components.filter((c) => c.inclusivePct >= 1 || c.selfPct >= 1).slice(0, 14);
      out.push(
        table(
          ['component', 'inclusive % of JS-thread busy', 'self %'],
          components.map((c) => [c.component, ['node core', 'native'].includes(c.component) ? '–' : fmt(c.inclusivePct), fmt(c.selfPct)]),
        ),
        '',
      );
      out.push(table(['top frames by self time', 'component', 'self %'], p.topFrames.map((f) => [f.frame, f.component, fmt(f.selfPct)])), '');
    }
  }

  out.push('## How it is measured', '');
  for (const note of report.notes) out.push(`- ${note}`);
  out.push('');
  return out.join('\n');
}

/** The same tables for the terminal. */
export function terminal(report: Report): string {
  const render = (headers: string[], rows: string[][]) => {
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
    return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
  };
  return [
    render(SCENARIO_HEADERS, scenarioRows(report)),
    '',
    render(['', 'goal', 'measured', 'limit', 'ratio', 'target', 'result'], goalRows(report.goals)),
  ].join('\n');
}
