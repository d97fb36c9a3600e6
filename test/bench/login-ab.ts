/**
 * Server CPU per password login (scenario 6: authorize, login page, POST password, resume) of
 * builds side by side, held against the CPU of one argon2id verification at the configured
 * parameters on the same core, measured in the same run. Every server is pinned to core 0; the
 * load generator (this process) and Redis to core 1; the argon2 baseline runs in a child process
 * pinned to core 0 between the servers' runs (one verification at a time, as the core does its
 * best). Runs alternate (argon2, build A, build B, argon2, ...) so that whatever else the machine
 * does weighs on all alike; medians and the spread (min-max) of the runs are printed, and each
 * build's CPU per login as a multiple of argon2's in the same round.
 *
 *   cp -r dist dist-before && npm run build
 *   node --import tsx test/bench/login-ab.ts dist-before,dist [iterations=150] [runs=5] [connections=8]
 *
 * A build name `<dir>:KEY=value,...` starts that build with those settings over the bench's.
 *
 * With --steps: one login at a time instead, and the JavaScript thread's CPU per step (from
 * /proc/<pid>/task/<pid>/schedstat, in nanoseconds, not clock ticks): where a change to one
 * request shows, without argon2 or the batching of a saturated core in the figure.
 *
 * With --steps --each, every run is printed as it ends too: how a build's cost moves as V8 warms it up.
 *
 * `bare` as a build: the bare oidc-provider (bare-provider.ts, consent remembered) doing the same
 * four requests on its development pages, no password checked: what the engine's own sign-in costs
 * beside the hash (its argon2 ratio is then the hash's share of a login had it hashed none).
 * `bare:BARE_HASH=1`: the same, its form's submission verifying one argon2id hash at the configured
 * parameters first (what the hash does to the engine's JavaScript around it, in --steps);
 * `bare:BARE_WAITS=<n>`: each request first sleeps n times 1 ms (as across Redis round trips).
 *
 * With --pool-cpus=<list> (e.g. 1): after the warm-up, each server's libuv pool threads (where
 * argon2 runs) move to those cores, its JavaScript thread staying on core 0: what sharing a core
 * with the hashes costs the JavaScript thread (the argon2 ratio then means nothing).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { ROOT } from '../../src/paths.js';
import { closedLoop, sequential } from './load.js';
import { passwordLogin, SCENARIOS } from './scenarios.js';
import { prepareSideBySide, processCpuSeconds, startBare, startPinnedBuild, type ProcessTarget } from './targets.js';

const args = process.argv.filter((arg) => !arg.startsWith('--'));
const stepsMode = process.argv.includes('--steps');
/** With --steps --each: every run's figures as it ends (how a build's cost moves as V8 warms it up). */
const eachRun = process.argv.includes('--each');
/**
 * With --steps and LOGIN_AB_WINDOWS=<file>: each step's window written there as [pid, step, from, to]
 * in µs of the monotonic clock (a CPU profile's timestamps), for profile.ts to split a server's
 * profile by step (test/bench/profile-steps.ts).
 */
const windowsFile = process.env.LOGIN_AB_WINDOWS;
const windows: [number, string, number, number][] = [];
const poolCpus = process.argv.find((arg) => arg.startsWith('--pool-cpus='))?.slice('--pool-cpus='.length);
const builds = (args[2] ?? 'dist-before,dist').split(';').flatMap((list) => list.split(/,(?![A-Z_]+=)/));
const iterations = Number(args[3] ?? 150);
const runs = Number(args[4] ?? 5);
const connections = Number(args[5] ?? 8);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

// One start of the current build makes the key ring and the bench's person; every build shares them.
const { prepared, close } = await prepareSideBySide();
const argon2Settings = loadConfig(prepared.env).accounts.argon2;

/** Minor page faults per verification of each argon2CpuMs() run. */
const argon2Faults: number[] = [];

