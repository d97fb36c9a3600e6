/**
 * Review of the merged revocation-feed retention change (docs/security-passes.md, h21): revokeToken
 * now writes a feed line for a token expired at Latchkey (past exp + its 15 s) but still within the
 * feed's retention (exp + FEED_RETENTION), while the jti's mark, which makes a second revocation a
 * no-op, was kept only to exp + 15 s (at least 1 s). Past that, each revocation of the same token
 * (once a second, for up to 285 s) appended another line: a client repeating the revocation of its
 * own expired token grew the feed every API reads, ~285 lines for one token where one was written
 * before. Real Redis (and each other backend).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RevocationList } from '../../src/revocation/list.js';
import { STORE_EPOCH_KEY } from '../../src/store/keys.js';
import { backends, type OpenBackend } from '../helpers/backends.js';

const now = () => Math.floor(Date.now() / 1000);

for (const backend of backends) {
  describe(`revocation feed: one line per revoked token, however often it is revoked, eighteenth passes h21 (${backend.name})`, function () {
    this.timeout(20_000);
    let open: OpenBackend;
    let list: RevocationList;

    before(async () => {
      open = await backend.open();
      list = new RevocationList(open.kv, { skew: 15, accessTokenLifetime: 900 });
      await open.kv.set(STORE_EPOCH_KEY, String(now() - 3600));
    });
    after(async () => open?.stop());

    const lines = async (jti: string) => (await list.feed(undefined, 10_000)).entries.filter((entry) => entry.type === 'jti' && entry.jti === jti).length;

    it('a token expired at Latchkey but within the feed\'s retention, revoked again seconds later: still one line', async () => {
      const jti = randomUUID();
      const exp = now() - 60;
      assert.equal(await list.revokeToken(jti, exp), true, 'the first revocation is recorded');
      // Past the 1 s the mark was kept for such a token.
      await sleep(2_100);
      assert.equal(await list.revokeToken(jti, exp), false, 'already revoked');
      assert.equal(await lines(jti), 1);
    });
  });
}
