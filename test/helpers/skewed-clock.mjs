/**
 * A process whose clock is off: loaded first (`node --import`, through NODE_OPTIONS: see
 * skewedClock), it moves Date.now() and `new Date()` by LATCHKEY_TEST_CLOCK_SKEW_MS milliseconds,
 * as a machine whose clock drifted would read them. Plain JavaScript: the built CLI loads it without tsx.
 */
import process from 'node:process';

const skew = Number(process.env.LATCHKEY_TEST_CLOCK_SKEW_MS ?? 0);
const RealDate = globalThis.Date;
const realNow = RealDate.now.bind(RealDate);

class SkewedDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(realNow() + skew);
    else super(...args);
  }

  static now() {
    return realNow() + skew;
  }
}

globalThis.Date = SkewedDate;
