/**
 * Review of the merged changes of the fourteenth fresh-eyes passes (h11; docs/security-passes.md,
 * "Looked at in the fourteenth fresh-eyes passes of 2026-12-07: review of the merged changes (h11)"):
 * the key ring written back after a store lost it (keyring/service.ts #writtenBack).
 *
 * The ring written back is the one in service, which may still hold a key revoked a moment before
 * the ring was lost (the instance had not looked since). Where the revocation list outlived the ring
 * (a Redis Cluster shard lost alone, keys/keyring.json lost beside the embedded store), the key's kid
 * entry still says so: written back, the key was published and signed with again, and every signer
 * that asked the kid entry (ready) was refused for good (503) until an operator revoked it again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyringService, revokeFromRing } from '../../src/keyring/service.js';
import { FileRingStore } from '../../src/keyring/stores.js';
import { eventually } from '../helpers/eventually.js';

describe('review (fourteenth, h11): the key ring written back after a loss', function () {
  this.timeout(30_000);
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-ring-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('leaves out a key the revocation list names: not published, not signed with, and signing goes on with its successor', async () => {
    const store = new FileRingStore(dir);
    const service = await KeyringService.open({ store, policy: { interval: 86_400, lead: 3_600, retention: 3_600, refresh: 0.1 }, rsaBits: 2048, refreshInterval: 0.1 });
    const revoked = service.ring.current!.kid;
    const kidEntries = new Set<string>();
    service.guardSigning(async (kid) => kidEntries.has(kid));
    service.writeBackWithout(async (kid) => kidEntries.has(kid)); // as main.ts has it
    // `keys revoke` elsewhere: the kid entry, then the ring without the key; this instance has not looked yet.
    kidEntries.add(revoked);
    await revokeFromRing(store, [revoked], 2048);
    // The ring is lost; the revocation list is not.
    rmSync(store.file);
    service.start();
    try {
      const stored = await eventually(async () => {
        const raw = await store.readRaw();
        assert.ok(raw !== undefined, 'written back');
        return store.parse(raw);
      });
      assert.ok(!stored.keys.some(({ kid }) => kid === revoked), `the ring written back holds the revoked key: ${stored.keys.map(({ kid, state }) => `${kid}:${state}`).join(' ')}`);
      await eventually(async () => assert.notEqual(service.ring.current?.kid, revoked));
      assert.ok(!service.publicKeys().keys.some(({ kid }) => kid === revoked), 'published again');
      await service.ready(); // signs with the successor: no 503
    } finally {
      await service.close();
    }
  });
});
