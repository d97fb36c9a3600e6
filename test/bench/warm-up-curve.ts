/**
 * How a fresh server's CPU per iteration falls as V8 compiles its paths: each build (and `bare`, the
 * bare oidc-provider) is started pinned to core 0, one after another, and runs the scenario in
 * windows of a fixed number of iterations from its first request on, closed loop at 16 connections
 * (CPU_AB_CONNECTIONS to change it); each window's server CPU per iteration is printed, ms.
 *
 *   node --import tsx test/bench/warm-up-curve.ts cc-opaque [iterations a window=3000] [windows=12] ['dist;bare']
 *
 * Builds are named as in cpu-ab.ts (`<dir>[:KEY=value,...]`, `off` for the rate limits at 0). Name a
 * build twice to see how much two fresh processes of it differ.
 */
import { closedLoop } from './load.js';
import { SCENARIOS } from './scenarios.js';
import { buildSpec, prepareSideBySide, processCpuSeconds, startBare, startPinnedBuild } from './targets.js';

const id = process.argv[2] ?? 'cc-opaque';
const iterations = Number(process.argv[3] ?? 3000);
const windows = Number(process.argv[4] ?? 12);
const specs = (process.argv[5] ?? 'dist;bare').split(';');
const connections = Number(process.env.CPU_AB_CONNECTIONS ?? 16);
const scenario = SCENARIOS.find((s) => s.id === id);
if (!scenario) throw new Error(`no scenario ${id}`);

const { prepared, close } = await prepareSideBySide();
try {
  for (const spec of specs) {
    const { dir, settings } = buildSpec(spec);
    const server = dir === 'bare' ? await startBare({ signingKey: await prepared.signingKey(), cpus: '0', env: settings }) : await startPinnedBuild(prepared, dir, settings);
    try {
      const needed = scenario.consumesTokens ? iterations * windows + 500 : undefined;
      const workload = await scenario.prepare(server, { introspectionPool: 256, jwtRevocationPool: 256, sessions: 4, chains: 64 }, needed);
      const curve: string[] = [];
      let errors = 0;
      for (let window = 0; window < windows; window += 1) {
        const before = processCpuSeconds(server.pid);
        const result = await closedLoop(server.url, workload, { connections, seconds: 120, amount: iterations });
        errors += result.errors;
        curve.push((((processCpuSeconds(server.pid) - before) * 1000) / Math.max(1, result.iterations)).toFixed(3));
      }
      console.log(`${spec.padEnd(12)} ${curve.join(' ')}${errors ? `  ${errors} ERRORS` : ''}`);
    } finally {
      await server.stop();
    }
  }
} finally {
  await close();
}
process.exit(0);
