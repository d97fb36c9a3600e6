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
import { KeyringService, revokeFromRing, rotateRing, SigningKeyRevoked } from '../../src/keyring/service.js';
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

describe('key ring service: two reads of the ring at once (the timer\'s and a signer\'s after a revocation)', function () {
  this.timeout(20_000);
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-ring-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a read that began before the ring a signer followed, and ends after it, is not taken: a key revoked in between does not come back into the JWKS nor into service (before the fix: the older ring was taken last, publishing the revoked key again until the next look)', async () => {
    const store = new FileRingStore(dir);
    const policy: RotationPolicy = { interval: 86_400, lead: 3_600, retention: 3_600, refresh: 0.05 };
    const service = await KeyringService.open({ store, policy, rsaBits: 2048, refreshInterval: 300 });
    const revokedKids = new Set<string>();
    service.guardSigning(async (kid) => revokedKids.has(kid));
    // Elsewhere (the CLI): the current key revoked; the key that replaced it revoked a moment after.
    const first = service.ring.current!.kid;
    revokedKids.add(first);
    const { after: once } = await revokeFromRing(store, [first], 2048);
    // Between the two, this instance's timer reads the ring; its opening is slow (a busy event loop).
    let release!: () => void;
    const held = new Promise<void>((done) => (release = done));
    const parse = store.parse.bind(store);
    let reached!: () => void;
    const opening = new Promise<void>((done) => (reached = done));
    let hold = true;
    store.parse = async (raw) => {
      if (hold) {
        hold = false;
        reached();
        await held;
      }
      return parse(raw);
    };
    const slowLook = service.refresh();
    await opening; // it has read the ring revoked once, and is opening it
    const second = once.current!.kid;
    revokedKids.add(second);
    const { after: twice } = await revokeFromRing(store, [second], 2048);
    // A signer meets the first kid entry and follows the newest ring.
    await service.ready();
    assert.equal(service.ring.current!.kid, twice.current!.kid);
    release();
    await slowLook;
    assert.equal(service.ring.current!.kid, twice.current!.kid, 'the ring in service is still the newest one read');
    assert.ok(!service.jwks.body.includes(second), 'the key revoked second is not published again');
    assert.ok(!service.publicKeys().keys.some((key) => key.kid === second));
    await service.close();
  });
});
