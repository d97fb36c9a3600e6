/**
 * A server's CPU profile split by the login's steps: for each step (authorize, login page,
 * submission, resume), busy time per request by component and the heaviest frames by self time,
 * in µs per request, from the samples that fall inside that step's windows (login-ab.ts --steps
 * with LOGIN_AB_WINDOWS=<file>: V8's profile and process.hrtime share the monotonic clock).
 *
 *   LOGIN_AB_WINDOWS=/tmp/w.json node --import tsx test/bench/login-ab.ts \
 *     'dist:NODE_OPTIONS=--cpu-prof --cpu-prof-dir=/tmp/p/d --cpu-prof-interval=100;bare:NODE_OPTIONS=--cpu-prof --cpu-prof-dir=/tmp/p/b --cpu-prof-interval=100' 500 2 --steps
 *   node --import tsx test/bench/profile-steps.ts /tmp/w.json /tmp/p/d/*.cpuprofile /tmp/p/b/*.cpuprofile [top=12]
 *
 * PROFILE_STEPS_INCLUSIVE=1: frames by inclusive time instead (each frame once per sample it is on
 * the stack of). PROFILE_STEPS_CALLERS=<frame label's start>: the stacks (four callers up) that
 * frame's samples came through, e.g. `PROFILE_STEPS_CALLERS='accountOf'`: whether a frame's
 * samples are its work or the first code run after a wake-up (see docs/performance.md).
 */
import { readFileSync } from 'node:fs';
import { componentOf, label, type CpuProfile } from './profile.js';

const [windowsFile, ...rest] = process.argv.slice(2);
const top = /^\d+$/.test(rest.at(-1) ?? '') ? Number(rest.pop()) : 12;
/** PROFILE_STEPS_COMPONENT=latchkey: the heaviest frames of that component only. */
const only = process.env.PROFILE_STEPS_COMPONENT;
const inclusive = process.env.PROFILE_STEPS_INCLUSIVE === '1';
const callersOf = process.env.PROFILE_STEPS_CALLERS;
const windows = JSON.parse(readFileSync(windowsFile!, 'utf8')) as [number, string, number, number][];

for (const file of rest) {
  const pid = Number(/CPU\.\d+\.\d+\.(\d+)\./.exec(file)?.[1]);
  const mine = windows.filter(([owner]) => owner === pid).sort((a, b) => a[2] - b[2]);
  if (!mine.length) continue;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile & { startTime: number };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  /** The frames of a sample's stack, innermost first. */
  const stack = function* (id: number) {
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) yield byId.get(at)!;
  };
  const steps = new Map<string, { requests: number; components: Map<string, number>; frames: Map<string, number> }>();
  for (const [, step] of mine) {
    const entry = steps.get(step) ?? { requests: 0, components: new Map(), frames: new Map() };
    entry.requests += 1;
    steps.set(step, entry);
  }
  // Each sample weighs the profile's median interval: on a busy machine the sampling thread is
  // starved at times, and a sample that came late would otherwise carry all the time since the last
  // one (a trivial frame showed 170 µs a request that way, from 26 samples).
  const interval = [...profile.timeDeltas].sort((a, b) => a - b)[profile.timeDeltas.length >> 1]!;
  // Samples and windows both in time order: one pass.
  let now = profile.startTime;
  let w = 0;
  profile.samples.forEach((id, index) => {
    now += profile.timeDeltas[index]!;
    while (w < mine.length && mine[w]![3] < now) w += 1;
    const window = mine[w];
    if (!window || window[2] > now) return;
    const node = byId.get(id)!;
    const component = componentOf(node.callFrame);
    if (component === 'idle') return;
    const us = interval;
    const entry = steps.get(window[1])!;
    entry.components.set(component, (entry.components.get(component) ?? 0) + us);
    const add = (frame: string) => entry.frames.set(frame, (entry.frames.get(frame) ?? 0) + us);
    if (callersOf) {
      const frames = [...stack(id)];
      const at = frames.findIndex((frame) => label(frame.callFrame).startsWith(callersOf));
      if (at >= 0) add(frames.slice(at + 1, at + 5).map((frame) => label(frame.callFrame)).join(' < '));
      return;
    }
    if (inclusive) {
      const seen = new Set<string>();
      for (const frame of stack(id)) if (!only || componentOf(frame.callFrame) === only) seen.add(label(frame.callFrame));
      for (const frame of seen) add(frame);
      return;
    }
    if (only && component !== only) return;
    add(label(node.callFrame));
  });
  console.log(`\n${file} (pid ${pid})`);
  for (const [step, { requests, components, frames }] of steps) {
    const per = (us: number) => (us / requests).toFixed(0);
    const busy = [...components.values()].reduce((sum, us) => sum + us, 0);
    const byComponent = [...components].sort((a, b) => b[1] - a[1]).map(([c, us]) => `${c} ${per(us)}`);
    console.log(`${step}: ${per(busy)} µs busy a request (${requests}); ${byComponent.join(', ')}`);
    for (const [frame, us] of [...frames].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${per(us).padStart(6)} ${frame}`);
  }
}
