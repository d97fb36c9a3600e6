/**
 * What a newcomer follows in the README and docs/ leads somewhere: every relative link names a file
 * that exists and, with `#anchor`, a heading of that page (as GitHub makes anchors); every `latchkey`
 * command the pages show, in a code block or inline, is one the README's CLI reference lists, with
 * flags it lists (test/integration/cli.test.ts holds that reference to each command's --help); and
 * every default the configuration reference states is the one config/default.yaml has.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../../src/paths.js';
import { cliReference, readAllDocs, readDoc } from '../helpers/docs.js';

/** Text outside fenced code blocks: a `[x](y)` in a shell example is not a link. */
function prose(text: string): string {
  return text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
}

/** GitHub's anchors: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function anchors(text: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, title] of prose(text).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const slug = title!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    found.add(count ? `${slug}-${count}` : slug);
  }
  return found;
}

/** Every `latchkey …` a page shows: the words of the command and the flags given to it. */
function invocations(text: string): { command: string; flags: string[]; line: string }[] {
  const code = [
    ...[...text.matchAll(/^```(?:sh|bash)?\n([\s\S]*?)^```$/gm)].map(([, block]) => block!.replace(/\\\n/g, ' ')),
    ...[...prose(text).matchAll(/`([^`\n]+)`/g)].map(([, span]) => span!),
  ];
  const found: { command: string; flags: string[]; line: string }[] = [];
  for (const written of code) {
    // The CLI in the compose service is the same CLI: `docker compose exec -T latchkey node dist/cli.js users add` is `latchkey users add`.
    const piece = written.replace(/docker compose (?:exec|run)(?: -T)? latchkey node dist\/cli\.js/g, 'latchkey');
    for (const [, rest] of piece.matchAll(/(?:^|[\s($])latchkey ([^\n|;)#&]*)/g)) {
      const words = rest!.trim().split(/\s+/);
      const end = words.findIndex((word) => !/^[a-z][a-z-]*$/.test(word));
      const command = words.slice(0, end < 0 ? undefined : end).join(' ');
      const flags = words.filter((word) => /^--[a-z]/.test(word)).map((word) => word.replace(/=.*$/, ''));
      if (command) found.push({ command, flags, line: `latchkey ${rest!.trim()}` });
    }
  }
  return found;
}

describe('the README and docs/ as a newcomer follows them', () => {
  it('every relative link names a file that exists, and its #anchor a heading there', () => {
    const broken: string[] = [];
    for (const { path, text } of readAllDocs()) {
      for (const [, href] of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(href!)) continue;
        const [file, anchor] = href!.split('#');
        const target = file ? normalize(join(dirname(path), file)) : path;
        if (!existsSync(join(ROOT, target))) broken.push(`${path}: ${href} (no file ${target})`);
        else if (anchor !== undefined && target.endsWith('.md') && !anchors(readDoc(target)).has(anchor)) {
          broken.push(`${path}: ${href} (no heading #${anchor} in ${target})`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  it("every latchkey command the pages show is in the README's CLI reference, with its flags", () => {
    const reference = cliReference();
    assert.ok(reference.size > 20, [...reference.keys()].join(', '));
    const groups = new Set([...reference.keys()].flatMap((command) => command.split(' ').map((_, i, words) => words.slice(0, i + 1).join(' '))));
    const wrong: string[] = [];
    for (const { path, text } of readAllDocs()) {
      for (const { command, flags, line } of invocations(text)) {
        // The longest documented command the words begin with: `keys revoke KID` is `keys revoke`.
        const words = command.split(' ');
        const known = words.map((_, i) => words.slice(0, words.length - i).join(' ')).find((prefix) => reference.has(prefix));
        if (!known) {
          if (!groups.has(command) || flags.length) wrong.push(`${path}: ${line} (no such command)`);
          continue;
        }
        const unknown = flags.filter((flag) => !reference.get(known)!.has(flag) && flag !== '--help');
        if (unknown.length) wrong.push(`${path}: ${line} (${known} has no ${unknown.join(', ')})`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("every default the configuration reference states is config/default.yaml's", () => {
    const defaults = parse(readFileSync(join(ROOT, 'config', 'default.yaml'), 'utf8')) as Record<string, unknown>;
    const readme = readDoc('README.md');
    const wrong: string[] = [];
    let rows = 0;
    for (const [, setting, value] of readme.matchAll(/^\| `([a-zA-Z0-9.]+)` \| `[A-Z0-9_]+` \| `([^`]*)`/gm)) {
      rows += 1;
      const actual = setting!.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], defaults);
      const shown = Array.isArray(actual) ? JSON.stringify(actual) : String(actual);
      // `issuer`'s default is written as what the empty value means.
      if (shown !== value && !(setting === 'issuer' && actual === '' && value === 'http://localhost:<port>')) {
        wrong.push(`${setting}: README ${value}, config/default.yaml ${shown}`);
      }
    }
    assert.ok(rows > 60, `${rows} rows read`);
    assert.deepEqual(wrong, []);
  });
});
