/**
 * The files a development server keeps (the embedded store's `embedded.file`, the key ring in
 * `keys.dir`) when they are not what Latchkey can use: a setting naming a directory or a file the
 * wrong way round, a file that is not JSON (edited by hand). Each is one line naming the setting,
 * never a stack trace, and a running server whose store file is broken under it keeps serving.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '../helpers/eventually.js';
import { latchkey, latchkeyOneStream, serveProcess } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { testDir } from '../helpers/server.js';

describe('latchkey: unusable store and key ring files', function () {
  this.timeout(60_000);
  const dir = testDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function env(name: string): Promise<Record<string, string>> {
    mkdirSync(join(dir, name), { recursive: true });
    return {
      PORT: String(await freePort()),
      METRICS_ENABLED: 'false',
      LOG_LEVEL: 'silent',
      EMBEDDED_FILE: join(dir, name, 'store.json'),
      KEYS_DIR: join(dir, name, 'keys'),
      KEYS_RSA_BITS: '2048',
    };
  }

  function assertOneLine(run: { status: number | null; stderr: string }, pattern: RegExp): void {
    assert.equal(run.status, 1, run.stderr);
    const lines = run.stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, pattern);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  }

  it('serve with EMBEDDED_FILE naming a directory, or a store file that is not JSON: one line naming the setting', async () => {
    const settings = await env('store-dir');
    assertOneLine(
      await latchkey({ ...settings, EMBEDDED_FILE: join(dir, 'store-dir') }, ['serve']),
      /^latchkey: embedded\.file \(EMBEDDED_FILE\): cannot read .*store-dir \(EISDIR[^)]*\); expected the embedded store's JSON file/,
    );
    writeFileSync(settings.EMBEDDED_FILE!, 'garbage\n');
    // V8's excerpt is not quoted (json-problem.ts); "garbage" holds its g twice, so no place is said either.
    const pattern = /^latchkey: embedded\.file \(EMBEDDED_FILE\): cannot read .*store\.json \(not valid JSON: an unexpected character \(the text around it is not shown\)\); expected the embedded store's JSON file/;
    assertOneLine(await latchkey(settings, ['serve']), pattern);
    assertOneLine(await latchkey(settings, ['users', 'list']), pattern);
  });

  it('serve with KEYS_DIR naming a file, or a key ring that is not JSON: one line', async () => {
    const settings = await env('keys-file');
    writeFileSync(join(dir, 'keys-file', 'plain'), 'not a directory\n');
    assertOneLine(
      await latchkey({ ...settings, KEYS_DIR: join(dir, 'keys-file', 'plain') }, ['serve']),
      /^latchkey: keys\.dir \(KEYS_DIR\): cannot read the key ring .*plain\/keyring\.json \(ENOTDIR[^)]*\); expected a directory Latchkey can read$/,
    );
    mkdirSync(settings.KEYS_DIR!, { recursive: true });
    writeFileSync(join(settings.KEYS_DIR!, 'keyring.json'), '{');
    const pattern = /^latchkey: .*keyring\.json is not a Latchkey key ring \(not JSON\)$/;
    assertOneLine(await latchkey(settings, ['serve']), pattern);
    assertOneLine(await latchkey(settings, ['keys', 'list']), pattern);
  });

  it('a refused start ends with its one line where stdout and stderr are one log (a container\'s, a journal): what was logged before it is written first (tenth newcomer pass)', async () => {
    // The JSON log is written in batches, the refusal at once: in one stream, the embedded store's
    // warning, "generated a signing key" and the like came after the refusal, the last lines read.
    const settings = { ...(await env('one-stream')), LOG_LEVEL: 'info', LOG_FORMAT: 'json' };
    writeFileSync(join(dir, 'one-stream', 'plain'), 'not a directory\n');
    const refusals: [Record<string, string>, RegExp][] = [
      [{ KEYS_DIR: join(dir, 'one-stream', 'plain') }, /^latchkey: keys\.dir \(KEYS_DIR\): cannot read the key ring/],
      [{ CLIENTS: JSON.stringify([{ client_id: 'app', client_secret: 'short', redirect_uris: ['https://app.example.com/cb'] }]) }, /^latchkey: clients \(CLIENTS\): client "app": client_secret must be at least 32/],
      [{ HOST: 'no-such-host.invalid' }, /^latchkey: HOST: "no-such-host\.invalid" is not a known host name/],
    ];
    for (const [extra, pattern] of refusals) {
      const { status, output } = await latchkeyOneStream({ ...settings, ...extra }, ['serve']);
      assert.equal(status, 1, output);
      const lines = output.trim().split('\n');
      assert.match(lines.at(-1)!, pattern, output);
      assert.ok(lines.length > 1 && lines.slice(0, -1).every((line) => line.startsWith('{')), `the log lines before it: ${output}`);
    }
  });

  it('a running server whose store file is broken by a hand edit keeps serving what it read, says so, and reloads a good edit', async () => {
    const settings: Record<string, string> = { ...(await env('hand-edit')), LOG_LEVEL: 'warn' };
    const server = await serveProcess(settings);
    try {
      const added = await latchkey(settings, ['users', 'add', 'alice', '--password-stdin'], 'a long passphrase');
      assert.equal(added.status, 0, added.stderr);
      writeFileSync(settings.EMBEDDED_FILE!, '{"oops": ');
      await eventually(async () => {
        assert.match(server.stdout(), /embedded\.file \(EMBEDDED_FILE\): cannot read .*store\.json.*keeping what was read before/);
      }, 100);
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200, 'still serving');
      const listed = await latchkey(settings, ['users', 'list']);
      assert.equal(listed.status, 0, listed.stderr);
      assert.match(listed.stdout, /"username": "alice"/, 'the people it read before are kept');
      writeFileSync(settings.EMBEDDED_FILE!, '{}');
      await eventually(async () => {
        const again = await latchkey(settings, ['users', 'list']);
        assert.doesNotMatch(again.stdout, /alice/, 'a good edit is read again');
      }, 100);
    } finally {
      assert.equal(await server.stop(), 0, server.stderr());
    }
  });
});
