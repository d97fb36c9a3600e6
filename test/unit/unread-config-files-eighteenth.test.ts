/**
 * The eighteenth passes' review of the newcomer's commits (h13): config/ files no NODE_ENV reads are
 * said at each start (config.ts unreadConfigFiles, 27dd4e58). The file CONFIG_FILE names is read,
 * and was called unread, at every start, told to be given as CONFIG_FILE. See docs/security-passes.md,
 * "review of the commits named in your topic (h13)".
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { envWarnings, loadConfig } from '../../src/config.js';
import { ROOT } from '../../src/paths.js';

describe('a settings file in config/ given as CONFIG_FILE, eighteenth passes (h13)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-config-'));
    copyFileSync(join(ROOT, 'config', 'default.yaml'), join(dir, 'default.yaml'));
    writeFileSync(join(dir, 'local.yml'), 'ttl:\n  accessToken: 300\n');
    writeFileSync(join(dir, 'other.json'), '{}\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is not said to be unread, whether CONFIG_FILE names it by its absolute path or relative to the working directory; another one still is', () => {
    for (const CONFIG_FILE of [join(dir, 'local.yml'), relative(process.cwd(), join(dir, 'local.yml'))]) {
      // It is read: its setting applies.
      assert.equal(loadConfig({ CONFIG_FILE }, dir).ttl.accessToken, 300);
      assert.deepEqual(envWarnings({ CONFIG_FILE }, dir), [
        'config/other.json is not read: a settings file in config/ is named <NODE_ENV>.yaml (NODE_ENV=other reads config/other.yaml); rename it, or give it as CONFIG_FILE',
      ]);
    }
  });
});
