/**
 * Username preparation: the PRECIS UsernameCaseMapped profile (RFC 8265 §3.3), the refusal of
 * invisible and text-direction characters, and TR 39 confusable skeletons.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { enforceUsername, usernameSkeleton, usernameSkeletons } from '../../src/accounts/usernames.js';

const enforced = (input: string) => {
  const result = enforceUsername(input);
  assert.ok(result.ok, `${JSON.stringify(input)}: ${result.ok ? '' : result.problem}`);
  return result.username;
};
const problem = (input: string) => {
  const result = enforceUsername(input);
  assert.ok(!result.ok, `${JSON.stringify(input)} should be refused, got ${result.ok ? result.username : ''}`);
  return result.problem;
};

describe('usernames: PRECIS UsernameCaseMapped (RFC 8265) and TR 39 skeletons', () => {
  it('maps width and case, then NFC (RFC 8265 §3.3.2)', () => {
    assert.equal(enforced('Alice'), 'alice');
    assert.equal(enforced('ＡＬＩＣＥ'), 'alice', 'fullwidth to its decomposition');
    assert.equal(enforced('ｶﾀｶﾅ'), 'カタカナ', 'halfwidth katakana');
    assert.equal(enforced('Zoe\u0308'), 'zoë', 'NFC composes');
    assert.equal(enforced('juliet@example.com'), 'juliet@example.com', 'ASCII punctuation is allowed');
    assert.equal(enforced('fußball'), 'fußball', 'sharp s is PVALID and not case-folded to ss');
    assert.equal(enforced('π'), 'π');
    assert.equal(enforced('Σ'), 'σ');
    assert.equal(enforced('ς'), 'ς', 'final sigma is an exception (PVALID)');
    assert.equal(enforced('Alice Smith'), 'alice smith', 'userparts separated by single spaces (RFC 8265 §3.1)');
  });

  it('refuses invisible and text-direction characters with one line naming the code point', () => {
    for (const [input, code] of [
      ['ali\u200bce', 'U+200B'], // zero width space
      ['\u202ealice', 'U+202E'], // right-to-left override
      ['alice\u202d', 'U+202D'], // left-to-right override
      ['al\u2066ice\u2069', 'U+2066'], // left-to-right isolate
      ['ali\u200dce', 'U+200D'], // zero width joiner
      ['ali\u200cce', 'U+200C'], // zero width non-joiner
      ['\ufeffalice', 'U+FEFF'], // byte order mark
      ['ali\u00adce', 'U+00AD'], // soft hyphen
      ['ali\u2060ce', 'U+2060'], // word joiner
      ['alice\u200e', 'U+200E'], // left-to-right mark
      ['ali\u034fce', 'U+034F'], // combining grapheme joiner
      ['ali\u{e0041}ce', 'U+E0041'], // tag character
    ] as const) {
      const message = problem(input);
      assert.equal(message, `a username cannot contain invisible or text-direction characters (found ${code})`);
      assert.ok(!message.includes('\n'));
    }
  });

  it('refuses what the IdentifierClass (RFC 8264) does not allow: compatibility forms, symbols, spaces, unassigned, old Hangul jamo', () => {
    for (const input of ['ﬁsh', 'x²', 'alice\u00a0smith', 'alice\u2003', '☃', 'ⓐlice', '𝒶lice', 'Ⅸ', 'ali\u{10ffff}ce', 'a\u0378b', 'a\u1100', 'a\u3031b', '\u0640']) {
      assert.match(problem(input), /cannot contain|spaces/, input);
    }
    assert.match(problem(' alice'), /start or end with spaces/);
    assert.match(problem('alice  smith'), /two spaces/);
    assert.match(problem('a\u0007bell'), /control characters/);
    assert.match(problem(''), /required/);
    assert.match(problem('x'.repeat(129)), /at most 128/);
  });

  it('applies the contextual rules (RFC 5892 Appendix A) and the Bidi Rule', () => {
    assert.equal(enforced('l·l'), 'l·l', 'Catalan middle dot between two l');
    assert.match(problem('a·b'), /U\+00B7/);
    assert.match(problem('\u0661\u06f1'), /U\+0661/, 'Arabic-Indic and extended Arabic-Indic digits do not mix');
    assert.equal(enforced('עמר'), 'עמר');
    assert.equal(enforced('عمر١٢'), 'عمر١٢');
    assert.match(problem('עמרalice'), /right-to-left/);
    assert.match(problem('aliceעמר'), /right-to-left/);
  });

  it('enforcement is idempotent (RFC 8264 §7)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), (input) => {
        const once = enforceUsername(input);
        if (!once.ok) return;
        const twice = enforceUsername(once.username);
        assert.ok(twice.ok);
        assert.equal(twice.username, once.username);
      }),
      { numRuns: 500, seed: 8265 },
    );
  });

  it('lookalikes share a skeleton (TR 39 §4); different names do not', () => {
    const alice = usernameSkeleton(enforced('alice'));
    for (const lookalike of ['аlice' /* Cyrillic а */, 'alıce' /* dotless ı */, 'a1ice', 'ɑlice', 'аlіcе' /* three Cyrillic */]) {
      assert.equal(usernameSkeleton(enforced(lookalike)), alice, lookalike);
    }
    // Shown as entered, "aIice" looks like "alice" though its enforced form "aiice" does not.
    assert.ok(usernameSkeletons('aIice').includes(alice));
    assert.deepEqual(usernameSkeletons('Alice'), [alice, usernameSkeleton('Alice')]);
    assert.equal(usernameSkeleton(enforced('rnary')), usernameSkeleton(enforced('mary')), 'rn and m');
    for (const other of ['alicia', 'bob', 'alice2', 'malice']) assert.notEqual(usernameSkeleton(enforced(other)), alice, other);
  });
});
