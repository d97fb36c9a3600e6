/**
 * Structured JSON logs (pino). Request logs carry the path, never the query string: queries and
 * bodies can hold codes, tokens and hints. The redact list is a second line of defence for
 * anything that logs an object by mistake.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

const options = (level: string) => ({
  level,
  base: { service: 'latchkey', pid: process.pid },
  redact: {
    paths: [
      'password', '*.password', 'client_secret', '*.client_secret', 'token', '*.token',
      'code', '*.code', 'refresh_token', '*.refresh_token', 'access_token', '*.access_token',
      'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie',
    ],
    censor: '[redacted]',
  },
});

/**
 * A JSON logger at `level`, to stdout unless a destination is given (tests read their own).
 *
 * Stdout is written in batches of whole lines, each batch one write(2) of at most 4 KiB made on
 * the event loop's own thread, at the latest every 100 ms: a line per request written on its own
 * was a write(2) per request (a quarter of a discovery request's CPU). Not through libuv's thread
 * pool (pino's asynchronous mode): handing a batch to a pool thread held the event loop 30-45 µs
 * at the median and up to 17 ms (the pool's lock, with one core shared by the process's threads),
 * against 7 µs and 4 ms for the write itself. At most 4 KiB (PIPE_BUF) per write keeps each write
 * atomic on a pipe, so the lines of `serve --workers N`, which share stdout, never interleave (the
 * batches of the asynchronous mode were just over 4 KiB). What is left is flushed at exit. A
 * reader that stops reading a pipe blocks the writer, as it would `console.log`.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(options(level), destination ?? stdout());
}

/** One destination per process, however many loggers write to stdout (batches stay whole). */
let stdoutStream: ReturnType<typeof pino.destination> | undefined;
function stdout(): DestinationStream {
  if (!stdoutStream) {
    const stream = (stdoutStream = pino.destination({ dest: 1, sync: true, minLength: 3584, maxWrite: 4096, periodicFlush: 100 }));
    // pino flushes at exit only the destinations it writes asynchronously; this one holds up to a batch.
    process.once('exit', () => stream.flushSync());
  }
  return stdoutStream;
}
