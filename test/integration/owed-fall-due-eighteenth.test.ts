/**
 * The eighteenth passes, review of the merged operator and CI changes (h19): the front door's
 * owedFallDue (test/helpers/front-door.ts), which redteam-endings-29, -30 and -31 call instead of
 * waiting OWED_S out. Moving every owed ending due at once, whatever its due time, the tests no
 * longer said that a cut-off change's ending falls due on its own, OWED_S later: one kept an hour
 * (or never) later passed as well. It now fails, moving nothing, unless an owed ending falls due
 * within OWED_S (the change's); one later beside it is a sweep's claim held till its lease ends
 * (15 s), moved as before.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { owedFallDue } from '../helpers/front-door.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { OWED_S } from '../../src/store/due-endings.js';
import { OWED_ENDINGS_KEY } from '../../src/store/keys.js';

describe('integration: eighteenth review pass: owedFallDue says when the owed ending was due', function () {
  this.timeout(20_000);
  const PREFIX = 'lk-test:';
  let redis: RedisServer;
  let direct: Redis;

  before(async () => {
    redis = await startRedisServer();
    direct = new Redis(redis.url, { keyPrefix: PREFIX });
  });
  beforeEach(() => direct.del(OWED_ENDINGS_KEY));
  after(async () => {
    direct?.disconnect();
    await redis?.stop();
  });

  it('moves an ending kept due OWED_S later to now, and a claim a sweep holds till its lease ends (15 s) with it', async () => {
    await direct.zadd(OWED_ENDINGS_KEY, Date.now() + OWED_S * 1000, 'kept', Date.now() + 15_000, 'claimed');
    await owedFallDue(redis.url, PREFIX);
    assert.equal(await direct.zscore(OWED_ENDINGS_KEY, 'kept'), '0');
    assert.equal(await direct.zscore(OWED_ENDINGS_KEY, 'claimed'), '0');
  });

  it('fails, moving nothing, when an ending was kept due much later than OWED_S (before the fix: moved due, the test passed)', async () => {
    const later = Date.now() + 3600_000;
    await direct.zadd(OWED_ENDINGS_KEY, later, 'an hour later');
    await assert.rejects(owedFallDue(redis.url, PREFIX), /falls due within OWED_S \(10 s\): owed endings fall due in 3600 s/);
    assert.equal(await direct.zscore(OWED_ENDINGS_KEY, 'an hour later'), String(later));
  });

  it('fails when nothing not yet due is owed (the change kept no ending)', async () => {
    await assert.rejects(owedFallDue(redis.url, PREFIX), /kept an ending as owed/);
  });
});
