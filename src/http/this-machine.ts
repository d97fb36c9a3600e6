/**
 * Hosts that are the person's own machine: what the registration policy takes as loopback
 * (isLoopback), and what a browser sends to this machine however it is spelt (onThisMachine). One
 * reading for the consent prompt that asks again for a public client's code sent there
 * (provider/patches/loopback-public-clients.ts) and for the pages that tell the person where the
 * code goes (http/image-origins.ts returnedTo): before the tenth pass at the new kinds of clients
 * the pages knew three spellings, so a code the prompt sent to `http://127.0.0.2:5173` or
 * `http://notes.localhost:5173` was said to go to that "site", not to a program on this device.
 */

import { isLoopback } from '../loopback.js';

/**
 * Names the hosts file of common systems gives the loopback addresses, which a browser resolves
 * there before any DNS: Debian's and Ubuntu's `ip6-localhost` and `ip6-loopback`, Red Hat's and
 * Fedora's `localhost.localdomain`, `localhost4`, `localhost6` and their `.localdomain4`/`6`
 * (review of 2026-12-02: each was an https redirect URI a public client may register, where a
 * remembered consent gave codes without a page). The machine's own host name, and DNS names that
 * resolve to 127.0.0.1, cannot be known here (docs/security.md).
 */
const HOSTS_FILE_LOOPBACK_NAMES = new Set([
  'ip6-localhost',
  'ip6-loopback',
  'localhost.localdomain',
  'localhost4',
  'localhost4.localdomain4',
  'localhost6',
  'localhost6.localdomain6',
]);

/**
 * Whether a browser sends what goes to `hostname` (a URL's, as the URL parser writes it) to this
 * machine: a loopback name or address (isLoopback), the hosts file's loopback names, each also spelt
 * with a trailing dot, the unspecified addresses browsers have connected to this machine
 * (`[::ffff:0.0.0.0]` too), and 127/8 mapped into IPv6 (URL normalises `[::ffff:127.0.0.1]` to hex,
 * `127.1` and `0x7f000001` to `127.0.0.1`, `[0:0:0:0:0:0:0:1]` to `[::1]`, and lower-cases names).
 */
export function onThisMachine(hostname: string): boolean {
  const host = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  return (
    isLoopback(host) ||
    HOSTS_FILE_LOOPBACK_NAMES.has(host) ||
    host === '0.0.0.0' ||
    host === '[::]' ||
    host === '[::ffff:0:0]' ||
    /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host)
  );
}
