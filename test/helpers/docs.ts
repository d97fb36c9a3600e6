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

/**
 * The README's CLI reference: each command with the flags its rows name. Each row is `latchkey
 * <words> [options and arguments]` (a row may add "(or `latchkey …`)"); a command may have several
 * rows (`grants revoke`), a word may hold a hyphen (`clients rotate-secret`), and `users
 * disable|enable USERNAME` is two commands.
 */
export function cliReference(): Map<string, Set<string>> {
  const readme = readDoc('README.md');
  const start = readme.indexOf('\n## CLI\n');
  const reference = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const commands = new Map<string, Set<string>>();
  for (const [, usage] of reference.matchAll(/^\| `latchkey ([^`]+)`/gm)) {
    const words = usage!.split(' ');
    const end = words.findIndex((word) => !/^[a-z][a-z|-]*$/.test(word));
    const [group, ...rest] = words.slice(0, end < 0 ? undefined : end);
    for (const last of rest.length ? rest.at(-1)!.split('|') : ['']) {
      const command = [group, ...rest.slice(0, -1), last].filter(Boolean).join(' ');
      const flags = commands.get(command) ?? new Set<string>();
      for (const [flag] of usage!.matchAll(/--[a-z][a-z0-9-]*/g)) flags.add(flag);
      commands.set(command, flags);
    }
  }
  // `keys rotate --revoke-current` is documented in the `keys revoke` row it is an alternative to.
  commands.get('keys rotate')?.add('--revoke-current');
  return commands;
}
