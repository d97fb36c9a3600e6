/**
 * What package.json promises about the runtime and the install: the Node versions claimed are
 * ones the dependencies support, and every dependency install script that `npm ci` runs is
 * declared in allowScripts (npm 11.16+ warns about the others; npm 12 will not run them).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MINIMUM_NODE_MAJOR } from '../../src/node-version.js';
import { ROOT } from '../../src/paths.js';

type Manifest = { name: string; engines?: { node?: string }; scripts?: Record<string, string>; allowScripts?: Record<string, boolean> };
const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Manifest;
const pkg = read(join(ROOT, 'package.json'));

/** Every installed package's manifest (node_modules and @scope/ folders, nested ones included). */
function installed(dir = join(ROOT, 'node_modules')): Manifest[] {
  const out: Manifest[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.name.startsWith('@')) {
      out.push(...installed(path));
      continue;
    }
    if (existsSync(join(path, 'package.json'))) out.push(read(join(path, 'package.json')));
    if (existsSync(join(path, 'node_modules'))) out.push(...installed(join(path, 'node_modules')));
  }
  return out;
}

describe('package.json: runtime and install scripts', () => {
  it('the build leaves the bin (dist/cli.js) executable: npx runs it through a link its cache keeps, which no install makes executable again after a fresh build', () => {
    const bin = join(ROOT, 'dist', 'cli.js');
    assert.ok(existsSync(bin), 'dist/cli.js is missing: run npm run build');
    assert.equal(statSync(bin).mode & 0o111, 0o111, 'dist/cli.js is not executable');
  });

  it('engines claims Node 24 LTS or later, which oidc-provider supports (it warns below Node 22 LTS, "Jod")', () => {
    assert.equal(pkg.engines?.node, '>=24');
    const source = readFileSync(join(ROOT, 'node_modules', 'oidc-provider', 'lib', 'index.js'), 'utf8');
    assert.match(source, /const minimal = 'Jod';/, 'oidc-provider changed its runtime check: revisit engines');
    assert.ok(Number(process.versions.node.split('.')[0]) >= 24, `tests run on Node ${process.versions.node}`);
  });

  it('the CLI on an older Node exits 1 with one line before loading anything (argon2 crashed Node 20 with a bare "Segmentation fault")', function () {
    this.timeout(20_000);
    assert.equal(`>=${MINIMUM_NODE_MAJOR}`, pkg.engines?.node, 'the check and engines agree');
    // This Node, claiming to be 20: what the CLI sees on an old Node, without needing one installed.
    const older = "data:text/javascript,Object.defineProperty(process.versions, 'node', { value: '20.19.0' })";
    for (const args of [['--version'], ['serve']]) {
      const result = spawnSync(process.execPath, ['--import', older, join(ROOT, 'dist', 'cli.js'), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PORT: '1' } });
      assert.equal(result.status, 1, result.stdout + result.stderr);
      assert.equal(result.stdout, '');
      assert.equal(result.stderr, 'latchkey: Node 20.19.0 is too old; Latchkey needs Node 24 or later (see the README\'s quick start)\n');
    }
  });

  it('every dependency with an install script is declared in allowScripts, and nothing else is', () => {
    const withScripts = new Set(
      installed()
        .filter((manifest) => ['preinstall', 'install', 'postinstall'].some((name) => manifest.scripts?.[name]))
        .map((manifest) => manifest.name),
    );
    assert.deepEqual(Object.keys(pkg.allowScripts ?? {}).sort(), [...withScripts].sort());
    assert.ok(Object.values(pkg.allowScripts ?? {}).every((allowed) => allowed === true));
  });
});
