/**
 * Review of the fifteenth passes' key ring that "came back" (h6; docs/security-passes.md, "Looked at
 * in the fifteenth passes: review of the merged changes (h6)").
 *
 * A server refused a stored ring that held a key it had seen leave (#departed) and wrote its own
 * back over it. But a server that had not seen that key leave (one started after the revocation,
 * the usual case after a rolling restart) took the older ring in, and so saw the newer ring's keys
 * "leave": when the server that remembered wrote the newer ring back, this one called those keys
 * come back, wrote their kid entries (revoking the keys in service: every signer refused) and wrote
 * the older ring back; the first wrote the newer one again, and so on for ever. Rings now carry a
 * generation, raised by each write: one older than the ring in service is a store gone back in time,
 * whatever this server saw leave.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RotationPolicy } from '../../src/keyring/lifecycle.js';
import { KeyringService, revokeFromRing, rotateRing } from '../../src/keyring/service.js';
import { FileRingStore } from '../../src/keyring/stores.js';

const policy: RotationPolicy = { interval: 86_400, lead: 3_600, retention: 3_600, refresh: 300 };

describe('review of the fifteenth passes (h6): a store gone back in time, and servers that saw different things leave', function () {
  this.timeout(30_000);
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-came-back-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a server that did not see the revoked key leave neither takes the older ring nor revokes the keys in service, and no two servers write back over each other', async () => {
    const store = new FileRingStore(dir);
    const ended: string[] = [];
    const open = async () => {
      const service = await KeyringService.open({ store, policy, rsaBits: 2048, refreshInterval: 300 });
      service.keysCameBack(async (kids) => void ended.push(...kids));
      return service;
    };
    const remembers = await open();
    const before = (await store.readRaw())!; // the snapshot
    const revoked = remembers.ring.current!.kid;
    await revokeFromRing(store, [revoked], 2048);
    await remembers.refresh();
    const newer = remembers.ring;
    const restarted = await open(); // started after the revocation: it never held the revoked key
    assert.deepEqual(restarted.ring.keys.map(({ kid }) => kid), newer.keys.map(({ kid }) => kid));

    writeFileSync(store.file, before); // Redis restarted on its last snapshot
    let writes = 0;
    const write = store.write.bind(store);
    store.write = (...args) => ((writes += 1), write(...args));
    for (let round = 0; round < 4; round += 1) {
      await restarted.refresh();
      await remembers.refresh();
    }
    const stored = await store.parse((await store.readRaw())!);
    const kids = (ring: { keys: readonly { kid: string }[] }) => ring.keys.map(({ kid }) => kid).sort();
    assert.deepEqual(kids(stored), kids(newer), 'the store holds the newer ring again');
    assert.deepEqual(kids(restarted.ring), kids(newer), 'the restarted server signs with the newer ring');
    assert.deepEqual(kids(remembers.ring), kids(newer));
    assert.ok(writes <= 1, `written back once, not back and forth (${writes} writes)`);
    for (const kid of ended) assert.ok(!newer.keys.some((key) => key.kid === kid), `a key in service (${kid}) was not revoked`);
    await remembers.close();
    await restarted.close();
  });

  it('a server started on the older ring takes the one written back', async () => {
    const store = new FileRingStore(join(dir, 'late'));
    const remembers = await KeyringService.open({ store, policy, rsaBits: 2048, refreshInterval: 300 });
    const before = (await store.readRaw())!;
    await revokeFromRing(store, [remembers.ring.current!.kid], 2048);
    await remembers.refresh();
    writeFileSync(store.file, before);
    const late = await KeyringService.open({ store, policy, rsaBits: 2048, refreshInterval: 300 }); // on the older ring
    await remembers.refresh(); // writes the newer one back
    await late.refresh();
    assert.equal(late.ring.current!.kid, remembers.ring.current!.kid);
    await late.refresh();
    await remembers.refresh();
    assert.equal(late.ring.current!.kid, remembers.ring.current!.kid, 'and keeps it');
    await remembers.close();
    await late.close();
  });
  it('of two servers that write back, one a change behind, every server ends on the newer ring, the key revoked in it revoked again', async () => {
    const store = new FileRingStore(join(dir, 'behind'));
    const ended: string[] = [];
    const open = async () => {
      const service = await KeyringService.open({ store, policy, rsaBits: 2048, refreshInterval: 300 });
      service.keysCameBack(async (kids) => void ended.push(...kids));
      return service;
    };
    const behind = await open();
    const ahead = await open();
    const before = (await store.readRaw())!;
    await rotateRing(store, { ...policy, refresh: 0 }, 2048, true);
    await behind.refresh();
    await ahead.refresh();
    const gone = ahead.ring.next!.kid;
    await revokeFromRing(store, [gone], 2048); // only `ahead` sees it before the store goes back
    await ahead.refresh();
    writeFileSync(store.file, before);
    await behind.refresh(); // writes back the ring it holds, a change behind
    await ahead.refresh(); // writes back the newer one
    await behind.refresh();
    const stored = await store.parse((await store.readRaw())!);
    for (const ring of [stored, behind.ring]) assert.deepEqual(ring.keys.map(({ kid }) => kid), ahead.ring.keys.map(({ kid }) => kid));
    assert.ok(!stored.keys.some(({ kid }) => kid === gone));
    assert.ok(ended.includes(gone), 'its kid entry written again');
    await behind.close();
    await ahead.close();
  });

  it('a key revoked (keys revoke) on the older ring before a server looks is left out of the ring it writes back', async () => {
    const store = new FileRingStore(join(dir, 'revoked-meanwhile'));
    const service = await KeyringService.open({ store, policy, rsaBits: 2048, refreshInterval: 300 });
    const revokedKids = new Set<string>();
    service.writeBackWithout(async (kid) => revokedKids.has(kid));
    const before = (await store.readRaw())!;
    const older = service.ring;
    await revokeFromRing(store, [older.current!.kid], 2048);
    await rotateRing(store, { ...policy, refresh: 0 }, 2048, true);
    await service.refresh();
    const revoked = older.next!.kid; // retired in the ring in service
    assert.ok(service.ring.keys.some(({ kid }) => kid === revoked));
    writeFileSync(store.file, before);
    // `keys revoke` on the older ring: the kid entry, then the ring.
    revokedKids.add(revoked);
    await revokeFromRing(store, [revoked], 2048);
    await service.refresh();
    const stored = await store.parse((await store.readRaw())!);
    assert.ok(!stored.keys.some(({ kid }) => kid === revoked), 'not written back into the store');
    assert.ok(!service.ring.keys.some(({ kid }) => kid === revoked), 'nor published');
    assert.ok(!stored.keys.some(({ kid }) => kid === older.current!.kid), 'nor the key revoked before the store went back');
    await service.close();
  });
});
