/**
 * The answer to a request Node's HTTP parser refuses before any request exists (a request line and
 * headers over the 16 KiB it reads, which a 20 KB URL is too; a control byte in a header; a method
 * HTTP does not know; headers that do not arrive in time), written on the socket by the server's
 * 'clientError' listener. Node's own answer was a bare status line and `Connection: close`: no
 * body saying what was wrong, none of the security headers every other answer carries.
 */
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';

/** By Node's error code: the status and what the body says. Any other code: 400. */
const REFUSALS: Readonly<Record<string, readonly [number, string, string]>> = {
  // Node counts the request line within its header limit: a URL too long is this too (no 414).
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'the request line and headers are larger than the 16 KiB this server reads (a URL that long, or headers: cookies included)'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'Content Too Large', 'the chunk extensions of the request body are too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout', 'the request did not arrive in time'],
};
/** How long the answer may take to be handed to the system before the connection goes anyway. */
const ANSWER_TIMEOUT_MS = 5_000;
const MALFORMED = [400, 'Bad Request', 'the request is not well-formed HTTP: its method, its request line or one of its headers could not be read'] as const;

/**
 * A 'clientError' listener answering with `headers` (the security headers, fixed at start), a new
 * X-Request-Id and a JSON body, then closing the connection. Not where an answer to an earlier
 * request on the connection is part-way out (bytes written now would corrupt it): Node's own
 * listener's rule, read from the response Node keeps on the socket while it is being written. A
 * connection reset or gone gets nothing.
 */
export function clientErrorAnswers(headers: readonly (readonly [string, string])[]): (error: Error & { code?: string }, socket: Duplex) => void {
  const fixed = headers.map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return (error, socket) => {
    try {
      // Answered already (more of the refused request arrived, and the parser refused it again), reset,
      // gone, or part-way through an earlier answer: the connection goes, as Node's own listener does.
      if (socket.writableEnded || error.code === 'ECONNRESET' || !socket.writable || (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage?.headersSent) {
        socket.destroy();
        return;
      }
      // A peer that reads nothing would hold the answer, and the connection, open: not for long.
      setTimeout(() => socket.destroy(), ANSWER_TIMEOUT_MS).unref();
      const [status, reason, description] = REFUSALS[error.code ?? ''] ?? MALFORMED;
      const body = JSON.stringify({ error: 'invalid_request', error_description: description });
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\nX-Request-Id: ${randomUUID()}\r\n${fixed}Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
        // Handed to the system: the connection goes (what the client still sends is not read).
        () => socket.destroy(),
      );
    } catch {
      socket.destroy();
    }
  };
}
