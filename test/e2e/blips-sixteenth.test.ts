/**
 * The sixteenth passes, Redis blips in the newer flows (h10, docs/security-passes.md "Looked at in
 * the sixteenth passes: Redis blips in the newer flows, and what a form without a session is told
 * (h10)"): the account page's renewal of this browser's session id (a password changed, recovery
 * codes made, a credential removed) cut off at each of its writes.
 *
 * The thirteenth passes left "whether the new record written before the cut shows among the
 * person's sessions". It did: a renewal whose new record was written and whose last write (the mark
 * that the old id was renewed) failed answered 503 without the new cookie, so the browser was
 * signed out and the account page listed its session under the new id, held by no browser, until it
 * expired. Now the cookie goes out as soon as the new record is written, and the 503 carries it: the
 * browser stays signed in under the new id. Left: the old record's ending (the renewal's own write
 * that names the new id as its successor) run with its answer lost.
 */
import assert from 'node:assert/strict';
import type { Page } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { hasWrite, startRelay, type Relay } from '../helpers/relay.js';
import { signedInToAccountPage } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { recordKey } from '../../src/store/record-keys.js';

const PASSWORD = 'sixteenth blips pass test password';
const CHANGED = 'sixteenth blips pass changed password';
const AGAIN = 'sixteenth blips pass password changed again';
/** The password form's fields, from `current` to `next`, other sessions kept. */
const change = (current: string, next: string) => ({ current_password: current, new_password: next, confirm_password: next });

describe('e2e: sixteenth blips pass: a session id renewed by the account page, cut off at each write', function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let relay: Relay;
  let server: TestServer;
  let people = 0;

  before(async () => {
    redis = await startRedisServer();
    relay = await startRelay(redis.port);
    server = await startServer({ port: await freePort(), redisUrl: relay.url, cheapHashing: true });
  });
  after(async () => {
    relay?.release();
    await server?.stop();
    relay?.close();
    await redis?.stop();
  });

  /** The sessions an account page lists (one "Sign out" form each). */
  const listed = (page: Page) => (page.html.match(/action="\/account\/sessions\/sign-out"/g) ?? []).length;

  it('a password changed (other sessions kept), cut at each write (dropped, then run with its answer lost): 503, and the sessions listed are those browsers hold (before the fix: a session no browser holds, this browser signed out)', async () => {
    for (const answered of [false, true]) {
      for (let n = 1; ; n += 1) {
        const username = `renewal-${(people += 1)}`;
        await server.accounts.create(username, PASSWORD);
        const first = await signedInToAccountPage(server.issuer, username, PASSWORD);
        const oldRecord = recordKey('Session', /lk_session=([^;]+)/.exec(first.agent.cookieHeader(server.issuer))![1]!);
        let seen = 0;
        let cutChunk = '';
        const cut = relay.cut((chunk) => hasWrite(chunk) && (seen += 1) === n && Boolean((cutChunk = chunk)), { answered });
        const page = await first.agent.submit(first.page, '/account/password', change(PASSWORD, CHANGED));
        relay.release();
        if (!(await cut)) {
          assert.ok(n > 3, 'a renewal writes a destroy, a record and a mark at least');
          break;
        }
        const at = `cut at write ${n}${answered ? ' (run, its answer lost)' : ''}`;
        assert.equal(page.status, 503, `${at}: ${page.status} ${page.url}`);
        assert.doesNotMatch(page.html, /\bat .*\.(js|ts):\d+/, `${at}: no stack trace`);
        await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));

        const firstNow = await first.agent.follow(`${server.issuer}/account`);
        const firstSignedIn = firstNow.url === `${server.issuer}/account`;
        const current = (await server.accounts.verify(username, PASSWORD)) ? PASSWORD : CHANGED;
        const second = await signedInToAccountPage(server.issuer, username, current);
        const sessions = listed(await second.agent.follow(`${server.issuer}/account`));
        // Left (docs/security-passes.md): the old record's ending (its successor named), run and its
        // answer lost, leaves the browser the old id, ended, and lists the new record, held by no one,
        // until it expires.
        const endingLost = answered && !firstSignedIn && cutChunk.includes(oldRecord);
        if (!endingLost) {
          assert.equal(sessions, firstSignedIn ? 2 : 1, `${at}: the sessions listed (${sessions}) are the browsers' that hold one (this browser ${firstSignedIn ? 'signed in' : 'signed out'}, and another)`);
        }
        // Asked again, done.
        if (firstSignedIn) {
          const again = await first.agent.submit(firstNow, '/account/password', change(current, AGAIN));
          assert.match(again.url, /done=password\.changed/, `${at}, then again: ${again.status} ${again.url}`);
        }
      }
    }
  });
});
