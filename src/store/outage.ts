/**
 * Recognises "the store is unreachable" among errors, so that callers answer 503 with
 * Retry-After (and recover when it returns) instead of reporting a server bug.
 */
const OUTAGE_MESSAGES = [
  'Connection is closed',
  'Command timed out',
  // While the connection is down (after the first, nothing waits in a queue for the next: redis.ts connect).
  'Stream isn\'t writeable',
  'Cluster isn\'t ready',
  // Unanswered when the connection dropped (maxRetriesPerRequest), or an auto-pipelined batch answered in part.
  'Reached the max retries per request limit',
  'Command aborted due to connection close',
  'connect ECONNREFUSED',
  'CLUSTERDOWN',
  'LOADING',
  'MASTERDOWN',
  'READONLY',
  // Refused credentials: as unusable as an unreachable server, and said in the message.
  'WRONGPASS',
  'NOAUTH',
  // A full Redis (maxmemory with noeviction, as required: see Kv.evictionPolicy) refuses writes until it has room.
  'OOM command not allowed',
  'None of startup nodes is available',
  // What answered is not Redis (a wrong port), or the stream broke: ioredis drops the connection and reconnects.
  'Unknown RESP type',
  'Failed to refresh slots cache',
];

export function isStoreOutage(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (OUTAGE_MESSAGES.some((text) => error.message.includes(text))) return true;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT') return true;
  return error.cause !== undefined && isStoreOutage(error.cause);
}

/**
 * The store answered and refused the command (a Redis error reply: an ACL user without the
 * permission, NOPERM; OOM; a wrong type): said in one line, not as a bug's stack trace.
 */
export function storeRefusal(error: unknown): Error | undefined {
  if (!(error instanceof Error)) return undefined;
  return error.name === 'ReplyError' ? error : storeRefusal(error.cause);
}

/** Seconds a client should wait before retrying while the store is away. */
export const RETRY_AFTER_SECONDS = 2;
