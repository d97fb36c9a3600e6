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
 * Both counts come from one transaction on the inspector's own connection (INFO, then the slow
 * log's entries since the last one, every command logged meanwhile): no MONITOR stream, whose
 * second connection (and its teardown under load) made the harness die now and then. The slow log
 * names the commands the server sent on its own timers rather than for the request (BACKGROUND: the
 * tracked cache's heartbeat once a second, the key ring's poll every keys.refreshInterval, the
 * lifetimes published once a minute); a request's window in which one of them ran is left out of
 * the averages, as another iteration of the same step is no different. Subtracting an expected
 * background rate instead (until 2026-12-01) left a fraction of a read on the figures: refresh's 3
 * round trips read 3.03 in a 20-iteration bench run, when one heartbeat fell inside a window.
 */
import { Redis } from 'ioredis';
import { sequential, type Step, type Workload } from './load.js';

/** The inspector's connection name, so that its own commands are told apart in the slow log. */
const INSPECTOR_NAME = 'latchkey-bench-inspector';

/** The address the slow log gives a command a Lua script ran (Redis's script client has no connection). */
const SCRIPT_CLIENT = '?:0';

/** A slow-log entry: id, epoch seconds, µs, the command's words, the client's address and name. */
type SlowlogEntry = [number, number, number, string[], string, string];

/**
 * Commands a server sends on its own timers, not for a request: the tracked cache's heartbeat
 * (store/tracked-cache.ts), the key ring's poll (keyring/service.ts), the token lifetimes a server
 * publishes every minute (revocation/list.ts publishLifetimes) and its reading of Redis's clock
 * with them (TIME, no key: clock.ts followStoreClock), the back-channel sweep every few seconds
 * (provider/backchannel-delivery.ts; what it then sends is for something due, none in the scenarios). Matched on the command and its first key;
 * none of the scenarios' requests sends one of these.
 */
const BACKGROUND: readonly { readonly command: string; readonly key: RegExp }[] = [
  { command: 'time', key: /^$/ },
  { command: 'set', key: /tracked-cache:/ },
  { command: 'get', key: /keyring$/ },
  { command: 'set', key: /:lifetime:/ },
  { command: 'evalsha', key: /:lifetimes$/ },
  { command: 'eval', key: /:lifetimes$/ },
  // The back-channel sweep (provider/backchannel-delivery.ts): one script claiming what is due, its first key the retries.
  { command: 'evalsha', key: /backchannel:\{bc\}:retries$/ },
  { command: 'eval', key: /backchannel:\{bc\}:retries$/ },
];

/** Whether a logged command was one a server sent on a timer (see BACKGROUND). */
export function isBackground(words: readonly string[]): boolean {
  const command = words[0]?.toLowerCase();
  // EVALSHA sha numkeys key…: the first key is the fourth word.
  const key = (command === 'evalsha' || command === 'eval' ? words[3] : words[1]) ?? '';
  return BACKGROUND.some((b) => b.command === command && b.key.test(key));
}

export class RedisInspector {
  readonly client: Redis;
  readonly url: string;

  constructor(url: string) {
    this.url = url;
    this.client = new Redis(url, { enableAutoPipelining: false, maxRetriesPerRequest: 1, connectionName: INSPECTOR_NAME });
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
    return this.#parseCounters(await (this.client.info as (...args: string[]) => Promise<string>)('stats', 'commandstats'));
  }

  #parseCounters(text: string): Counters {
    const calls = new Map<string, number>();
    let reads = 0;
    for (const line of text.split('\r\n')) {
      const at = line.indexOf(':');
      if (at < 0) continue;
      const field = line.slice(0, at);
      if (field === 'total_reads_processed') reads = Number(line.slice(at + 1));
      else if (field.startsWith('cmdstat_')) calls.set(field.slice('cmdstat_'.length).toUpperCase(), Number(/calls=(\d+)/.exec(line)?.[1] ?? 0));
    }
    return { reads, calls };
  }

  /**
   * The counters, and how many commands the server sent on its own timers (BACKGROUND) since the
   * last call, in one transaction: nothing runs between the INFO and the slow log's reading.
   * Needs `logEverything` first.
   */
  async snapshot(): Promise<Counters & { background: number }> {
    const replies = (await this.client.multi().info('stats', 'commandstats').slowlog('GET', '-1').slowlog('RESET').exec()) ?? [];
    for (const [error] of replies) if (error) throw error;
    const counters = this.#parseCounters(String(replies[0]![1]));
    const entries = replies[1]![1] as SlowlogEntry[];
    // A command a script ran is logged by Redis's script client (address `?:0`): it is the request's
    // whose script it is (the consumption of a code or refresh token reads TIME: store/redis.ts), not a timer's.
    const background = entries.filter(([, , , words, address, name]) => name !== INSPECTOR_NAME && address !== SCRIPT_CLIENT && isBackground(words)).length;
    return { ...counters, background };
  }

  /** Logs every command in the slow log (for `snapshot`) until the returned function puts the settings back. */
  async logEverything(): Promise<() => Promise<void>> {
    const [, slower] = (await this.client.config('GET', 'slowlog-log-slower-than')) as string[];
    const [, length] = (await this.client.config('GET', 'slowlog-max-len')) as string[];
    await this.client.config('SET', 'slowlog-log-slower-than', '0');
    await this.client.config('SET', 'slowlog-max-len', '100000');
    await this.client.slowlog('RESET');
    return async () => {
      await this.client.config('SET', 'slowlog-log-slower-than', slower ?? '10000');
      await this.client.config('SET', 'slowlog-max-len', length ?? '128');
      await this.client.slowlog('RESET');
    };
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
  /** The most round trips one request of this step made. */
  readonly maxRoundTrips: number;
  readonly commands: number;
  /** The commands of one request, e.g. ["HGETALL×2", "EVALSHA", "HSET"] (scripts' inner commands included). */
  readonly sample: string[];
}

