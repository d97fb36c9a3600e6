/**
 * Review of the seventeenth passes (f99951b9..6225b947), docs/security-passes.md: h11 taught the
 * config's echo of an unknown key (config.ts given) that a Redis password goes by pass, auth_pass,
 * requirepass, pwd or auth too; h12's YAML refusal (quotableLine) quotes a broken `key: value` line
 * whole unless its key is named like a secret by its own, shorter list, so a config file's broken
 * `requirepass: …` line printed the password on stderr. One list for both now.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';

const PASSWORD = 'hunter2qzXv7wJm0123';

describe("a broken config file line holding a Redis password under another name is not quoted (review of the seventeenth passes)", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-h15-yaml-17-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const refusal = (text: string) => {
    const file = join(dir, 'latchkey.yaml');
    writeFileSync(file, text);
    try {
      loadConfig({ NODE_ENV: 'test', CONFIG_FILE: file });
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.message;
    }
    assert.fail('loaded');
  };

  for (const key of ['pass', 'auth_pass', 'requirepass', 'pwd', 'auth']) {
    it(`redis.${key}: the line and column said, its key alone quoted, not the password`, () => {
      const said = refusal(`redis:\n  ${key}: ${PASSWORD}: x\n`);
      assert.match(said, /not valid YAML: .* at line 2, column \d+ /, said);
      assert.ok(said.endsWith(`("${key}: …")`), said);
      assert.ok(!said.includes(PASSWORD.slice(0, 7)), said);
    });
  }

  it('held: a line with nothing secret is still quoted whole', () => {
    assert.match(refusal('port: 3001: x\n'), /\("port: 3001: x"\)$/);
  });
});
