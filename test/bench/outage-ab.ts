/**
 * What a Redis outage looks like to clients, per build: builds in turn on one redis-server, each
 * warmed up, then Redis killed for `seconds` while one client asks for a client_credentials token
 * back to back (how many answers, their statuses, how long each took), then Redis restarted and
 * the 503s counted until the first 200 (the reconnection's backoff).
 *
 *   cp -r dist dist-before && npm run build
 *   node --import tsx test/bench/outage-ab.ts dist-before,dist [seconds=6] [rounds=2]
 *
 * Servers pinned to core 0 (startPinnedBuild). Timings from a busy machine are rough; what matters
 * here is their order of magnitude (a command timeout against an immediate answer).
 */
import { performance } from 'node:perf_hooks';
import { startRedisServer } from '../helpers/redis.js';
import { LEDGER, MACHINE } from './scenarios.js';
import { startLatchkey, startPinnedBuild } from './targets.js';

const builds = (process.argv[2] ?? 'dist-before,dist').split(',');
const seconds = Number(process.argv[3] ?? 6);
const rounds = Number(process.argv[4] ?? 2);

const redis = await startRedisServer();
// One start of the current build makes the key ring; every build shares it.
const prepared = await startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'info' });
await prepared.stop();
const authorization = `Basic ${Buffer.from(`${MACHINE.id}:${MACHINE.secret}`).toString('base64')}`;

async function token(url: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: LEDGER, scope: 'read' }),
  });
  await response.arrayBuffer();
  return { status: response.status, ms: performance.now() - started };
}

for (let round = 0; round < rounds; round += 1) {
  for (const build of builds) {
    const target = await startPinnedBuild(prepared, build);
    for (let i = 0; i < 50; i += 1) await token(target.url);
    await redis.kill();
    const times: number[] = [];
    const statuses = new Set<number>();
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      const { status, ms } = await token(target.url);
      statuses.add(status);
      times.push(ms);
    }
    await redis.restart();
    const restarted = performance.now();
    let refused = 0;
    while ((await token(target.url)).status !== 200) refused += 1;
    const back = performance.now() - restarted;
    times.sort((a, b) => a - b);
    const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(1);
    console.log(
      `${build.padEnd(12)} Redis away ${seconds} s: ${times.length} answers (${[...statuses].join(',')}), ms median ${at(0.5)} p90 ${at(0.9)} max ${at(1)}; ` +
        `restarted: ${refused} more 503 before a 200 (${back.toFixed(0)} ms)`,
    );
    await target.stop();
  }
}
await redis.stop();
process.exit(0);
