/**
 * What a scenario costs Redis, found by running it one iteration at a time on one connection:
 *
 * - round trips per request: Redis's own count of socket reads (INFO stats total_reads_processed)
 *   between two INFO calls around each request. With ioredis auto-pipelining, commands sent in
 *   one tick share a read, so this counts what the request waits for, not the commands;
 * - commands per request and which: INFO commandstats deltas over the same interval (Redis counts
 *   the commands a Lua script runs as well as the EVALSHA that ran it, so both are listed);
 * - state: the keys the iterations created (SCAN before and after), their MEMORY USAGE and TTL.
 *
 * Both counts come from one INFO call on the inspector's own connection: no MONITOR stream, whose
 * second connection (and its teardown under load) made the harness die now and then.
 */
import { Redis } from 'ioredis';
import { sequential, type Step, type Workload } from './load.js';

export class RedisInspector {
  readonly client: Redis;
  readonly url: string;

  constructor(url: string) {
    this.url = url;
    this.client = new Redis(url, { enableAutoPipelining: false, maxRetriesPerRequest: 1 });
  }

  async info(...sections: string[]): Promise<Record<string, string>> {
    const text = await (this.client.info as (...args: string[]) => Promise<string>)(...sections);
    const out: Record<string, string> = {};
    for (const line of text.split('\r\n')) {
      const at = line.indexOf(':');
      if (at > 0) out[line.slice(0, at)] = line.slice(at + 1);
    }
    return out;
  }

  /** Socket reads and calls per command so far, from one INFO call. */
  async counters(): Promise<Counters> {
    const info = await this.info('stats', 'commandstats');
    const calls = new Map<string, number>();
    for (const [field, value] of Object.entries(info)) {
      if (!field.startsWith('cmdstat_')) continue;
      calls.set(field.slice('cmdstat_'.length).toUpperCase(), Number(/calls=(\d+)/.exec(value)?.[1] ?? 0));
    }
    return { reads: Number(info.total_reads_processed), calls };
  }

  async cpuSeconds(): Promise<number> {
    const cpu = await this.info('cpu');
    return Number(cpu.used_cpu_sys) + Number(cpu.used_cpu_user);
  }

  async version(): Promise<string> {
    return (await this.info('server')).redis_version ?? 'unknown';
  }

  async keys(prefix: string): Promise<Set<string>> {
    const keys = new Set<string>();
    let cursor = '0';
    do {
      const [next, batch] = await this.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of batch) keys.add(key);
    } while (cursor !== '0');
    return keys;
  }

  /** MEMORY USAGE (all samples) and TTL of each key. */
  async sizes(keys: readonly string[]): Promise<Map<string, { bytes: number; ttl: number }>> {
    const out = new Map<string, { bytes: number; ttl: number }>();
    for (let i = 0; i < keys.length; i += 500) {
      const batch = keys.slice(i, i + 500);
      const pipeline = this.client.pipeline();
      for (const key of batch) pipeline.memory('USAGE', key, 'SAMPLES', 0).ttl(key);
      const replies = (await pipeline.exec()) ?? [];
      batch.forEach((key, index) => {
        const bytes = Number(replies[index * 2]?.[1] ?? 0);
        const ttl = Number(replies[index * 2 + 1]?.[1] ?? -2);
        if (bytes > 0) out.set(key, { bytes, ttl });
      });
    }
    return out;
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}

/** A key's kind: the oidc-provider model, or the first segment of our own keys. */
export function kindOf(key: string, prefix: string): string {
  const name = key.startsWith(prefix) ? key.slice(prefix.length) : key;
  if (name.startsWith('oidc:grant:')) return 'grant index (set of token keys)';
  if (name.startsWith('oidc:uid:')) return 'session uid index';
  const model = /^oidc:([A-Za-z]+):/.exec(name);
  if (model) return model[1]!;
  if (name.startsWith('revoked:jti:')) return 'revoked jti';
  return name.split(':')[0] ?? name;
}

export interface KindState {
  readonly kind: string;
  readonly keysPerIteration: number;
  readonly bytesPerIteration: number;
  readonly bytesPerKey: number;
  /** Seconds left on the keys when measured (the larger of them). */
  readonly ttlSeconds: number;
}

export interface StepRedis {
  readonly roundTrips: number;
  readonly commands: number;
  /** The commands of one request, e.g. ["HGETALL×2", "EVALSHA", "HSET"] (scripts' inner commands included). */
  readonly sample: string[];
}

export interface RedisProbe {
  readonly iterations: number;
  readonly roundTripsPerIteration: number;
  readonly commandsPerIteration: number;
  readonly steps: Record<string, StepRedis>;
  readonly keysCreatedPerIteration: number;
  readonly keysDeletedPerIteration: number;
  readonly bytesPerIteration: number;
  readonly state: KindState[];
  readonly errors: number;
  readonly errorSamples: string[];
}

