/**
 * The Kv operations the key ring and the revocation list rely on, run unchanged against every
 * store: compare-and-set, holder-only delete (locks), and the atomic mark + log append that a
 * revocation is (on Cluster its two keys share a hash tag, so it is one slot).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { holding, STILL_HELD, type Kv } from '../../src/store/kv.js';
import { followStoreClock, storeClockOffset } from '../../src/clock.js';
import { fixedWindows } from '../../src/store/rate-limit.js';
import { backends, PREFIX, remoteEmbedded, type OpenBackend } from '../helpers/backends.js';

for (const backend of [...backends, remoteEmbedded]) {
  describe(`Kv operations: ${backend.name}`, function () {
    this.timeout(30_000);
    let open: OpenBackend;
    let kv: Kv;

    before(async () => {
      open = await backend.open();
      kv = open.kv;
    });
    after(async () => open?.stop());

    it('compareAndSet writes only over the expected value, or only when absent', async () => {
      const key = `cas:${randomUUID()}`;
      assert.equal(await kv.compareAndSet(key, 'something', 'v1'), false, 'absent is not "something"');
      assert.equal(await kv.compareAndSet(key, undefined, 'v1'), true);
      assert.equal(await kv.compareAndSet(key, undefined, 'v2'), false, 'present now');
      assert.equal(await kv.compareAndSet(key, 'stale', 'v2'), false);
      assert.equal(await kv.get(key), 'v1');
      assert.equal(await kv.compareAndSet(key, 'v1', 'v2'), true);
      assert.equal(await kv.get(key), 'v2');
      if (open.raw) assert.equal(await open.raw.ttl(`${PREFIX}${key}`), -1, 'durable');
    });

    it('compareAndSet with a ttl keeps what it writes that long, and a write of the same value over itself keeps it longer', async () => {
      const key = `cas-ttl:${randomUUID()}`;
      assert.equal(await kv.compareAndSet(key, undefined, 'v1', 1), true);
      assert.equal(await kv.compareAndSet(key, 'v1', 'v1', 600), true);
      assert.equal(await kv.get(key), 'v1');
      if (open.raw) {
        const ttl = await open.raw.ttl(`${PREFIX}${key}`);
        assert.ok(ttl > 1 && ttl <= 600, `ttl ${ttl}`);
      } else {
        // No raw view of the TTL (the embedded store): outlive the first one.
        await new Promise((done) => setTimeout(done, 1_500));
        assert.equal(await kv.get(key), 'v1', 'kept by the second write');
        assert.equal(await kv.compareAndSet(key, 'v1', 'v2', 1), true);
        await new Promise((done) => setTimeout(done, 1_500));
        assert.equal(await kv.get(key), undefined, 'gone after its ttl');
      }
    });

    it('endRecord: an ended record reads as none, and putRecord does not write over its ending for what it had left to live', async () => {
      const key = `ended:${randomUUID()}`;
      assert.equal(await kv.putRecord(key, '{"s":1}', 60), true);
      await kv.endRecord(key, 600);
      assert.equal(await kv.getRecord(key), undefined, 'ended');
      assert.equal(await kv.putRecord(key, '{"s":2}', 600), false, 'a write in flight is refused');
      assert.equal(await kv.getRecord(key), undefined, 'still ended');
      assert.equal(await kv.consumeRecord(key, 1), 'missing');
      if (open.raw) {
        const ttl = await open.raw.ttl(`${PREFIX}${key}`);
        assert.ok(ttl > 0 && ttl <= 60, `the ending keeps the record's remaining lifetime (${ttl})`);
      }
      await kv.endRecord(key, 600);
      assert.equal(await kv.putRecord(key, '{"s":3}', 60), false, 'ending twice keeps it ended');

      const gone = `ended:${randomUUID()}`;
      await kv.endRecord(gone, 30);
      assert.equal(await kv.putRecord(gone, '{"s":1}', 60), false, 'a record ended after it was gone stays ended');
      if (open.raw) {
        const ttl = await open.raw.ttl(`${PREFIX}${gone}`);
        assert.ok(ttl > 0 && ttl <= 30, `for the given TTL (${ttl})`);
      }

      const short = `ended:${randomUUID()}`;
      assert.equal(await kv.putRecord(short, '{"s":1}', 1), true);
      await kv.endRecord(short, 600);
      await new Promise((done) => setTimeout(done, 1100));
      assert.equal(await kv.putRecord(short, '{"s":2}', 60), true, 'once its lifetime is over, the key is free again');
      assert.equal((await kv.getRecord(short))?.payload, '{"s":2}');
    });

    it('endRecord says whether the record had been ended already, keeps the successor its first ending named (a session renewed under a new id), and answers the payload of a live record it ended', async () => {
      const [key, next] = [`ended:${randomUUID()}`, `ended:${randomUUID()}`];
      await kv.putRecord(key, '{"s":1}', 60);
      assert.deepEqual(await kv.endRecord(key, 600, next), { already: false }, 'a renewal is told nothing of what it ended');
      assert.deepEqual(await kv.endRecord(key, 600), { already: true, successor: next }, 'ended again: it names its successor');
      assert.deepEqual(await kv.endRecord(key, 600, `ended:${randomUUID()}`), { already: true, successor: next }, 'an ending there stays as it was');
      assert.equal(await kv.getRecord(key), undefined);
      assert.deepEqual(await kv.endRecord(next, 600), { already: false }, 'a first ending with no successor, of no record');
      const live = `ended:${randomUUID()}`;
      await kv.putRecord(live, '{"s":2}', 60);
      assert.deepEqual(await kv.endRecord(live, 600), { already: false, ended: '{"s":2}' }, 'an ending of a live record answers what it held');
      assert.deepEqual(await kv.endRecord(next, 600), { already: true });
    });

    it('replaceRecord writes a record only over what the caller read (unconsumed); of concurrent replacements of one reading, one wins', async () => {
      if (backend === remoteEmbedded) {
        // The CLI's control socket has none: only the server replaces (provider/patches/single-use-registration-token.ts).
        assert.equal(kv.replaceRecord, undefined);
        return;
      }
      const key = `replace:${randomUUID()}`;
      assert.equal(await kv.replaceRecord!(key, 'a', 'b'), false, 'nothing there');
      await kv.putRecord(key, 'a');
      assert.equal(await kv.replaceRecord!(key, 'x', 'b'), false, 'changed since');
      assert.equal((await kv.getRecord(key))?.payload, 'a');
      const outcomes = await Promise.all(['b', 'c', 'd'].map((payload) => kv.replaceRecord!(key, 'a', payload)));
      assert.equal(outcomes.filter(Boolean).length, 1);
      await kv.consumeRecord(key, Date.now() / 1000);
      const now = (await kv.getRecord(key))!.payload;
      assert.equal(await kv.replaceRecord!(key, now, 'e'), false, 'consumed');
    });

    it('consumeRecord with drop consumes and deletes in one command: exactly one of concurrent takers gets it, none after', async () => {
      const key = `take:${randomUUID()}`;
      await kv.putRecord(key, '{"t":1}', 60);
      const outcomes = await Promise.all(Array.from({ length: 5 }, () => kv.consumeRecord(key, Date.now() / 1000, { drop: true })));
      assert.equal(outcomes.filter((outcome) => outcome === 'consumed').length, 1, outcomes.join(' '));
      assert.equal(await kv.getRecord(key), undefined, 'deleted');
      assert.equal(await kv.consumeRecord(key, Date.now() / 1000, { drop: true }), 'missing');
    });

    it('a bounded set-if-absent (a single-use mark) is written once, as any set-if-absent', async () => {
      const key = `mark:${randomUUID()}`;
      const outcomes = await Promise.all(Array.from({ length: 5 }, () => kv.set(key, 'used', { ttl: 60, onlyIfAbsent: true, bounded: true })));
      assert.equal(outcomes.filter(Boolean).length, 1);
      assert.equal(await kv.get(key), 'used');
    });

    it('a bounded putRecord (a new client) writes as putRecord does: the record, its TTL or none, nothing over an ending', async () => {
      const key = `bounded:${randomUUID()}`;
      assert.equal(await kv.putRecord(key, '{"c":1}', undefined, { bounded: true }), true);
      assert.deepEqual(await kv.getRecord(key), { payload: '{"c":1}' });
      const expiring = `bounded:${randomUUID()}`;
      assert.equal(await kv.putRecord(expiring, '{"c":2}', 60, { bounded: true }), true);
      assert.deepEqual(await kv.getRecord(expiring), { payload: '{"c":2}' });
      await kv.endRecord(expiring, 60);
      assert.equal(await kv.putRecord(expiring, '{"c":3}', 60, { bounded: true }), false, 'an ending stays');
      assert.equal(await kv.getRecord(expiring), undefined);
    });

    it('a bounded compareAndSet (an account, a person’s credentials) compares and sets as compareAndSet does', async () => {
      const key = `cas:${randomUUID()}`;
      const outcomes = await Promise.all(Array.from({ length: 5 }, (_, i) => kv.compareAndSet(key, undefined, `w${i}`, undefined, { bounded: true })));
      assert.equal(outcomes.filter(Boolean).length, 1);
      const won = await kv.get(key);
      assert.equal(await kv.compareAndSet(key, 'not it', 'x', undefined, { bounded: true }), false);
      assert.equal(await kv.compareAndSet(key, won, 'next', undefined, { bounded: true }), true);
      assert.equal(await kv.get(key), 'next');
    });

    it('compareAndSet lets exactly one of concurrent writers win', async () => {
      const key = `cas:${randomUUID()}`;
      const outcomes = await Promise.all(Array.from({ length: 10 }, (_, i) => kv.compareAndSet(key, undefined, `w${i}`)));
      assert.equal(outcomes.filter(Boolean).length, 1);
    });

    it('deleteIfEquals releases a lock only for its holder', async () => {
      const key = `lock:${randomUUID()}`;
      assert.equal(await kv.set(key, 'holder', { ttl: 30, onlyIfAbsent: true }), true);
      assert.equal(await kv.set(key, 'other', { ttl: 30, onlyIfAbsent: true }), false);
      assert.equal(await kv.deleteIfEquals(key, 'other'), false);
      assert.equal(await kv.get(key), 'holder');
      assert.equal(await kv.deleteIfEquals(key, 'holder'), true);
      assert.equal(await kv.get(key), undefined);
      assert.equal(await kv.deleteIfEquals(key, 'holder'), false);
    });

    it('holding runs one holder at a time: the second runs after the first let go, sees what it wrote, and is told STILL_HELD past its wait; a failing holder lets go', async () => {
      const key = `holding:${randomUUID()}`;
      const seen: string[] = [];
      let release!: () => void;
      const first = holding(kv, key, async () => {
        await new Promise<void>((done) => (release = done));
        await kv.set(`${key}:written`, 'first');
        return 'first';
      }, { ttl: 30, wait: 1000 });
      while (!release) await new Promise((done) => setTimeout(done, 5));
      // Held: a second with a short wait gives up; one with a long wait runs once the first let go.
      assert.equal(await holding(kv, key, async () => 'never', { ttl: 30, wait: 50, poll: 10 }), STILL_HELD);
      const second = holding(kv, key, async () => (seen.push((await kv.get(`${key}:written`)) ?? 'nothing'), 'second'), { ttl: 30, wait: 10_000, poll: 10 });
      release();
      assert.deepEqual(await Promise.all([first, second]), ['first', 'second']);
      assert.deepEqual(seen, ['first'], 'the second read after the first wrote');
      assert.equal(await kv.get(key), undefined, 'let go');
      await assert.rejects(holding(kv, key, () => Promise.reject(new Error('failed')), { ttl: 30, wait: 100 }), /failed/);
      assert.equal(await kv.get(key), undefined, 'let go after a failure');
      if (open.raw) {
        await holding(kv, key, async () => {
          const ttl = await open.raw!.ttl(`${PREFIX}${key}`);
          assert.ok(ttl > 0 && ttl <= 30, `held with a ttl: ${ttl}`);
        }, { ttl: 30, wait: 100 });
      }
    });

    it('readLog reads from the start with a cursor past the last line (ids that went back: a log made again on a clock behind)', async () => {
      const tag = `{t${randomUUID().slice(0, 8)}}`;
      const log = `${tag}:log`;
      const first = await kv.raiseMarkAndLog(`${tag}:a`, 1, 60, log, { type: 'jti', value: 'a' }, 120);
      assert.ok(first);
      const ahead = `${Number(first.split('-')[0]) + 3_600_000}-0`;
      assert.deepEqual((await kv.readLog(log, ahead, 100)).map((entry) => entry.id), [first], 'a line behind the cursor the readers hold is read');
      assert.deepEqual(await kv.readLog(log, first, 100), [], 'the last line\'s own cursor reads nothing');
      assert.deepEqual(await kv.readLog(`${tag}:nothing`, ahead, 100), [], 'no log: nothing');
    });

    it('raiseMarkAndLog appends once per raise, keeps ids increasing, and sets TTLs', async () => {
      const tag = `{t${randomUUID().slice(0, 8)}}`;
      const log = `${tag}:log`;
      const first = await kv.raiseMarkAndLog(`${tag}:a`, 1, 60, log, { type: 'jti', value: 'a' }, 120);
      assert.ok(first);
      assert.equal(await kv.raiseMarkAndLog(`${tag}:a`, 1, 60, log, { type: 'jti', value: 'a' }, 120), undefined, 'same value: no-op');
      const second = await kv.raiseMarkAndLog(`${tag}:b`, 100, 60, log, { type: 'grant', value: 'b', at: '100' }, 120);
      assert.equal(await kv.raiseMarkAndLog(`${tag}:b`, 50, 60, log, { type: 'grant', value: 'b', at: '50' }, 120), undefined, 'lower: no-op');
      const third = await kv.raiseMarkAndLog(`${tag}:b`, 200, 60, log, { type: 'grant', value: 'b', at: '200' }, 120);
      assert.ok(second && third);
      assert.equal(await kv.get(`${tag}:b`), '200');

      const all = await kv.readLog(log, undefined, 100);
      assert.deepEqual(all.map((entry) => entry.id), [first, second, third]);
      assert.deepEqual(all[0]!.fields, { type: 'jti', value: 'a' });
      assert.deepEqual(all[2]!.fields, { type: 'grant', value: 'b', at: '200' });
      assert.deepEqual((await kv.readLog(log, first, 100)).map((entry) => entry.id), [second, third]);
      assert.deepEqual((await kv.readLog(log, first, 1)).map((entry) => entry.id), [second]);
      assert.deepEqual(await kv.readLog(log, third, 100), []);
      assert.deepEqual(await kv.readLog(`${tag}:nothing`, undefined, 100), []);

      if (open.raw) {
        const markTtl = await open.raw.ttl(`${PREFIX}${tag}:a`);
        assert.ok(markTtl > 0 && markTtl <= 60, `mark TTL ${markTtl}`);
        const logTtl = await open.raw.ttl(`${PREFIX}${log}`);
        assert.ok(logTtl > 60 && logTtl <= 120, `log TTL ${logTtl}`);
      }
    });

    it('raiseMarkAndLog orders concurrent appends and loses none', async () => {
      const tag = `{c${randomUUID().slice(0, 8)}}`;
      const ids = await Promise.all(
        Array.from({ length: 50 }, (_, i) => kv.raiseMarkAndLog(`${tag}:m${i}`, 1, 60, `${tag}:log`, { n: String(i) }, 60)),
      );
      const read = await kv.readLog(`${tag}:log`, undefined, 1000);
      assert.equal(read.length, 50);
      assert.deepEqual(new Set(read.map((entry) => entry.id)), new Set(ids));
      const order = read.map((entry) => entry.id.split('-').map(Number) as [number, number]);
      for (let i = 1; i < order.length; i += 1) {
        const [ms, seq] = order[i]!;
        const [previousMs, previousSeq] = order[i - 1]!;
        assert.ok(ms > previousMs || (ms === previousMs && seq > previousSeq), 'ids increase');
      }
    });

    it('fixedWindows charges and reads several counters at once, each with its own window', async () => {
      const windows = fixedWindows(kv);
      const id = randomUUID();
      const hit = (key: string, by: number, window = 60) => ({ limiter: 'kv-test', key: `${key}:${id}`, by, window });
      assert.deepEqual(await windows.hit([hit('peeked', 0)]), [{ count: 0, ms: 0 }], 'a read starts no window');
      const [first, second] = await windows.hit([hit('a', 1), hit('b', 3, 30)]);
      assert.equal(first!.count, 1);
      assert.ok(first!.ms > 30_000 && first!.ms <= 60_000, `a's window ${first!.ms}`);
      assert.equal(second!.count, 3);
      assert.ok(second!.ms > 0 && second!.ms <= 30_000, `b's window ${second!.ms}`);
      const [again, peeked, untouched] = await windows.hit([hit('a', 1), hit('b', 0), hit('peeked', 0)]);
      assert.equal(again!.count, 2);
      assert.ok(again!.ms <= first!.ms, 'a charge does not extend the window');
      assert.equal(peeked!.count, 3, 'a read charges nothing');
      assert.deepEqual(untouched, { count: 0, ms: 0 });
      const concurrent = await Promise.all(Array.from({ length: 20 }, () => windows.hit([hit('c', 1)])));
      assert.deepEqual(concurrent.map(([count]) => count!.count).sort((x, y) => x - y), Array.from({ length: 20 }, (_, i) => i + 1));
      if (open.raw) {
        const ttl = await open.raw.pttl(`${PREFIX}ratelimit:kv-test:c:${id}`);
        assert.ok(ttl > 0 && ttl <= 60_000, `the counter expires: ${ttl}`);
      }
      const [short] = await windows.hit([hit('short', 1, 0.05)]);
      assert.equal(short!.count, 1);
      await new Promise((resolve) => setTimeout(resolve, 120));
      assert.deepEqual(await windows.hit([hit('short', 0, 0.05)]), [{ count: 0, ms: 0 }], 'an ended window counts nothing');
      assert.equal((await windows.hit([hit('short', 1, 0.05)]))[0]!.count, 1, 'a new window starts from 1');
    });

    it('an expiring set drops its ended members at a removal too: emptied one live member at a time, it is gone', async () => {
      const key = `expiring:${randomUUID()}`;
      await kv.addExpiring(key, 'ends-soon', 1);
      await kv.addExpiring(key, 'lives', 60);
      assert.deepEqual((await kv.liveMembers(key)).sort(), ['ends-soon', 'lives']);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      assert.deepEqual(await kv.liveMembers(key), ['lives'], 'an ended member is not live');
      await kv.removeExpiring(key, 'lives');
      assert.deepEqual(await kv.liveMembers(key), []);
      // Only an absent key takes a set-if-absent: the ended member went with the last live one.
      assert.equal(await kv.set(key, 'gone', { ttl: 5, onlyIfAbsent: true }), true, 'nothing is left under the key');
    });

  });
}

// Redis only (on Cluster in two steps, elsewhere in one script): the embedded store works in process.
for (const backend of backends.filter((b) => b.name !== 'embedded store')) {
  describe(`Kv operations in one script: ${backend.name}`, function () {
    this.timeout(30_000);
    let open: OpenBackend;
    let kv: Kv;

    before(async () => {
      open = await backend.open();
      kv = open.kv;
    });
    after(async () => open?.stop());

    it('reads an index and the record it points to', async () => {
      const id = randomUUID();
      await kv.set(`via:index:${id}`, id);
      await kv.putRecord(`via:record:${id}`, '{"x":1}', 60);
      assert.deepEqual(await kv.getRecordVia!(`via:index:${id}`, 'via:record:'), { id, record: { payload: '{"x":1}' } });
      assert.equal(await kv.getRecordVia!(`via:index:${randomUUID()}`, 'via:record:'), undefined, 'no index');
      await kv.set(`via:index:dangling`, 'gone');
      assert.deepEqual(await kv.getRecordVia!('via:index:dangling', 'via:record:'), { id: 'gone', record: undefined }, 'an index to nothing');
    });

    it('getVia reads an index and the strings at each prefix + its value, missing ones as absent; nothing for no index', async function () {
      if (!kv.getVia) this.skip();
      const id = randomUUID();
      await kv.set(`getvia:index:${id}`, id);
      await kv.set(`getvia:a:${id}`, 'first');
      await kv.set(`getvia:c:${id}`, 'third');
      assert.deepEqual(await kv.getVia(`getvia:index:${id}`, ['getvia:a:', 'getvia:b:', 'getvia:c:']), { id, values: ['first', undefined, 'third'] });
      assert.deepEqual(await kv.getVia(`getvia:index:${id}`, ['getvia:b:', 'getvia:a:']), { id, values: [undefined, 'first'] }, 'a missing first one');
      assert.equal(await kv.getVia(`getvia:index:${randomUUID()}`, ['getvia:a:']), undefined, 'no index');
    });

    it('readMany answers strings, records and records via an index, in the order asked, missing ones as absent', async function () {
      if (!kv.readMany) this.skip();
      const id = randomUUID();
      await kv.set(`many:string:${id}`, 'one');
      await kv.putRecord(`many:record:${id}`, '{"r":1}', 60);
      assert.equal(await kv.consumeRecord(`many:record:${id}`, 5), 'consumed');
      await kv.putRecord(`many:other:${id}`, '{"r":2}', 60);
      await kv.set(`many:index:${id}`, id);
      await kv.putRecord(`many:via:${id}`, '{"v":1}', 60);
      await kv.set(`many:dangling:${id}`, 'gone');
      assert.deepEqual(
        await kv.readMany!({
          strings: [`many:string:${id}`, `many:nothing:${id}`],
          records: [`many:nothing:${id}`, `many:record:${id}`, `many:other:${id}`],
          indexed: [
            { index: `many:index:${id}`, prefix: 'many:via:' },
            { index: `many:nothing:${id}`, prefix: 'many:via:' },
            { index: `many:dangling:${id}`, prefix: 'many:via:' },
          ],
        }),
        {
          strings: ['one', undefined],
          records: [undefined, { payload: '{"r":1}', consumed: 5 }, { payload: '{"r":2}' }],
          indexed: [{ id, record: { payload: '{"v":1}' } }, undefined, { id: 'gone', record: undefined }],
        },
      );
      assert.deepEqual(await kv.readMany!({ strings: [], records: [], indexed: [] }), { strings: [], records: [], indexed: [] });
    });

    it("takeRecordOwnedBy reads a record, deleting it only when it names that client and has not expired", async () => {
      const id = randomUUID();
      const now = Date.now() / 1000;
      const record = (name: string, payload: object) => kv.putRecord(`take:${name}:${id}`, JSON.stringify(payload), 60).then(() => `take:${name}:${id}`);
      const own = await record('own', { clientId: 'c', exp: now + 60 });
      assert.deepEqual(await kv.takeRecordOwnedBy!(own, 'c', now), { record: { payload: JSON.stringify({ clientId: 'c', exp: now + 60 }) }, taken: true });
      assert.equal(await kv.getRecord(own), undefined, 'taken: gone');
      assert.deepEqual(await kv.takeRecordOwnedBy!(own, 'c', now), { record: undefined, taken: false }, 'nothing there');
      for (const [name, payload] of [['other', { clientId: 'd', exp: now + 60 }], ['expired', { clientId: 'c', exp: now - 1 }], ['no-exp', { clientId: 'c' }]] as const) {
        const key = await record(name, payload);
        assert.equal((await kv.consumeRecord(key, 7)), 'consumed');
        assert.deepEqual(await kv.takeRecordOwnedBy!(key, 'c', now), { record: { payload: JSON.stringify(payload), consumed: 7 }, taken: false }, name);
        assert.deepEqual(await kv.getRecord(key), { payload: JSON.stringify(payload), consumed: 7 }, `${name}: still there`);
      }
      await kv.putRecord(`take:not-json:${id}`, 'not json', 60);
      assert.deepEqual(await kv.takeRecordOwnedBy!(`take:not-json:${id}`, 'c', now), { record: { payload: 'not json' }, taken: false });
    });

    it('putRecordInSet writes a record and adds its key to a set, as putRecord and addToSet do', async () => {
      const id = randomUUID();
      const [record, set] = [`in-set:record:${id}`, `in-set:set:${id}`];
      await kv.putRecord(record, '{"old":1}', 60);
      assert.equal(await kv.consumeRecord(record, 1), 'consumed');
      await kv.putRecordInSet!(record, '{"x":1}', 30, set);
      assert.deepEqual(await kv.getRecord(record), { payload: '{"x":1}' }, 'replaced, its consumed mark dropped');
      assert.deepEqual(await kv.members(set), [record]);
      await kv.putRecordInSet!(`${record}:2`, '{"x":2}', 600, set);
      await kv.putRecordInSet!(`${record}:3`, '{"x":3}', 10, set);
      assert.deepEqual((await kv.members(set)).sort(), [record, `${record}:2`, `${record}:3`]);
      if (open.raw) {
        const ttl = (key: string) => open.raw!.ttl(`${PREFIX}${key}`);
        assert.ok((await ttl(record)) > 20 && (await ttl(record)) <= 30, 'the record expires with its ttl');
        assert.ok((await ttl(`${record}:3`)) <= 10);
        assert.ok((await ttl(set)) > 590, "the set's TTL only grows");
      }
      await kv.putRecordInSet!(`${record}:durable`, '{}', undefined, set);
      if (open.raw) {
        assert.equal(await open.raw.ttl(`${PREFIX}${record}:durable`), -1, 'no TTL: durable');
        assert.equal(await open.raw.ttl(`${PREFIX}${set}`), -1, 'a durable member makes the set durable');
      }
    });

    it('putRecordPointedTo writes a record and sets its pointer with its TTL, and neither over an ended record', async () => {
      const id = randomUUID();
      const [record, pointer] = [`pointed:record:${id}`, `pointed:pointer:${id}`];
      assert.equal(await kv.putRecordPointedTo!(record, '{"x":1}', 30, pointer, 'one'), true);
      assert.deepEqual(await kv.getRecord(record), { payload: '{"x":1}' });
      assert.equal(await kv.get(pointer), 'one');
      if (open.raw) {
        const ttl = await open.raw.ttl(`${PREFIX}${pointer}`);
        assert.ok(ttl > 20 && ttl <= 30, `the pointer expires with the record (${ttl})`);
      }
      await kv.set(pointer, 'elsewhere', { ttl: 30 });
      await kv.endRecord(record, 30);
      assert.equal(await kv.putRecordPointedTo!(record, '{"x":2}', 30, pointer, 'two'), false);
      assert.equal(await kv.getRecord(record), undefined, 'still ended');
      assert.equal(await kv.get(pointer), 'elsewhere', 'the pointer is left as it was');
    });
  });
}

describe('Kv single-use writes on a machine whose clock moved since it followed Redis\'s', function () {
  this.timeout(30_000);
  let open: OpenBackend;
  const realNow = Date.now;

  before(async () => {
    open = await backends.find((backend) => backend.name === 'single redis-server')!.open();
  });
  after(async () => {
    Date.now = realNow;
    await followStoreClock(() => open.kv.time!());
    await open?.stop();
  });

  it("a bounded mark and a consumption are taken, once, after Redis's clock stepped forward since it was followed (the clock is followed again), not refused as late; and after this machine's stepped back, which does not move the bound", async () => {
    const { kv } = open;
    // Followed while Redis's clock read 10 s earlier: it stepped 10 s forward since, and the bound
    // sent, counted on from that reading, would be long past on its clock.
    await followStoreClock(async () => realNow() - 10_000);
    assert.ok(Math.abs(storeClockOffset() + 10_000) < 1000, String(storeClockOffset()));
    const mark = `mark:${randomUUID()}`;
    assert.equal(await kv.set(mark, 'used', { ttl: 60, onlyIfAbsent: true, bounded: true }), true);
    assert.equal(await kv.set(mark, 'again', { ttl: 60, onlyIfAbsent: true, bounded: true }), false);
    assert.equal(storeClockOffset(), 0, 'followed again: this machine and its redis-server share a clock');
    // This machine's clock stepped back 30 s (NTP, a resumed VM): the bound is counted on the
    // monotonic clock from the last reading of Redis's (clock.ts storeMilliseconds), unmoved.
    Date.now = () => realNow() - 30_000;
    const record = `take:${randomUUID()}`;
    await kv.putRecord(record, '{"t":1}', 60);
    assert.equal(await kv.consumeRecord(record, 1), 'consumed');
    assert.equal(await kv.consumeRecord(record, 1), 'already-consumed');
    const client = `bounded:${randomUUID()}`;
    assert.equal(await kv.putRecord(client, '{"c":1}', undefined, { bounded: true }), true, 'a bounded record write is not refused as late either');
    assert.deepEqual(await kv.getRecord(client), { payload: '{"c":1}' });
    const account = `cas:${randomUUID()}`;
    assert.equal(await kv.compareAndSet(account, undefined, 'a', undefined, { bounded: true }), true, 'nor a bounded compare-and-set');
  });
});
