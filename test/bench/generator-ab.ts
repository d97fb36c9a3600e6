/**
 * Which load generator gives a pinned server the most load per CPU of its own: the closed loop's
 * clients side by side on the same server, their windows interleaved (raw, autocannon, raw, ...).
 * The servers run pinned to core 0, this process (the generator) and Redis on core 1, as in the
 * bench. For each client and window: iterations/s, the server's CPU per iteration and how busy it
 * was (its CPU time over the window, all threads; 1.0 is its core), the generator's CPU per request (this process and any
 * generator processes it started), and how busy core 1 was (generator + Redis). A server below
 * about 90% busy while core 1 is full is measuring the generator, not the server.
 *
 *   npm run build
 *   node --import tsx test/bench/generator-ab.ts discovery,jwks [seconds=3] [runs=3] [generators] [servers]
 *
 * generators (comma-separated, default `raw,autocannon,raw*2`): `raw` (the lean client of
 * raw-http.ts, the bench's default), `autocannon`, and `raw*N`: N processes on core 1, each running
 * the lean closed loop on its share of the connections (for the scenarios that need nothing
 * prepared from the server: discovery, jwks, cc-jwt, cc-opaque). servers (default `dist,bare`):
 * Latchkey's compiled build and the bare oidc-provider. Connections: the scenario's fixed count,
 * else 16 (CPU_AB_CONNECTIONS to change it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { closedLoop, type Generator, type PhaseResult } from './load.js';
import { RedisInspector } from './redis-probe.js';
import { SCENARIOS, type Scenario } from './scenarios.js';
import { prepareSideBySide, processCpuSeconds, startBare, startPinnedBuild, type ProcessTarget } from './targets.js';

const SIZES = { introspectionPool: 256, jwtRevocationPool: 256, sessions: 4, chains: 64 };
/** Scenarios whose workload a generator process can build without the server (nothing minted). */
const STATELESS = new Set(['discovery', 'jwks', 'cc-jwt', 'cc-opaque']);

// A generator process: `child <url> <scenario> <connections> <seconds>`; says "ready", runs its
// closed loop when told "go" on stdin, and prints its result and its own CPU for the window.
if (process.argv[2] === 'child') {
  const [url, id, connections, seconds] = process.argv.slice(3) as [string, string, string, string];
  const scenario = SCENARIOS.find((s) => s.id === id)!;
  const workload = await scenario.prepare({ url } as never, SIZES);
  await closedLoop(url, workload, { connections: Number(connections), seconds: 0.5, generator: 'raw' }); // warm the client
  console.log('ready');
  // One window per "go"; the end of stdin (the parent is done) ends the process.
  for await (const line of createInterface({ input: process.stdin })) {
    if (line !== 'go') continue;
    const cpu = process.cpuUsage();
    const result = await closedLoop(url, workload, { connections: Number(connections), seconds: Number(seconds), generator: 'raw' });
    const used = process.cpuUsage(cpu);
    console.log(JSON.stringify({ requests: result.requests, iterations: result.iterations, seconds: result.seconds, errors: result.errors, cpuSeconds: (used.user + used.system) / 1e6 }));
  }
  process.exit(0);
}

const ids = (process.argv[2] ?? 'discovery,jwks').split(',');
const seconds = Number(process.argv[3] ?? 3);
const runs = Number(process.argv[4] ?? 3);
const generators = (process.argv[5] ?? 'raw,autocannon,raw*2').split(',');
const serverNames = (process.argv[6] ?? 'dist,bare').split(',');

interface Window {
  iterationsPerSecond: number;
  serverMsPerIteration: number;
  serverBusy: number;
  generatorMsPerRequest: number;
  core1Busy: number;
  errors: number;
}

/** N generator processes on the server, started and warmed; `go` runs one window on all of them. */
async function processes(count: number, url: string, scenario: Scenario, connections: number) {
  const children: { child: ChildProcess; lines: AsyncIterator<string> }[] = [];
  for (let i = 0; i < count; i += 1) {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'child', url, scenario.id, String(Math.ceil(connections / count)), String(seconds)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    children.push({ child, lines });
  }
  for (const { lines } of children) if ((await lines.next()).value !== 'ready') throw new Error('a generator process did not start');
  return async () => {
    for (const { child } of children) child.stdin!.write('go\n');
    const results = await Promise.all(children.map(async ({ lines }) => JSON.parse((await lines.next()).value as string) as { requests: number; iterations: number; seconds: number; errors: number; cpuSeconds: number }));
    return {
      requests: results.reduce((sum, x) => sum + x.requests, 0),
      iterations: results.reduce((sum, x) => sum + x.iterations, 0),
      errors: results.reduce((sum, x) => sum + x.errors, 0),
      cpuSeconds: results.reduce((sum, x) => sum + x.cpuSeconds, 0),
    };
  };
}

