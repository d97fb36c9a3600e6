/**
 * Where a two-step scenario's server CPU goes, step by step: the SSO flow's authorization request
 * and its token request, each run on its own (the codes of the first kept for the second), on a
 * Latchkey (dist/) and a bare oidc-provider, each pinned to core 0 with a CPU profile. For each
 * step: CPU per request (from /proc, the whole process), then, from the profile samples taken while
 * that step ran, self time per component and the heaviest frames, in µs per request (the profiler
 * adds its own share: compare the two servers, not the figures with cpu-ab.ts's).
 *
 *   node --import tsx test/bench/step-profile.ts [requests=3000] [latchkey|bare|both]
 *
 * STEP_PROFILE_INCLUSIVE=<component> (e.g. latchkey, oidc-provider) adds that component's frames by
 * self time and by inclusive time (a frame counted once per sample, whatever it called). Self time
 * of optimized code includes what V8 inlined into it: a one-line function may carry its callees'.
 *
 * STEP_PROFILE_CONNECTIONS=1 runs the closed loop at one connection (4 otherwise): what a request
 * costs when no other request shares its event-loop turns and socket writes.
 *
 * A step's codes live ttl.AuthorizationCode (60 s): keep `requests` to what the machine does in that.
 *
 * STEP_PROFILE_SCENARIO=<id> profiles a one-step scenario of scenarios.ts instead (revoke-opaque,
 * introspect-opaque, ...), its requests after a warm-up:
 *
 *   STEP_PROFILE_SCENARIO=revoke-opaque node --import tsx test/bench/step-profile.ts 5000 both
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { ROOT } from '../../src/paths.js';
import { startRedisServer } from '../helpers/redis.js';
import { closedLoop, type Step } from './load.js';
import { componentOf } from './profile.js';
import { SCENARIOS } from './scenarios.js';
import { addUser, pin, processCpuSeconds, startBare, startLatchkey, type ProcessTarget } from './targets.js';

const requests = Number(process.argv[2] ?? 3000);
const which = process.argv[3] ?? 'both';
/** STEP_PROFILE_INCLUSIVE=latchkey (a component, as profile.ts names them): its frames by inclusive time too. */
const INCLUSIVE = process.env.STEP_PROFILE_INCLUSIVE;
/** STEP_PROFILE_CONNECTIONS=1: the closed loop's connections (4 unless said): one shows what a request costs when none share its turns. */
const CONNECTIONS = Number(process.env.STEP_PROFILE_CONNECTIONS ?? 4);
/** CLOCK_MONOTONIC in µs: the clock of V8's profile timestamps. */
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface CpuProfile {
  readonly nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  readonly samples: number[];
  readonly timeDeltas: number[];
  readonly startTime: number;
}

const label = (frame: CallFrame) =>
  `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*node_modules\//, '').replace(`file://${ROOT}/`, '')}:${frame.lineNumber + 1}`;

function report(file: string, steps: Record<string, [number, number]>) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const idsByLabel = new Map(profile.nodes.map((node) => [label(node.callFrame), node.id]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  for (const [step, [from, to]] of Object.entries(steps)) {
    const byComponent = new Map<string, number>();
    const byFrame = new Map<string, number>();
    const inclusive = new Map<string, number>();
    let at = profile.startTime;
    profile.samples.forEach((id, i) => {
      at += profile.timeDeltas[i]!;
      const frame = frames.get(id)!;
      if (at < from || at > to || frame.functionName === '(idle)') return;
      // timeDeltas[i + 1] is the time from this sample to the next: this frame's.
      const us = profile.timeDeltas[i + 1] ?? 0;
      const component = componentOf(frame);
      byComponent.set(component, (byComponent.get(component) ?? 0) + us);
      byFrame.set(label(frame), (byFrame.get(label(frame)) ?? 0) + us);
      if (!INCLUSIVE) return;
      // Inclusive time of the named component's frames: each frame once per sample.
      const seen = new Set<string>();
      for (let node: number | undefined = id; node !== undefined; node = parents.get(node)) {
        const callFrame = frames.get(node)!;
        if (componentOf(callFrame) !== INCLUSIVE || seen.has(label(callFrame))) continue;
        seen.add(label(callFrame));
        inclusive.set(label(callFrame), (inclusive.get(label(callFrame)) ?? 0) + us);
      }
    });
    const top = (map: Map<string, number>, n: number) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n);
    console.log(`\n${step}: self time per component, µs per request`);
    for (const [component, us] of top(byComponent, 14)) console.log(`  ${(us / requests).toFixed(0).padStart(6)}  ${component}`);
    console.log(`${step}: heaviest frames, µs per request`);
    for (const [frame, us] of top(byFrame, 40)) console.log(`  ${(us / requests).toFixed(1).padStart(6)}  ${frame}`);
    if (!INCLUSIVE) continue;
    const own = new Map([...byFrame].filter(([name]) => componentOf(frames.get(idsByLabel.get(name)!)!) === INCLUSIVE));
    console.log(`${step}: ${INCLUSIVE}'s frames by self time, µs per request`);
    for (const [frame, us] of top(own, 30)) console.log(`  ${(us / requests).toFixed(1).padStart(6)}  ${frame}`);
    console.log(`${step}: ${INCLUSIVE}'s frames by inclusive time, µs per request`);
    for (const [frame, us] of top(inclusive, 50)) console.log(`  ${(us / requests).toFixed(1).padStart(6)}  ${frame}`);
  }
}

