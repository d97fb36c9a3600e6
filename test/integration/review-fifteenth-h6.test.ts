/**
 * Review of the fifteenth passes' start warning store.unpersisted_acks (h6; docs/security-passes.md,
 * "Looked at in the fifteenth passes: review of the merged changes (h6)").
 *
 * It was said of a Redis without appendonly only while it kept save points: one without (save "")
 * was taken to come back from a restart empty, which the store's epoch answers. But such a Redis
 * still writes an RDB file whenever one is asked for (a backup's SAVE or BGSAVE, a replica's full
 * sync without diskless sync, before Redis 7 the default) and loads it at every start: it comes back
 * on that snapshot, the epoch in it, every ending since undone. Said too now when a snapshot was
 * written since it started, or loaded when it started (INFO persistence), or when INFO does not say
 * (before Redis 7).
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { connect, RedisKv } from '../../src/store/redis.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';

describe('review of the fifteenth passes (h6): store.unpersisted_acks and a Redis without save points', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  before(async () => {
    redis = await startRedisServer(); // appendonly no, save ""
  });
  after(async () => {
    await redis?.stop();
  });

  async function unpersisted(url = redis.url): Promise<boolean> {
    const kv = new RedisKv(connect(loadConfig({ REDIS_URL: url }).redis));
    try {
      return await kv.acknowledgesUnpersisted();
    } finally {
      await kv.close();
    }
  }

  it('nothing on disk: not said; a snapshot written (a backup\'s SAVE), or loaded at start: said, for a restart comes back on it', async () => {
    assert.equal(await unpersisted(), false, 'no save points, no snapshot: a restart comes back empty');
    const admin = new Redis(redis.url);
    await admin.set('ended-after', 'no');
    await admin.save(); // a backup job
    admin.disconnect();
    assert.equal(await unpersisted(), true, 'a snapshot written since it started');

    await redis.kill();
    await redis.restart();
    const after = new Redis(redis.url);
    try {
      assert.equal(await after.get('ended-after'), 'no', 'it came back on the snapshot, not empty');
    } finally {
      after.disconnect();
    }
    assert.equal(await unpersisted(), true, 'a snapshot loaded at start: the next restart comes back on it again');
  });

  it('CONFIG refused (a managed Redis): said, for it may keep snapshots', async () => {
    const admin = new Redis(redis.url);
    try {
      await admin.call('ACL', 'SETUSER', 'managed', 'on', '>managed-password', '~*', '&*', '+@all', '-config');
      assert.equal(await unpersisted(`redis://managed:managed-password@127.0.0.1:${redis.port}`), true);
    } finally {
      await admin.call('ACL', 'DELUSER', 'managed').catch(() => {});
      admin.disconnect();
    }
  });
});
