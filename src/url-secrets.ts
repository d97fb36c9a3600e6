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
