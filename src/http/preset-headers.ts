/**
 * Response headers fixed at start (the security headers, Cache-Control on GET and HEAD), put on a
 * response as one object made for them instead of one `setHeader` per header.
 *
 * Node keeps a response's headers in an object of its own (`kOutHeaders`: lower-case name →
 * `[name, value]`), made on the first `setHeader` as a dictionary. Each `setHeader` validates its
 * name and value, lower-cases the name (a new string when it has capitals) and allocates the pair,
 * and the dictionary grows as headers are added: the twelve headers every answer starts with cost
 * about 2 µs and 2.7 KB a request. Here they are validated once, at start, and each request gets a
 * new object of a fixed shape (a constructor's, fast to make and to walk) whose pairs, frozen, are
 * shared by every response: Node reads them and replaces a pair when a header is set again, and
 * never changes one in place but in `appendHeader`, which nothing on our paths calls (on a frozen
 * pair it would throw rather than change every response's header).
 *
 * It relies on Node's internals (the symbol's name, the pair layout), so at start it checks, on a
 * response made for the purpose, that the headers it installs read back exactly as `setHeader`'s
 * (names, raw names, values, order, what Node writes on the wire); where they do not (another Node),
 * and on a response that already has headers, it sets them one by one as before.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';

type Pair = readonly [string, string];
/** Sets the headers of one kind of response: the request's id first, then the fixed ones. */
export type HeaderPreset = (res: ServerResponse, requestId: string) => void;

const OUT_HEADERS = Object.getOwnPropertySymbols(new ServerResponse(new IncomingMessage(new Socket()))).find(
  (symbol) => symbol.description === 'kOutHeaders',
);

/** The plain way: one setHeader per header. */
function oneByOne(first: string, fixed: readonly Pair[]): HeaderPreset {
  return (res, requestId) => {
    res.setHeader(first, requestId);
    // An indexed loop: destructuring each pair allocated an iterator per request.
    for (let i = 0; i < fixed.length; i += 1) res.setHeader(fixed[i]![0], fixed[i]![1]);
  };
}

/** What Node would write and report for `res`'s headers. */
function readBack(res: ServerResponse): string {
  return JSON.stringify([res.getHeaderNames(), (res as unknown as { getRawHeaderNames(): string[] }).getRawHeaderNames(), res.getHeaders(), res.hasHeader(res.getHeaderNames()[0] ?? ''), res.getHeader('x-request-id')]);
}

/**
 * Whether `probe`'s headers read back as `reference`'s (set by setHeader), and the head Node writes
 * is the same (without the date, which differs between the two).
 */
function readsAsSet(probe: ServerResponse, reference: ServerResponse): boolean {
  if (readBack(probe) !== readBack(reference)) return false;
  probe.sendDate = reference.sendDate = false;
  probe.writeHead(200);
  reference.writeHead(200);
  const head = (res: ServerResponse) => (res as unknown as { _header?: unknown })._header;
  return typeof head(probe) === 'string' && head(probe) === head(reference);
}

/**
 * The headers `first` (the request id, given per request) and then `fixed`, in that order, as
 * `setHeader` would set them, for every response of one kind.
 */
export function presetHeaders(first: string, fixed: readonly Pair[]): HeaderPreset {
  const plain = oneByOne(first, fixed);
  // setHeader validates each name and value (it throws on a bad one), and is what the preset must equal.
  const reference = new ServerResponse(new IncomingMessage(new Socket()));
  plain(reference, 'probe');
  const names = [first, ...fixed.map(([name]) => name)].map((name) => name.toLowerCase());
  if (!OUT_HEADERS || new Set(names).size !== names.length) return plain;
  const pairs = fixed.map(([name, value]) => Object.freeze([name, value] as const));
  const keys = names.slice(1);
  // A constructor, so that every object it makes has one shape; no prototype, as Node's own.
  function Headers(this: Record<string, unknown>, requestId: string) {
    this[names[0]!] = [first, requestId];
    for (let i = 0; i < keys.length; i += 1) this[keys[i]!] = pairs[i];
  }
  Headers.prototype = Object.create(null) as object;
  const make = Headers as unknown as new (requestId: string) => object;
  const preset: HeaderPreset = (res, requestId) => {
    const response = res as unknown as Record<symbol, unknown>;
    if (response[OUT_HEADERS] !== null) {
      plain(res, requestId);
      return;
    }
    response[OUT_HEADERS] = new make(requestId);
  };
  const probe = new ServerResponse(new IncomingMessage(new Socket()));
  if ((probe as unknown as Record<symbol, unknown>)[OUT_HEADERS] !== null) return plain;
  preset(probe, 'probe');
  return readsAsSet(probe, reference) ? preset : plain;
}

/** Sets a fixed list of headers on a response (see fixedHeaders). */
export type FixedHeaders = (res: ServerResponse) => void;

/**
 * Sets `pairs` on a response, in their order, as `setHeader` would (a header of the name already
 * set is replaced where it stands, any other added after the rest), for answers whose headers stay
 * the same for a while (the JWKS's, per key ring): validated once, here, and put in place as
 * setHeader puts them, without validating each again. Koa's `ctx.set` made two arrays and a
 * closure per header, and Node's `setHeader` validated the name and value and lower-cased the name
 * each time. Like `ctx.set`, it does nothing once the head is sent. Where the installed pairs would
 * not read back as `setHeader`'s (another Node), they are set one by one.
 */
export function fixedHeaders(pairs: readonly Pair[]): FixedHeaders {
  const plain: FixedHeaders = (res) => {
    if (res.headersSent) return;
    for (let i = 0; i < pairs.length; i += 1) res.setHeader(pairs[i]![0], pairs[i]![1]);
  };
  const reference = new ServerResponse(new IncomingMessage(new Socket()));
  const probe = new ServerResponse(new IncomingMessage(new Socket()));
  // What a response holds already: a header of another name, and every other one of these (to be replaced).
  for (const res of [reference, probe]) {
    res.setHeader('X-Request-Id', 'probe');
    pairs.forEach(([name], i) => i % 2 === 0 && res.setHeader(name, 'before'));
  }
  plain(reference); // validates each name and value (it throws on a bad one)
  const keys = pairs.map(([name]) => name.toLowerCase());
  if (!OUT_HEADERS || new Set(keys).size !== keys.length) return plain;
  const names = pairs.map(([name]) => name);
  const values = pairs.map(([, value]) => value);
  // A new pair per header and response, as setHeader makes: these headers are an answer's own, so
  // any later change of one (appendHeader included) stays that answer's.
  const direct: FixedHeaders = (res) => {
    const headers = (res as unknown as Record<symbol, Record<string, unknown> | null>)[OUT_HEADERS];
    if (headers === null || typeof headers !== 'object' || res.headersSent) {
      plain(res);
      return;
    }
    for (let i = 0; i < keys.length; i += 1) headers[keys[i]!] = [names[i], values[i]];
  };
  direct(probe);
  return readsAsSet(probe, reference) ? direct : plain;
}
