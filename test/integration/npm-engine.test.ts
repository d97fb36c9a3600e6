/**
 * The quick start's first command on a Node older than `engines.node`: npm refuses at once
 * (engine-strict in .npmrc), rather than warning in the middle of the install and leaving
 * `npm start` to say it. Checked by npm itself, in a copy of the package whose engines this Node
 * does not meet (a dry run: nothing is installed).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';
import { testDir } from '../helpers/server.js';

describe('npm ci on a Node older than engines.node', function () {
  this.timeout(60_000);
  const dir = testDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses at once with EBADENGINE, naming the Node it needs', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    assert.equal(manifest.engines.node, '>=24');
    // A Node this one is older than, so the check is npm's, with the repository's own .npmrc.
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...manifest, engines: { node: '>=999' } }));
    copyFileSync(join(ROOT, 'package-lock.json'), join(dir, 'package-lock.json'));
    copyFileSync(join(ROOT, '.npmrc'), join(dir, '.npmrc'));
    const run = spawnSync('npm', ['ci', '--dry-run', '--ignore-scripts', '--offline', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8' });
    assert.notEqual(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stderr, /EBADENGINE/);
    assert.match(run.stderr, /Required: \{"node":">=999"\}/);
    assert.doesNotMatch(run.stdout, /^add /m, 'nothing listed for installing');
  });
});
