/**
 * The twelfth fresh-eyes passes (2026-12-07), leftovers of the day's passes: what a Redis
 * connection cut in the middle of a multi-write request left half written (the connection cut by
 * the test relay at a chosen write, its answer lost or the write dropped), then the same thing asked
 * again, asserted through what an operator sees. See docs/security-passes.md, "leftovers".
 */
import assert from 'node:assert/strict';
import { eventually, pastOutages } from '../helpers/eventually.js';
import { commandsIn, startRelayedAdmin, type RelayedAdmin } from '../helpers/relay.js';
import type { TestServer } from '../helpers/server.js';

describe('e2e: twelfth leftovers pass: a person’s make cut off between their name’s reservations', function () {
  this.timeout(120_000);
  let relayed: RelayedAdmin;
  let server: TestServer;

  before(async () => {
    relayed = await startRelayedAdmin();
    ({ server } = relayed);
  });
  after(() => relayed?.stop());

  const call = (method: string, path: string, body?: unknown) => relayed.call(method, path, body);
  /** A command writing `sub`-like value to a key matching `key` (whatever the store's prefix). */
  const writeTo = (key: RegExp) => (chunk: string) => commandsIn(chunk).some((words) => words.some((word) => key.test(word)) && /^(set|eval|evalsha)$/i.test(words[0] ?? ''));

  const cases = [
    { what: 'its lookalike reservation (skeleton) written, its answer lost', username: 'halfmade-one', matches: writeTo(/(^|:)account:skeleton:/), answered: true, email: undefined },
    { what: 'its name key’s write dropped', username: 'halfmade-two', matches: writeTo(/(^|:)account:name:halfmade-two$/), answered: false, email: undefined },
    { what: 'its record written with a verified address, its answer lost', username: 'halfmade-three', matches: writeTo(/(^|:)account:[0-9a-f-]{36}$/), answered: true, email: 'halfmade-three@example.test' },
  ];
  for (const { what, username, matches, answered, email } of cases) {
    it(`a person (POST /admin/users), the connection cut after their record, ${what}, its taking back lost too: added again, they are made, listed once, the one their name finds (before the fix: "taken" for ever, by no one anybody can remove)`, async () => {
      const body = { username, password: 'a long enough password for sure', ...(email && { email, email_verified: true }) };
      const cut = relayed.relay.cut(matches, { answered });
      const blip = await call('POST', '/users', body);
      relayed.relay.release();
      assert.equal(await cut, true, 'the cut was reached');
      assert.equal(blip.status, 503, `${blip.status} ${await blip.text()}`);
      // What the make's taking back would undo, lost too: the connection was cut.
      const again = await eventually(async () => {
        const answer = await pastOutages(() => call('POST', '/users', body));
        assert.equal(answer.status, 201, `added again: ${answer.status} ${await answer.clone().text()}`);
        return answer;
      }, 240, 250);
      const { sub } = (await again.json()) as { sub: string };
      const listed = await pastOutages(() => call('GET', '/users'));
      assert.deepEqual(((await listed.json()) as { sub: string; username: string }[]).filter((user) => user.username === username).map((user) => user.sub), [sub]);
      assert.equal((await server.accounts.findByUsername(username))?.sub, sub);
      if (email) assert.deepEqual((await server.accounts.findByEmail(email)).map((account) => account.sub), [sub], 'the address is held by the person made, not by the half-made one');
    });
  }
});
