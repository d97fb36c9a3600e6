/**
 * A newcomer's first hour (fifteenth fresh-eyes passes, docs/security-passes.md): the slips a
 * developer makes following the README for the first time, each answered with what to do.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { testDir } from '../helpers/server.js';

describe('a newcomer\'s first hour (fifteenth passes)', function () {
  this.timeout(60_000);
  const dir = testDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serve in production without ISSUER: one line asking for the public URL (it ran, naming http://localhost:<port> in every token); the CLI there still takes the announced issuer', async () => {
    const port = await freePort();
    const production = {
      NODE_ENV: 'production',
      PORT: String(port),
      METRICS_ENABLED: 'false',
      LOG_LEVEL: 'silent',
      // Never reached: the refusal comes first. With ISSUER set, this is what refuses instead.
      REDIS_URL: 'redis://127.0.0.1:1',
      COOKIE_KEYS: 'a-production-cookie-key-that-is-long-enough-0123456789',
      KEYS_SECRETS: 'a-production-key-ring-secret-that-is-long-enough-012345',
      KEYS_DIR: join(dir, 'keys'),
      WORKERS: '1',
    };
    const unset = await latchkey(production, ['serve']);
    assert.equal(unset.status, 1, unset.stderr);
    assert.deepEqual(unset.stderr.trim().split('\n'), [
      `latchkey: refusing to start in production: issuer (ISSUER): not set, so every token and URL would name http://localhost:${port}, which only this machine reaches; set ISSUER to the public URL clients reach this server at (ISSUER=https://id.example.com behind TLS; ISSUER=http://localhost:${port} to serve this machine alone)`,
    ]);
    // Set, even to localhost (docker compose's default), it gets past the issuer to the next step: Redis.
    const localhost = await latchkey({ ...production, ISSUER: `http://localhost:${port}` }, ['serve']);
    assert.equal(localhost.status, 1);
    assert.doesNotMatch(localhost.stderr, /ISSUER/);
    assert.match(localhost.stderr, /REDIS_URL: cannot reach Redis/);
    // The CLI is not the server: without ISSUER it takes the one the servers on its store announce.
    const cli = await latchkey(production, ['users', 'list']);
    assert.equal(cli.status, 1);
    assert.doesNotMatch(cli.stderr, /issuer \(ISSUER\)/);
  });
});