/** STEP_PROFILE_SCENARIO=revoke-opaque (a one-step scenario of scenarios.ts): that scenario's requests instead of the SSO flow's. */
const ONE_STEP = process.env.STEP_PROFILE_SCENARIO;

/** A one-step scenario's requests, after a warm-up; its time window. */
async function runOneStep(server: ProcessTarget, id: string): Promise<Record<string, [number, number]>> {
  const scenario = SCENARIOS.find((candidate) => candidate.id === id);
  if (!scenario) throw new Error(`no scenario ${id}`);
  const warmUp = 3000;
  const workload = await scenario.prepare(server, { introspectionPool: 64, jwtRevocationPool: 64, sessions: 4, chains: 16 }, scenario.consumesTokens ? requests + warmUp + 100 : undefined);
  await closedLoop(server.url, workload, { connections: CONNECTIONS, seconds: 60, amount: warmUp });
  const cpu = processCpuSeconds(server.pid);
  const from = nowUs();
  const run = await closedLoop(server.url, workload, { connections: CONNECTIONS, seconds: 120, amount: requests });
  const to = nowUs();
  const perRequest = ((processCpuSeconds(server.pid) - cpu) * 1000) / Math.max(1, run.iterations);
  console.log(`${server.kind} ${id}: ${perRequest.toFixed(3)} ms CPU per request, ${run.iterations} requests${run.errors ? `, ${run.errors} errors (${run.errorSamples[0]})` : ''}`);
  return { [id]: [from, to] };
}

/** Runs the two steps one after the other; the time window of each. */
async function runSteps(server: ProcessTarget): Promise<Record<string, [number, number]>> {
  if (ONE_STEP) return runOneStep(server, ONE_STEP);
  const scenario = SCENARIOS.find((candidate) => candidate.id === 'sso-code')!;
  const workload = await scenario.prepare(server, { introspectionPool: 0, jwtRevocationPool: 0, sessions: 4, chains: 0 });
  const [authorize, token] = workload.steps as [Step, Step];
  const codes: string[] = [];
  const authorizeOnly: Step = { ...authorize, check: (response, ctx) => authorize.check(response, ctx) ?? void codes.push(ctx.code!) };
  const tokenOnly: Step = { ...token, request: (ctx) => token.request({ ...ctx, code: codes.pop() ?? 'none' }) };
  await closedLoop(server.url, workload, { connections: CONNECTIONS, seconds: 60, amount: 500 }); // warm-up
  const steps: Record<string, [number, number]> = {};
  for (const [name, step] of [['authorize', authorizeOnly], ['token', tokenOnly]] as const) {
    const cpu = processCpuSeconds(server.pid);
    const from = nowUs();
    const run = await closedLoop(server.url, { steps: [step] }, { connections: CONNECTIONS, seconds: 120, amount: requests });
    steps[name] = [from, nowUs()];
    const perRequest = ((processCpuSeconds(server.pid) - cpu) * 1000) / Math.max(1, run.iterations);
    console.log(`${server.kind} ${name}: ${perRequest.toFixed(3)} ms CPU per request, ${run.iterations} requests${run.errors ? `, ${run.errors} errors (${run.errorSamples[0]})` : ''}`);
  }
  return steps;
}

async function profiled(start: (profileDir: string) => Promise<ProcessTarget>) {
  const profileDir = mkdtempSync(join(tmpdir(), 'step-profile-'));
  const server = await start(profileDir);
  const steps = await runSteps(server);
  await server.stop(); // the profile is written as it exits
  report(join(profileDir, readdirSync(profileDir).find((file) => file.endsWith('.cpuprofile'))!), steps);
}

pin(process.pid, '1');
const redis = await startRedisServer();
try {
  if (which !== 'bare') {
    const prepared = await startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'info' });
    await addUser(prepared, 'dist');
    await prepared.stop();
    await profiled((profileDir) => startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'info', dir: prepared.dir, profileDir, cpus: '0' }));
  }
  if (which !== 'latchkey') {
    const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    const signingKey = { ...(await exportJWK(privateKey)), kid: 'bench', alg: 'RS256', use: 'sig' };
    await profiled((profileDir) => startBare({ signingKey, profileDir, cpus: '0' }));
  }
} finally {
  await redis.stop();
}
process.exit(0);
