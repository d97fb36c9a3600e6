/**
 * What a `latchkey` run loads before it prints help or a usage error: commander alone, not the
 * settings, the store or the key ring (the test suite runs the CLI ~150 times, ~45 of them for
 * help or a usage error; those modules were ~0.45 s of CPU a run). A command that runs loads them;
 * one that acts on the store alone (people, grants) does not load the protocol engine, which would
 * be about 0.45 s of CPU more a run (the store reads the engine's request context, not the engine).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';

/** Preloaded into the CLI: writes every package it loaded, and every module of ours (and the engine's entry), on stderr as it exits. */
const probe = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from 'node:module';
const packages = new Set();
const modules = new Set();
registerHooks({ resolve(specifier, context, next) {
  const resolved = next(specifier, context);
  const name = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(resolved.url)?.[1];
  if (name) packages.add(name);
  const module = resolved.url.includes('/node_modules/') ? /\\/(oidc-provider\\/lib\\/index\\.js)$/.exec(resolved.url)?.[1] : /\\/(dist\\/.*)$/.exec(resolved.url)?.[1];
  if (module) modules.add(module);
  return resolved;
} });
process.on('exit', () => process.stderr.write('packages: ' + [...packages].join(' ') + '\\nmodules: ' + [...modules].join(' ') + '\\n'));
`)}`;

/** The packages a run of the built CLI with `args` loaded, with its exit status and output. */
function packagesLoaded(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['--import', probe, join(ROOT, 'dist', 'cli.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, NODE_NO_WARNINGS: '1', ...env },
  });
  const line = /^packages: (.*)$/m.exec(result.stderr);
  const modules = /^modules: (.*)$/m.exec(result.stderr);
  assert.ok(line && modules, result.stderr);
  const words = (match: RegExpExecArray) => match[1]!.split(' ').filter(Boolean);
  return { status: result.status, output: result.stdout + result.stderr, packages: words(line), modules: words(modules) };
}

/** What the commands' actions load (settings, store, password hashing). */
const HEAVY = ['zod', 'yaml', 'ioredis', 'argon2'];
/** Loaded only by the commands that use them: the key ring's (keys, sessions, an engine) and the log's (serve). */
const RING_AND_LOG = ['jose', 'pino'];

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
    for (const name of RING_AND_LOG) assert.ok(!packages.includes(name), `${name} in ${packages.join(' ')}`);
  });

  for (const args of [['users', 'disable', 'nobody'], ['grants', 'revoke', '--user', 'nobody']]) {
    it(`latchkey ${args.join(' ')} opens the store, not the protocol engine`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-startup-'));
      try {
        const { status, modules, output } = packagesLoaded(args, { EMBEDDED_FILE: join(dir, 'store.json') });
        assert.equal(status, 1, output);
        assert.match(output, /no user "nobody"/);
        assert.ok(modules.includes('dist/store/index.js'), `the store in ${modules.join(' ')}`);
        assert.ok(!modules.includes('oidc-provider/lib/index.js'), `the engine in ${modules.join(' ')}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
