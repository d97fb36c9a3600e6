/**
 * The second review of the twelfth passes' changes (docs/security-passes.md): what a server killed
 * (kill -9, an OOM kill, `docker kill`) leaves in keys/ beside its key ring, keyring.json.server.
 * Its pid then names whatever process has it next: in a container started again that is pid 1, the
 * new server itself; on a machine, any process. Read as a running server's, it blocked the next
 * start on another store file and the move to Redis left the keys behind.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { latchkey, serveProcess } from '../helpers/process.js';
import { freePort, startRedisServer } from '../helpers/redis.js';
import { testDir, testEnv } from '../helpers/server.js';

const kids = async (url: string) => ((await (await fetch(`${url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);

describe('the second review of the twelfth passes', function () {
  // Each case is a Node process of its own: seconds apiece on a busy machine.
  this.timeout(180_000);
  const dir = testDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a key ring's record left by a killed embedded server whose pid another process has now (pid 1 in a container started again) neither refuses a start on another store file, nor the CLI, nor keeps the move to Redis from importing the keys", async () => {
    const env = testEnv(dir, await freePort());
    const embedded = await serveProcess(env);
    const signing = await kids(embedded.url);
    const { pid } = JSON.parse(readFileSync(`${env.EMBEDDED_FILE}.server`, 'utf8')) as { pid: number };
    process.kill(pid, 'SIGKILL');
    await embedded.stop();
    const record = join(env.KEYS_DIR!, 'keyring.json.server');
    const left = JSON.parse(readFileSync(record, 'utf8')) as { pid: number };
    assert.equal(left.pid, pid, 'a killed server leaves its record');
    // Its pid now another process's: this one stands for it, alive and no latchkey server.
    writeFileSync(record, JSON.stringify({ ...left, pid: process.pid }), { mode: 0o600 });

    const listed = await latchkey({ ...env, EMBEDDED_FILE: join(dir, 'moved.json') }, ['keys', 'list']);
    assert.equal(listed.status, 0, listed.stderr);

    const port = await freePort();
    const moved = await serveProcess({ ...env, PORT: String(port), ISSUER: `http://localhost:${port}`, EMBEDDED_FILE: join(dir, 'moved.json') });
    try {
      assert.deepEqual(await kids(moved.url), signing, 'the same key ring, the one server on it');
    } finally {
      await moved.stop();
    }

    writeFileSync(record, JSON.stringify({ ...left, pid: process.pid }), { mode: 0o600 });
    const redis = await startRedisServer();
    try {
      const onRedis = await serveProcess({ ...env, REDIS_URL: redis.url, LOG_LEVEL: 'info' });
      try {
        assert.deepEqual((await kids(onRedis.url)).filter((kid) => signing.includes(kid)), signing, 'the keys moved to Redis');
        assert.doesNotMatch(onRedis.stdout(), /not importing the signing keys/);
      } finally {
        await onRedis.stop();
      }
    } finally {
      await redis.stop();
    }
  });
});
