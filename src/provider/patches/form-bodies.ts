/**
 * The form body of a POST to the token, introspection, revocation and userinfo endpoints.
 *
 * oidc-provider reads it in its `urlencoded` step (shared/selective_body.js): the type checked by
 * type-is and the stream read through an async iterator (`req.iterator()`: a generator and a
 * promise per chunk). Every token, introspection and revocation request goes through that step, so
 * this patch puts one in its place which reads the common case from the stream's events instead:
 * the type `application/x-www-form-urlencoded`, bare or with `charset=utf-8`, with a
 * Content-Length or a chunked body, on a stream nobody has read yet. Every other request goes to
 * the engine's own step, unchanged. For the requests it reads, the result and the refusals are
 * the engine's: at most 56 KiB, exactly Content-Length bytes when given (taken from the stream's
 * buffer when all of them are there already), `querystring.parse` of
 * the bytes as UTF-8 (its result made faster by `parseForm` for a form with nothing to decode; the
 * engine decodes by `ctx.charset`, which Koa's context does not have, so a charset never changes
 * its decoding, nor a byte-order mark its result), and `invalid_request`
 * "failed to parse the request body" for a body that breaks those rules, but one over the limit,
 * which is `413 invalid_request` (RFC 9110 §15.5.14, as oversized-bodies.ts answers a declared one).
 *
 * Userinfo is sent "using either HTTP GET or HTTP POST" with the token as a Bearer token (OIDC Core
 * §5.3.1, RFC 6750 §2): a POST with the token in its Authorization header is a request whatever its
 * body, which carries a token only as a form (RFC 6750 §2.2). The engine refused a body of any other
 * type, even an empty one labelled `application/json`, `400 invalid_request`: there such a body is
 * not read, as if none had been sent (the token endpoint, introspection and revocation take forms
 * only, RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1, and keep the engine's refusal).
 */
import type { IncomingMessage } from 'node:http';
import * as querystring from 'node:querystring';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import introspectionSteps from 'oidc-provider/lib/actions/introspection.js';
import revocationSteps from 'oidc-provider/lib/actions/revocation.js';
import tokenSteps from 'oidc-provider/lib/actions/token.js';
import userinfoSteps from 'oidc-provider/lib/actions/userinfo.js';

type Step = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>;

/** The engine's limit (selective_body.js), pinned by test/unit/provider-patches.test.ts. */
export const FORM_BODY_LIMIT = 56 * 1024;
/** What a body over it is told, with 413 (RFC 9110 §15.5.14; oversized-bodies.ts). */
export const BODY_TOO_LARGE = `the request body is larger than the ${FORM_BODY_LIMIT / 1024} KiB this endpoint reads`;
const TOO_LARGE = 'request entity too large';

/** The types read here (type-is would take each for the engine's type). */
const PLAIN_FORM = /^application\/x-www-form-urlencoded *(?:; *charset *= *(?:utf-8|"utf-8") *)?$/i;

/** querystring.parse's default limit of pairs (empty ones counted). */
const MAX_PAIRS = 1000;

/**
 * `querystring.parse(text)`, the same object (no prototype, a repeated name's values in an array),
 * for a form without `%` or `+`, where there is nothing to decode: split at each `&` and at the
 * first `=` of each pair by `indexOf`, where querystring's loop looked at every character in
 * JavaScript (44 K instructions for the 800-character JWT of an introspection or revocation).
 * Anything else goes to querystring.
 */
export function parseForm(text: string): Record<string, string | string[]> {
  if (text.indexOf('%') !== -1 || text.indexOf('+') !== -1) return querystring.parse(text) as Record<string, string | string[]>;
  const form: Record<string, string | string[]> = { __proto__: null } as unknown as Record<string, string | string[]>;
  if (text.length === 0) return form;
  let pairs = MAX_PAIRS;
  let start = 0;
  for (;;) {
    const end = text.indexOf('&', start);
    const last = end === -1;
    const stop = last ? text.length : end;
    if (stop > start) {
      const eq = text.indexOf('=', start);
      const bare = eq === -1 || eq >= stop; // a name without "=": its value is empty
      const name = text.slice(start, bare ? stop : eq);
      const value = bare ? '' : text.slice(eq + 1, stop);
      const held = form[name];
      if (held === undefined) form[name] = value;
      else if (Array.isArray(held)) held.push(value);
      else form[name] = [held, value];
    }
    if (last || --pairs === 0) return form;
    start = end + 1;
  }
}