export interface Counters {
  readonly reads: number;
  /** Calls per command name (upper case), scripts' inner commands included. */
  readonly calls: Map<string, number>;
}

/** Commands run between two counter snapshots, less the `infos` INFO calls that took them. */
function commandsBetween(before: Counters, after: Counters, infos: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, calls] of after.calls) {
    const delta = calls - (before.calls.get(name) ?? 0) - (name === 'INFO' ? infos : 0);
    if (delta > 0) out.set(name, delta);
  }
  return out;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Runs `iterations` iterations of `workload` one request at a time and reports what Redis saw. */
/**
 * `idleMs`: how long to watch the idle server first for its background reads (the tracked cache's
 * heartbeat), taken out of each request's window by its length; 0 takes nothing out (smoke runs).
 */
export async function probeRedis(inspector: RedisInspector, base: string, workload: Workload, iterations: number, prefix: string, idleMs = 0): Promise<RedisProbe> {
  const before = await inspector.keys(prefix);

  // Two INFO calls back to back: the reads one INFO adds.
  const first = await inspector.counters();
  const overhead = (await inspector.counters()).reads - first.reads;
  // What the server reads of Redis when no request comes (the tracked cache's heartbeat, a write a
  // second): not a request's, so taken out of each window by its length.
  let background = 0;
  if (idleMs > 0) {
    const idleFrom = await inspector.counters();
    const idleStart = performance.now();
    await sleep(idleMs);
    background = Math.max(0, (await inspector.counters()).reads - idleFrom.reads - overhead) / (performance.now() - idleStart);
  }
  const executed: Step[] = [];
  const trips: number[] = [];
  const commands: Map<string, number>[] = [];
  let last = await inspector.counters();
  let lastAt = performance.now();
  const settle = async () => {
    await sleep(3); // let anything the server does after answering reach Redis
    const now = await inspector.counters();
    const at = performance.now();
    trips.push(now.reads - last.reads - overhead - background * (at - lastAt));
    commands.push(commandsBetween(last, now, 1));
    last = now;
    lastAt = at;
  };
  const result = await sequential(base, workload, iterations, {
    before: async (step) => {
      executed.push(step);
    },
    after: settle,
  });

  // "HGETALL×3, EVALSHA×2, HSET×2": which commands, how often (scripts' inner commands included).
  const describe = (counts: Map<string, number> = new Map()) =>
    [...counts].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0])).map(([name, n]) => (n > 1 ? `${name}×${n}` : name));
  const total = (counts: Map<string, number> = new Map()) => [...counts.values()].reduce((a, b) => a + b, 0);

  const perStep = new Map<string, { trips: number[]; commands: number[]; sample?: string[] }>();
  executed.forEach((step, index) => {
    const entry = perStep.get(step.name) ?? { trips: [], commands: [] };
    entry.trips.push(trips[index] ?? 0);
    entry.commands.push(total(commands[index]));
    entry.sample = describe(commands[index]); // the last iteration: the first may load scripts
    perStep.set(step.name, entry);
  });
  const mean = (values: number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0);
  const steps: Record<string, StepRedis> = {};
  for (const [name, entry] of perStep) {
    steps[name] = { roundTrips: round(mean(entry.trips)), commands: round(mean(entry.commands)), sample: entry.sample ?? [] };
  }

  const after = await inspector.keys(prefix);
  const created = [...after].filter((key) => !before.has(key));
  const deleted = [...before].filter((key) => !after.has(key)).length;
  const sizes = await inspector.sizes(created);
  const kinds = new Map<string, { keys: number; bytes: number; ttl: number }>();
  for (const [key, { bytes, ttl }] of sizes) {
    const kind = kindOf(key, prefix);
    const entry = kinds.get(kind) ?? { keys: 0, bytes: 0, ttl: -1 };
    entry.keys += 1;
    entry.bytes += bytes;
    entry.ttl = Math.max(entry.ttl, ttl);
    kinds.set(kind, entry);
  }
  const n = Math.max(1, result.iterations);
  const state = [...kinds]
    .map(([kind, entry]) => ({
      kind,
      keysPerIteration: round(entry.keys / n),
      bytesPerIteration: Math.round(entry.bytes / n),
      bytesPerKey: Math.round(entry.bytes / entry.keys),
      ttlSeconds: entry.ttl,
    }))
    .sort((a, b) => b.bytesPerIteration - a.bytesPerIteration);
  return {
    iterations: result.iterations,
    roundTripsPerIteration: round(trips.reduce((a, b) => a + b, 0) / n),
    commandsPerIteration: round(commands.reduce((sum, counts) => sum + total(counts), 0) / n),
    steps,
    keysCreatedPerIteration: round(created.length / n),
    keysDeletedPerIteration: round(deleted / n),
    bytesPerIteration: Math.round([...sizes.values()].reduce((sum, { bytes }) => sum + bytes, 0) / n),
    state,
    errors: result.errors,
    errorSamples: result.errorSamples,
  };
}
