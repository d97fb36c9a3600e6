/**
 * The signing gate (KeyringService.ready) when the current key is revoked and no ring replaces it:
 * the first signer waits for the ring (the CLI writes it a moment after the kid entry), the ones
 * after it are answered at once (review of 2026-12-06: each waiting 2 s again piled them up while
 * a CLI that stopped between its two writes left no ring to come).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apply, plan, type RotationPolicy } from '../../src/keyring/lifecycle.js';
import { KeyringService, rotateRing, SigningKeyRevoked } from '../../src/keyring/service.js';
import { FileRingStore } from '../../src/keyring/stores.js';

describe('key ring service: a revoked current key with no ring to replace it', function () {
  this.timeout(20_000);
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-ring-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the first signer reads the ring again for a while, then refuses; the next ones read it once and refuse at once; a ring that comes is followed', async () => {
    const store = new FileRingStore(join(dir, 'keyring.json'));
    const service = await KeyringService.open({ store, policy: { interval: 86_400, lead: 3_600, retention: 3_600, refresh: 2 }, rsaBits: 2048, refreshInterval: 2 });
    let reads = 0;
    const readRaw = store.readRaw.bind(store);
    store.readRaw = () => ((reads += 1), readRaw());
    const revoked = service.ring.current!.kid;
    service.guardSigning(async (kid) => kid === revoked);

    await assert.rejects(service.ready(), SigningKeyRevoked);
    assert.ok(reads > 5, `the first signer read the ring ${reads} times while it waited`);
    for (const _ of [1, 2, 3]) {
      reads = 0;
      await assert.rejects(service.ready(), SigningKeyRevoked);
      assert.equal(reads, 1, 'waited out before: one read, no wait');
    }
    // The ring replacing it comes: followed, and the gate opens.
    await service.rotate(true);
    assert.notEqual(service.ring.current!.kid, revoked);
    await service.ready();
    await service.close();
  });
});

describe('key ring service: keys rotate --now beside a server whose clock runs ahead', function () {
  this.timeout(20_000);
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-ring-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keys rotate --now waits for every server to publish the next key at most keys.refreshInterval after it first read it, whatever createdAt says (before the fix: a next key written by a server whose clock runs a day ahead made it wait a day, and one ahead by more than 24.8 days made Node\'s timer fire at once, rotating the CLI through the lock in a busy loop)', async () => {
    const store = new FileRingStore(join(dir, 'ahead.json'));
    const policy: RotationPolicy = { interval: 86_400, lead: 3_600, retention: 3_600, refresh: 0.2 };
    const ahead = Date.now() + 86_400_000;
    const ring = await apply(undefined, plan(undefined, ahead, policy), ahead, 2048);
    await store.write(ring, undefined);
    const said: string[] = [];
    const rotated = rotateRing(store, policy, 2048, true, (message) => said.push(message));
    await new Promise((done) => setTimeout(done, 100));
    assert.equal(said.length, 1, said.join('\n'));
    assert.match(said[0]!, /waiting [12] s$/, 'the next key was written before this read of the ring: published everywhere within keys.refreshInterval of it');
    const { after } = await rotated;
    assert.equal(after.current!.kid, ring.next!.kid);
  });
});
