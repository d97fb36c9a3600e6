/**
 * The seventeenth passes: the operator's day (h12), docs/security-passes.md "Looked at in the
 * seventeenth passes: the operator's day (h12)".
 *
 * A parser's error quotes the text it refused: V8's JSON.parse a few characters either side of an
 * unexpected token (`Unexpected token 'T', ..."secrets":TOPSECRET1"... is not valid JSON`), the YAML
 * refusal the whole offending line. A KEYS_SECRETS, COOKIE_KEYS or CLIENTS mistyped in its JSON, a
 * config file's broken `secrets:` or `url: redis://:password@…` line, and an embedded store file
 * broken by a hand edit (tokens, sessions) printed a piece of the secret on stderr at start, and in
 * the log of a running server re-reading its store file. None is quoted now; where it was is still said.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';
import { openStore } from '../../src/store/index.js';

const SECRET = 'qzXv7wJm0123456789bdfhjkmpqrtvwxyzBDFHJ';
/** Whether `text` holds any five characters of SECRET in a row. */
const holdsPiece = (text: string) => Array.from({ length: SECRET.length - 4 }, (_, i) => SECRET.slice(i, i + 5)).some((piece) => text.includes(piece));

describe('the operator\'s day (seventeenth passes, h12): a refused setting or file never quotes a secret', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-h12-17-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const refusal = (env: Record<string, string>) => {
    try {
      loadConfig({ NODE_ENV: 'test', ...env });
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.message;
    }
    assert.fail('loaded');
  };

  it('a secret setting\'s JSON with a mistake near the secret: refused as not valid JSON, no piece of it quoted', () => {
    for (const [name, value] of [
      ['KEYS_SECRETS', `["${SECRET}", ${SECRET}]`],
      ['KEYS_SECRETS', `[${SECRET}]`],
      ['COOKIE_KEYS', `["${SECRET}",]`],
      ['CLIENTS', `[{"client_id":"a","client_secret":"${SECRET}"},]`],
      ['CLIENTS', `[{"client_id":"a","client_secret":${SECRET}}]`],
    ] as const) {
      const said = refusal({ [name]: value });
      assert.match(said, /: not valid JSON/, said);
      assert.ok(!holdsPiece(said), `${name}: ${said}`);
    }
    // Where it is, when the parser says it without quoting: still said.
    assert.match(refusal({ RESOURCE_SERVERS: '[{"identifier": x}]' }), /^resourceServers \(RESOURCE_SERVERS\): not valid JSON \(.*\)$/);
    assert.match(refusal({ KEYS_SECRETS: `["${SECRET}" "b"]` }), /at position \d+/);
  });

  it('a config file\'s broken line holding a secret or a Redis password is not quoted; other lines are', () => {
    const file = join(dir, 'latchkey.yaml');
    const said = (text: string) => {
      writeFileSync(file, text);
      return refusal({ CONFIG_FILE: file });
    };
    for (const text of [
      `keys:\n  secrets: ["${SECRET}" "b"]\n`,
      `cookie:\n  keys: ["${SECRET}", "x]\n`,
      `keys:\n  secrets:\n    - "${SECRET}\n    - b: [\n`,
      `redis:\n  url: redis://:${SECRET}@127.0.0.1:6379\n mode: x\n`,
      `redis:\n\turl: redis://:${SECRET}@127.0.0.1:6379\n`,
      `cookie:\n  keys: [${SECRET}: x: y\n`,
    ]) {
      const message = said(text);
      assert.match(message, /not valid YAML: .* at line \d+, column \d+/, message);
      assert.ok(!holdsPiece(message), message);
    }
    assert.match(said('port: 3001: x\n'), /\("port: 3001: x"\)$/);
  });

  it('an embedded store file broken by a hand edit: refused in one line, none of its tokens quoted', () => {
    const file = join(dir, 'store.json');
    writeFileSync(file, `{"oidc:RefreshToken:${SECRET}": x}\n`);
    let message = '';
    let cause: unknown;
    try {
      const kv = openStore(loadConfig({ NODE_ENV: 'test', EMBEDDED_FILE: file, KEYS_DIR: join(dir, 'keys') }));
      void kv.close();
    } catch (error) {
      message = (error as Error).message;
      cause = (error as Error).cause;
    }
    assert.match(message, /EMBEDDED_FILE\): cannot read .*not valid JSON/, message);
    assert.ok(!holdsPiece(message), message);
    assert.ok(!holdsPiece(String((cause as Error | undefined)?.message ?? '')), 'nor in the error it carries');
  });
});
