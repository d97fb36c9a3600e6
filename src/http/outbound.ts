/**
 * Requests Latchkey makes on behalf of someone else's input (a client's metadata document, an
 * upstream provider's discovery): the SSRF guard. A `fetch`-compatible function that
 *
 * - speaks https only; plain http only to a loopback address, and only when the operator allows
 *   private networks (tests, a provider on the same host);
 * - refuses loopback, private and other special-use addresses (IANA's special-purpose registries)
 *   unless `allowPrivateNetworks`: every address the name resolves to is checked, and the socket
 *   connects to the checked address (the check sits in the connection's own `lookup`), so a DNS
 *   answer that changes between check and use (rebinding) cannot slip through;
 * - bounds the response size and the total time (connect, headers and body);
 * - follows no redirect unless asked to, and then checks every hop like the first request.
 *
 * The idea is oidc-provider's own dispatcher (lib/helpers/fetch_request.js), which destroys a
 * socket after it connected to a special-use address; here the address is refused before any
 * connection. Built on node:http(s) rather than the fetch engine so the guard needs no internals.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

export interface OutboundPolicy {
  /** The operator's `outbound.allowPrivateNetworks`. */
  allowPrivateNetworks: boolean;
}

export interface OutboundInit extends Omit<RequestInit, 'redirect'> {
  /** Largest response body accepted, in bytes (default 1 MiB). */
  maxBytes?: number;
  /** Time for the whole exchange, body included, in milliseconds (default 5 s). */
  timeoutMs?: number;
  /** Redirects to follow for a request without a body, each checked like the first URL (default 0: a 3xx is an error). */
  maxRedirects?: number;
}

export type OutboundFetch = (url: string | URL, init?: OutboundInit) => Promise<Response>;

/** Why an outbound request was not made or not completed; `code` for logs and tests. */
export class OutboundError extends Error {
  constructor(
    readonly code: 'url' | 'address' | 'redirect' | 'too_large' | 'timeout' | 'network',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'OutboundError';
  }
}
/** The URL is not one Latchkey fetches (scheme, credentials in it, http to a non-loopback host). */
export class OutboundUrlError extends OutboundError {
  constructor(message: string) {
    super('url', message);
  }
}
/** The host is, or resolves to, a loopback, private or special-use address. */
export class OutboundAddressError extends OutboundError {
  constructor(message: string) {
    super('address', message);
  }
}
/** The server answered with a redirect and no (more) redirects were allowed. */
export class OutboundRedirectError extends OutboundError {
  constructor(
    message: string,
    /** The redirect's status (301, 302, 303, 307, 308). */
    readonly status?: number,
  ) {
    super('redirect', message);
  }
}
export class OutboundTooLargeError extends OutboundError {
  constructor(message: string) {
    super('too_large', message);
  }
}
export class OutboundTimeoutError extends OutboundError {
  constructor(message: string) {
    super('timeout', message);
  }
}
/** The connection failed (refused, reset, TLS, DNS). */
export class OutboundNetworkError extends OutboundError {
  constructor(message: string, cause: unknown) {
    super('network', message, { cause });
  }
}

const DEFAULT_MAX_BYTES = 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 5000;

// IANA IPv4 and IPv6 Special-Purpose Address Registries, plus multicast: nothing Latchkey should
// reach on someone else's say-so. IPv4-mapped IPv6 is refused as a whole (resolvers do not hand
// it out unasked; as a literal it only hides an IPv4 address).
const SPECIAL_USE = new net.BlockList();
for (const [prefix, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.31.196.0', 24],
  ['192.52.193.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['192.175.48.0', 24],
  ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) SPECIAL_USE.addSubnet(prefix, bits, 'ipv4');
for (const [prefix, bits] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48],
  ['100::', 64], ['2001::', 23], ['2001:db8::', 32], ['2002::', 16], ['2620:4f:8000::', 48],
  ['3fff::', 20], ['5f00::', 16], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
] as const) SPECIAL_USE.addSubnet(prefix, bits, 'ipv6');
// Apart: a BlockList also matches IPv4 addresses against an IPv4-mapped rule.
const IPV4_MAPPED = new net.BlockList();
IPV4_MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/** Whether an IP address (v4 or v6) is loopback, private or otherwise special-use. */
export function isSpecialUseAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 0) return true; // not an address at all: never "public"
  if (family === 4) return SPECIAL_USE.check(address, 'ipv4');
  return IPV4_MAPPED.check(address, 'ipv6') || SPECIAL_USE.check(address, 'ipv6');
}

function isLoopbackAddress(address: string): boolean {
  return net.isIPv4(address) ? address.startsWith('127.') : address === '::1';
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

// Said with each refusal of a private address: what the operator sets to allow one (a provider on this host while developing).
const OFF = 'reached only with outbound.allowPrivateNetworks (OUTBOUND_ALLOW_PRIVATE_NETWORKS=true)';

/** A `lookup` for the socket: resolves as usual, then refuses the lot if any address is special-use. */
function guardedLookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
  dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const refused = addresses.find((entry) => isSpecialUseAddress(entry.address));
    if (refused || addresses.length === 0) {
      return callback(new OutboundAddressError(`${hostname} resolves to a private or special-use address, ${OFF}`), []);
    }
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}

