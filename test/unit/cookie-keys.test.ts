/**
 * http/cookie-keys.ts signs and verifies exactly as Keygrip (the `cookies` package's default) does,
 * so cookies signed before it, or by the app's own Keygrip, read the same.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { CookieKeys } from '../../src/http/cookie-keys.js';

type Grip = { sign(data: string): string; index(data: string, digest: string): number };
const Keygrip = createRequire(import.meta.url)('keygrip') as (keys: string[]) => Grip;

describe('cookie keys', () => {
  const keys = ['first-key-0123456789abcdefghijklmnopqrstuvwxyz', 'second-key-ümlaut-and-more', 'third'];
  const ours = new CookieKeys(keys);
  const theirs = Keygrip(keys);

  it("signs as Keygrip does, with the first key", () => {
    for (const data of ['lk_session=abc', 'lk_interaction=Hdee8fR3ysbw6_6iMUZ-HW0r5ta8S190ENWsw_rAHif', '', 'a=ü€😀']) {
      assert.equal(ours.sign(data), theirs.sign(data), data);
    }
  });

  it("finds the key a signature was made with, as Keygrip does; -1 for anything else", () => {
    const data = 'lk_session=Hdee8fR3ysbw6_6iMUZ-HW0r5ta8S190ENWsw_rAHif';
    keys.forEach((key, i) => {
      const signed = Keygrip([key]).sign(data);
      assert.equal(ours.index(data, signed), i);
      assert.equal(theirs.index(data, signed), i);
    });
    const good = ours.sign(data);
    for (const bad of [good.slice(0, -1), `${good}A`, `${good.slice(0, -1)}${good.endsWith('A') ? 'B' : 'A'}`, '', 'x'.repeat(27), ours.sign('lk_session=other')]) {
      assert.equal(ours.index(data, bad), -1, bad);
      assert.equal(theirs.index(data, bad), -1, bad);
    }
    assert.equal(ours.verify(data, good), true);
    assert.equal(ours.verify(data, good.toLowerCase() === good ? `${good}x` : good.toLowerCase()), false);
  });

  it('needs a key', () => {
    assert.throws(() => new CookieKeys([]));
  });
});
