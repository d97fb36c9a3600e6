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

  it('answers alike once a signature is kept: signed or verified before, forged, by a later key, long', () => {
    const fresh = () => new CookieKeys(keys);
    const data = 'lk_session=7rQ2y0ZkC9n1x8oWq3VbTt5uEe6rRj4hHg2kKl0mMnP';
    const forged = Keygrip(['not-our-key']).sign(data);
    const byLater = Keygrip([keys[1]!]).sign(data);
    const long = `lk_session=${'x'.repeat(300)}`;
    for (const prime of [(k: CookieKeys) => k.sign(data), (k: CookieKeys) => k.index(data, theirs.sign(data)), (k: CookieKeys) => k.index(data, forged), () => undefined]) {
      const k = fresh();
      prime(k);
      for (let round = 0; round < 2; round += 1) {
        assert.equal(k.sign(data), theirs.sign(data));
        assert.equal(k.index(data, theirs.sign(data)), 0);
        assert.equal(k.index(data, forged), -1);
        assert.equal(k.index(data, byLater), 1);
        assert.equal(k.index(data, theirs.sign(data).slice(0, -1)), -1);
        assert.equal(k.sign(long), theirs.sign(long));
        assert.equal(k.index(long, theirs.sign(long)), 0);
        assert.equal(k.index(long, forged), -1);
      }
    }
  });

  it('keeps answering alike past the most signatures it keeps', () => {
    const k = new CookieKeys(keys);
    for (let i = 0; i < 10_050; i += 1) k.sign(`lk_session=${i}`);
    for (const i of [0, 49, 50, 10_049]) {
      assert.equal(k.index(`lk_session=${i}`, theirs.sign(`lk_session=${i}`)), 0);
      assert.equal(k.sign(`lk_session=${i}`), theirs.sign(`lk_session=${i}`));
    }
  });

  it('needs a key', () => {
    assert.throws(() => new CookieKeys([]));
  });
});
