/**
 * The fetch Latchkey uses to talk to upstream providers: bounded in time and in size, and kept
 * off loopback, private and other special-use addresses unless the operator allows private
 * networks (outbound.allowPrivateNetworks), as oidc-provider does for its own outbound requests.
 *
 * The address check happens when the connection is made (a lookup hook on the connection
 * dispatcher), so a name that resolves to a public address at one moment and a private one the
 * next (DNS rebinding) is still refused; an address written as the host is checked up front.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

export class OutboundError extends Error {
  override name = 'OutboundError';
}

/** IANA special-use ranges (RFC 6890 and successors) that outbound requests must not reach. */
const SPECIAL_USE = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) SPECIAL_USE.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001::', 23], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
] as const) SPECIAL_USE.addSubnet(network, prefix, 'ipv6');

export function isSpecialUse(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return SPECIAL_USE.check(mapped, 'ipv4');
  const family = isIP(address);
  return family === 0 || SPECIAL_USE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export interface OutboundSettings {
  /** Milliseconds a request (connection, answer and body) may take. */
  readonly timeout: number;
  /** Bytes a response body may have. */
  readonly maxBytes: number;
  readonly allowPrivateNetworks: boolean;
}

type Dispatcher = object;
/** Node's built-in fetch's connection pool class (undici's Agent), which takes a lookup hook. */
function agentClass(): (new (options: object) => Dispatcher) | undefined {
  void Response; // Node loads its fetch implementation (and sets the global dispatcher) lazily.
  const global = globalThis as unknown as Record<symbol, { constructor: new (options: object) => Dispatcher } | undefined>;
  return (global[Symbol.for('undici.globalDispatcher.2')] ?? global[Symbol.for('undici.globalDispatcher.1')])?.constructor;
}

function guardedLookup(hostname: string, options: object, callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void) {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
    if (error) return callback(error, []);
    const refused = addresses.find((entry) => isSpecialUse(entry.address));
    if (refused) return callback(new OutboundError(`${hostname} resolves to a private or special-use address`), []);
    const { all } = options as { all?: boolean };
    if (all) return callback(null, addresses);
    return callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}

let guardedDispatcher: Dispatcher | undefined;

/** A fetch with these bounds; it throws OutboundError for what it refuses. */
export function boundedFetch(settings: OutboundSettings): typeof fetch {
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : input);
    const literal = url.hostname.replace(/^\[|\]$/g, '');
    if (!settings.allowPrivateNetworks && isIP(literal) && isSpecialUse(literal)) {
      throw new OutboundError(`${url.host} is a private or special-use address`);
    }
    if (!settings.allowPrivateNetworks) {
      const Agent = agentClass();
      if (!Agent) throw new OutboundError('outbound requests cannot be checked for private addresses here');
      guardedDispatcher ??= new Agent({ connect: { lookup: guardedLookup } });
    }
    const timeout = AbortSignal.timeout(settings.timeout);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const response = await fetch(input, {
      ...init,
      signal,
      redirect: 'manual',
      ...(!settings.allowPrivateNetworks && { dispatcher: guardedDispatcher }),
    } as RequestInit);
    // The body is read here, within the same time bound, and no further than maxBytes.
    const declared = Number(response.headers.get('content-length') ?? 0);
    if (declared > settings.maxBytes) {
      await response.body?.cancel();
      throw new OutboundError(`${url.host} answered with more than ${settings.maxBytes} bytes`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of response.body ?? []) {
      size += (chunk as Uint8Array).byteLength;
      if (size > settings.maxBytes) throw new OutboundError(`${url.host} answered with more than ${settings.maxBytes} bytes`);
      chunks.push(chunk as Uint8Array);
    }
    const body = [101, 204, 205, 304].includes(response.status) ? null : Buffer.concat(chunks);
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}
