/**
 * Load generation. A workload is a sequence of HTTP steps (one for a token request, several for a
 * sign-in flow); one pass through the steps is an iteration. Three ways to run one:
 *
 * - closedLoop: N connections each sending the next request as soon as the previous answer
 *   arrives. This finds the peak throughput. By default on the lean client of raw-http.ts, which
 *   costs the generator 0.5-0.8x autocannon's CPU a request: with autocannon (still there,
 *   BENCH_GENERATOR=autocannon, to compare) the generator's core was full before a pinned server's
 *   was on discovery and JWKS (docs/performance.md, perf-generator).
 * - paced: an open loop at a fixed arrival rate (Poisson arrivals), each iteration started at its
 *   scheduled time whether or not earlier ones have finished, latency counted from the scheduled
 *   time. This is "latency under N% of peak". autocannon's own rate limit is not used for it: it
 *   lets each connection send its quota back to back at the start of every second and then
 *   pauses (httpClient.js, reqsMadeThisSecond), which measures a saturated burst, not a steady
 *   80% load.
 * - sequential: one iteration at a time, with a hook around every step (Redis round trips).
 */
import { performance } from 'node:perf_hooks';
import autocannon, { type AutocannonRequest } from 'autocannon';
import { ConnectionPool } from './raw-http.js';

export type Context = Record<string, string>;

