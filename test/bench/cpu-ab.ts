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
 * default configuration (rate limits on, as the bench's `defaults` rows).
 *
 * A fifth argument names the two builds instead, `before;after`, each `<dir>[:KEY=value,...]` with
 * its settings over the others (as login-ab.ts): one build against itself with other settings, e.g.
 * what the default configuration costs over the bench's (`off` is short for every rate limit
 * at 0, the bench configuration's):
 *
 *   BENCH_DEFAULTS=1 node --import tsx test/bench/cpu-ab.ts introspect-opaque 2000 6 'dist:off;dist'
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';
import { closedLoop } from './load.js';
import { SCENARIOS } from './scenarios.js';
import { buildSpec, DEFAULT_LIMITS, prepareSideBySide, processCpuSeconds, startPinnedBuild } from './targets.js';

const ids = (process.argv[2] ?? 'discovery').split(',');
const iterations = Number(process.argv[3] ?? 2000);
const runs = Number(process.argv[4] ?? 4);
const [beforeSpec, afterSpec] = process.argv[5]?.split(';') ?? [process.env.BENCH_BEFORE ?? 'dist-before', 'dist'];
const builds = { before: buildSpec(beforeSpec ?? 'dist-before'), after: buildSpec(afterSpec ?? 'dist') };
for (const { dir } of Object.values(builds)) {
  if (!existsSync(join(ROOT, dir, 'cli.js'))) throw new Error(`${dir}/cli.js is missing: see the top of test/bench/cpu-ab.ts`);
}

// One start of the current build makes the key ring and the bench's person; every build shares them.
const { prepared, close } = await prepareSideBySide();

const settings = process.env.BENCH_DEFAULTS === '1' ? DEFAULT_LIMITS : {};
const servers = {
  before: await startPinnedBuild(prepared, builds.before.dir, { ...settings, ...builds.before.settings }),
  after: await startPinnedBuild(prepared, builds.after.dir, { ...settings, ...builds.after.settings }),
};
try {
  for (const id of ids) {
    const scenario = SCENARIOS.find((s) => s.id === id);
    if (!scenario) throw new Error(`no scenario ${id}`);
    const cpu: Record<string, number[]> = { before: [], after: [] };
    const workloads = new Map<string, Awaited<ReturnType<typeof scenario.prepare>>>();
    let errors = 0;
    for (const [side, server] of Object.entries(servers)) {
      const needed = scenario.consumesTokens ? iterations * runs + 500 : undefined;
      workloads.set(side, await scenario.prepare(server, { introspectionPool: 256, jwtRevocationPool: 256, sessions: 4, chains: 64 }, needed));
      await closedLoop(server.url, workloads.get(side)!, { connections: 4, seconds: 60, amount: Math.min(iterations, 500) }); // warm-up
    }
    for (let run = 0; run < runs; run += 1) {
      for (const [side, server] of Object.entries(servers)) {
        const before = processCpuSeconds(server.pid);
        const result = await closedLoop(server.url, workloads.get(side)!, { connections: 4, seconds: 120, amount: iterations });
        errors += result.errors;
        cpu[side]!.push(((processCpuSeconds(server.pid) - before) * 1000) / Math.max(1, result.iterations));
      }
    }
    const min = (values: number[]) => Math.min(...values);
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const show = (values: number[]) => `${min(values).toFixed(3)} (median ${median(values).toFixed(3)})`;
    console.log(
      `${id.padEnd(18)} before ${show(cpu.before!)}  after ${show(cpu.after!)} ms CPU/iteration  ratio ${(min(cpu.after!) / min(cpu.before!)).toFixed(2)}` +
        (errors ? `  ${errors} ERRORS` : ''),
    );
  }
} finally {
  await Promise.all(Object.values(servers).map((server) => server.stop()));
  await close();
}
process.exit(0);
