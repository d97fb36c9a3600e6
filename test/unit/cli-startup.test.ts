/**
 * What a `latchkey` run loads before it prints help or a usage error: commander alone, not the
 * settings, the store or the key ring (the test suite runs the CLI ~150 times, ~45 of them for
 * help or a usage error; those modules were ~0.45 s of CPU a run). A command that runs loads them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';

/** Preloaded into the CLI: writes every package it loaded on stderr as it exits. */
const probe = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from 'node:module';
const packages = new Set();
registerHooks({ resolve(specifier, context, next) {
  const resolved = next(specifier, context);
  const name = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(resolved.url)?.[1];
  if (name) packages.add(name);
  return resolved;
} });
process.on('exit', () => process.stderr.write('packages: ' + [...packages].join(' ') + '\\n'));
`)}`;

/** The packages a run of the built CLI with `args` loaded, with its exit status and output. */
function packagesLoaded(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['--import', probe, join(ROOT, 'dist', 'cli.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, NODE_NO_WARNINGS: '1', ...env },
  });
  const line = /^packages: (.*)$/m.exec(result.stderr);
  assert.ok(line, result.stderr);
  return { status: result.status, output: result.stdout + result.stderr, packages: line[1]!.split(' ').filter(Boolean) };
}

/** What the commands' actions load (settings, store, key ring, logger, password hashing). */
const HEAVY = ['zod', 'yaml', 'ioredis', 'jose', 'pino', 'argon2'];

describe('CLI startup: help and usage errors load commander alone', function () {
  this.timeout(20_000);

  for (const args of [['--help'], ['--version'], ['users', 'add', '--help'], ['users', 'add'], ['clients', 'lsit'], ['keys', 'revoke', '-abc']]) {
    it(`latchkey ${args.join(' ')}`, () => {
      const { packages, output } = packagesLoaded(args);
      assert.deepEqual(packages, ['commander'], output);
    });
  }

  it('a command that runs loads what it needs (the probe sees them)', () => {
    // A setting it refuses: the run stops once the settings are read, before any store is opened.
    const { status, packages, output } = packagesLoaded(['users', 'list'], { PORT: 'none' });
    assert.equal(status, 1, output);
    assert.match(output, /PORT/);
    for (const name of HEAVY) assert.ok(packages.includes(name), `${name} in ${packages.join(' ')}`);
  });
});
