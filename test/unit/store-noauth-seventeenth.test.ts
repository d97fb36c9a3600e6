/**
 * A Redis that asks for a password (requirepass, ACLs) met with a REDIS_URL that gives none is said
 * as such, with where the password goes, not as one that "cannot be reached" (docs/security-passes.md,
 * "Looked at in the seventeenth passes: the newcomer's first hour"). Redis 7's own words.
 */
import assert from 'node:assert/strict';
import { ReplyError } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { unreachableStore } from '../../src/store/control.js';
import type { Kv } from '../../src/store/kv.js';

describe('unreachableStore: a Redis that asks for a password (seventeenth passes)', () => {
  it('says that it asks for one and how REDIS_URL gives it', () => {
    const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: 'redis://127.0.0.1:6390/0', LOG_LEVEL: 'silent' });
    const reply = 'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time';
    const said = unreachableStore(config, {} as Kv, new ReplyError(reply)).message;
    assert.equal(
      said,
      `REDIS_URL: Redis redis://127.0.0.1:6390/0 asks for a password, which REDIS_URL does not give (${reply}); expected the password in REDIS_URL: redis://:PASSWORD@host:6379 (redis://USER:PASSWORD@host:6379 for an ACL user; percent-encode @, : and / in it)`,
    );
    assert.doesNotMatch(said, /cannot reach/);
  });
});
