/**
 * No import cycle between the folders of src/ (issue 14): a folder may use another only if that
 * one does not, through any path, use it back. Type-only imports count too — a cycle of types is
 * a seam that has not been cut. Each file directly in src/ (app.ts, config.ts, …) is a node of its own.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../../src/paths.js';

const SRC = join(ROOT, 'src');
// import … from '…', export … from '…', import '…', import('…')
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return files(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** src/keyring/service.ts → "keyring"; src/app.ts → "app.ts". */
const node = (file: string) => relative(SRC, file).split('/')[0]!;

/** folder → the folders it imports, each with one import that shows it. */
export function folderGraph(): Map<string, Map<string, string>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of files(SRC)) {
    const from = node(file);
    const edges = graph.get(from) ?? new Map<string, string>();
    graph.set(from, edges);
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const target = resolve(dirname(file), specifier!.replace(/\.js$/, '.ts'));
      if (relative(SRC, target).startsWith('..')) continue;
      const to = node(target);
      if (to !== from && !edges.has(to)) edges.set(to, `${relative(ROOT, file)} → ${specifier}`);
    }
  }
  return graph;
}

/**
 * The groups of folders that reach each other (strongly connected components, Tarjan), each as
 * the imports between its members: empty when there is no cycle.
 */
function cycles(graph: Map<string, Map<string, string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const groups: string[][] = [];
  const visit = (at: string) => {
    index.set(at, index.size);
    low.set(at, index.get(at)!);
    stack.push(at);
    for (const next of graph.get(at)?.keys() ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(at, Math.min(low.get(at)!, low.get(next)!));
      } else if (stack.includes(next)) {
        low.set(at, Math.min(low.get(at)!, index.get(next)!));
      }
    }
    if (low.get(at) !== index.get(at)) return;
    const group: string[] = [];
    let member: string;
    do group.push((member = stack.pop()!));
    while (member !== at);
    if (group.length > 1) {
      groups.push(group.flatMap((from) => [...graph.get(from)!].filter(([to]) => group.includes(to)).map(([to, example]) => `${from} → ${to}: ${example}`)));
    }
  };
  for (const folder of graph.keys()) if (!index.has(folder)) visit(folder);
  return groups;
}

describe('src/ folders', () => {
  it('import each other without cycles (runtime and type-only imports)', () => {
    const graph = folderGraph();
    assert.ok(graph.has('store') && graph.get('app.ts')?.has('provider'), 'the checker reads the imports of src/');
    assert.deepEqual(cycles(graph), []);
  });
});
