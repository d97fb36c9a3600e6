/**
 * store/outage.ts storeRefused: the store's refusals for reasons of its own (an ACL's, a master's
 * while it is replaced) are told apart from replies that say a command of ours is wrong (a bug,
 * answered 500). The messages are Redis 7's own words.
 */
import assert from 'node:assert/strict';
import { ReplyError } from 'ioredis';
import { storeRefused } from '../../src/store/outage.js';

describe('storeRefused', () => {
  it("an ACL's refusal, plain or met in a script, and a master's refusals are the store's", () => {
    for (const message of [
      'NOPERM No permissions to access a key',
      "NOPERM User default has no permissions to run the 'eval' command",
      "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments script: b16f, on @user_script:4.",
      'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.',
      'NOREPLICAS Not enough good replicas to write.',
      'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
      'TRYAGAIN Multiple keys request during rehashing of slot',
    ]) {
      const error = new ReplyError(message);
      assert.equal(storeRefused(error), error, message);
      assert.equal(storeRefused(new Error('wrapped', { cause: error })), error, `${message}, as a cause`);
    }
  });

  it('a reply that says our command is wrong is no refusal (a bug), nor is an error that is no reply', () => {
    for (const message of [
      'WRONGTYPE Operation against a key holding the wrong kind of value',
      "ERR wrong number of arguments for 'set' command",
      'CROSSSLOT Keys in request don\'t hash to the same slot',
      'ERR user_script:1: Script attempted to access nonexistent global variable',
    ]) assert.equal(storeRefused(new ReplyError(message)), undefined, message);
    assert.equal(storeRefused(new Error('NOPERM No permissions to access a key')), undefined, 'not a reply of the store');
  });
});
