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
import { jsonError } from './errors.js';

function unreadable(error: unknown): never {
  const status = (error as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) throw error;
  throw Object.assign(new Error('the request body could not be read', { cause: error }), { status: 400, expose: false });
}

/** Reads an application/x-www-form-urlencoded body of at most `limit` (e.g. '16kb'). */
export function formBody(limit: string): Middleware {
  return bodyParser({ enableTypes: ['form'], formLimit: limit, encoding: 'utf-8', onError: unreadable });
}

/**
 * The deepest JSON body taken: client metadata (a `jwks` with its keys' `x5c`) is five levels deep.
 * JSON.parse takes far deeper input than JSON.stringify and the recursive walks after it can give
 * back: 15,000 nested arrays in 30 KB were parsed, then overflowed the stack where the admin API
 * stored the client, a 500 (before the outsider's second pass).
 */
const MAX_JSON_DEPTH = 32;

/** Whether `value` nests deeper than `max` levels of objects and arrays, counted without recursion, stopping once past `max`. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length) {
    const [item, depth] = pending.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
  return false;
}

/**
 * Reads an application/json body of at most `limit` (e.g. '64kb') and MAX_JSON_DEPTH levels. A body
 * of another type or charset is refused (415, RFC 9110 §15.5.16), never passed over as if none had
 * been sent: an admin API call whose `{"previous_secret_valid_for": 0}` went unlabelled (curl -d)
 * rotated a leaked secret with the default grace, and a grant's `{"scopes": […]}` set none.
 */
export function jsonBody(limit: string): Middleware {
  const parse = bodyParser({ enableTypes: ['json'], jsonLimit: limit, encoding: 'utf-8', onError: unreadable });
  return (ctx, next) => {
    // A body is sent with a Transfer-Encoding or a Content-Length above 0 (RFC 9112 §6.3; an empty POST carries `0`).
    const sent = ctx.get('transfer-encoding') !== '' || Number(ctx.get('content-length')) > 0;
    const charset = ctx.request.charset;
    if (sent && (!ctx.is('application/json') || (charset && !/^utf-?8$/i.test(charset)))) {
      return jsonError(ctx, 415, 'invalid_request', 'send the body as application/json (UTF-8)');
    }
    return parse(ctx, () => {
      if (nestedDeeperThan(ctx.request.body, MAX_JSON_DEPTH)) {
        throw Object.assign(new Error(`the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`), { status: 400, expose: false });
      }
      return next();
    });
  };
}
