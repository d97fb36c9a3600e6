/**
 * Answers written by the app's request listener before Koa: discovery (provider/discovery.ts) and
 * the JWKS (keyring/jwks-endpoint.ts), kept in memory and read by every verifier. Through Koa each
 * paid a context, the request's middleware and its promise chain, the dispatcher and Koa's
 * `onFinished` listeners on the socket, around an answer that is a few fixed headers and a body.
 *
 * Everything the app gives these answers is given here too, the same (app.ts createApp): the
 * request id (a proxy's X-Request-Id when `proxy` is on), the security headers, the per-address
 * limit of the route (counted in memory as the rate limits' middleware counts it), the request
 * line and the request's duration in the metrics. Only a request the app would answer the same way
 * is taken: GET or HEAD, a path exactly as listed (another spelling, which canonical-paths.ts
 * rewrites, goes through the app), a query or none, an answer kept already (discovery's first
 * request on each provider instance goes through the engine), and not over its limit (the app
 * counts and refuses it, with its 429). Anything else goes to Koa untouched.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A kept answer: writes its head and body for a GET or HEAD and says the status written. */
export interface AheadAnswer {
  write(req: IncomingMessage, res: ServerResponse): number;
}

/** The answers of some paths. */
export interface AheadAnswers {
  /** The paths, each in the one spelling taken ahead. */
  readonly paths: readonly string[];
  /** Their route's name among the rate limits' (http/rate-limits.ts ROUTE_NAMES). */
  readonly route: string;
  /** The answer kept for `path` now, or undefined (the app answers). */
  find(path: string): AheadAnswer | undefined;
}

/**
 * Counts a request on `route` from `ip` against its per-address limit (RateLimits.admitsAhead):
 * false, without counting it, when it would be refused.
 */
export type AheadAdmission = (route: string, ip: string) => boolean;

/** What the request listener does around an answer (app.ts). */
export interface AheadRequest {
  /** Sets the request id and the security headers of a GET or HEAD (the same preset as the app's); the id. */
  begin(req: IncomingMessage, res: ServerResponse): string;
  /** Writes the request line and the metrics of an answer given, as the app's request middleware does. */
  end(req: IncomingMessage, path: string, requestId: string, status: number, started: bigint): void;
  /** The client's address as Koa reads it (`ctx.ip`, with the proxy settings). */
  ip(req: IncomingMessage): string;
}

/**
 * `listener` (Koa's), with `answers` written before it. `admit`: the rate limits' count for the
 * routes answered here (none: no limit to count).
 */
export function aheadOf(
  listener: (req: IncomingMessage, res: ServerResponse) => unknown,
  answers: readonly AheadAnswers[],
  request: AheadRequest,
  admit: AheadAdmission | undefined,
): (req: IncomingMessage, res: ServerResponse) => void {
  const byPath = new Map<string, AheadAnswers>();
  for (const entry of answers) {
    for (const path of entry.paths) {
      if (byPath.has(path)) throw new Error(`two answers ahead for ${path}`);
      byPath.set(path, entry);
    }
  }
  if (!byPath.size) return listener;
  return function ahead(req, res) {
    const method = req.method;
    if (method === 'GET' || method === 'HEAD') {
      const url = req.url ?? '';
      const query = url.indexOf('?');
      // ctx.path is the target's path as written (parseurl): the same string when the target is a
      // path with or without a query; any other form (a fragment, an absolute URL) goes to Koa.
      const path = query < 0 ? url : url.slice(0, query);
      const entry = byPath.get(path);
      const answer = entry?.find(path);
      if (answer) {
        const started = process.hrtime.bigint();
        if (!admit || admit(entry!.route, request.ip(req))) {
          const requestId = request.begin(req, res);
          request.end(req, path, requestId, answer.write(req, res), started);
          return;
        }
      }
    }
    listener(req, res);
  };
}
