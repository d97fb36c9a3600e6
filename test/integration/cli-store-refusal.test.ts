/**
 * A command the store refuses (a Redis ACL user without the permission, NOPERM) is one line on
 * stderr and exit status 1, not a stack trace.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { latchkey } from '../helpers/process.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { testDir, testEnv } from '../helpers/server.js';

describe('latchkey CLI: the store refusing a command', function () {
  this.timeout(30_000);
  let redis: RedisServer;

  before(async () => {
    redis = await startRedisServer();
    const admin = new Redis(redis.url);
    // Reads only: every write the CLI makes is refused with NOPERM.
    await admin.call('ACL', 'SETUSER', 'reader', 'on', '>reader-password', '~*', '&*', '+@read', '+@connection', '+info', '+client', '+evalsha', '+eval', '+script');
    admin.disconnect();
  });
  after(async () => redis?.stop());

  it('NOPERM from an ACL user: one line naming the refusal, exit status 1', async () => {
    const url = new URL(redis.url);
    url.username = 'reader';
    url.password = 'reader-password';
    const env = testEnv(testDir(), 0, { redisUrl: url.href });
    const run = await latchkey(env, ['users', 'add', 'bob', '--password-stdin'], 'a passphrase long enough\n');
    assert.equal(run.status, 1, run.stderr);
    const lines = run.stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /^latchkey: the store refused the command \(NOPERM .*\)$/);
  });
});
