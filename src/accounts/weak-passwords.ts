/**
 * Passwords an attacker tries first, refused wherever a password is chosen (an operator's CLI and
 * admin API, the account page's change and first password): NIST SP 800-63B §3.1.1.2 (a blocklist
 * of commonly used, expected or compromised values, context-specific words among them), OWASP ASVS
 * 5.0 V6.2.4 and V6.2.11. The sign-in throttle lets a spray try a few passwords against every
 * username, so the few it tries must not be anyone's.
 *
 * What is refused: the most common passwords of public breach lists that meet the length rule (an
 * embedded list, compared case-insensitively and with digits and symbols at the end taken off, so
 * `Password123!` is `password`); one character, or two, repeated (`aaaaaaaa`, `abababab`), and any short or guessable piece said
 * twice or more (`abcabcabc`, `bobbobbob1` for bob, `passwordpassword`); a run of
 * the alphabet, of digits or of a keyboard row, forwards or backwards (`12345678`, `qwertyuiop`,
 * `87654321`); and the context: the username, and the service's own name, alone or with digits and
 * symbols around them. Long passphrases of ordinary words are what people are asked for, and pass.
 */

/** Common passwords of 8 characters or more (shorter ones are refused by length), lower case, without trailing digits or symbols where that leaves a word. */
const COMMON = new Set(
  `password passw0rd p@ssw0rd p@ssword pa55word pa55w0rd passwort motdepasse contrasena senha
  qwertyuiop qwertyui qwerty1234 asdfghjkl asdfghjk zxcvbnm1 1q2w3e4r 1q2w3e4r5t 1q2w3e4r5t6y 1qaz2wsx
  1qazxsw2 zaq12wsx zaq1zaq1 q1w2e3r4 q1w2e3r4t5 q1w2e3r4t5y6 qwer1234 asdf1234 1234qwer 12qwaszx
  qazwsxedc azertyuiop azerty12 abcd1234 abc12345 a1b2c3d4 aa123456 iloveyou iloveu loveyou
  sunshine princess football baseball basketball superman starwars trustno1 welcome whatever
  letmein michelle jennifer jordan23 charlie computer internet dragon monkey master shadow mustang
  liverpool chelsea arsenal manchester admin administrator changeme secret default guest test
  testtest passpass nopassword mypassword hello hellokitty blink182 samsung pokemon minecraft
  football1 baseball1 soccer hockey killer freedom whatsup nothing cheese ginger summer winter
  spring autumn flower butterfly chocolate cookie pepper purple orange yellow matrix silver
  michael jessica ashley daniel thomas robert william matthew anthony joshua andrew benjamin
  access qazwsx qweasdzxc 147258369 741852963 963852741 123654789 789456123 159753 159357
  1029384756 0192837465 987654321 123123123 123321 112233 11223344 12341234 12121212 123qwe
  qwe123 qweqweqwe asdasdasd zxczxczxc loveme lovely beautiful angel babygirl sweetheart
  friends family forever onelove godisgood jesus christ blessed heaven victoria elizabeth
  alexander jonathan nicholas christopher samantha jasmine amanda melissa stephanie chicken
  banana apple pineapple strawberry dolphin tigger snoopy mickey garfield spiderman batman
  ironman harrypotter gandalf pokemon naruto letmein1 iloveyou1 whatever1 unknown welcome1`.split(/\s+/).filter(Boolean),
);

/** Runs a spray walks: the alphabet, digits, keyboard rows (and the digit row with the letter rows interleaved is in COMMON). */
const RUNS = ['abcdefghijklmnopqrstuvwxyz', '01234567890123456789', 'qwertyuiopasdfghjklzxcvbnm', 'qwertzuiopasdfghjklyxcvbnm', 'azertyuiopqsdfghjklmwxcvbn', '1234567890'];

/** The service's own name: a context-specific word (NIST SP 800-63B §3.1.1.2). */
const SERVICE_NAMES = ['latchkey'];

/** Lower case, and without digits and symbols at either end: `Password123!` → `password`. */
function stem(password: string): string {
  return password.toLowerCase().replace(/^[\d\W_]+|[\d\W_]+$/g, '');
}

/** The piece `text` is made of, repeated, when it is one: `bobbobbob` → `bob`; else undefined. */
function repeatedPiece(text: string): string | undefined {
  return /^(.+?)\1+$/s.exec(text)?.[1];
}

/** Why `password` is too easy to guess, or undefined. `context`: the username and other words of this account. */
export function weakPassword(password: string, context: readonly string[] = []): string | undefined {
  // A guessable piece said twice or more (`bobbobbob1`, `passwordpassword`, `qwertyqwerty`,
  // `abcabcabc`) is as guessable as the piece: a spray's list repeats its words too.
  for (const whole of [stem(password), password.toLowerCase().replace(/\s/g, '')]) {
    const piece = repeatedPiece(whole);
    if (piece !== undefined && (piece.length <= 3 || weakOnce(piece, context) !== undefined)) {
      return 'a password that repeats a short or guessable piece (abcabc, passwordpassword) is easy to guess; choose another';
    }
  }
  return weakOnce(password, context);
}

function weakOnce(password: string, context: readonly string[]): string | undefined {
  const lower = password.toLowerCase();
  const core = stem(password);
  if (COMMON.has(lower) || COMMON.has(core) || COMMON.has(lower.replace(/[^a-z0-9]/g, ''))) return 'that password is among the most common ones; choose another (a few unrelated words make a good one)';
  if (new Set(lower).size <= 2) return 'a password of one or two repeated characters is easy to guess; choose another';
  const compact = lower.replace(/\s/g, '');
  if (RUNS.some((run) => run.includes(compact) || [...run].reverse().join('').includes(compact))) return 'a run of letters, digits or keys is easy to guess; choose another';
  const words = [...SERVICE_NAMES, ...context.map((word) => word.toLowerCase()).filter((word) => word.length >= 3)];
  if (words.some((word) => core === word || lower === word || core === [...word].reverse().join(''))) {
    return 'a password made of your username (or the name of this service) is easy to guess; choose another';
  }
  return undefined;
}
