/**
 * The documentation as tests read it: the README (the front door) and the pages its long topics
 * moved to in docs/. A test that checks what the documentation tells people reads the page the
 * text lives on, or all of them where a rule holds for every page.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';

/** One page: 'README.md' or a file of docs/ ('docs/operating.md'). */
export function readDoc(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

/** Every page, README first, each with its path. */
export function readAllDocs(): { path: string; text: string }[] {
  const pages = readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`);
  return ['README.md', ...pages].map((path) => ({ path, text: readDoc(path) }));
}
