/**
 * The eighteenth newcomer pass (h4): what a developer who never saw Latchkey wrote, following the
 * README, that was taken without a word. See docs/security-passes.md, "the newcomer's first hour (h4)".
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envWarnings, loadConfig } from '../../src/config.js';
import { ROOT } from '../../src/paths.js';
import { readAllDocs, readDoc } from '../helpers/docs.js';

describe('newcomer, eighteenth pass', () => {
  describe('a settings file in config/ that is never read', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'latchkey-config-'));
      copyFileSync(join(ROOT, 'config', 'default.yaml'), join(dir, 'default.yaml'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('config/development.yml (or .json) is ignored by the settings, and said so, naming the file that is read', () => {
      writeFileSync(join(dir, 'development.yml'), 'ttl:\n  accessToken: 300\n');
      // Only <NODE_ENV>.yaml is read: the file changes nothing, which is why a line must say so.
      assert.equal(loadConfig({}, dir).ttl.accessToken, 900);
      assert.deepEqual(envWarnings({}, dir), [
        'config/development.yml is not read: a settings file in config/ is named <NODE_ENV>.yaml (this start reads config/development.yaml); rename it, or give it as CONFIG_FILE',
      ]);
      rmSync(join(dir, 'development.yml'));
      for (const name of ['production.json', 'staging.yml', 'test.Yml']) writeFileSync(join(dir, name), '{}\n');
      assert.deepEqual(envWarnings({ NODE_ENV: 'production' }, dir), [
        'config/production.json is not read: a settings file in config/ is named <NODE_ENV>.yaml (this start reads config/production.yaml); rename it, or give it as CONFIG_FILE',
        'config/staging.yml is not read: a settings file in config/ is named <NODE_ENV>.yaml (NODE_ENV=staging reads config/staging.yaml); rename it, or give it as CONFIG_FILE',
        'config/test.Yml is not read: a settings file in config/ is named <NODE_ENV>.yaml (NODE_ENV=test reads config/test.yaml); rename it, or give it as CONFIG_FILE',
      ]);
    });

    it('says nothing of the files it reads under some NODE_ENV, nor of what is no settings file (a README, an editor\'s backup)', () => {
      for (const name of ['development.yaml', 'production.yaml', 'staging.yaml', 'README.md', 'default.yaml~', '.development.yaml.swp']) writeFileSync(join(dir, name), '{}\n');
      assert.deepEqual(envWarnings({}, dir), []);
      assert.deepEqual(envWarnings({ NODE_ENV: 'production' }, dir), []);
      // The checkout's own config/ holds nothing unread.
      assert.deepEqual(envWarnings({}), []);
    });
  });

  it("the CLI under docker compose is run with -T wherever the docs show it: compose gives exec a terminal by default, which merges the CLI's stderr line into the JSON a `| jq` reads", () => {
    const runs = readAllDocs().flatMap(({ path, text }) => [...text.matchAll(/docker compose (?:exec|run)\b[^`\n]*/g)].map(([run]) => ({ path, run })));
    assert.ok(runs.length > 0, 'the README shows the CLI in the container');
    for (const { path, run } of runs) assert.match(run, /^docker compose (exec|run) -T\b/, `${path}: ${run}`);
    const readme = readDoc('README.md');
    const docker = readme.slice(readme.indexOf('With Docker'), readme.indexOf('## Sign in with Latchkey'));
    assert.match(docker, /`-T`[^.]*stderr[^.]*jq/, 'the README says why -T, for the walkthrough\'s `| jq` too');
  });
});
