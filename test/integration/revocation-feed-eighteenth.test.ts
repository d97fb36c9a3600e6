/**
 * The eighteenth passes' review of the DPoP replay fixes (docs/security-passes.md, h17): how long
 * the revocation feed lists an entry against how long an API's latchkey/resource-server takes the
 * token it revokes (its `exp` plus the helper's `clockTolerance`, up to MAX_CLOCK_TOLERANCE). A
 * helper started (or restarted) after an entry left the feed never learns of it. Real Redis.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createResourceServer, MAX_CLOCK_TOLERANCE } from '../../src/resource-server/index.js';
import { FEED_RETENTION, RevocationList } from '../../src/revocation/list.js';
import { STORE_EPOCH_KEY } from '../../src/store/keys.js';
import { backends, type OpenBackend } from '../helpers/backends.js';

const now = () => Math.floor(Date.now() / 1000);
const backend = backends.find((each) => each.name.toLowerCase().includes('redis')) ?? backends[0]!;

describe(`revocation feed: entries listed as long as a helper takes their tokens, eighteenth passes (${backend.name})`, function () {
  this.timeout(30_000);
  let open: OpenBackend;
  let list: RevocationList;

  before(async () => {
    open = await backend.open();
    // As the server makes it (provider-factory.ts): skew is Latchkey's own clock tolerance.
    list = new RevocationList(open.kv, { skew: 15, accessTokenLifetime: 900 });
    await open.kv.set(STORE_EPOCH_KEY, String(now() - 3600));
  });
  after(async () => open?.stop());

  const listed = async (jti: string) => (await list.feed(undefined, 1000)).entries.some((entry) => entry.type === 'jti' && entry.jti === jti);

  it('lists a token revoked after its exp plus Latchkey\'s tolerance, while a helper of the largest tolerance still takes it', async () => {
    // Expired 60 s ago: Latchkey refuses it, a helper with clockTolerance 60 (allowed) takes it this second.
    const jti = randomUUID();
    assert.equal(await list.revokeToken(jti, now() - 60 + 1), true, 'the revocation is recorded');
    assert.ok(await listed(jti), 'a helper started now reads it on the feed');
  });

  it('writes no entry for a token expired longer ago than any helper takes it (no growth for nothing)', async () => {
    assert.equal(await list.revokeToken(randomUUID(), now() - FEED_RETENTION - 5), false);
  });

  it('the helper takes no clockTolerance beyond what the feed keeps (one line at start)', async () => {
    assert.equal(MAX_CLOCK_TOLERANCE, FEED_RETENTION);
    for (const clockTolerance of [MAX_CLOCK_TOLERANCE + 1, 3600, -1, Number.NaN]) {
      await assert.rejects(
        createResourceServer({ issuer: 'http://127.0.0.1:9', audience: 'https://api.example.test', clientId: 'api', clientSecret: 'secret', clockTolerance, startTimeout: 0 }),
        (error: Error) => error instanceof TypeError && /clockTolerance/.test(error.message),
      );
    }
  });
});