const { prepared, close } = await prepareSideBySide();
const inspector = new RedisInspector(prepared.env.REDIS_URL!);
const servers: [string, ProcessTarget][] = [];
try {
  for (const name of serverNames) {
    servers.push([name, name === 'bare' ? await startBare({ signingKey: await prepared.signingKey(), cpus: '0' }) : await startPinnedBuild(prepared, name)]);
  }
  for (const id of ids) {
    const scenario = SCENARIOS.find((s) => s.id === id);
    if (!scenario) throw new Error(`no scenario ${id}`);
    const connections = Number(process.env.CPU_AB_CONNECTIONS ?? scenario.connections ?? 16);
    for (const [name, server] of servers) {
      if (server.kind === 'bare' && !scenario.targets.includes('bare')) continue;
      const workload = await scenario.prepare(server, SIZES);
      const windows = new Map<string, Window[]>(generators.map((g) => [g, []]));
      const spawned = new Map<string, Awaited<ReturnType<typeof processes>>>();
      for (const generator of generators) {
        const many = /^raw\*(\d+)$/.exec(generator);
        if (many) {
          if (!STATELESS.has(id)) throw new Error(`${generator}: only for ${[...STATELESS].join(', ')}`);
          spawned.set(generator, await processes(Number(many[1]), server.url, scenario, connections));
        } else {
          await closedLoop(server.url, workload, { connections, seconds: 1, generator: generator as Generator }); // warm-up
        }
      }
      for (let run = 0; run < runs; run += 1) {
        for (const generator of generators) {
          const serverCpu = processCpuSeconds(server.pid);
          const redisCpu = await inspector.cpuSeconds();
          const self = process.cpuUsage();
          const started = performance.now();
          let requests: number, iterations: number, errors: number, childCpu = 0, elapsed: number;
          const go = spawned.get(generator);
          if (go) {
            const result = await go();
            ({ requests, iterations, errors } = result);
            childCpu = result.cpuSeconds;
            elapsed = (performance.now() - started) / 1000;
          } else {
            const result: PhaseResult = await closedLoop(server.url, workload, { connections, seconds, generator: generator as Generator });
            ({ requests, iterations, errors } = result);
            elapsed = result.seconds;
          }
          const wall = (performance.now() - started) / 1000;
          const used = process.cpuUsage(self);
          const generatorCpu = (used.user + used.system) / 1e6 + childCpu;
          const redis = (await inspector.cpuSeconds()) - redisCpu;
          const serverUsed = processCpuSeconds(server.pid) - serverCpu;
          windows.get(generator)!.push({
            iterationsPerSecond: iterations / elapsed,
            serverMsPerIteration: (serverUsed * 1000) / Math.max(1, iterations),
            serverBusy: serverUsed / wall,
            generatorMsPerRequest: (generatorCpu * 1000) / Math.max(1, requests),
            core1Busy: (generatorCpu + redis) / wall,
            errors,
          });
        }
      }
      const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
      console.log(`${id} on ${name}, ${connections} connections, ${runs} windows of ${seconds} s each (median, min–max):`);
      for (const [generator, list] of windows) {
        const show = (pick: (w: Window) => number, digits: number) =>
          `${median(list.map(pick)).toFixed(digits)} (${Math.min(...list.map(pick)).toFixed(digits)}–${Math.max(...list.map(pick)).toFixed(digits)})`;
        const errors = list.reduce((sum, w) => sum + w.errors, 0);
        console.log(
          `  ${generator.padEnd(11)} ${show((w) => w.iterationsPerSecond, 0)}/s  server ${show((w) => w.serverMsPerIteration, 3)} ms CPU/iteration, busy ${show((w) => w.serverBusy, 2)}  ` +
            `generator ${show((w) => w.generatorMsPerRequest, 4)} ms CPU/request  core 1 busy ${show((w) => w.core1Busy, 2)}${errors ? `  ${errors} ERRORS` : ''}`,
        );
      }
    }
  }
} finally {
  await Promise.all(servers.map(([, server]) => server.stop()));
  await inspector.close();
  await close();
}
process.exit(0);
