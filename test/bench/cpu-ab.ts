/**
 * Server CPU per iteration of two builds side by side, for measuring one change on a machine that
 * is not idle: both servers run at once on the same Redis, pinned to core 0, with the load
 * generator (this process) and Redis on core 1, and their runs alternate (before, after, before,
 * after, ...) so that whatever else the machine does weighs on both alike. CPU time (utime + stime
 * of each server, all threads) is counted for a fixed number of iterations; the minimum of the runs
 * is the figure (the median is printed too). Throughput is not reported: on a busy machine it
 * means nothing.
 *
 *   cp -r dist dist-before            # the build before the change (npm run build first)
 *   npm run build                     # the build after it, in dist/
 *   node --import tsx test/bench/cpu-ab.ts discovery,cc-jwt [iterations=2000] [runs=4]
 *
 * The "before" build is read from dist-before/ (BENCH_BEFORE to change it), which must sit in the
 * package root so that it finds node_modules/, config/ and views/. BENCH_DEFAULTS=1 runs both in the
 * default configuration (rate limits on, as the bench's `defaults` rows). The closed loop runs 4
 * connections (CPU_AB_CONNECTIONS to change it: the bench finds Latchkey's peak at 16).
 *
 * A fifth argument names the two builds instead, `before;after`, each `<dir>[:KEY=value,...]` with
 * its settings over the others (as login-ab.ts): one build against itself with other settings, e.g.
 * what the default configuration costs over the bench's (`off` is short for every rate limit
 * at 0, the bench configuration's):
 *
 *   BENCH_DEFAULTS=1 node --import tsx test/bench/cpu-ab.ts introspect-opaque 2000 6 'dist:off;dist'
 *
 * `NODE_ARGS` among a build's settings goes on its node command line (targets.ts), for V8 flags
 * Node refuses in NODE_OPTIONS: `'dist;dist:NODE_ARGS=--min-semi-space-size=64'`.
 *
 * More than two builds may be named (each held against the first), and `bare` is the bare
 * oidc-provider (bare-provider.ts) on the same core, for the scenarios it can do: e.g. Latchkey on
 * Redis, on the embedded store and the bare provider, in one interleaved run:
 *
 *   node --import tsx test/bench/cpu-ab.ts cc-opaque 2000 6 'dist;dist:REDIS_URL=,NODE_ENV=development,EMBEDDED_FILE=/tmp/lk-embedded.json;bare'
 *
 * The bare provider takes settings too: `bare:BARE_WAITS=2` sleeps twice for 1 ms in each request
 * (bare-provider.ts), as Latchkey's thread sleeps on its Redis round trips:
 *
 *   node --import tsx test/bench/cpu-ab.ts sso-code 1500 4 'bare;bare:BARE_WAITS=2;dist'
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';
import { closedLoop } from './load.js';
import { SCENARIOS } from './scenarios.js';
import { buildSpec, DEFAULT_LIMITS, prepareSideBySide, processCpuSeconds, startBare, startPinnedBuild, type ProcessTarget } from './targets.js';

const ids = (process.argv[2] ?? 'discovery').split(',');
const iterations = Number(process.argv[3] ?? 2000);
const runs = Number(process.argv[4] ?? 4);
// Connections of the closed loop: 4 unless CPU_AB_CONNECTIONS says (the bench finds Latchkey's peak at 16).
const connections = Number(process.env.CPU_AB_CONNECTIONS ?? 4);
const specs = process.argv[5]?.split(';') ?? [process.env.BENCH_BEFORE ?? 'dist-before', 'dist'];
if (specs.length < 2) throw new Error('name two builds or more: before;after');
// Two builds are `before` and `after`, as they always were; more are named by their specs.
const names = specs.length === 2 ? ['before', 'after'] : specs;
// `bare:KEY=value,...`: the bare provider with those settings (bare-provider.ts: BARE_WAITS=N).
const builds = specs.map((spec) => buildSpec(spec));
for (const build of builds) {
  if (build.dir !== 'bare' && !existsSync(join(ROOT, build.dir, 'cli.js'))) throw new Error(`${build.dir}/cli.js is missing: see the top of test/bench/cpu-ab.ts`);
}

// One start of the current build makes the key ring and the bench's person; every build shares them.
const { prepared, close } = await prepareSideBySide();

const settings = process.env.BENCH_DEFAULTS === '1' ? DEFAULT_LIMITS : {};
const signingKey = builds.some((build) => build.dir === 'bare') ? await prepared.signingKey() : undefined;
const servers: Record<string, ProcessTarget> = {};
for (const [index, build] of builds.entries()) {
  servers[names[index]!] =
    build.dir === 'bare'
      ? await startBare({ signingKey: signingKey!, cpus: '0', env: build.settings })
      : await startPinnedBuild(prepared, build.dir, { ...settings, ...build.settings });
}
try {
  for (const id of ids) {
    const scenario = SCENARIOS.find((s) => s.id === id);
    if (!scenario) throw new Error(`no scenario ${id}`);
    // The bare provider sits out the scenarios it cannot do (JWT introspection and revocation).
    const active = Object.entries(servers).filter(([, server]) => server.kind !== 'bare' || scenario.targets.includes('bare'));
    const cpu: Record<string, number[]> = Object.fromEntries(active.map(([name]) => [name, []]));
    const workloads = new Map<string, Awaited<ReturnType<typeof scenario.prepare>>>();
    let errors = 0;
    for (const [side, server] of active) {
      const needed = scenario.consumesTokens ? iterations * runs + 500 : undefined;
      workloads.set(side, await scenario.prepare(server, { introspectionPool: 256, jwtRevocationPool: 256, sessions: 4, chains: 64 }, needed));
      await closedLoop(server.url, workloads.get(side)!, { connections: 4, seconds: 60, amount: Math.min(iterations, 500) }); // warm-up
    }
    for (let run = 0; run < runs; run += 1) {
      for (const [side, server] of active) {
        const before = processCpuSeconds(server.pid);
        const result = await closedLoop(server.url, workloads.get(side)!, { connections, seconds: 120, amount: iterations });
        errors += result.errors;
        // Which build failed, and how: a build that answers errors is measuring its error path.
        if (result.errors) console.error(`  ${id} ${side}: ${result.errors} errors (${result.errorSamples.slice(0, 2).join('; ')})`);
        cpu[side]!.push(((processCpuSeconds(server.pid) - before) * 1000) / Math.max(1, result.iterations));
      }
    }
    const min = (values: number[]) => Math.min(...values);
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const show = (values: number[]) => `${min(values).toFixed(3)} (median ${median(values).toFixed(3)})`;
    if (names.length === 2 && active.length === 2) {
      console.log(
        `${id.padEnd(18)} before ${show(cpu.before!)}  after ${show(cpu.after!)} ms CPU/iteration  ratio ${(min(cpu.after!) / min(cpu.before!)).toFixed(2)}` +
          (errors ? `  ${errors} ERRORS` : ''),
      );
    } else {
      console.log(`${id}${errors ? `  ${errors} ERRORS` : ''}`);
      for (const [name] of active) {
        console.log(`  ${name.padEnd(40)} ${show(cpu[name]!)} ms CPU/iteration  ratio to the first ${(min(cpu[name]!) / min(cpu[active[0]![0]]!)).toFixed(2)}`);
      }
    }
  }
} finally {
  await Promise.all(Object.values(servers).map((server) => server.stop()));
  await close();
}
process.exit(0);
