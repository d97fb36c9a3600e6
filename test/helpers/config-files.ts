/** Configuration files that loadConfig refuses, for the suites that try how a file is told it is wrong. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';

/**
 * Call in a describe: a folder for the suite (removed after it), and what loadConfig says of a
 * CONFIG_FILE named `name` there holding `text`, which it must refuse with one line (a start with a
 * misconfiguration exits with one), the file's path in it written FILE.
 */
export function refusedConfigFile(name = 'extra.yaml'): (text: string) => string {
  let dir: string | undefined;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-config-'));
  });
  after(() => rmSync(dir!, { recursive: true, force: true }));
  return (text) => {
    const file = join(dir!, name);
    writeFileSync(file, text);
    try {
      loadConfig({ CONFIG_FILE: file });
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      assert.ok(!error.message.includes('\n'), 'one line');
      return error.message.replaceAll(file, 'FILE');
    }
    assert.fail(`${text} was taken`);
  };
}
