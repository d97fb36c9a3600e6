/**
 * Reads a V8 CPU profile (node --cpu-prof) and says where the time went: the frames with the most
 * self time, and the share of busy time spent inside each component (inclusive: a sample counts
 * for every component on its stack).
 */
import { readFileSync } from 'node:fs';
import { ROOT } from '../../src/paths.js';

export interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

export interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: number[];
}

export interface CpuProfile {
  readonly nodes: ProfileNode[];
  readonly samples: number[];
  readonly timeDeltas: number[];
}

export interface Frame {
  readonly frame: string;
  readonly component: string;
  readonly selfPct: number;
  readonly selfMs: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly sampledMs: number;
  readonly busyMs: number;
  readonly topFrames: Frame[];
  /** Share of busy time with the component anywhere on the stack. */
  readonly components: { component: string; inclusivePct: number; selfPct: number }[];
}

const SPECIAL: Record<string, string> = {
  '(garbage collector)': 'GC',
  '(program)': 'V8/native (program)',
  '(idle)': 'idle',
  '(root)': 'root',
};

/** Which part of the process a frame belongs to. */
export function componentOf(frame: CallFrame): string {
  if (SPECIAL[frame.functionName] && !frame.url) return SPECIAL[frame.functionName]!;
  const url = frame.url;
  if (!url) return 'native';
  if (url.startsWith('node:internal/crypto') || url.startsWith('node:crypto')) return 'node:crypto';
  if (url.startsWith('node:')) return 'node core';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.includes('/dist/') || url.includes('/src/')) return 'latchkey';
  return 'other';
}

export function label(frame: CallFrame): string {
  const where = frame.url
    .replace(/^file:\/\//, '')
    .replace(ROOT, '')
    .replace(/^.*\/node_modules\//, '');
  return `${frame.functionName || '(anonymous)'}${where ? ` ${where}:${frame.lineNumber + 1}` : ''}`;
}

/**
 * `windowMs`: only the last so many milliseconds of the profile (the load, not the start-up: the
 * profile covers the process's whole life).
 */
export function summarizeProfile(file: string, windowMs = Infinity, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  const times: number[] = [];
  let now = 0;
  for (const delta of profile.timeDeltas) times.push((now += delta));
  const from = now - windowMs * 1000;
  const self = new Map<number, number>();
  let sampled = 0;
  profile.samples.forEach((id, index) => {
    if (times[index]! < from) return;
    // timeDeltas[i] is the time from the previous sample to this one; give it to the previous.
    const delta = profile.timeDeltas[index + 1] ?? 0;
    self.set(id, (self.get(id) ?? 0) + delta);
    sampled += delta;
  });

  const idle = [...self].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((sum, [, us]) => sum + us, 0);
  const busy = Math.max(1, sampled - idle);

  const frames = new Map<string, { frame: string; component: string; us: number }>();
  const inclusive = new Map<string, number>();
  const selfByComponent = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const component = componentOf(node.callFrame);
    if (component === 'idle') continue;
    const key = label(node.callFrame);
    const entry = frames.get(key) ?? { frame: key, component, us: 0 };
    entry.us += us;
    frames.set(key, entry);
    selfByComponent.set(component, (selfByComponent.get(component) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const c = componentOf(byId.get(at)!.callFrame);
      if (c !== 'root') seen.add(c);
    }
    for (const c of seen) inclusive.set(c, (inclusive.get(c) ?? 0) + us);
  }
  const pct = (us: number) => Math.round((us / busy) * 1000) / 10;
  return {
    file,
    sampledMs: Math.round(sampled / 1000),
    busyMs: Math.round(busy / 1000),
    topFrames: [...frames.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map(({ frame, component, us }) => ({ frame, component, selfPct: pct(us), selfMs: Math.round(us / 1000) })),
    components: [...inclusive]
      .map(([component, us]) => ({ component, inclusivePct: pct(us), selfPct: pct(selfByComponent.get(component) ?? 0) }))
      .sort((a, b) => b.inclusivePct - a.inclusivePct),
  };
}
