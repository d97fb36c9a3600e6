/**
 * The third review of the twelfth passes' changes (2026-12-07): a make that takes back a person cut
 * off half-way must never take back one whose make is still running. See docs/security-passes.md,
 * "third review of the twelfth passes' changes".
 */
import assert from 'node:assert/strict';
import { commandsIn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('e2e: third review of the twelfth passes’ changes', function () {
  this.timeout(60_000);
  let relayed: RelayedServer;
  let other: TestServer;

  before(async () => {
    relayed = await startRelayedServer();
    // A second instance of the same deployment, straight to the same Redis.
    other = await startServer({ redisUrl: relayed.redis.url, port: undefined, env: { ISSUER: relayed.server.issuer } });
  });
  after(async () => {
    await other?.stop();
    await relayed?.stop();
  });

  /** A write to a key matching `key` (whatever the store's prefix). */
  const writeTo = (key: RegExp) => (chunk: string) => commandsIn(chunk).some((words) => words.some((word) => key.test(word)) && /^(set|eval|evalsha)$/i.test(words[0] ?? ''));

  it('a person being made with an address unverified, held before their name key, is not taken back as half-made by another instance making a person with that address verified: both are made (before the fix: the first was erased mid-make and its add answered success for a person who did not exist)', async () => {
    const email = 'racing-make@example.test';
    const password = 'a long enough password for sure';
    const held = await relayed.relay.hold(writeTo(/(^|:)account:name:racing-first$/), () =>
      relayed.server.accounts.create('racing-first', password, { email, email_verified: false }),
    );
    // While the first make waits to write its name key, another instance adds a person with the address verified.
    const second = await other.accounts.create('racing-second', password, { email, email_verified: true });
    const first = await held.release();
    assert.ok(await other.accounts.find(first.sub), 'the first person’s record is still there');
    assert.equal((await other.accounts.findByUsername('racing-first'))?.sub, first.sub, 'their name finds them');
    assert.equal((await other.accounts.findByUsername('racing-second'))?.sub, second.sub);
    assert.deepEqual((await other.accounts.findByEmail(email)).map((account) => account.sub).sort(), [first.sub, second.sub].sort());
  });
});
