/**
 * Scopes joined with commas (`openid,profile`), as Grant (5.4) joins them for a provider its user
 * configures unless told `scope_delimiter: ' '`, and as other providers' own libraries do: RFC 6749
 * §3.3 separates scopes with spaces, so such a request asks for one unknown word. Where it is
 * refused, the description says so, rather than send the developer looking for a scope or a grant
 * already there.
 */
export { COMMA_RULE } from '../config.js';

/** Whether one of `words` holds a known scope (`known`) joined to others with commas. */
export function joinedWithCommas(words: Iterable<string>, known: (scope: string) => boolean): boolean {
  for (const word of words) if (word.includes(',') && word.split(',').some(known)) return true;
  return false;
}
