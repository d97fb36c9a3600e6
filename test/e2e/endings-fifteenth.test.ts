/**
 * The fifteenth fresh-eyes passes of 2026-12-07, "endings that do not end" (docs/security-passes.md,
 * "Looked at in the fifteenth fresh-eyes passes of 2026-12-07: endings that do not end"), black box.
 *
 * A Redis that appends no write to a file (`appendonly no`, Redis's own default, and that of the
 * official image) comes back from a crash, an OOM kill or a container killed on its last RDB
 * snapshot: every ending acknowledged since (an RFC 7009 revocation, a sign-out, a password changed,
 * a person disabled, a key revoked) is undone, and what it ended works again. The store's epoch does
 * not see it (the snapshot holds the epoch): performed, a client's token revoked after a `SAVE`, the
 * redis-server killed and started again, was active again at introspection. Nothing said so: a
 * server said so of a master without `min-replicas-to-write` (store.unreplicated_acks) and refused
 * one that evicts, but was silent on one that persists nothing. It now says so at start
 * (store.unpersisted_acks), as it does of the replicas.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/ops/logger.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

interface LogLine {
  readonly event?: string;
  readonly msg?: string;
}

describe('e2e: fifteenth fresh-eyes pass, endings undone by a Redis that persists nothing', function () {
  this.timeout(60_000);
  let redis: RedisServer;

  before(async () => {
    redis = await startRedisServer(); // appendonly no
  });
  after(async () => {
    await redis?.stop();
  });

  async function startedOn(url: string): Promise<LogLine[]> {
    const lines: LogLine[] = [];
    const server: TestServer = await startServer({ redisUrl: url, cheapHashing: true, logger: createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) }) });
    await server.stop();
    return lines;
  }
  const warned = (lines: readonly LogLine[]) => lines.filter((line) => line.event === 'store.unpersisted_acks');

  it('a Redis without appendonly (its restart brings back the last snapshot, every ending since undone) is said at start; with it, it is not', async () => {
    const unset = warned(await startedOn(redis.url));
    assert.equal(unset.length, 1, 'said at start of a Redis with appendonly no');
    assert.match(unset[0]!.msg ?? '', /appendonly yes/);

    const admin = new Redis(redis.url);
    try {
      await admin.config('SET', 'appendonly', 'yes');
      assert.deepEqual(warned(await startedOn(redis.url)), [], 'not said once Redis appends every write');
    } finally {
      await admin.config('SET', 'appendonly', 'no').catch(() => {});
      admin.disconnect();
    }
  });
});
