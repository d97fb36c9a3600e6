/**
 * The embedded store's control socket (src/store/control.ts): it serves only the Kv operations,
 * only to its owner, and what a server that did not stop cleanly leaves behind misleads no one.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { loadConfig, type Config } from '../../src/config.js';
import { EmbeddedKv } from '../../src/store/embedded.js';
import type { Kv } from '../../src/store/kv.js';
import { announceServer, controlPaths, openTarget, readRunInfo, strayStore } from '../../src/store/control.js';
import { ROOT } from '../../src/paths.js';
import { testDir, testEnv } from '../helpers/server.js';

/** Sends raw lines on the socket and returns the parsed replies, in order. */
async function exchange(path: string, lines: string[]): Promise<Record<string, unknown>[]> {
  const socket = connect(path);
  const replies: Record<string, unknown>[] = [];
  const reader = createInterface({ input: socket });
  const done = new Promise<void>((resolve) =>
    reader.on('line', (line) => {
      replies.push(JSON.parse(line) as Record<string, unknown>);
      if (replies.length === lines.length) resolve();
    }),
  );
  for (const line of lines) socket.write(`${line}\n`);
  await done;
  socket.destroy();
  return replies;
}

describe('the embedded store\'s control socket', () => {
  const dir = testDir();
  let config: Config;
  before(() => {
    config = loadConfig(testEnv(dir, 0));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a missing store is refused to a command from another directory, not from the checkout (first users add before npm start) nor with EMBEDDED_FILE given', () => {
    const { EMBEDDED_FILE: _given, ...env } = testEnv(dir, 0);
    const defaults = loadConfig(env);
    assert.equal(defaults.embeddedFileGiven, false);
    assert.equal(loadConfig({ ...env, EMBEDDED_FILE: defaults.embedded.file }).embeddedFileGiven, true);
    const missing = join(dir, 'data', 'dev-store.json');
    assert.match(strayStore(missing, false, dir) ?? '', /^no embedded store at .*dev-store\.json and no server running on it: run latchkey from the directory the server runs from/);
    assert.equal(strayStore(missing, false, ROOT), undefined);
    assert.equal(strayStore(missing, true, dir), undefined);
  });

  it('answers Kv operations only: not close, not inherited properties, not garbage; the store keeps working', async () => {
    const kv = new EmbeddedKv(config.embedded.file);
    const unannounce = await announceServer(config, kv, process.pid, (message) => assert.fail(message));
    try {
      const { socket, run } = controlPaths(config);
      assert.equal(statSync(socket).mode & 0o777, 0o600, 'only the owner may connect');
      assert.equal(statSync(run).mode & 0o777, 0o600);
      const replies = await exchange(socket, [
        '{"id":1,"op":"close","args":[]}',
        '{"id":2,"op":"constructor","args":[]}',
        '{"id":3,"op":"__proto__","args":[]}',
        'not json',
        '{"id":5,"op":"set","args":["k","v",null]}',
        '{"id":6,"op":"get","args":["k"]}',
        '{"id":7,"op":"get","args":["absent"]}',
      ]);
      for (const reply of replies.slice(0, 4)) assert.ok(reply.error, JSON.stringify(reply));
      assert.deepEqual(replies.slice(4), [{ id: 5, result: true }, { id: 6, result: 'v' }, { id: 7 }]);
      assert.equal(await kv.get('k'), 'v', 'the server\'s own store, not a copy');
    } finally {
      await unannounce();
      await kv.close();
    }
    assert.equal(readRunInfo(config), undefined, 'the run file is gone after a clean stop');
  });

  it('a stale socket and a run file of a dead process are replaced or ignored; a live socket refuses a second server', async () => {
    const { socket, run } = controlPaths(config);
    // What a killed server leaves: a socket file nobody listens on, and its run file.
    const stale = createServer();
    await new Promise<void>((done) => stale.listen(socket, done));
    await new Promise<void>((done) => stale.close(() => done()));
    writeFileSync(socket, '');
    writeFileSync(run, JSON.stringify({ pid: 2 ** 22 + 12345, store: 'redis', issuer: 'http://gone', location: 'Redis redis://gone' }));
    assert.equal(readRunInfo(config), undefined, 'a dead pid does not count as a running server');

    const kv = new EmbeddedKv(config.embedded.file);
    const unannounce = await announceServer(config, kv, process.pid, (message) => assert.fail(message));
    try {
      assert.equal(readRunInfo(config)?.store, 'embedded');
      const other = new EmbeddedKv(config.embedded.file);
      await assert.rejects(announceServer(config, other, process.pid, () => {}), /already served by another latchkey process/);
      await other.close();
    } finally {
      await unannounce();
      await kv.close();
    }
  });

  it('a second server from the same directory keeps the first one\'s record; the CLI finds the embedded one by its socket', async () => {
    const { run } = controlPaths(config);
    // A server on Redis started from this directory first (a live process other than this one).
    const onRedis = { pid: process.ppid, store: 'redis', issuer: 'http://localhost:3001', location: 'Redis redis://127.0.0.1:6379, key prefix lk:' };
    writeFileSync(run, JSON.stringify(onRedis));
    const warnings: string[] = [];
    const kv = new EmbeddedKv(config.embedded.file);
    const unannounce = await announceServer(config, kv, process.pid, (message) => warnings.push(message));
    try {
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, new RegExp(`^another latchkey server runs from this directory \\(pid ${process.ppid}, http://localhost:3001, on Redis .*\\); the CLI without REDIS_URL acts on this server's embedded store$`));
      assert.deepEqual(JSON.parse(readFileSync(run, 'utf8')), onRedis, 'the first server\'s record stays');
      await kv.set('made-by', 'the embedded server');
      const target = await openTarget(config);
      try {
        assert.match(target.description, /^the embedded store of the server running from this directory/);
        assert.equal(await target.kv.get('made-by'), 'the embedded server', 'the live store, through the socket, not the file');
      } finally {
        await target.kv.close();
      }
    } finally {
      await unannounce();
      await kv.close();
    }
    assert.deepEqual(JSON.parse(readFileSync(run, 'utf8')), onRedis, 'stopping the second server leaves the first one\'s record');
    rmSync(run, { force: true });
  });

  it('a server on Redis started after an embedded one from the same directory says the CLI needs its REDIS_URL, not its ISSUER: the CLI takes the issuer it announces in the store (the record names the other; tenth newcomer pass)', async () => {
    const { run } = controlPaths(config);
    const embedded = { pid: process.ppid, store: 'embedded', issuer: 'http://localhost:7500', location: config.embedded.file };
    writeFileSync(run, JSON.stringify(embedded));
    const warnings: string[] = [];
    const unannounce = await announceServer(config, { kind: 'redis', set: async () => true } as unknown as Kv, process.pid, (message) => warnings.push(message));
    try {
      assert.equal(warnings.length, 1);
      assert.match(warnings[0]!, new RegExp(`the CLI without REDIS_URL acts on the embedded store, not on this server; with this server's REDIS_URL it acts on its store, under the issuer this server announces there \\(${config.issuer}\\)$`));
      assert.deepEqual(JSON.parse(readFileSync(run, 'utf8')), embedded, "the embedded server's record stays");
    } finally {
      await unannounce();
    }
    // A server that could not announce its issuer says so, and that the CLI must be given it.
    warnings.length = 0;
    const unannounced = await announceServer(config, { kind: 'redis', set: async () => { throw new Error('READONLY'); } } as unknown as Kv, process.pid, (message) => warnings.push(message));
    try {
      assert.equal(warnings.length, 2, warnings.join('\n'));
      assert.match(warnings[0]!, new RegExp(`^cannot record this server's issuer in the store \\(READONLY\\): a CLI run elsewhere must be given ISSUER=${config.issuer}$`));
      assert.match(warnings[1]!, new RegExp(`with this server's REDIS_URL it acts on its store, and needs ISSUER=${config.issuer} to name its addresses$`));
    } finally {
      await unannounced();
      rmSync(run, { force: true });
    }
  });
});
