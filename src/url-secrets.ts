/**
 * A URL's secrets in its query, hidden where the URL is shown (a setting's refusal, the CLI's
 * "acting on Redis …", serve's store errors): ioredis takes any of its options from a Redis URL's
 * query, `redis://host:6379/0?password=…` among them, which was shown whole while the same password
 * before the @ was masked (h8, 2026-12-07). Imports nothing from src/ (config.ts uses it).
 */
const SECRET_PARAMETER = /([?&][^=&#]*(?:pass|secret|token|key)[^=&#]*=)[^&#]*/gi;

export function withoutQuerySecrets(url: string): string {
  return url.replace(SECRET_PARAMETER, '$1***');
}

/**
 * A JSON.parse error's message without the text it quotes, for a refusal that shows it (a JSON
 * setting's, the embedded store file's): V8 quotes a few characters either side of an unexpected
 * token (`Unexpected token 'T', ..."secrets":TOPSECRET1"... is not valid JSON`), a piece of a
 * KEYS_SECRETS, COOKIE_KEYS or client secret, or of a token in the store file, on stderr and in the
 * log (seventeenth passes, h12). Its other messages quote no input (`Expected ',' or ']' after array
 * element in JSON at position 74 (line 1 column 75)`) and are kept as they are: they say where.
 */
export function jsonProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return /is not valid JSON\s*$/.test(message) ? 'an unexpected character (the text around it is not shown)' : message;
}
