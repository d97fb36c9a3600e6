/**
 * store/control.ts unreachableStore: the one line serve and the CLI exit with when the store fails
 * at start. A Redis that was reached and answered with a refusal of what it was asked (a read-only
 * replica, a full one, one still loading its data, a replica whose master is down) is said as
 * such, not as one that "cannot be reached" and should accept "these credentials" (bad input and
 * blips, tenth pass). The messages are Redis 7's own words.
 */
import assert from 'node:assert/strict';
import { ReplyError } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { storeLocation, unreachableStore } from '../../src/store/control.js';
import type { Kv } from '../../src/store/kv.js';

const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: 'redis://127.0.0.1:6390', LOG_LEVEL: 'silent' });
const said = (message: string) => unreachableStore(config, {} as Kv, new ReplyError(message)).message;

describe('unreachableStore: a Redis that answered and refused', () => {
  it('a read-only replica, a full Redis, one loading its data, a replica whose master is down: each said as what it is', () => {
    const cases: [string, string][] = [
      ["READONLY You can't write against a read only replica.", 'is a read-only replica'],
      ["OOM command not allowed when used memory > 'maxmemory'.", 'is full and refuses writes'],
      ['LOADING Redis is loading the dataset in memory', 'is still loading its data'],
      ["MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", 'is a replica whose master is down'],
    ];
    for (const [reply, what] of cases) {
      assert.equal(said(reply).startsWith(`REDIS_URL: Redis redis://127.0.0.1:6390 ${what} (${reply}); expected `), true, said(reply));
      assert.doesNotMatch(said(reply), /cannot reach|credentials/, reply);
    }
  });

  it('refused credentials are still said as such', () => {
    assert.match(said('WRONGPASS invalid username-password pair or user is disabled.'), /^REDIS_URL: cannot reach Redis redis:\/\/127\.0\.0\.1:6390 \(WRONGPASS [^)]+\); expected a running Redis that accepts these credentials$/);
  });

  it("a password given in the URL's query (ioredis takes redis://host?password=…) is not shown, nor is one holding an @ (h8, 2026-12-07)", () => {
    const queried = loadConfig({ NODE_ENV: 'test', REDIS_URL: 'redis://127.0.0.1:6390/0?password=hunter2-query', LOG_LEVEL: 'silent' });
    assert.equal(storeLocation(queried), 'Redis redis://127.0.0.1:6390/0?password=***');
    const refused = unreachableStore(queried, {} as Kv, new ReplyError('WRONGPASS invalid username-password pair or user is disabled.')).message;
    assert.doesNotMatch(refused, /hunter2/, refused);
    const at = loadConfig({ NODE_ENV: 'test', REDIS_URL: 'redis://latchkey:hunter2@with-at@127.0.0.1:6390', LOG_LEVEL: 'silent' });
    assert.equal(storeLocation(at), 'Redis redis://latchkey:***@127.0.0.1:6390');
  });
});
