/**
 * The blocklist's siblings: a guessable piece said twice or more is as guessable as the piece
 * (found walking the README: `bobbobbob1` was taken for the user bob, `passwordpassword` for anyone).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { validatePassword } from '../../src/accounts/accounts.js';
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

  it("the README's examples of refused passwords are each refused for what the README says, none for its length", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const said = /is none of those a spray tries first(.*?)\(`accounts\/weak-passwords\.ts`/.exec(readme)?.[1];
    assert.ok(said, "the users add row's password rules");
    const examples = [...said.matchAll(/`([^`]+)`/g)].map((match) => match[1]!);
    assert.ok(examples.length >= 5, examples.join(' '));
    for (const password of examples) assert.match(validatePassword(password, 'alice') ?? 'accepted', /easy to guess|most common/, password);
  });
});

