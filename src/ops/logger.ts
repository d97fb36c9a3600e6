/**
 * Structured JSON logs (pino). Request logs carry the path, never the query string: queries and
 * bodies can hold codes, tokens and hints. The redact list is a second line of defence for
 * anything that logs an object by mistake.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'latchkey' },
    redact: {
      paths: [
        'password', '*.password', 'client_secret', '*.client_secret', 'token', '*.token',
        'code', '*.code', 'refresh_token', '*.refresh_token', 'access_token', '*.access_token',
        'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie',
      ],
      censor: '[redacted]',
    },
  });
}
