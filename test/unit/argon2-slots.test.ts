/**
 * accounts/argon2-slots.ts: no more computations at once than slots, the rest in the order they
 * came, and a slot given back whether the computation succeeds or fails.
 */
import assert from 'node:assert/strict';
import { Argon2Slots } from '../../src/accounts/argon2-slots.js';

/** A computation the test finishes when it wants. */
function pending() {
  let finish!: (value: string) => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<string>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  return { promise, finish, fail };
}
const settle = () => new Promise((done) => setImmediate(done));

describe('argon2 slots', () => {
  it('runs at most `size` at once and starts the waiting ones in the order they came', async () => {
    const slots = new Argon2Slots(2);
    const work = [pending(), pending(), pending(), pending()];
    const started: number[] = [];
    const results = work.map((w, i) =>
      slots.run(() => {
        started.push(i);
        return w.promise;
      }),
    );
    await settle();
    assert.deepEqual(started, [0, 1]);
    work[1]!.finish('b');
    await settle();
    assert.deepEqual(started, [0, 1, 2]);
    work[0]!.fail(new Error('boom'));
    await settle();
    assert.deepEqual(started, [0, 1, 2, 3], 'a failed computation gives its slot back');
    work[2]!.finish('c');
    work[3]!.finish('d');
    await assert.rejects(results[0]!, /boom/);
    assert.deepEqual(await Promise.all(results.slice(1)), ['b', 'c', 'd']);
    assert.equal(slots.peak, 2);
    // All slots are free again: two more start at once.
    const again = [pending(), pending()];
    const count = { started: 0 };
    const runs = again.map((w) => slots.run(() => (count.started++, w.promise)));
    await settle();
    assert.equal(count.started, 2);
    again.forEach((w) => w.finish('x'));
    await Promise.all(runs);
  });

  it('refuses a size below one', () => {
    assert.throws(() => new Argon2Slots(0), RangeError);
  });
});
