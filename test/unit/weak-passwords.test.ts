/**
 * The blocklist's siblings: a guessable piece said twice or more is as guessable as the piece
 * (found walking the README: `bobbobbob1` was taken for the user bob, `passwordpassword` for anyone).
 */
import assert from 'node:assert/strict';
import { weakPassword } from '../../src/accounts/weak-passwords.js';

describe('weak passwords', () => {
  it('refuses a short or guessable piece repeated: the username, a common word, a run, three letters', () => {
    const cases: [string, string[]][] = [
      ['bobbobbob1', ['bob']],
      ['BobBob!!', ['bob']],
      ['bob bob bob', ['bob']],
      ['passwordpassword', []],
      ['Password!Password!', []],
      ['qwertyqwerty', []],
      ['123412341234', []],
      ['abcabcabc', []],
      ['xyzxyzxyz9', []],
      ['latchkeylatchkey', []],
    ];
    for (const [password, context] of cases) assert.match(weakPassword(password, context) ?? 'accepted', /easy to guess/, password);
  });

  it('still refuses what it refused, and takes passphrases, a repeated one only when its piece is long and not guessable', () => {
    for (const password of ['password', 'Password123!', '12345678', 'aaaaaaaa', 'abababab', 'bob2024']) assert.ok(weakPassword(password, ['bob']), password);
    for (const password of ['a long passphrase', 'correct horse battery staple', 'another passphrase', 'plum-orbit-ladder', 'plumorbitplumorbit']) {
      assert.equal(weakPassword(password, ['bob']), undefined, password);
    }
  });
});
