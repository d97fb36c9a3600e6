/**
 * The answer to a request Node's HTTP parser refuses before any request exists (a request line and
 * headers over the 16 KiB it reads, which a 20 KB URL is too; a control byte in a header; a method
 * HTTP does not know; headers that do not arrive in time), written on the socket by the server's
 * 'clientError' listener, after the answers to the requests before it on the connection. Node's own
 * answer was a bare status line and `Connection: close`: no body saying what was wrong, none of the
 * security headers every other answer carries.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** By Node's error code: the status and what the body says. Any other code: 400. */
const REFUSALS: Readonly<Record<string, readonly [number, string, string]>> = {
  // Node counts the request line within its header limit: a URL too long is this too (no 414).
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'the request line and headers are larger than the 16 KiB this server reads (a URL that long, or headers: cookies included)'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'Content Too Large', 'the chunk extensions of the request body are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'the request did not arrive in time'],
};
/** Connections refused once: the answer (perhaps waiting for earlier ones) is theirs, one only. */
const refused = new WeakSet<Duplex>();
/** How long the answer may take to be handed to the system before the connection goes anyway. */
const ANSWER_TIMEOUT_MS = 5_000;
const MALFORMED = [400, 'Bad Request', 'the request is not well-formed HTTP: its method, its request line or one of its headers could not be read'] as const;

/**
 * A 'clientError' listener answering with `headers` (the security headers, fixed at start), a new
 * X-Request-Id and a JSON body, once the answers to earlier requests on the connection are written,
 * then closing the connection. A connection reset or gone gets nothing; one refused already, no
 * second answer.
 */
export function clientErrorAnswers(headers: readonly (readonly [string, string])[]): (error: Error & { code?: string }, socket: Duplex) => void {
  const fixed = headerLines(headers);
  return (error, socket) => {
    // Answered already (more of the refused request arrived, and the parser refused it again), reset
    // or gone: the connection goes, as Node's own listener does.
    if (refused.has(socket)) return;
    if (socket.writableEnded || error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    refused.add(socket);
    afterEarlierAnswers(socket, () => answerAndClose(socket, fixed, REFUSALS[error.code ?? ''] ?? MALFORMED));
  };
}

/**
 * A 'connect' listener: a CONNECT request (RFC 9110 §9.3.6; Latchkey is no proxy) is answered 405
 * with the same headers and a JSON error, then the connection closes. Without one, Node closed the
 * connection without a word (red team, 2026-12-06).
 */
export function connectAnswers(headers: readonly (readonly [string, string])[]): (request: unknown, socket: Duplex) => void {
  const fixed = `Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS\r\n${headerLines(headers)}`;
  return (_request, socket) => answerAndClose(socket, fixed, CONNECT_REFUSED);
}

/** The header lines of an answer written on the socket, each ending in CRLF. */
function headerLines(headers: readonly (readonly [string, string])[]): string {
  return headers.map(([name, value]) => `${name}: ${value}\r\n`).join('');
}

const CONNECT_REFUSED = [405, 'Method Not Allowed', 'this server is no proxy: CONNECT is not served here'] as const;

/** Writes the refusal (`fixed`: its header lines) and closes the connection; never throws. */
function answerAndClose(socket: Duplex, fixed: string, [status, reason, description]: readonly [number, string, string]): void {
  try {
    if (!socket.writable) return void socket.destroy();
    const body = JSON.stringify({ error: 'invalid_request', error_description: description });
    // A peer that reads nothing would hold the answer, and the connection, open: not for long.
    setTimeout(() => socket.destroy(), ANSWER_TIMEOUT_MS).unref();
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nX-Request-Id: ${randomUUID()}\r\n${fixed}Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      // Handed to the system: the connection goes (what the client still sends is not read).
      () => socket.destroy(),
    );
  } catch {
    socket.destroy();
  }
}

/**
 * Runs `then` once every answer to an earlier request on the connection is written: answers go in
 * the order of the requests (RFC 9112 §9.3.2). A valid request pipelined before the refused one (a
 * refresh, a code exchange) was carried out and its answer lost under the refusal, which the client
 * read as its own (red team, 2026-12-06); Node's own listener writes its bare 400 so too. Node keeps
 * the answer being written on the socket (`_httpMessage`), the next one taking its place as it finishes;
 * once its parser refused a request, it closes the connection after the last answer, and the refusal
 * then goes unsaid (the client tries again what was not answered).
 */
function afterEarlierAnswers(socket: Duplex, then: () => void): void {
  const current = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (!current || current.writableFinished || current.destroyed) return then();
  // The answer to a request whose body has not all arrived is no earlier one's: it is the refused
  // request's own (its body cut by the parser's refusal, or timed out), or a later one's. Its handler
  // waits for the rest of the body, which never comes: waited for, the connection was held for as
  // long as the client kept it, past the server's requestTimeout (bad input and blips, ninth pass).
  // Refused now, as Node's own listener does; destroyed if that answer has begun (a refusal written
  // after its head would be read as part of it).
  if (current.req && !current.req.complete) {
    if (current.headersSent) return void socket.destroy();
    return then();
  }
  const next = () => setImmediate(() => afterEarlierAnswers(socket, then));
  current.once('finish', next);
  current.once('close', next);
}
