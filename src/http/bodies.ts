/**
 * The one way our own routes read a request body: a form (the pages' forms) or JSON (the admin
 * API), in UTF-8, within a limit.
 *
 * Reading a body is all the parser does, so whatever it throws is the body's fault: a refusal that
 * already has a 4xx status (413 too large, 415 an unknown Content-Encoding, a malformed form or
 * JSON) keeps it, and anything else, such as a Content-Encoding of gzip, deflate or br over bytes
 * that are not compressed that way (zlib's "incorrect header check", thrown without a status), is
 * a 400 too. app.ts's requestContext answers both as "the request body could not be read", never
 * as a 500.
 */
import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';

function unreadable(error: unknown): never {
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) throw error;
  throw Object.assign(new Error('the request body could not be read', { cause: error }), { status: 400, expose: false });
}

/** Reads an application/x-www-form-urlencoded body of at most `limit` (e.g. '16kb'). */
export function formBody(limit: string): Middleware {
  return bodyParser({ enableTypes: ['form'], formLimit: limit, encoding: 'utf-8', onError: unreadable });
}

/** Reads an application/json body of at most `limit` (e.g. '64kb'). */
export function jsonBody(limit: string): Middleware {
  return bodyParser({ enableTypes: ['json'], jsonLimit: limit, encoding: 'utf-8', onError: unreadable });
}
