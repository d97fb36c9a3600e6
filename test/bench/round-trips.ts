/**
 * Redis round trips and commands per request of a few scenarios, without the rest of the bench
 * (the same probe as `npm run bench`'s "Redis per request" section), and with --trace the commands
 * of one iteration in the order Redis received them (MONITOR), for finding who sends what.
 *
 *   npm run build && node --import tsx test/bench/round-trips.ts sso-code [iterations=50] [--trace]
 */
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { startRedisServer } from '../helpers/redis.js';
import { sequential } from './load.js';
import { probeRedis, RedisInspector } from './redis-probe.js';
import { SCENARIOS } from './scenarios.js';
import { addUser, startLatchkey } from './targets.js';

const args = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const ids = (args[0] ?? 'sso-code').split(',');
const iterations = Number(args[1] ?? 50);
const trace = process.argv.includes('--trace');

const redis = await startRedisServer();
const latchkey = await startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'warn', defaults: process.env.BENCH_DEFAULTS === '1' });
const inspector = new RedisInspector(redis.url);
try {
  await addUser(latchkey, 'dist');
  const prefix = loadConfig(latchkey.env).redis.keyPrefix;
  for (const id of ids) {
    const scenario = SCENARIOS.find((s) => s.id === id);
    if (!scenario) throw new Error(`no scenario ${id}`);
    const workload = await scenario.prepare(latchkey, { introspectionPool: 16, jwtRevocationPool: 16, sessions: 1, chains: 4 }, iterations + 2);
    const probe = await probeRedis(inspector, latchkey.url, workload, iterations, prefix);
    for (const [step, { roundTrips, commands, sample }] of Object.entries(probe.steps)) {
      console.log(`${id} ${step}: ${roundTrips} round trips, ${commands} commands: ${sample.join(', ')}`);
    }
    if (probe.errors) console.log(`${id}: ${probe.errors} errors: ${probe.errorSamples.join(' | ')}`);
    if (!trace) continue;
    const monitor = await new Redis(redis.url).monitor();
    const seen: string[] = [];
    let started = 0;
    monitor.on('monitor', (time: string, command: string[]) => {
      const at = Number(time) * 1000;
      started ||= at;
      seen.push(`  +${(at - started).toFixed(3).padStart(8)} ms  ${command.map((part) => (part.length > 60 ? `${part.slice(0, 57)}...` : part)).join(' ')}`);
    });
    await sequential(latchkey.url, workload, 1, {
      before: async (step) => {
        await new Promise((done) => setTimeout(done, 50));
        seen.push(`${step.name}:`);
        started = 0;
      },
    });
    await new Promise((done) => setTimeout(done, 100));
    monitor.disconnect();
    console.log(seen.join('\n'));
  }
} finally {
  await inspector.close();
  await latchkey.stop();
  await redis.stop();
}
process.exit(0);
