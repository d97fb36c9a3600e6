/**
 * Recognises "the store is unreachable" among errors, so that callers answer 503 with
 * Retry-After (and recover when it returns) instead of reporting a server bug.
 */
import { EmbeddedFileUnusable } from './embedded.js';

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
  // Cluster: a slot moved to another master (a resharding) under a turn's auto-pipeline, whose other
  // commands went to other slots (store/redis.ts followsMovedSlots); nothing of it was sent again.
  'All keys in the pipeline should belong to the same slots allocation group',
  'Too many Cluster redirections',
];

/** Cluster: a slot's command answered by its old master (MOVED) or during its move (ASK), not run there. */
const REDIRECTED = /^(?:MOVED|ASK) \d+ /;

/**
 * The store has not yet been read to what a request needs (the key ring that replaces a revoked
 * signing key: keyring/service.ts SigningKeyRevoked): answered as an outage, 503 with Retry-After.
 */
export class StoreBehind extends Error {
  override name = 'StoreBehind';
}

export function isStoreOutage(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof StoreBehind) return true;
  if (OUTAGE_MESSAGES.some((text) => error.message.includes(text)) || REDIRECTED.test(error.message)) return true;
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

/**
 * Reply codes of a store that answered and refused for a reason of its own, not a command of
 * ours that is wrong: an ACL user without the permission for a key or command (NOPERM: a
 * misconfigured ACL, or a replica or master refusing while it is replaced), a master that cannot
 * persist (MISCONF) or reach its replicas (NOREPLICAS), a script still running (BUSY), a Cluster
 * slot being moved (TRYAGAIN). Such a request failed as it would in an outage: answered 503 (never
 * a 500, which says "a bug"), and logged with the reply, which the operator must see. The ACL's
 * refusal of a script's keys or commands is said in words ("ERR The user executing the script
 * can't access at least one of the keys…"), not by NOPERM.
 */
const REFUSAL = /(?:^|[\s:(])(?:NOPERM|MISCONF|NOREPLICAS|BUSY|TRYAGAIN)\s|^ERR The user executing the script can't /;

/**
 * The store's refusal of a command for a reason of its own (see REFUSAL), or undefined. The
 * embedded store's file that cannot be written (store/embedded.ts) is one too, as Redis's MISCONF
 * (it cannot persist): a 503 whose log line names EMBEDDED_FILE, never a 500.
 */
export function storeRefused(error: unknown): Error | undefined {
  if (error instanceof EmbeddedFileUnusable && error.write) return error;
  if (error instanceof Error && error.cause instanceof EmbeddedFileUnusable && error.cause.write) return error.cause;
  const refusal = storeRefusal(error);
  return refusal && REFUSAL.test(refusal.message) ? refusal : undefined;
}

/** Seconds a client should wait before retrying while the store is away. */
export const RETRY_AFTER_SECONDS = 2;
