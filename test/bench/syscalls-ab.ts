/**
 * What a request costs the server in system calls, for builds (and the bare provider) one after
 * another on one Redis: each server pinned to core 0 as in cpu-ab.ts, a warm-up, a closed loop of
 * a fixed number of iterations untraced (user and system CPU per iteration, from /proc), then the
 * same again with `strace -c -f` attached (calls per iteration by system call; strace slows the
 * server, so its CPU there is relative only). Needs strace. E.g. where a Redis round trip goes:
 * Latchkey on Redis, on the embedded store, and the bare oidc-provider:
 *
 *   node --import tsx test/bench/syscalls-ab.ts cc-opaque 2000 4 'dist;dist:REDIS_URL=,NODE_ENV=development,EMBEDDED_FILE=/tmp/lk-embedded.json;bare'
 *
 * Arguments: scenarios, iterations, connections, builds as cpu-ab.ts's (`bare`: the bare provider).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { closedLoop } from './load.js';
import { SCENARIOS } from './scenarios.js';
import { buildSpec, prepareSideBySide, processCpuSeconds, startBare, startPinnedBuild, type ProcessTarget } from './targets.js';

const ids = (process.argv[2] ?? 'cc-opaque').split(',');
const iterations = Number(process.argv[3] ?? 2000);
const connections = Number(process.argv[4] ?? 4);
const specs = (process.argv[5] ?? 'dist;bare').split(';');

const { prepared, close } = await prepareSideBySide();
const signingKey = specs.includes('bare') ? await prepared.signingKey() : undefined;
const servers: [string, ProcessTarget][] = [];
for (const spec of specs) {
  const build = spec === 'bare' ? 'bare' : buildSpec(spec);
  servers.push([spec, build === 'bare' ? await startBare({ signingKey: signingKey!, cpus: '0' }) : await startPinnedBuild(prepared, build.dir, build.settings)]);
}

/** User and system CPU seconds of a process so far. */
function userSystem(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(fields[11]) / 100, Number(fields[12]) / 100];
}

/** strace -c's table: calls by system call. */
function parse(text: string): Map<string, number> {
  const calls = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (match && match[2] !== 'total') calls.set(match[2]!, Number(match[1]));
  }
  return calls;
}

try {
  for (const id of ids) {
    const scenario = SCENARIOS.find((s) => s.id === id);
    if (!scenario) throw new Error(`no scenario ${id}`);
    const rows = new Map<string, Map<string, number>>();
    for (const [name, server] of servers) {
      if (server.kind === 'bare' && !scenario.targets.includes('bare')) continue;
      const workload = await scenario.prepare(server, { introspectionPool: 256, jwtRevocationPool: 256, sessions: 4, chains: 64 }, scenario.consumesTokens ? 2 * iterations + 1500 : undefined);
      await closedLoop(server.url, workload, { connections, seconds: 60, amount: 1000 });
      // Untraced first: user and system CPU per iteration.
      const [user0, system0] = userSystem(server.pid);
      const untraced = await closedLoop(server.url, workload, { connections, seconds: 120, amount: iterations });
      const [user1, system1] = userSystem(server.pid);
      const strace = spawn('strace', ['-c', '-f', '-p', String(server.pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let out = '';
      strace.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await new Promise((done) => setTimeout(done, 500));
      const before = processCpuSeconds(server.pid);
      const result = await closedLoop(server.url, workload, { connections, seconds: 120, amount: iterations });
      const cpu = ((processCpuSeconds(server.pid) - before) * 1000) / result.iterations;
      strace.kill('SIGINT');
      await new Promise((done) => strace.once('exit', done));
      const calls = parse(out);
      for (const [call, count] of calls) calls.set(call, count / result.iterations);
      calls.set('(cpu ms, traced)', cpu);
      calls.set('(user ms, untraced)', ((user1 - user0) * 1000) / untraced.iterations);
      calls.set('(system ms, untraced)', ((system1 - system0) * 1000) / untraced.iterations);
      rows.set(name, calls);
      if (result.errors) console.log(`${name}: ${result.errors} errors`);
    }
    const shown = specs.filter((spec) => rows.has(spec));
    const first = rows.get(shown[0]!)!;
    const all = [...new Set([...rows.values()].flatMap((calls) => [...calls.keys()]))].sort((a, b) => (first.get(b) ?? 0) - (first.get(a) ?? 0));
    console.log(`${id}, ${connections} connections, per iteration (columns: ${shown.join(' | ')})`);
    for (const call of all) {
      console.log([call.padEnd(22), ...shown.map((spec) => (rows.get(spec)!.get(call) ?? 0).toFixed(3).padStart(10))].join(''));
    }
  }
} finally {
  await Promise.all(servers.map(([, server]) => server.stop()));
  await close();
}