/** The bytes of `req`'s body, by its events; rejects as the engine's reader throws. */
function readBody(req: IncomingMessage, length: number | undefined): Promise<Buffer> | Buffer {
  // Usually a form arrives with its headers and the whole of it waits in the stream's buffer by the
  // time it is read: taken at once, without four listeners and a promise.
  if (length && req.complete && req.readableLength === length) {
    const buffered = req.read() as Buffer | null;
    if (buffered?.length === length) return buffered;
    if (buffered) throw new Error('request size did not match content length');
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const done = (error?: Error) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', done);
      req.off('close', onClose);
      if (!error) return resolve(Buffer.concat(chunks, received));
      // Left unread, as the engine's reader leaves it: Node's server discards the rest.
      req.pause();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > FORM_BODY_LIMIT) return done(new Error(TOO_LARGE));
      if (length !== undefined && received > length) return done(new Error('request size did not match content length'));
      chunks.push(chunk);
    };
    const onEnd = () => done(length !== undefined && received !== length ? new Error('request size did not match content length') : undefined);
    const onClose = () => done(new Error('premature close'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', done);
    req.on('close', onClose);
  });
}

const FORM = 'application/x-www-form-urlencoded';

/** `otherBodiesUnread`: a POST whose body is no form is taken as one without a body (userinfo). */
function readingForms(engineStep: Step, otherBodiesUnread = false): Step {
  return async function formBody(ctx, next) {
    const { headers } = ctx.req;
    const type = headers['content-type'];
    // type-is takes a request without either header for one without a body: the engine refuses it.
    const hasBody = headers['content-length'] !== undefined || headers['transfer-encoding'] !== undefined;
    if (ctx.method !== 'POST' || type === undefined || !hasBody || !ctx.req.readable || !PLAIN_FORM.test(type)) {
      if (otherBodiesUnread && ctx.method === 'POST' && type !== undefined && !ctx.is(FORM)) {
        (ctx.oidc as { body?: object }).body = {};
        return next();
      }
      return engineStep(ctx, next);
    }
    try {
      const length = ctx.request.length;
      if (length !== undefined && length > FORM_BODY_LIMIT) throw new Error(TOO_LARGE);
      const read = readBody(ctx.req, length);
      (ctx.oidc as { body?: object }).body = parseForm((read instanceof Promise ? await read : read).toString());
    } catch (cause) {
      if ((cause as Error).message !== TOO_LARGE) throw new errors.InvalidRequest('failed to parse the request body', undefined, { cause });
      // 413, not the engine's 400 (oversized-bodies.ts answers a declared length; this, a chunked body).
      throw new errors.InvalidRequest(BODY_TOO_LARGE, 413, { cause });
    }
    await next();
  };
}

/**
 * In an endpoint's steps, the engine's `urlencoded` step becomes ours (wrapping it). The engine
 * reads these lists when a Provider is made, so this runs as the module loads; it fails at start-up
 * if the engine no longer has that step.
 */
function takeOverFormBodies(steps: Step[], endpoint: string, otherBodiesUnread = false) {
  if (steps.some((step) => step.name === 'formBody')) return;
  const at = steps.findIndex((step) => step.name === 'urlencoded');
  if (at < 0) throw new Error(`oidc-provider's ${endpoint} endpoint has no urlencoded step: review src/provider/patches/form-bodies.ts`);
  steps[at] = readingForms(steps[at]!, otherBodiesUnread);
}
takeOverFormBodies(tokenSteps as Step[], 'token');
takeOverFormBodies(introspectionSteps as Step[], 'introspection');
takeOverFormBodies(revocationSteps as Step[], 'revocation');
takeOverFormBodies(userinfoSteps as Step[], 'userinfo', true);
