import assert from 'node:assert/strict';
import { CLOCK_AGREEMENT_MS, epochSeconds, followStoreClock, storeClockOffset } from '../../src/clock.js';

describe('clock: every process stamps and cuts off on the store\'s clock', () => {
  afterEach(() => followStoreClock(async () => Date.now()));

  it('a store clock 5 s ahead moves epochSeconds 5 s ahead', async () => {
    assert.equal(await followStoreClock(async () => Date.now() + 5_000), storeClockOffset());
    assert.ok(Math.abs(storeClockOffset() - 5_000) <= 5, String(storeClockOffset()));
    const expected = Math.floor((Date.now() + 5_000) / 1000);
    assert.ok([expected, expected + 1].includes(epochSeconds()));
  });

  it('a store clock 30 s behind moves it back', async () => {
    await followStoreClock(async () => Date.now() - 30_000);
    assert.ok(Math.abs(storeClockOffset() + 30_000) <= 5, String(storeClockOffset()));
  });

  it(`clocks within ${CLOCK_AGREEMENT_MS} ms (what the measure cannot tell apart) agree: no offset`, async () => {
    assert.equal(await followStoreClock(async () => Date.now() + CLOCK_AGREEMENT_MS - 10), 0);
    assert.equal(storeClockOffset(), 0);
  });
});
