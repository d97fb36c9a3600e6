/**
 * Server instructions per iteration of builds (and the bare oidc-provider) under callgrind: a
 * figure that does not move with whatever else the machine runs, unlike CPU time. Each server runs
 * under `valgrind --tool=callgrind` with instrumentation off; after a warm-up, instrumentation is
 * switched on for a fixed number of iterations only (callgrind_control), and the dump's total of
 * instructions is divided by them. Slow (a few minutes per build). The same build measured twice
 * differs by 1.5-5% (JIT and GC timing; a major GC that falls inside one build's window moves it
 * more), and more when several scenarios share one run: measure one scenario per run, swap the
 * builds' order in a second run, and trust only larger differences.
 *
 *   cp -r dist dist-before && npm run build
 *   node --import tsx test/bench/callgrind-ab.ts cc-opaque dist-before,dist,bare [iterations=300]
 *   node --import tsx test/bench/callgrind-ab.ts cc-opaque 'dist:NODE_OPTIONS=--max-semi-space-size=0;dist'
 *
 * Needs valgrind (callgrind_control). Builds sit in the package root; `bare` is
 * test/bench/bare-provider.ts, for the scenarios it can do; `floor` is test/bench/floor-server.ts, node:http
 * alone answering discovery and the JWKS with the bytes and headers Latchkey answered (the floor
 * for those two scenarios: `... callgrind-ab.ts jwks 'dist;floor;bare' 2000`). A build `<dir>:KEY=value,...` runs with
 * those settings (`off`: the bench configuration's rate limits, see targets.ts buildSpec);
 * builds are separated by `;` when settings are given (node flags: `NODE_OPTIONS=...`).
 * BENCH_DEFAULTS=1: the default configuration.
 *
 *   BENCH_DEFAULTS=1 node --import tsx test/bench/callgrind-ab.ts introspect-opaque 'dist:off;dist'
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';
import { freePort, startRedisServer } from '../helpers/redis.js';
import { captureAnswers } from './floor-server.js';
import { closedLoop } from './load.js';
import { SCENARIOS, type Target } from './scenarios.js';
import { addUser, bareSignIn, buildSpec, startLatchkey } from './targets.js';

const ids = (process.argv[2] ?? 'cc-jwt').split(',');
const builds = (process.argv[3] ?? 'dist-before,dist').split(process.argv[3]?.includes(';') ? ';' : ',');
const iterations = Number(process.argv[4] ?? 300);
// Warm-up iterations before counting: enough for V8 to have optimized the hot paths (300 was not
// for introspection, whose counts then moved by 60% between runs of one build; after 1,500, V8 was
// still compiling during the counted window, about 150K instructions an iteration, 13%; after
// 6,000, about 50K).
const warmUp = Number(process.env.CALLGRIND_WARMUP ?? 6000);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

const redis = await startRedisServer();
// One start of the current build makes the key ring and the bench's person; every build shares them.
const prepared = await startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'info', defaults: process.env.BENCH_DEFAULTS === '1' });
await addUser(prepared, 'dist');
const signingKey = await prepared.signingKey();
const out = mkdtempSync(join(tmpdir(), 'latchkey-callgrind-'));
// `floor`: node:http alone answering discovery and the JWKS with the bytes and headers this Latchkey answered (floor-server.ts).
const floorAnswers = join(out, 'floor-answers.json');
if (builds.some((build) => buildSpec(build).dir === 'floor')) {
  writeFileSync(floorAnswers, JSON.stringify(await captureAnswers(prepared.url, ['/.well-known/openid-configuration', '/jwks'])));
}
await prepared.stop();

try {
  for (const [index, build] of builds.entries()) {
    const { dir, settings } = buildSpec(build);
    const port = await freePort();
    // `bare:NODE_OPTIONS=--perf-basic-prof` names the bare provider's JIT frames too.
    const floor = dir === 'floor';
    const bare = dir === 'bare' || floor;
    const env: Record<string, string> = floor
      ? { PORT: String(port), ISSUER: `http://localhost:${port}`, FLOOR_ANSWERS: floorAnswers, ...settings }
      : bare
      ? {
          NODE_ENV: 'production',
          PORT: String(port),
          ISSUER: `http://localhost:${port}`,
          JWKS: JSON.stringify({ keys: [signingKey] }),
          CLIENTS: prepared.env.CLIENTS!,
          RESOURCE_SERVERS: prepared.env.RESOURCE_SERVERS!,
          ...settings,
        }
      : // Under valgrind a command's answer can take longer than the shipped 2 s on a busy machine: a
        // timeout would answer 503 and count the error path instead.
        { ...prepared.env, ...settings, PORT: String(port), ISSUER: `http://localhost:${port}`, REDIS_COMMAND_TIMEOUT: '60000' };
    const args = bare ? ['--import', 'tsx', join(ROOT, 'test', 'bench', floor ? 'floor-server.ts' : 'bare-provider.ts')] : [join(ROOT, dir, 'cli.js'), 'serve'];
    const file = join(out, `${index}.out`);
    // vgdb's pipes are named after HOST, which Latchkey's settings use too: callgrind_control must see the server's.
    const prefix = `--vgdb-prefix=${file}-vgdb`;
    // --trace-children: `serve` starts itself again with its node flags (execve, the same pid).
    const child = spawn('valgrind', ['--tool=callgrind', '--instr-atstart=no', '--trace-children=yes', prefix, `--callgrind-out-file=${file}`, process.execPath, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', NODE_NO_WARNINGS: '1', ...env },
      stdio: 'ignore',
    });
    const control = (...command: string[]) =>
      execFileSync('callgrind_control', [prefix, ...command, String(child.pid)], { stdio: 'ignore', env: { ...process.env, ...(env.HOST ? { HOST: env.HOST } : {}) } });
    const url = `http://127.0.0.1:${port}`;
    const target: Target = {
      kind: bare ? 'bare' : 'latchkey',
      url,
      issuer: env.ISSUER!,
      signIn: bare ? bareSignIn : prepared.signIn,
    };
    for (let attempt = 0; ; attempt += 1) {
      try {
        if ((await fetch(`${url}${bare ? '/.well-known/openid-configuration' : '/healthz'}`)).ok) break;
      } catch {
        // not listening yet
      }
      if (attempt > 600) throw new Error(`${build}: no answer from ${url}`);
      await sleep(500);
    }
    for (const id of ids) {
      const scenario = SCENARIOS.find((s) => s.id === id);
      if (!scenario) throw new Error(`no scenario ${id}`);
      if (!scenario.targets.includes(target.kind)) continue;
      const workload = await scenario.prepare(target, { introspectionPool: 64, jwtRevocationPool: 64, sessions: 2, chains: 16 }, scenario.consumesTokens ? iterations + warmUp + 100 : undefined);
      await closedLoop(url, workload, { connections: 2, seconds: 600, amount: warmUp }); // warm-up, not counted
      control('-z');
      control('-i', 'on');
      const result = await closedLoop(url, workload, { connections: 2, seconds: 600, amount: iterations });
      control('-i', 'off');
      control('-d', id);
      await sleep(500);
      const dumps = readdirSync(out)
        .filter((name) => name.startsWith(`${index}.out.`) && /\.\d+$/.test(name))
        .map((name) => join(out, name))
        .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
      const total = Number(/^totals: (\d+)/m.exec(readFileSync(dumps[0]!, 'utf8'))?.[1]);
      console.log(
        `${id.padEnd(18)} ${build.padEnd(20)} ${(total / Math.max(1, result.iterations) / 1e6).toFixed(3)} M instructions/iteration` +
          ` (${result.iterations} iterations${result.errors ? `, ${result.errors} ERRORS: ${result.errorSamples.join('; ')}` : ''})`,
      );
    }
    child.kill('SIGKILL');
  }
} finally {
  await redis.stop();
}
process.exit(0);
