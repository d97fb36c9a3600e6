/**
 * Bytes allocated per iteration of builds (and the bare oidc-provider), by component and by
 * function: each server pinned to core 0 with alloc-probe.mjs preloaded, a warm-up, then V8's
 * sampling heap profiler (freed objects included) over a fixed number of iterations of a closed
 * loop. What a request allocates is what V8's young-generation collections cost it (more bytes,
 * more scavenges), which a CPU profile shows only as "(garbage collector)". Sampled every 4 KiB
 * on average: read figures under a few hundred bytes as rough.
 *
 *   node --import tsx test/bench/alloc-ab.ts introspect-opaque 10000 8 'dist;dist:REDIS_URL=,NODE_ENV=development,EMBEDDED_FILE=/tmp/e.json;bare' [component]
 *
 * Arguments: scenario, iterations, connections, builds as cpu-ab.ts's (`bare`: the bare provider),
 * and optionally a component (as profile.ts names them: latchkey, ioredis, oidc-provider, node
 * core, ...) whose heaviest allocating functions to list. ALLOC_PROBE_SURVIVORS=1 counts only what
 * survived a scavenge (alloc-probe.mjs).
 */
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';
import { closedLoop } from './load.js';
import { componentOf } from './profile.js';
import { SCENARIOS } from './scenarios.js';
import { buildSpec, prepareSideBySide, startBare, startPinnedBuild, type ProcessTarget } from './targets.js';

interface SampledNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children?: SampledNode[];
}

const [id = 'introspect-opaque', count = '10000', conns = '8', list = 'dist;bare', focus = 'latchkey'] = process.argv.slice(2);
const iterations = Number(count);
const scenario = SCENARIOS.find((s) => s.id === id);
if (!scenario) throw new Error(`no scenario ${id}`);

const { prepared, close } = await prepareSideBySide();
const signingKey = list.split(';').includes('bare') ? await prepared.signingKey() : undefined;
try {
  for (const [index, spec] of list.split(';').entries()) {
    const out = join(tmpdir(), `latchkey-alloc-${process.pid}-${index}.heapprofile`);
    const env = {
      NODE_OPTIONS: `--import ${join(ROOT, 'test', 'bench', 'alloc-probe.mjs')}`,
      ALLOC_PROBE_OUT: out,
      ALLOC_PROBE_SURVIVORS: process.env.ALLOC_PROBE_SURVIVORS ?? '',
    };
    const build = spec === 'bare' ? 'bare' : buildSpec(spec);
    if (build === 'bare' && !scenario.targets.includes('bare')) continue;
    const server: ProcessTarget =
      build === 'bare'
        ? await startBare({ signingKey: signingKey!, cpus: '0', env })
        : // A build's own node flags (`dist:NODE_OPTIONS=...`) go with the probe's preload.
          await startPinnedBuild(prepared, build.dir, { ...build.settings, ...env, NODE_OPTIONS: [build.settings.NODE_OPTIONS, env.NODE_OPTIONS].filter(Boolean).join(' ') });
    const workload = await scenario.prepare(server, { introspectionPool: 256, jwtRevocationPool: 256, sessions: 4, chains: 64 }, scenario.consumesTokens ? iterations + 4000 : undefined);
    await closedLoop(server.url, workload, { connections: Number(conns), seconds: 60, amount: 3000 });
    process.kill(server.pid, 'SIGUSR2');
    await new Promise((done) => setTimeout(done, 200));
    const result = await closedLoop(server.url, workload, { connections: Number(conns), seconds: 120, amount: iterations });
    await server.stop();
    const head = (JSON.parse(readFileSync(out, 'utf8')) as { head: SampledNode }).head;
    rmSync(out, { force: true });
    let total = 0;
    const byComponent = new Map<string, number>();
    const byFunction = new Map<string, number>();
    const walk = (node: SampledNode) => {
      total += node.selfSize;
      const component = componentOf(node.callFrame);
      byComponent.set(component, (byComponent.get(component) ?? 0) + node.selfSize);
      if (component === focus) {
        const where = node.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '');
        const name = `${node.callFrame.functionName || '(anonymous)'} ${where}:${node.callFrame.lineNumber + 1}`;
        byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize);
      }
      for (const child of node.children ?? []) walk(child);
    };
    walk(head);
    const per = (bytes: number) => `${Math.round(bytes / result.iterations)}`.padStart(7);
    console.log(`\n${spec}: ${per(total)} bytes allocated per iteration (${result.iterations} iterations${result.errors ? `, ${result.errors} ERRORS` : ''})`);
    for (const [component, bytes] of [...byComponent].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${per(bytes)}  ${component}`);
    if (byFunction.size) console.log(`  ${focus}, heaviest:`);
    for (const [name, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${per(bytes)}  ${name}`);
  }
} finally {
  await close();
}
