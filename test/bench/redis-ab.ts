/**
 * Redis round trips and commands per iteration of builds, with test/bench/redis-probe.ts (one
 * request at a time, Redis's own counters read between requests): what a change costs or saves
 * the store, against the same Redis. The default configuration's rate limits are on (with
 * allowances the probe cannot exhaust); a build named `<dir>:off` runs with them off.
 *
 *   cp -r dist dist-before && npm run build
 *   node --import tsx test/bench/redis-ab.ts cc-opaque,introspect-opaque dist-before,dist,dist:off [iterations=300] [--trace]
 *
 * Round trips a process makes once every so many requests (the rate limits' leases) show as
 * fractions: use enough iterations. With --trace, the commands of one more iteration follow each
 * figure, in the order Redis received them (MONITOR), for finding who sends what.
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';
import { freePort, startRedisServer } from '../helpers/redis.js';
import { sequential, type Workload } from './load.js';
import { probeRedis, RedisInspector } from './redis-probe.js';
import { SCENARIOS, type Target } from './scenarios.js';
import { addUser, startLatchkey } from './targets.js';

const args = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const ids = (args[0] ?? 'cc-opaque').split(',');
const builds = (args[1] ?? 'dist-before,dist').split(',');
const iterations = Number(args[2] ?? 300);
const trace = process.argv.includes('--trace');
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const LIMITS_OFF = { RATE_LIMIT_PER_IP: '0', RATE_LIMIT_PER_CLIENT: '0', RATE_LIMIT_REGISTRATION_PER_IP: '0', RATE_LIMIT_METADATA_PER_IP: '0' };

/** The commands of one iteration, each step's apart, as Redis received them. */
async function traced(url: string, workload: Workload): Promise<string> {
  const monitor = await new Redis(redis.url).monitor();
  const seen: string[] = [];
  let started = 0;
  monitor.on('monitor', (time: string, command: string[]) => {
    const at = Number(time) * 1000;
    started ||= at;
    seen.push(`  +${(at - started).toFixed(3).padStart(8)} ms  ${command.map((part) => (part.length > 60 ? `${part.slice(0, 57)}...` : part)).join(' ')}`);
  });
  await sequential(url, workload, 1, {
    before: async (step) => {
      await sleep(50);
      seen.push(`${step.name}:`);
      started = 0;
    },
  });
  await sleep(100);
  monitor.disconnect();
  return seen.join('\n');
}

const redis = await startRedisServer();
// One start of the current build makes the key ring and the bench's person; every build shares them.
const prepared = await startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'info', defaults: true });
await addUser(prepared, 'dist');
await prepared.stop();
const inspector = new RedisInspector(redis.url);

try {
  for (const build of builds) {
    const [dir, off] = build.split(':');
    const port = await freePort();
    const env = { ...prepared.env, PORT: String(port), ISSUER: `http://localhost:${port}`, ...(off === 'off' ? LIMITS_OFF : {}) };
    const child = spawn(process.execPath, [join(ROOT, dir!, 'cli.js'), 'serve'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', NODE_NO_WARNINGS: '1', ...env },
      stdio: 'ignore',
    });
    const url = `http://127.0.0.1:${port}`;
    for (let attempt = 0; ; attempt += 1) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) break;
      } catch {
        // not listening yet
      }
      if (attempt > 150) throw new Error(`${build}: no answer from ${url}`);
      await sleep(200);
    }
    const target: Target = { kind: 'defaults', url, issuer: env.ISSUER, signIn: prepared.signIn };
    for (const id of ids) {
      const scenario = SCENARIOS.find((s) => s.id === id);
      if (!scenario) throw new Error(`no scenario ${id}`);
      if (!scenario.targets.includes('latchkey')) continue;
      const sizes = { introspectionPool: 64, jwtRevocationPool: 64, sessions: 2, chains: 16 };
      const workload = await scenario.prepare(target, sizes, scenario.consumesTokens ? iterations + 50 : undefined);
      const probe = await probeRedis(inspector, url, workload, iterations, prepared.env.REDIS_KEY_PREFIX ?? 'lk:');
      const most = Math.max(...Object.values(probe.steps).map((step) => step.maxRoundTrips));
      console.log(
        `${id.padEnd(18)} ${build.padEnd(16)} ${probe.roundTripsPerIteration} round trips (at most ${most} a request), ${probe.commandsPerIteration} commands per iteration` +
          ` (${probe.iterations} iterations, ${probe.backgroundWindows} requests left out: the server's timers sent a command meanwhile${probe.errors ? `, ${probe.errors} ERRORS` : ''})`,
      );
      for (const [step, { roundTrips, maxRoundTrips, commands, sample }] of Object.entries(probe.steps)) {
        if (Object.keys(probe.steps).length > 1 || trace) console.log(`  ${step}: ${roundTrips} round trips (at most ${maxRoundTrips}), ${commands} commands: ${sample.join(', ')}`);
      }
      if (trace) console.log(await traced(url, workload));
    }
    child.kill('SIGKILL');
  }
} finally {
  await inspector.close();
  await redis.stop();
}
process.exit(0);
