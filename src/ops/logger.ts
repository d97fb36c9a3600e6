/**
 * Structured JSON logs (pino), readable lines on a terminal (createServerLogger). Request logs
 * carry the path, never the query string: queries and bodies can hold codes, tokens and hints. The
 * redact list is a second line of defence for anything that logs an object by mistake.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { Config } from '../config.js';

export type { Logger };

const options = (level: string) => ({
  level,
  base: { service: 'latchkey', pid: process.pid },
  redact: {
    paths: [
      'password', '*.password', 'client_secret', '*.client_secret', 'token', '*.token',
      'code', '*.code', 'refresh_token', '*.refresh_token', 'access_token', '*.access_token',
      'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie',
      // ioredis keeps the failed command on its errors ({ name, args }): the args are the key and the
      // record written (an interaction's session id, an upstream sign-in's PKCE verifier, a sealed
      // secret). An error logged (unhandled, a listener's) keeps the reply and the command's name.
      'err.command.args', 'err.aggregateErrors[*].command.args', 'err.cause.command.args',
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

/**
 * `latchkey serve`'s logger, to stdout (`out`: tests give their own), in the configured format:
 * JSON lines (createLogger), or for a person reading a terminal one readable line per entry: its
 * time, level and message, then its fields (pino-pretty, written as each comes: a terminal's
 * reader needs no batches). `auto` is readable when `out` is a terminal (`npm start` in a shell)
 * and JSON otherwise (a pipe or a file: a container's or a service manager's log, a log shipper).
 * The redaction is the same either way: pino applies it before the entry is formatted.
 */
