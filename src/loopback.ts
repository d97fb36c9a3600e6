/**
 * Loopback hosts, and a URI written as a host and port without its scheme. A file of its own, below
 * every folder, so that the configuration (src/config.ts) reads them as the registration policy and
 * the APIs do, and the pages (http/this-machine.ts).
 */

/** RFC 6761 §6.3 / RFC 8252 §7.3: names and addresses that can only be this machine. */
export function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * `localhost:4000/callback` parses as the scheme `localhost:`, an absolute URI the URL parser takes:
 * a host and port written without `http(s)://` (a newcomer's slip). The URI meant, `http://` for a
 * loopback host and `https://` otherwise; undefined for anything else.
 */
export function schemelessHost(uri: string): string | undefined {
  const host = /^([a-z0-9.-]+):\d+(?:[/?]|$)/i.exec(uri)?.[1];
  return host ? `${isLoopback(host.toLowerCase()) ? 'http' : 'https'}://${uri}` : undefined;
}