/** CPU ms of one argon2id verification at the configured parameters, one at a time, on core 0. */
function argon2CpuMs(count: number): number {
  const script = `
    const argon2 = require(${JSON.stringify(join(ROOT, 'node_modules', 'argon2'))});
    (async () => {
      const options = { type: argon2.argon2id, ...${JSON.stringify(argon2Settings)} };
      const hash = await argon2.hash('correct horse battery staple', options);
      await argon2.verify(hash, 'correct horse battery staple');
      const cpu = process.cpuUsage();
      const faults = process.resourceUsage().minorPageFault;
      for (let i = 0; i < ${count}; i += 1) await argon2.verify(hash, 'correct horse battery staple');
      const used = process.cpuUsage(cpu);
      process.stdout.write(JSON.stringify([(used.user + used.system) / 1000 / ${count}, (process.resourceUsage().minorPageFault - faults) / ${count}]));
    })();`;
  const [ms, faults] = JSON.parse(execFileSync('taskset', ['-c', '0', process.execPath, '-e', script], { encoding: 'utf8' })) as [number, number];
  argon2Faults.push(faults);
  return ms;
}

/** A build spec `<dir>[:KEY=value,...]` serving on core 0 (its settings over the bench's), or `bare`. */
async function start(spec: string): Promise<ProcessTarget & { spec: string }> {
  const [dir = 'dist', settings = ''] = spec.split(':');
  const extra = Object.fromEntries(settings ? settings.split(',').map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]) : []);
  if (dir === 'bare') return { ...(await startBare({ signingKey: await prepared.signingKey(), cpus: '0', env: { ...extra, BARE_REMEMBER_CONSENT: '1', BARE_ARGON2: JSON.stringify(argon2Settings) } })), spec };
  return { ...(await startPinnedBuild(prepared, dir, extra)), spec };
}

/**
 * The JavaScript thread's scheduling so far (/proc/<pid>/task/<pid>/schedstat and status): the times
 * it went to sleep waiting (voluntary switches: each a wake-up to come, after which its caches are
 * whatever the core ran meanwhile), the times it was taken off the core while it could run
 * (involuntary), and ms spent runnable but waiting for the core.
 */
function mainThreadSched(pid: number): { sleeps: number; preempted: number; waitMs: number } {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  const waitNs = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]);
  return { sleeps: field('voluntary_ctxt_switches'), preempted: field('nonvoluntary_ctxt_switches'), waitMs: waitNs / 1e6 };
}

/** CPU seconds of a process's threads so far, by kind: the JavaScript thread, libuv's pool (argon2), the rest (V8's helpers). */
function threadCpuSeconds(pid: number): { main: number; pool: number; other: number; faults: number } {
  const sums = { main: 0, pool: 0, other: 0, faults: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(fields[11]) + Number(fields[12])) / 100;
      sums[Number(tid) === pid ? 'main' : name === 'libuv-worker' ? 'pool' : 'other'] += seconds;
      sums.faults += Number(fields[7]); // minflt
    } catch {
      // the thread ended
    }
  }
  return sums;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const spread = (values: number[]) => `${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}`;

