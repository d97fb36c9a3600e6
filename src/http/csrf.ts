/**
 * CSRF tokens for server-rendered forms: an HMAC of what the form is bound to (an interaction's
 * uid, a session's id) under the server's key, so a token cannot be made without that key and
 * does not fit another interaction or session. `purpose` keeps the tokens of different pages apart.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface CsrfTokens {
  /** The token for a form bound to `boundTo`. */
  token(boundTo: string): string;
  /** Whether `offered` is that token (compared in constant time). */
  valid(boundTo: string, offered: string): boolean;
}

export function csrfTokens(key: string, purpose: string): CsrfTokens {
  const token = (boundTo: string) => createHmac('sha256', key).update(`${purpose}:${boundTo}`).digest('base64url');
  return {
    token,
    valid(boundTo, offered) {
      const expected = Buffer.from(token(boundTo));
      const actual = Buffer.from(offered);
      return actual.length === expected.length && timingSafeEqual(actual, expected);
    },
  };
}