export async function createServerLogger(level: string, format: Config['log']['format'], out: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): Promise<Logger> {
  if (format === 'json' || (format === 'auto' && !out.isTTY)) return createLogger(level, out === process.stdout ? undefined : out);
  const { default: pretty } = await import('pino-pretty');
  // pino-pretty colours stdout when the terminal takes colours (and NO_COLOR is unset); another stream, never.
  const colours = out === process.stdout ? {} : { colorize: false };
  return pino(options(level), pretty({ destination: out, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', singleLine: true, ...colours }));
}

/**
 * Whole lines gathered into batches of at most 4 KiB, each handed to `stream` (which writes it at
 * once) when it reaches 3.5 KiB, when the next line would not fit, and at the latest 100 ms after it began.
 * sonic-boom gathers them itself (`minLength`), by appending each line to the batch's string and
 * measuring the batch's UTF-8 length before each append, which copies the whole batch so far into
 * one flat string per line: 1.5 KB of garbage per request line. Here the lines wait in an array,
 * are measured once each, and are joined once per batch.
 */
export class LineBatches {
  readonly #stream: BatchStream;
  #lines: string[] = [];
  #bytes = 0;
  /**
   * Set going by a line written while it is not pending, it hands over what waits 100 ms later: no
   * line waits longer, and a process with nothing to write is not woken (an interval woke it 10
   * times a second).
   */
  #timer: NodeJS.Timeout | undefined;
  #pending = false;

  constructor(stream: BatchStream) {
    this.#stream = stream;
  }

  write(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.#bytes + bytes > MAX_WRITE) this.#handOver();
    if (!this.#pending) {
      this.#pending = true;
      // One timer, made at the first line and set going again (refresh) once it has fired.
      if (this.#timer) this.#timer.refresh();
      else this.#timer = setTimeout(this.#due, 100).unref();
    }
    this.#lines.push(line);
    this.#bytes += bytes;
    if (this.#bytes >= MIN_WRITE) this.#handOver();
  }

  readonly #due = () => {
    this.#pending = false;
    this.#handOver();
  };

  #handOver(): void {
    if (this.#lines.length === 0) return;
    const batch = this.#lines.length === 1 ? this.#lines[0]! : this.#lines.join('');
    this.#lines = [];
    this.#bytes = 0;
    this.#stream.write(batch);
  }

  flush(callback?: (error?: Error) => void): void {
    this.#handOver();
    this.#stream.flush(callback);
  }

  flushSync(): void {
    this.#handOver();
    this.#stream.flushSync();
  }
}
/** What LineBatches hands batches to: a sonic-boom that writes each at once. */
type BatchStream = Pick<ReturnType<typeof pino.destination>, 'write' | 'flush' | 'flushSync'>;
const MIN_WRITE = 3584;
const MAX_WRITE = 4096;

/** One destination per process, however many loggers write to stdout (batches stay whole). */
let stdoutStream: LineBatches | undefined;
function stdout(): DestinationStream {
  if (!stdoutStream) {
    // Each batch written when handed over (minLength 0), in one write(2) unless the pipe takes part of it.
    const stream = (stdoutStream = new LineBatches(pino.destination({ dest: 1, sync: true, minLength: 0, maxWrite: MAX_WRITE })));
    // pino flushes at exit only the destinations it writes asynchronously; this one holds up to a batch.
    process.once('exit', () => stream.flushSync());
  }
  return stdoutStream;
}

/** The fields of a line written by `lineWriter`: strings and numbers only (undefined: left out). */
export type LineFields = Readonly<Record<string, string | number | undefined>>;

/** Writes a line of fields (see lineWriter). */
export interface LineWriter {
  (fields: LineFields): void;
  /**
   * The same line, its fields given as written: `json` is what `JSON.stringify(fields)` gives
   * between its braces (not empty), made by the caller (for a line whose fields need no escaping,
   * without stringify). Only where lineWriter writes the lines itself (else undefined: give the fields).
   */
  written?: (json: string) => void;
}

/**
 * Writes `logger.info(fields, message)`'s line, the same bytes, at a fraction of its cost, for the
 * request line (app.ts), written once per request: the fields, strings and numbers only, as one
 * `JSON.stringify` (V8 writes them into one string), between pino's own prefix (level, time, the
 * logger's bindings: read from the logger through `pino.symbols`) and end. pino builds a line of
 * pieces, three or four strings for each field, then joined when written: about 3 KB a request.
 *
 * pino escapes a string as JSON.stringify does (from Node 25 it calls it), but for a lone UTF-16
 * surrogate, which JSON.stringify writes as an escape (`\ud800`) and pino under Node 24 as is (no
 * request path or form parameter can hold one: Node reads a URL as Latin-1, a form as UTF-8);
 * numbers that are not finite are null in both, and an undefined field is left out by both. At start, the line it
 * writes is checked against the one pino makes for sample fields (quotes, backslashes, control
 * characters, non-ASCII, a fraction): where they differ (pino's options, a hook, another pino), or
 * the destination asks for pino's metadata, the line goes through pino. Below the logger's level
 * (checked at each line, as pino does), nothing is written.
 */
export function lineWriter(logger: Logger, message: string): LineWriter {
  const through = function throughPino(fields: LineFields) {
    logger.info(fields, message);
  };
  const internals = logger as unknown as Record<symbol, unknown>;
  const { lsCacheSym, timeSym, chindingsSym, streamSym, endSym, asJsonSym, needsMetadataGsym, hooksSym, mixinSym } = pino.symbols;
  const msgPrefixSym = (pino.symbols as unknown as Record<string, symbol | undefined>).msgPrefixSym;
  const stream = internals[streamSym] as { write(line: string): unknown; [key: symbol]: unknown } | undefined;
  const levels = internals[lsCacheSym] as Record<number, string> | undefined;
  const time = internals[timeSym] as (() => string) | undefined;
  const asJson = internals[asJsonSym] as ((obj: object, msg: string, num: number, time: string) => string) | undefined;
  const hooks = internals[hooksSym] as { streamWrite?: unknown; logMethod?: unknown } | undefined;
  const info = logger.levels.values.info!;
  if (!stream || typeof stream.write !== 'function' || stream[needsMetadataGsym] || !levels || typeof levels[info] !== 'string' || typeof time !== 'function' || typeof asJson !== 'function') return through;
  if (hooks?.streamWrite || hooks?.logMethod || internals[mixinSym] || !msgPrefixSym || internals[msgPrefixSym]) return through;
  const end = internals[endSym];
  const tail = `,"msg":${JSON.stringify(message)}${String(end)}`;
  const make = (fields: LineFields, at: string) => {
    const json = JSON.stringify(fields);
    return `${levels[info]}${at}${internals[chindingsSym] as string}${json.length > 2 ? `,${json.slice(1, -1)}` : ''}${tail}`;
  };
  const samples: LineFields[] = [
    { requestId: 'a-1', method: 'POST', path: '/token', status: 200, ms: 0.123456789, route: 'token', client_id: 'c', grant_type: undefined, outcome: 'ok' },
    { requestId: 'b', path: '/a"b\\c\u0001\u001f\u007f\u00e9\u2028/\u{1f600}x', status: 404, ms: 12, outcome: 'http_404' },
    { path: 'x'.repeat(150) + '"', ms: Number.NaN, huge: 1e21, small: 5e-7, negative: -0 },
    {},
  ];
  for (const sample of samples) {
    const at = time();
    if (make(sample, at) !== asJson.call(logger, sample, message, info, at)) return through;
  }
  const asPino: LineWriter = function asPino(fields) {
    if (!logger.isLevelEnabled('info')) return;
    stream.write(make(fields, time()));
  };
  asPino.written = function writtenAsPino(json) {
    if (!logger.isLevelEnabled('info')) return;
    stream.write(`${levels[info]}${time()}${internals[chindingsSym] as string},${json}${tail}`);
  };
  return asPino;
}

/** How many different process warnings one process logs. */
const MAX_WARNINGS_LOGGED = 100;

/**
 * Node's process warnings (an ExperimentalWarning from a library calling a new API, a
 * DeprecationWarning) as log lines, at warn level, each once: Node's own listener prints them to
 * stderr as `(node:PID) …` text, which breaks LOG_FORMAT=json's one JSON object per line. Node's
 * listener is the only one when this runs (at the start of `serve`, in every process); with
 * warnings silenced (`--no-warnings`, NODE_NO_WARNINGS=1) there is none, and nothing is logged.
 */
export function logProcessWarnings(logger: Logger): void {
  const nodes = process.listeners('warning');
  // Node's own listener is kept where it was asked for (a stack trace, or a file of warnings).
  const asked = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((flag) => /^--(trace-warnings|redirect-warnings)/.test(flag));
  if (nodes.length === 0 || asked) return;
  for (const listener of nodes) process.removeListener('warning', listener);
  const logged = new Set<string>();
  process.on('warning', (warning) => {
    const key = `${warning.name}: ${warning.message}`;
    // Each once, and a bounded few: a warning made anew with each request's data is not logged for ever.
    if (logged.has(key) || logged.size >= MAX_WARNINGS_LOGGED) return;
    logged.add(key);
    logger.warn({ event: 'process.warning', name: warning.name, ...('code' in warning && typeof warning.code === 'string' ? { code: warning.code } : {}) }, warning.message);
  });
}
