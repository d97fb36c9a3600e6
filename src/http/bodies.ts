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

/**
 * The deepest JSON body taken: client metadata (a `jwks` with its keys' `x5c`) is five levels deep.
 * JSON.parse takes far deeper input than JSON.stringify and the recursive walks after it can give
 * back: 15,000 nested arrays in 30 KB were parsed, then overflowed the stack where the admin API
 * stored the client, a 500 (before the outsider's second pass).
 */
const MAX_JSON_DEPTH = 32;

/** How deep `value` nests, counted without recursion, stopping once past `max`. */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length) {
    const [item, depth] = pending.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth + 1 > max) return true;
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
  return false;
}

/** Reads an application/json body of at most `limit` (e.g. '64kb') and MAX_JSON_DEPTH levels. */
export function jsonBody(limit: string): Middleware {
  const parse = bodyParser({ enableTypes: ['json'], jsonLimit: limit, encoding: 'utf-8', onError: unreadable });
  return (ctx, next) =>
    parse(ctx, () => {
      if (nestedDeeperThan(ctx.request.body, MAX_JSON_DEPTH)) {
        throw Object.assign(new Error(`the JSON body nests deeper than ${MAX_JSON_DEPTH} levels`), { status: 400, expose: false });
      }
      return next();
    });
}