/** The URL's host without IPv6 brackets. */
function bareHost(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

function checkUrl(url: URL, policy: OutboundPolicy): void {
  if (url.username || url.password) throw new OutboundUrlError('credentials in a URL are not sent');
  const host = bareHost(url);
  if (url.protocol === 'http:') {
    const loopback = host === 'localhost' || (net.isIP(host) !== 0 && isLoopbackAddress(host));
    if (!loopback) throw new OutboundUrlError('only https URLs are fetched (http only to loopback, when private networks are allowed)');
    if (!policy.allowPrivateNetworks) throw new OutboundUrlError(`${url.origin} is loopback, ${OFF}`);
    return;
  }
  if (url.protocol !== 'https:') throw new OutboundUrlError(`the ${url.protocol} scheme is not fetched`);
  // A literal address skips the socket's lookup, so it is checked here.
  if (!policy.allowPrivateNetworks && net.isIP(host) !== 0 && isSpecialUseAddress(host)) {
    throw new OutboundAddressError(`${host} is a private or special-use address, ${OFF}`);
  }
}

function requestBody(body: RequestInit['body']): string | Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError('outbound request bodies are strings, URLSearchParams or bytes');
}

interface Exchange {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** One request and its bounded body, no redirect handling. */
function exchange(url: URL, init: OutboundInit, policy: OutboundPolicy, maxBytes: number, signal: AbortSignal): Promise<Exchange> {
  const body = requestBody(init.body);
  const headers = new Headers(init.headers);
  if (body !== undefined && init.body instanceof URLSearchParams && !headers.has('content-type')) {
    headers.set('content-type', 'application/x-www-form-urlencoded;charset=UTF-8');
  }
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = transport.request(url, {
      method: init.method ?? 'GET',
      headers: Object.fromEntries(headers),
      signal,
      agent: false,
      ...(!policy.allowPrivateNetworks && { lookup: guardedLookup as unknown as typeof dns.lookup }),
    }, (response) => {
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        response.destroy();
        return reject(new OutboundTooLargeError(`response of ${declared} bytes exceeds ${maxBytes}`));
      }
      const chunks: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > maxBytes) {
          response.destroy();
          return reject(new OutboundTooLargeError(`response exceeds ${maxBytes} bytes`));
        }
        chunks.push(chunk);
      });
      response.on('error', reject);
      response.on('end', () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          for (const item of Array.isArray(value) ? value : [value ?? '']) responseHeaders.append(name, item);
        }
        resolve({ status: response.statusCode ?? 0, headers: responseHeaders, body: Buffer.concat(chunks) });
      });
    });
    request.on('error', reject);
    request.end(body);
  });
}

function asOutboundError(error: unknown, signal: AbortSignal, url: URL): unknown {
  if (error instanceof OutboundError) return error;
  if (signal.aborted && signal.reason instanceof DOMException && signal.reason.name === 'TimeoutError') {
    return new OutboundTimeoutError(`${url.origin} did not answer in time`);
  }
  if (signal.aborted) return signal.reason;
  // The lookup's refusal reaches us wrapped by net when it fails the connection.
  if (error instanceof Error && error.cause instanceof OutboundError) return error.cause;
  return new OutboundNetworkError(`request to ${url.origin} failed`, error);
}

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

/** A `fetch`-compatible function for requests to addresses someone else chose. */
export function createOutboundFetch(policy: OutboundPolicy): OutboundFetch {
  return async (input, init = {}) => {
    const maxBytes = init.maxBytes ?? DEFAULT_MAX_BYTES;
    const timeout = AbortSignal.timeout(init.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    let url = new URL(input);
    for (let redirects = init.maxRedirects ?? 0; ; redirects -= 1) {
      checkUrl(url, policy);
      let result: Exchange;
      try {
        result = await exchange(url, init, policy, maxBytes, signal);
      } catch (error) {
        throw asOutboundError(error, signal, url);
      }
      const location = result.headers.get('location');
      if (result.status >= 300 && result.status < 400 && location !== null) {
        if (redirects <= 0) throw new OutboundRedirectError(`${url.origin} answered with a redirect, which is not followed`, result.status);
        if (init.body !== undefined && init.body !== null) {
          throw new OutboundRedirectError(`${url.origin} redirected a request with a body, which is not replayed`);
        }
        url = new URL(location, url);
        continue;
      }
      return new Response(NULL_BODY_STATUS.has(result.status) ? null : new Uint8Array(result.body), {
        status: result.status,
        headers: result.headers,
      });
    }
  };
}
