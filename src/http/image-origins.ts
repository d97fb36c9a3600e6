/**
 * Showing other sites' images (apps' logos on the account page) under the strict CSP (app.ts allows
 * images only from ourselves): the page's img-src is widened, on that response only, by exactly the
 * origins of the images it shows, and only http(s) URLs are shown at all. The account page (its
 * apps' logos) and the login, consent and device pages (one app's logo, interactions/client-branding.ts)
 * all go through here, and so does where an app sends people back (returnedTo), which those pages
 * show beside the app's self-asserted name, and the hosts it registered (registeredHosts), which the
 * device page shows.
 */
import type { Context } from 'koa';
import { onThisMachine } from './this-machine.js';

/**
 * Whether a parsed URL's host is a plain DNS name or IP address: letters, digits, hyphens and dots
 * (or a bracketed IPv6 literal). The URL parser lets much else into a host (\`;\`, \`,\`, \`'\`, \`*\`:
 * \`https://cdn.example;sandbox/logo.png\` parses, with the origin \`https://cdn.example;sandbox\`), and
 * such an origin written into a Content-Security-Policy would add a directive of the client's
 * choosing to our page (\`sandbox\`, \`form-action\`: the account page's forms, withdrawing the app
 * among them, would stop working).
 */
export function plainHost(url: URL): boolean {
  return /^[a-z0-9-]+(\.[a-z0-9-]+)*\.?$/.test(url.hostname) || /^\[[0-9a-f:.]+\]$/.test(url.hostname);
}

/**
 * A registered web URL we may put in a page (a logo, a policy link): http(s) only, never javascript:
 * or data:, and on a plain host (plainHost: its origin is safe in the Content-Security-Policy).
 */
export function webUrl(value: unknown): URL | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && plainHost(url) ? url : undefined;
  } catch {
    return undefined;
  }
}

/** Adds the origins of `urls` to img-src of this response's Content-Security-Policy. */
export function allowImagesFrom(ctx: Context, urls: readonly string[]): void {
  const csp = ctx.response.get('Content-Security-Policy');
  // Only plain hosts' origins: anything else could end the directive and start another (plainHost).
  const origins = [...new Set(urls.map((url) => new URL(url)).filter(plainHost).map((url) => url.origin))];
  if (!origins.length || !csp) return;
  const directives = csp.split(';').map((directive) => directive.trim());
  ctx.set('Content-Security-Policy', directives.map((directive) => (directive.split(' ')[0] === 'img-src' ? [directive, ...origins].join(' ') : directive)).join(';'));
}

/**
 * Where a redirect URI sends the person, in words they can check: a web URI's host (with its
 * port), one on this machine (http/this-machine.ts onThisMachine: every spelling the consent prompt
 * asks again for, 127.0.0.2 and names under localhost among them) as a program on this device, a
 * private-use scheme (a native app) as an app on this device by its scheme; undefined for none (the
 * device flow) or one that is no URL.
 */
export function returnedTo(redirectUri: unknown): string | undefined {
  if (typeof redirectUri !== 'string' || !URL.canParse(redirectUri)) return undefined;
  const url = new URL(redirectUri);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return `an app on this device (${url.protocol.slice(0, -1)})`;
  return onThisMachine(url.hostname) ? `a program on this device (${url.host})` : url.host;
}

/**
 * The web hosts a client registered (its `client_uri`, its http(s) redirect URIs; none on this machine): what
 * a page can show of an app beside its self-asserted name when no redirect URI is in the request (the
 * device flow). Self-registered clients' client_uri is on one of those hosts (registration/policy.ts).
 */
export function registeredHosts(metadata: Record<string, unknown>): string[] {
  const uris = [metadata.client_uri, ...(Array.isArray(metadata.redirect_uris) ? metadata.redirect_uris : [])];
  const hosts = uris.map((uri) => webUrl(uri)).filter((url): url is URL => url !== undefined && !onThisMachine(url.hostname)).map((url) => url.host);
  return [...new Set(hosts)];
}