export interface Request {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

export interface Response {
  readonly status: number;
  /** Lower-case names; repeated headers (Set-Cookie) as arrays. */
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export interface Step {
  readonly name: string;
  /**
   * The request for this step. `ctx` is fresh at the first step of every iteration and carries what
   * earlier steps kept. Returning undefined (only allowed after the first step) ends the iteration.
   */
  request(ctx: Context): Request | undefined;
  /** Checks the answer and keeps what later steps need; returns a description of what is wrong. */
  check(response: Response, ctx: Context): string | undefined;
  /**
   * Open loop only: waits for what request() needs (an idle refresh-token chain), so that an
   * arrival queues rather than fails when the server is behind. The wait counts as latency.
   */
  acquire?(ctx: Context): Promise<void>;
}

export interface Workload {
  readonly steps: readonly Step[];
}

export interface Latency {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
  readonly max: number;
}

export interface PhaseResult {
  readonly kind: 'closed' | 'paced';
  readonly connections?: number;
  /** Paced runs: the arrival rate asked for (iterations/s). */
  readonly targetRate?: number;
  readonly seconds: number;
  readonly requests: number;
  readonly iterations: number;
  readonly requestsPerSecond: number;
  readonly iterationsPerSecond: number;
  /** Latency of a whole iteration (for a one-step workload, of a request), ms. */
  readonly latency: Latency;
  readonly steps: Record<string, Latency & { errors: number }>;
  readonly errors: number;
  readonly errorSamples: string[];
}

const round = (value: number, digits = 3) => Math.round(value * 10 ** digits) / 10 ** digits;

export function summarize(values: number[]): Latency {
  if (!values.length) return { count: 0, p50: 0, p99: 0, mean: 0, max: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return { count: sorted.length, p50: round(at(0.5)), p99: round(at(0.99)), mean: round(sum / sorted.length), max: round(sorted[sorted.length - 1]!) };
}

/** Collects latencies and errors per step and per iteration. */
class Recorder {
  readonly #steps = new Map<string, { latencies: number[]; errors: number }>();
  readonly #iterations: number[] = [];
  readonly errorSamples: string[] = [];
  errors = 0;
  requests = 0;

  constructor(workload: Workload) {
    for (const step of workload.steps) this.#steps.set(step.name, { latencies: [], errors: 0 });
  }

  response(step: string, ms: number, error: string | undefined) {
    this.requests += 1;
    const entry = this.#steps.get(step)!;
    entry.latencies.push(ms);
    if (error) this.fail(step, error);
  }

  fail(step: string, error: string) {
    this.errors += 1;
    const entry = this.#steps.get(step);
    if (entry) entry.errors += 1;
    if (this.errorSamples.length < 5) this.errorSamples.push(`${step}: ${error}`.slice(0, 300));
  }

  iteration(ms: number) {
    this.#iterations.push(ms);
  }

  result(kind: PhaseResult['kind'], seconds: number, extra: { connections?: number; targetRate?: number }): PhaseResult {
    const steps: PhaseResult['steps'] = {};
    for (const [name, entry] of this.#steps) steps[name] = { ...summarize(entry.latencies), errors: entry.errors };
    return {
      kind,
      ...extra,
      seconds: round(seconds),
      requests: this.requests,
      iterations: this.#iterations.length,
      // A window in which no answer came (a short smoke window on a busy machine) has no length: 0/s, not NaN.
      requestsPerSecond: seconds > 0 ? round(this.requests / seconds, 1) : 0,
      iterationsPerSecond: seconds > 0 ? round(this.#iterations.length / seconds, 1) : 0,
      latency: summarize(this.#iterations),
      steps,
      errors: this.errors,
      errorSamples: this.errorSamples,
    };
  }
}

const lowerCase = (headers: Record<string, string | string[]>) => {
  const out: Response['headers'] = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
};

/** Which client drives the closed loop. */
export type Generator = 'raw' | 'autocannon';

export const GENERATORS: readonly Generator[] = ['raw', 'autocannon'];

/** The closed loop's client unless a run says otherwise: BENCH_GENERATOR, else the lean one. */
export function defaultGenerator(env: NodeJS.ProcessEnv = process.env): Generator {
  const asked = env.BENCH_GENERATOR ?? 'raw';
  if (!GENERATORS.includes(asked as Generator)) throw new Error(`BENCH_GENERATOR is ${GENERATORS.join(' or ')}, not ${asked}`);
  return asked as Generator;
}

export interface ClosedLoopOptions {
  readonly connections: number;
  /** Seconds to run; ignored when `amount` is given. */
  readonly seconds: number;
  /** Stop after this many requests in all (for workloads that use up a pool of tokens). */
  readonly amount?: number;
  /** The client; defaultGenerator() when not given. */
  readonly generator?: Generator;
}

/** Closed loop: as fast as the server answers, on N keep-alive connections. */
export function closedLoop(base: string, workload: Workload, options: ClosedLoopOptions): Promise<PhaseResult> {
  return (options.generator ?? defaultGenerator()) === 'raw' ? rawClosedLoop(base, workload, options) : autocannonLoop(base, workload, options);
}

/**
 * Closed loop on the lean client (raw-http.ts): N loops, each running iterations one after another
 * on a pool of N keep-alive connections opened up front, until the time is up (an iteration under
 * way then finishes) or `amount` requests were sent (as autocannon's amount: an iteration cut
 * short by it does not count). Latency counts from an iteration's first request.
 */
async function rawClosedLoop(base: string, workload: Workload, options: ClosedLoopOptions): Promise<PhaseResult> {
  const pool = connectionPool(base, options.connections);
  await pool.open(options.connections);
  const recorder = new Recorder(workload);
  const started = performance.now();
  const end = started + options.seconds * 1000;
  const amount = options.amount;
  let sent = 0;
  let lastResponse = started;
  const mayRequest = () => (amount === undefined ? true : sent++ < amount);
  const more = () => (amount === undefined ? performance.now() < end : sent < amount);
  const loop = async () => {
    while (more()) {
      await iterate(pool, workload, recorder, performance.now(), undefined, mayRequest);
      lastResponse = performance.now();
    }
  };
  await Promise.all(Array.from({ length: options.connections }, loop));
  pool.close();
  return recorder.result('closed', (lastResponse - started) / 1000, { connections: options.connections });
}

/** Closed loop with autocannon (as a library). */
function autocannonLoop(base: string, workload: Workload, options: ClosedLoopOptions): Promise<PhaseResult> {
  const recorder = new Recorder(workload);
  // autocannon calls onResponse, then (synchronously, same call stack) emits 'response' with the
  // latency; this carries the step and its verdict from the one to the other.
  let last: { step: string; error: string | undefined; ctx: Context; final: boolean } | undefined;
  const lastStep = workload.steps.length - 1;
  const requests: AutocannonRequest[] = workload.steps.map((step, index) => ({
    setupRequest: (defaults, ctx) => {
      if (index > 0 && ctx.failed) return undefined;
      if (index === 0) ctx.elapsed = '0';
      const request = step.request(ctx);
      if (!request) return undefined;
      return { ...defaults, method: request.method, path: request.path, headers: { ...request.headers }, body: request.body ?? '' };
    },
    onResponse: (status, body, ctx, headers) => {
      let error: string | undefined;
      try {
        error = step.check({ status, headers: lowerCase(headers), body: String(body) }, ctx);
      } catch (thrown) {
        error = `check threw: ${(thrown as Error).message}`;
      }
      if (error) ctx.failed = '1';
      last = { step: step.name, error, ctx, final: index === lastStep };
    },
  }));
  const started = performance.now();
  let lastResponse = started;
  return new Promise((done, fail) => {
    const instance = autocannon(
      {
        url: base,
        connections: options.connections,
        duration: options.seconds,
        ...(options.amount ? { amount: options.amount } : {}),
        timeout: 10,
        sampleInt: 100,
        requests,
        // autocannon keeps the built request on the request objects, which all connections share;
        // every connection builds its first request at construction and then sends whichever was
        // built last. Give each connection its own copies and rebuild its first request with its
        // own context (a pooled refresh token must not be sent by two connections).
        setupClient: (client) => {
          const iterator = (client as { requestIterator: { requests: object[]; currentRequest: object; rebuildRequest(): void } }).requestIterator;
          iterator.requests = iterator.requests.map((request) => ({ ...request }));
          iterator.currentRequest = iterator.requests[0]!;
          iterator.rebuildRequest();
        },
      },
      (error) => {
        if (error) return fail(error);
        done(recorder.result('closed', (lastResponse - started) / 1000, { connections: options.connections }));
      },
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
      lastResponse = performance.now();
      if (!last) return;
      const { step, error, ctx, final } = last;
      last = undefined;
      recorder.response(step, ms, error);
      const elapsed = Number(ctx.elapsed ?? 0) + ms;
      ctx.elapsed = String(elapsed);
      if (final && !ctx.failed) recorder.iteration(elapsed);
    });
    instance.on('reqError', (error: Error) => recorder.fail('connection', error.message));
  });
}

/** A small seeded generator, so that two paced runs at one rate see the same arrivals. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function connectionPool(base: string, max = Infinity): ConnectionPool {
  const url = new URL(base);
  return new ConnectionPool(url.hostname, Number(url.port), max);
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Runs one iteration's steps in order; returns when it is over (whatever the outcome). */
async function iterate(
  pool: ConnectionPool,
  workload: Workload,
  recorder: Recorder,
  scheduled: number,
  onIteration?: (scheduled: number, ms: number) => void,
  mayRequest?: () => boolean,
) {
  const ctx: Context = {};
  for (const [index, step] of workload.steps.entries()) {
    const start = index === 0 ? scheduled : performance.now();
    await step.acquire?.(ctx);
    const request = step.request(ctx);
    if (!request || (mayRequest && !mayRequest())) return;
    let response: Response;
    try {
      response = await pool.request(request);
    } catch (error) {
      recorder.fail(step.name, (error as Error).message);
      return;
    }
    let error: string | undefined;
    try {
      error = step.check(response, ctx);
    } catch (thrown) {
      error = `check threw: ${(thrown as Error).message}`;
    }
    recorder.response(step.name, performance.now() - start, error);
    if (error) return;
  }
  const ms = performance.now() - scheduled;
  recorder.iteration(ms);
  onIteration?.(scheduled, ms);
}

/**
 * Connections of the open-loop generator, like a client's pool or a reverse proxy's upstream
 * pool. Without a bound, every stall opens more connections, each costing the server a handshake
 * and its own reads, and a short hiccup at 80% load turns into seconds of backlog.
 */
export const PACED_CONNECTIONS = 32;

/**
 * Open loop: iterations arrive at `rate` per second (exponential gaps), each on its own regardless
 * of how many are still running, for `seconds`. Latency runs from the scheduled start, so a
 * server (or generator) that falls behind shows up in it rather than silently lowering the rate;
 * that includes waiting for one of the PACED_CONNECTIONS connections.
 */
export async function paced(
  base: string,
  workload: Workload,
  rate: number,
  seconds: number,
  maxConnections = PACED_CONNECTIONS,
  onIteration?: (scheduled: number, ms: number) => void,
): Promise<PhaseResult> {
  const pool = connectionPool(base, maxConnections);
  await pool.open(maxConnections);
  const recorder = new Recorder(workload);
  const next = random(0x1a7c4e);
  const running = new Set<Promise<void>>();
  const start = performance.now();
  const end = start + seconds * 1000;
  let arrival = start;
  let dropped = 0;
  while (arrival < end) {
    const now = performance.now();
    while (arrival <= now && arrival < end) {
      if (running.size >= 2000) {
        dropped += 1; // the server is far behind; do not pile up without bound
      } else {
        const run = iterate(pool, workload, recorder, arrival, onIteration).finally(() => running.delete(run));
        running.add(run);
      }
      arrival += (-Math.log(1 - next()) * 1000) / rate;
    }
    await sleep(Math.min(Math.max(arrival - performance.now(), 0), 5));
  }
  await Promise.race([Promise.all(running), sleep(15_000)]);
  pool.close();
  if (dropped) {
    recorder.fail('arrivals', `${dropped} arrivals dropped: more than 2000 in flight`);
    recorder.errors += dropped - 1;
  }
  return recorder.result('paced', seconds, { targetRate: round(rate, 1) });
}

/** Hooks around every request of a sequential run. */
export interface StepHooks {
  before?(step: Step): Promise<void>;
  after?(step: Step): Promise<void>;
}

/** One iteration after another on one connection. */
export async function sequential(base: string, workload: Workload, iterations: number, hooks: StepHooks = {}): Promise<PhaseResult> {
  const pool = connectionPool(base);
  const recorder = new Recorder(workload);
  const started = performance.now();
  for (let i = 0; i < iterations; i += 1) {
    const ctx: Context = {};
    const iterationStart = performance.now();
    let ok = true;
    for (const step of workload.steps) {
      await step.acquire?.(ctx);
      const request = step.request(ctx);
      if (!request) {
        ok = false;
        break;
      }
      await hooks.before?.(step);
      const start = performance.now();
      try {
        const response = await pool.request(request);
        const error = step.check(response, ctx);
        recorder.response(step.name, performance.now() - start, error);
        if (error) ok = false;
      } catch (error) {
        recorder.fail(step.name, (error as Error).message);
        ok = false;
      }
      await hooks.after?.(step);
      if (!ok) break;
    }
    if (ok) recorder.iteration(performance.now() - iterationStart);
  }
  pool.close();
  return recorder.result('closed', (performance.now() - started) / 1000, { connections: 1 });
}