export interface RedisProbe {
  readonly iterations: number;
  readonly roundTripsPerIteration: number;
  readonly commandsPerIteration: number;
  readonly steps: Record<string, StepRedis>;
  /** Requests whose window held a command the server sent on a timer (BACKGROUND): left out of the averages. */
  readonly backgroundWindows: number;
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

/** Commands run between two counter snapshots, less `own` (the commands that took a snapshot). */
function commandsBetween(before: Counters, after: Counters, own: ReadonlyMap<string, number> = new Map()): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, calls] of after.calls) {
    const delta = calls - (before.calls.get(name) ?? 0) - (own.get(name) ?? 0);
    if (delta > 0) out.set(name, delta);
  }
  return out;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Runs `iterations` iterations of `workload` one request at a time and reports what Redis saw. */
export async function probeRedis(inspector: RedisInspector, base: string, workload: Workload, iterations: number, prefix: string): Promise<RedisProbe> {
  const before = await inspector.keys(prefix);
  const restore = await inspector.logEverything();
  const executed: Step[] = [];
  /** Per request: its round trips and commands, and how many commands a timer of the server sent meanwhile. */
  const windows: { trips: number; commands: Map<string, number>; background: number }[] = [];
  let result;
  try {
    // Two snapshots back to back: the reads and commands one snapshot adds (again if a heartbeat fell between).
    let first = await inspector.snapshot();
    let second = await inspector.snapshot();
    for (let tries = 0; second.background > 0 && tries < 5; tries += 1) [first, second] = [second, await inspector.snapshot()];
    const overhead = second.reads - first.reads;
    const own = commandsBetween(first, second);
    let last = second;
    const settle = async () => {
      await sleep(3); // let anything the server does after answering reach Redis
      const now = await inspector.snapshot();
      windows.push({ trips: now.reads - last.reads - overhead, commands: commandsBetween(last, now, own), background: now.background });
      last = now;
    };
    result = await sequential(base, workload, iterations, {
      before: async (step) => {
        executed.push(step);
      },
      after: settle,
    });
  } finally {
    await restore();
  }

  // "HGETALL×3, EVALSHA×2, HSET×2": which commands, how often (scripts' inner commands included).
  const describe = (counts: Map<string, number> = new Map()) =>
    [...counts].sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0])).map(([name, n]) => (n > 1 ? `${name}×${n}` : name));
  const total = (counts: Map<string, number> = new Map()) => [...counts.values()].reduce((a, b) => a + b, 0);

  // A request's window in which a timer of the server sent a command is left out: the other
  // iterations of its step stand for it (if every one had one, its timers' commands are subtracted,
  // each counted as a round trip of its own).
  const perStep = new Map<string, { ran: number; windows: typeof windows }>();
  executed.forEach((step, index) => {
    const entry = perStep.get(step.name) ?? { ran: 0, windows: [] };
    entry.ran += 1;
    if (windows[index]) entry.windows.push(windows[index]);
    perStep.set(step.name, entry);
  });
  const mean = (values: number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0);
  const steps: Record<string, StepRedis> = {};
  let tripsPerIteration = 0;
  let commandsPerIteration = 0;
  let backgroundWindows = 0;
  const n = Math.max(1, result.iterations);
  for (const [name, entry] of perStep) {
    const clean = entry.windows.filter((w) => w.background === 0);
    backgroundWindows += entry.windows.length - clean.length;
    const used = clean.length ? clean : entry.windows;
    const trips = used.map((w) => w.trips - w.background);
    const commands = used.map((w) => total(w.commands) - w.background);
    const sample = describe(clean.at(-1)?.commands); // the last iteration: the first may load scripts
    steps[name] = { roundTrips: round(mean(trips)), maxRoundTrips: trips.length ? Math.max(...trips) : 0, commands: round(mean(commands)), sample };
    tripsPerIteration += (mean(trips) * entry.ran) / n;
    commandsPerIteration += (mean(commands) * entry.ran) / n;
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
    roundTripsPerIteration: round(tripsPerIteration),
    commandsPerIteration: round(commandsPerIteration),
    steps,
    backgroundWindows,
    keysCreatedPerIteration: round(created.length / n),
    keysDeletedPerIteration: round(deleted / n),
    bytesPerIteration: Math.round([...sizes.values()].reduce((sum, { bytes }) => sum + bytes, 0) / n),
    state,
    errors: result.errors,
    errorSamples: result.errorSamples,
  };
}