const scenario = SCENARIOS.find((s) => s.id === 'login')!;
const servers: Awaited<ReturnType<typeof start>>[] = [];
try {
  for (const spec of builds) servers.push(await start(spec));
  const workloads = [];
  for (const server of servers) {
    const workload = server.spec.split(':')[0] === 'bare' ? { steps: passwordLogin(true) } : await scenario.prepare(server, { introspectionPool: 0, jwtRevocationPool: 0, sessions: 1, chains: 0 });
    // Warm-up: 400 logins, for V8 to compile the JavaScript around the hash (60 measured the first
    // build partly cold: run.ts warmUp says what a cold login row cost).
    await closedLoop(server.url, workload, { connections, seconds: 300, amount: 400 });
    workloads.push(workload);
    if (poolCpus) {
      for (const tid of readdirSync(`/proc/${server.pid}/task`)) {
        if (readFileSync(`/proc/${server.pid}/task/${tid}/comm`, 'utf8').trim() === 'libuv-worker') execFileSync('taskset', ['-p', '-c', poolCpus, tid], { stdio: 'ignore' });
      }
    }
  }
  if (stepsMode) {
    const mainThreadNs = (pid: number) => Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]);
    const perStep = servers.map(() => new Map<string, number[]>());
    // The JavaScript thread's sleeps per step, over all runs (each request's own arrival included).
    const sleeps = servers.map(() => new Map<string, number>());
    let logins = 0;
    for (let run = 0; run < runs; run += 1) {
      for (const [i, server] of servers.entries()) {
        const sums = new Map<string, number>();
        let at = 0;
        let sleptAt = 0;
        let from = 0n;
        const result = await sequential(server.url, workloads[i]!, iterations, {
          before: async () => {
            at = mainThreadNs(server.pid);
            sleptAt = mainThreadSched(server.pid).sleeps;
            from = process.hrtime.bigint();
          },
          after: async (step) => {
            await sleep(2); // what the server does after answering (the request log, metrics)
            sums.set(step.name, (sums.get(step.name) ?? 0) + mainThreadNs(server.pid) - at);
            sleeps[i]!.set(step.name, (sleeps[i]!.get(step.name) ?? 0) + mainThreadSched(server.pid).sleeps - sleptAt);
            if (windowsFile) windows.push([server.pid, step.name, Number(from / 1000n), Number(process.hrtime.bigint() / 1000n)]);
          },
        });
        if (i === 0) logins += result.iterations;
        for (const [name, ns] of sums) perStep[i]!.set(name, [...(perStep[i]!.get(name) ?? []), ns / 1e6 / Math.max(1, result.iterations)]);
        const total = [...sums.values()].reduce((sum, ns) => sum + ns, 0) / 1e6 / Math.max(1, result.iterations);
        perStep[i]!.set('all', [...(perStep[i]!.get('all') ?? []), total]);
        if (eachRun) console.log(`run ${run + 1} ${server.spec}: ${[...sums].map(([name, ns]) => `${name} ${(ns / 1e6 / Math.max(1, result.iterations)).toFixed(3)}`).join(', ')}, all ${total.toFixed(3)} ms`);
      }
    }
    if (windowsFile) writeFileSync(windowsFile, JSON.stringify(windows));
    for (const [i, server] of servers.entries()) {
      const row = [...perStep[i]!].map(([name, values]) => `${name} ${median(values).toFixed(3)} (${spread(values)})`);
      console.log(`${server.spec.padEnd(24)} JavaScript thread ms per step, medians of ${runs} runs: ${row.join(', ')}`);
      const slept = [...sleeps[i]!].map(([name, count]) => `${name} ${(count / Math.max(1, logins)).toFixed(2)}`);
      console.log(`${''.padEnd(24)} its sleeps (voluntary switches) per step: ${slept.join(', ')}`);
    }
  }
  const argon2: number[] = [];
  /** The JavaScript thread's scheduling per login (mainThreadSched), medians of the runs. */
  const schedLine = (i: number) => {
    const of = (kind: 'sleeps' | 'preempted' | 'waitMs') => median(sched[i]!.map((s) => s[kind])).toFixed(2);
    return `${''.padEnd(24)} JavaScript thread per login (medians): ${of('sleeps')} sleeps, ${of('preempted')} preemptions, ${of('waitMs')} ms runnable but waiting for the core`;
  };
  const cpu: number[][] = servers.map(() => []);
  const ratio: number[][] = servers.map(() => []);
  const threads: { main: number; pool: number; other: number; faults: number }[][] = servers.map(() => []);
  const sched: { sleeps: number; preempted: number; waitMs: number }[][] = servers.map(() => []);
  let errors = 0;
  for (let run = 0; run < (stepsMode ? 0 : runs); run += 1) {
    const baseline = argon2CpuMs(Math.max(20, Math.round(iterations / 4)));
    argon2.push(baseline);
    const row = [`run ${run + 1}: argon2id verify ${baseline.toFixed(2)} ms`];
    for (const [i, server] of servers.entries()) {
      const before = processCpuSeconds(server.pid);
      const threadsBefore = threadCpuSeconds(server.pid);
      const schedBefore = mainThreadSched(server.pid);
      const result = await closedLoop(server.url, workloads[i]!, { connections, seconds: 300, amount: iterations });
      const schedAfter = mainThreadSched(server.pid);
      const logins = Math.max(1, result.iterations);
      sched[i]!.push({ sleeps: (schedAfter.sleeps - schedBefore.sleeps) / logins, preempted: (schedAfter.preempted - schedBefore.preempted) / logins, waitMs: (schedAfter.waitMs - schedBefore.waitMs) / logins });
      errors += result.errors;
      const perLogin = ((processCpuSeconds(server.pid) - before) * 1000) / Math.max(1, result.iterations);
      cpu[i]!.push(perLogin);
      const threadsAfter = threadCpuSeconds(server.pid);
      const per = (kind: 'main' | 'pool' | 'other') => ((threadsAfter[kind] - threadsBefore[kind]) * 1000) / Math.max(1, result.iterations);
      const faults = (threadsAfter.faults - threadsBefore.faults) / Math.max(1, result.iterations);
      threads[i]!.push({ main: per('main'), pool: per('pool'), other: per('other'), faults });
      ratio[i]!.push(baseline / perLogin);
      row.push(`${server.spec} ${perLogin.toFixed(2)} ms`);
    }
    console.log(row.join('  '));
  }
  if (!stepsMode) console.log(`argon2id verify, one at a time on core 0: median ${median(argon2).toFixed(2)} ms CPU (${spread(argon2)}), ${median(argon2Faults).toFixed(1)} minor page faults`);
  for (const [i, server] of stepsMode ? [] : servers.entries()) {
    if (server.spec.split(':')[0] === 'bare' && !server.spec.includes('BARE_HASH=1')) {
      // No hash here: what a login would reach on the bare engine with one hash added.
      const ceiling = median(cpu[i]!.map((ms, run) => argon2[run]! / (argon2[run]! + ms)));
      console.log(`${server.spec.padEnd(24)} median ${median(cpu[i]!).toFixed(2)} ms CPU/login (${spread(cpu[i]!)}), no hash; with one: argon2 ÷ (argon2 + login) ${ceiling.toFixed(3)}`);
      console.log(`${''.padEnd(24)} by thread (medians, ms/login): JavaScript ${median(threads[i]!.map((t) => t.main)).toFixed(2)}, other ${median(threads[i]!.map((t) => t.other)).toFixed(2)}`);
      console.log(schedLine(i));
      continue;
    }
    console.log(
      `${server.spec.padEnd(24)} median ${median(cpu[i]!).toFixed(2)} ms CPU/login (${spread(cpu[i]!)}), ` +
        `beyond argon2 ${(median(cpu[i]!) - median(argon2)).toFixed(2)} ms; argon2 ÷ login ${median(ratio[i]!).toFixed(3)} (${spread(ratio[i]!)})` +
        (i > 0 ? `; ÷ ${servers[0]!.spec} ${(median(cpu[i]!) / median(cpu[0]!)).toFixed(3)}` : ''),
    );
    const of = (kind: 'main' | 'pool' | 'other' | 'faults') => median(threads[i]!.map((t) => t[kind])).toFixed(2);
    const poolRatio = median(threads[i]!.map((t, run) => t.pool / argon2[run]!)).toFixed(3);
    console.log(`${''.padEnd(24)} by thread (medians, ms/login): JavaScript ${of('main')}, libuv pool ${of('pool')} (÷ argon2 ${poolRatio}), other ${of('other')}; minor page faults ${of('faults')}/login`);
    console.log(schedLine(i));
  }
  if (errors) console.log(`${errors} ERRORS`);
} finally {
  await Promise.all(servers.map((server) => server.stop()));
  await close();
}
process.exit(0);
