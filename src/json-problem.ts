/**
 * JSON.parse's refusals said without the text they quote: a refused JSON setting or embedded store
 * file may hold secrets (keys, client secrets, tokens). Imports nothing from src/ (config.ts uses it).
 */
/**
 * A JSON.parse error's message without the text it quotes, for a refusal that shows it (a JSON
 * setting's, the embedded store file's): V8 quotes a few characters either side of an unexpected
 * token (`Unexpected token 'T', ..."secrets":TOPSECRET1"... is not valid JSON`), a piece of a
 * KEYS_SECRETS, COOKIE_KEYS or client secret, or of a token in the store file, on stderr and in the
 * log (seventeenth passes, h12). Its other messages quote no input (`Expected ',' or ']' after array
 * element in JSON at position 74 (line 1 column 75)`) and are kept as they are: they say where.
 * Given the `text` parsed, the unexpected token's place is said in their words (worked out from the
 * excerpt, which is then dropped), so that the operator still learns where the mistake is (review
 * of the seventeenth passes, h15: an unquoted value, the commonest slip, was refused with no place).
 */
export function jsonProblem(error: unknown, text?: string): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!/is not valid JSON\s*$/.test(message)) return message;
  const at = text === undefined ? undefined : unexpectedTokenAt(message, text);
  const where = at === undefined ? '' : ` at position ${at} (line ${lineAndColumn(text!, at)})`;
  return `an unexpected character${where} (the text around it is not shown)`;
}

/** V8's excerpt: up to 10 characters either side of the token, `...` where the text goes on (its json-parser.cc). */
const EXCERPT_REACH = 10;

/** Where V8's "Unexpected token" message says its token is in `text`, when that is certain. */
function unexpectedTokenAt(message: string, text: string): number | undefined {
  const found = /^Unexpected token '([\s\S]{1,2})', (\.\.\.)?"([\s\S]*)"(\.\.\.)? is not valid JSON\s*$/.exec(message);
  if (!found) return undefined;
  const [, token = '', before, excerpt = '', after] = found;
  const occurrences = (of: string) => {
    const at: number[] = [];
    for (let i = text.indexOf(of); i !== -1; i = text.indexOf(of, i + 1)) at.push(i);
    return at;
  };
  let places: number[];
  if (!before && !after) places = excerpt === text ? occurrences(token) : []; // a short text, quoted whole
  else if (!before) places = text.startsWith(excerpt) ? [excerpt.length - EXCERPT_REACH] : [];
  else if (!after) places = text.endsWith(excerpt) ? [text.length - excerpt.length + EXCERPT_REACH] : [];
  else places = occurrences(excerpt).map((start) => start + EXCERPT_REACH);
  places = places.filter((place) => place >= 0 && text.startsWith(token, place));
  return places.length === 1 ? places[0] : undefined;
}

/** V8's `line L column C` (both from 1) of `position` in `text`. */
function lineAndColumn(text: string, position: number): string {
  const lines = text.slice(0, position).split('\n');
  return `${lines.length} column ${lines.at(-1)!.length + 1}`;
}
