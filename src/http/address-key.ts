/**
 * The key a client address is counted under by every per-address limit (http/rate-limits.ts, the
 * sign-in throttle in accounts/throttle.ts, the device code entry's in
 * provider/patches/user-code-entry.ts).
 *
 * An IPv6 address is counted by its /64 network: one subscriber, one host or one cloud machine is
 * given a whole /64 (RFC 6177, RFC 7934), and picks any of its 2^64 addresses for each request, so
 * a limit per address limited nothing over IPv6 (a password spray or a user-code guess from a new
 * address each time). An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, how a dual-stack socket, or
 * a proxy, may write an IPv4 client) is its IPv4 address, and the spellings of one IPv6 network
 * (case, leading zeros, `::`, a zone) are one key. Anything else (IPv4, a value a proxy wrote that is
 * no address) is keyed as it is.
 *
 * Logs, the account page's sessions and the device confirmation keep showing the address itself
 * (ctx.ip); only counting is by network.
 */
import { isIPv6 } from 'node:net';

/** The bits of an IPv6 address that name its network for counting. */
export const IPV6_PREFIX = 64;

/** Keys of the IPv6 addresses seen lately: parsing one costs microseconds, a lookup tens of nanoseconds. */
const recent = new Map<string, string>();
const RECENT_MAX = 4096;

export function addressKey(ip: string): string {
  // IPv4, and the hot path: no colon, nothing to do.
  if (!ip.includes(':')) return ip;
  // Longer than any spelling of an address (a value a proxy passed on as it got it): not kept.
  if (ip.length > 64) return ipv6Key(ip);
  let key = recent.get(ip);
  if (key === undefined) {
    key = ipv6Key(ip);
    // Bounded: forgotten all at once when full (a flood of new addresses costs a parse each, as without it).
    if (recent.size >= RECENT_MAX) recent.clear();
    recent.set(ip, key);
  }
  return key;
}

function ipv6Key(ip: string): string {
  let address = ip;
  // A bracketed form with or without a port ([2001:db8::1]:443), as some proxies write it.
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) address = bracketed[1]!;
  const zone = address.indexOf('%');
  if (zone !== -1) address = address.slice(0, zone);
  if (!isIPv6(address)) {
    // An IPv4 address with a port (192.0.2.1:5678): the address.
    const withPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(ip);
    return withPort ? withPort[1]! : ip;
  }
  const groups = expand(address.toLowerCase());
  // ::ffff:a.b.c.d (or ::ffff:xxxx:xxxx): an IPv4 client.
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
  }
  return `${groups.slice(0, IPV6_PREFIX / 16).map((group) => group.toString(16)).join(':')}::/${IPV6_PREFIX}`;
}

/** A valid IPv6 address (isIPv6) as its eight 16-bit groups. */
function expand(address: string): number[] {
  const parse = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [parseInt(group, 16)];
          const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const gap = address.indexOf('::');
  if (gap === -1) return parse(address);
  const head = parse(address.slice(0, gap));
  const tail = parse(address.slice(gap + 2));
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}
