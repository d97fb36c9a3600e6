/**
 * The host of an http(s) URI a client registers (a redirect URI, a post-logout redirect URI, its logo
 * and links), as RFC 3986 §3.2.2 and RFC 1123 §2.1 name hosts: a DNS name (letters, digits and
 * hyphens in dot-separated labels of at most 63, none empty, none beginning or ending with a hyphen,
 * at most 253 in all) or an IP address, written as the URL parser reads it.
 *
 * The WHATWG URL parser takes much more and rewrites it: `bank.example;x`, `a,b.example`,
 * `ex_ample.com` and `a..b` as they are, `app%2eexample.com` as app.example.com, `0x7f.1` and `1.2.3`
 * as 127.0.0.1 and 1.2.0.3, `[0:0:0:0:0:0:0:1]` as [::1], `bücher.example` as its punycode, an empty
 * or zero-led port as none. No DNS serves the first kind; the others are one server spelt two ways,
 * where Latchkey compares redirect URIs as strings and pages show the parser's reading (earlier
 * passes: a trailing dot was taken for another site). Refused where a client is written; one stored
 * before is loaded as it is.
 */

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_NAME_LENGTH = 253;

/** Whether `host` (lower case, no brackets) is a DNS name or an IPv4 address in dotted decimal (whose labels are digits). */
function dnsName(host: string): boolean {
  return host.length <= MAX_NAME_LENGTH && host.split('.').every((label) => LABEL.test(label));
}

/**
 * What is wrong with an http(s) URI's host and port as written, or undefined: a rule that quotes
 * nothing of it, and a suggestion that may. Other schemes (a native app's private-use scheme,
 * RFC 8252 §7.1) are not judged here.
 */
export function uriHostProblem(uri: string): { rule: string; suggestion?: string } | undefined {
  const url = URL.parse(uri);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) return undefined;
  // "https:host/x", "https:/host/x" and "https:\\host\x": the URL parser reads a host into them, a
  // browser resolves them against the page they are in (RFC 3986 §3.3: a path).
  const authority = /^https?:\/\/([^/?#]*)/i.exec(uri)?.[1];
  if (authority === undefined) return { rule: 'an http(s) URI names its host after "//" (RFC 9110 section 4.2); write it as https://host/path' };
  // Before the port and host rules, which would read a password as a port or a host.
  if (url.username || url.password) return { rule: 'must not have a user name or password (user@host)' };
  const [, host = '', port] = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/s.exec(authority) ?? [];
  if (port !== undefined && !/^[1-9]\d*$/.test(port)) return { rule: 'a port is written as a number without leading zeros, or left out with its colon' };
  const read = url.hostname;
  if (host.toLowerCase() !== read) {
    return { rule: 'the host must be a DNS name or an IP address written as the URL parser reads it (no percent-encoding, IPv4 in four decimal parts, IPv6 shortened, names in punycode)', ...(dnsName(read.replace(/\.$/, '')) || read.startsWith('[') ? { suggestion: `write the host as ${read.replace(/\.$/, '')}` } : {}) };
  }
  if (read.startsWith('[')) return undefined;
  if (read.endsWith('.') && dnsName(read.slice(0, -1))) return { rule: 'the host must be written without a trailing dot', suggestion: `write the host as ${read.slice(0, -1)}` };
  if (!dnsName(read)) return { rule: 'the host must be a DNS name (letters, digits and hyphens in dot-separated labels, none empty or beginning or ending with a hyphen) or an IP address' };
  return undefined;
}
