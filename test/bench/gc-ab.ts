/**
 * GC pauses and server CPU per iteration of Latchkey under node flags side by side (issue #18):
 * one server per variant, all on the same Redis and pinned to core 0, closed-loop runs alternating
 * between them (as cpu-ab.ts), the pauses from a probe preloaded into each (stall-probe.mjs). Per
 * variant: CPU per iteration (minimum of the runs, then each run), and per GC kind (1 scavenge,
 * 4 mark-compact, 8 incremental marking) how often per 1,000 iterations, the median, p90 and
 * longest pause, and the pauses' total per iteration. Pauses are wall time: on a busy machine they
 * stretch alike for every variant, so compare within a run.
 *
 *   node --import tsx test/bench/gc-ab.ts cc-opaque '--max-semi-space-size=0|' [iterations=4000] [runs=3]
 *
 * Variants are separated by |; an empty one is `serve` as shipped. CONNS sets the connections (16).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisServer } from '../helpers/redis.js';
import { closedLoop } from './load.js';
import { RedisInspector } from './redis-probe.js';
import { SCENARIOS } from './scenarios.js';
import { addUser, pin, processCpuSeconds, startLatchkey, type LatchkeyTarget } from './targets.js';

const id = process.argv[2] ?? 'cc-opaque';
const variants = (process.argv[3] ?? '--max-semi-space-size=0|').split('|');
const n = Number(process.argv[4] ?? 4000);
const runs = Number(process.argv[5] ?? 3);
const conns = Number(process.env.CONNS ?? 16);
const dir = mkdtempSync(join(tmpdir(), 'gc-'));
pin(process.pid, '1');
const redis = await startRedisServer();
const inspector = new RedisInspector(redis.url);
pin(Number((await inspector.info('server')).process_id), '1');
const first = await startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'info' });
await addUser(first, 'dist');
await first.stop();
const servers: LatchkeyTarget[] = [];
for (const [i, flags] of variants.entries()) {
  servers.push(await startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'info', dir: first.dir, cpus: '0', env: { NODE_OPTIONS: `--import ${join(import.meta.dirname, 'stall-probe.mjs')} ${flags}`.trim(), STALL_PROBE_OUT: join(dir, `${i}.json`) } }));
}
const scenario = SCENARIOS.find((s) => s.id === id)!;
const sizes = { introspectionPool: 512, jwtRevocationPool: 1024, sessions: 16, chains: 128 };
const workloads = [];
for (const s of servers) {
  const w = await scenario.prepare(s, sizes, scenario.consumesTokens ? n * runs + 3000 : undefined);
  await closedLoop(s.url, w, { connections: conns, seconds: 60, amount: 3000 });
  workloads.push(w);
}
const windows: [number, number][][] = servers.map(() => []);
const cpu: number[][] = servers.map(() => []);
for (let run = 0; run < runs; run += 1) {
  for (const [i, s] of servers.entries()) {
    const before = processCpuSeconds(s.pid);
    const from = Date.now();
    const res = await closedLoop(s.url, workloads[i]!, { connections: conns, seconds: 120, amount: n });
    windows[i]!.push([from, Date.now()]);
    cpu[i]!.push(((processCpuSeconds(s.pid) - before) * 1000) / res.iterations);
  }
}
for (const s of servers) await s.stop();
await inspector.close();
await redis.stop();
for (const [i, flags] of variants.entries()) {
  const data = JSON.parse(readFileSync(join(dir, `${i}.json`), 'utf8')) as { gc: { t: number; ms: number; kind: number }[] };
  const gcs = data.gc.filter((g) => windows[i]!.some(([a, b]) => g.t >= a && g.t <= b));
  const text = [1, 4, 8].map((kind) => {
    const list = gcs.filter((g) => g.kind === kind).map((g) => g.ms).sort((a, b) => a - b);
    if (!list.length) return '';
    return `kind${kind}: ${(list.length / (n * runs) * 1000).toFixed(2)}/1000 iters, median ${list[Math.floor(list.length / 2)]!.toFixed(1)} p90 ${list[Math.floor(list.length * 0.9)]!.toFixed(1)} max ${list.at(-1)!.toFixed(1)} ms, ${(list.reduce((a, b) => a + b, 0) / (n * runs)).toFixed(3)} ms/iter`;
  }).filter(Boolean).join(' | ');
  console.log(`${id} [${flags || 'as shipped'}] CPU ms/iter min ${Math.min(...cpu[i]!).toFixed(3)} (${cpu[i]!.map((c) => c.toFixed(3)).join(',')}) | ${text}`);
}
process.exit(0);
