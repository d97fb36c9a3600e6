/**
 * Review of the seventeenth passes (f99951b9..6225b947), docs/security-passes.md: the operator's
 * day fix (h12, json-problem.ts) dropped V8's excerpt from a refused JSON setting or
 * store file, and with it the only clue to where the mistake was: V8's "Unexpected token" message
 * says no position, so a KEYS_SECRETS, CLIENTS or EMBEDDED_FILE with an unquoted value (the commonest
 * slip) was refused as "an unexpected character (the text around it is not shown)", nowhere. The
 * place is said again (position, line and column, as V8's other messages say it), still with no
 * piece of the text.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';
import { openStore } from '../../src/store/index.js';
import { jsonProblem } from '../../src/json-problem.js';

const SECRET = 'qzXv7wJm0123456789bdfhjkmpqrtvwxyzBDFHJ';
const holdsPiece = (text: string) => Array.from({ length: SECRET.length - 4 }, (_, i) => SECRET.slice(i, i + 5)).some((piece) => text.includes(piece));

/** What the refusal says of `text`, as JSON.parse refuses it. */
const said = (text: string) => {
  try {
    JSON.parse(text);
  } catch (error) {
    return jsonProblem(error, text);
  }
  assert.fail('parsed');
};

describe("a refused JSON setting or store file still says where its mistake is (review of the seventeenth passes)", () => {
  it('the unexpected token\'s position, line and column, for each of V8\'s excerpts (start, middle, end, whole), and no piece of the text', () => {
    for (const [text, position] of [
      [`[${SECRET}]`, 1], // the excerpt from the start
      [`["${SECRET}", ${SECRET}]`, SECRET.length + 5], // either side
      [`{"client_id":"a","client_secret":${SECRET}}`, 33], // either side, further in
      [`["${SECRET}",\n 'b']`, SECRET.length + 6], // to the end, on line 2
      ['[1,x]', 3], // a short text, quoted whole
    ] as const) {
      const problem = said(text);
      const before = text.slice(0, position).split('\n');
      assert.equal(problem, `an unexpected character at position ${position} (line ${before.length} column ${before.at(-1)!.length + 1}) (the text around it is not shown)`, text);
      assert.ok(!holdsPiece(problem), problem);
    }
  });

  it('no place said when the excerpt leaves it uncertain (a short text holding the token twice), and never a wrong one', () => {
    assert.equal(said('[x,x]'), 'an unexpected character (the text around it is not shown)');
    assert.equal(jsonProblem(new SyntaxError(`Unexpected token 'T', "${SECRET}" is not valid JSON`), '[]'), 'an unexpected character (the text around it is not shown)');
    // V8's other messages say their place themselves: kept.
    assert.match(said(`["${SECRET}" "b"]`), /^Expected ',' or ']' after array element in JSON at position \d+ \(line 1 column \d+\)$/);
  });

  it('KEYS_SECRETS with an unquoted secret: the refusal says where, not what', () => {
    try {
      loadConfig({ NODE_ENV: 'test', KEYS_SECRETS: `["a-first-secret-long-enough", ${SECRET}]` });
      assert.fail('loaded');
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.message, /not valid JSON \(an unexpected character at position 31 \(line 1 column 32\)/, error.message);
      assert.ok(!holdsPiece(error.message), error.message);
    }
  });

  it('an embedded store file broken by a hand edit on its third line: the refusal says line 3', () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-h15-17-'));
    try {
      const file = join(dir, 'store.json');
      writeFileSync(file, `{\n  "a": {"type": "string", "value": "b"},\n  "oidc:RefreshToken:x": ${SECRET}\n}\n`);
      let message = '';
      try {
        void openStore(loadConfig({ NODE_ENV: 'test', EMBEDDED_FILE: file, KEYS_DIR: join(dir, 'keys') })).close();
      } catch (error) {
        message = (error as Error).message;
      }
      assert.match(message, /not valid JSON: an unexpected character at position \d+ \(line 3 column 26\)/, message);
      assert.ok(!holdsPiece(message), message);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
