/**
 * Showing other sites' images (apps' logos on the account page) under the strict CSP (app.ts allows
 * images only from ourselves): the page's img-src is widened, on that response only, by exactly the
 * origins of the images it shows, and only http(s) URLs are shown at all. The account page (its
 * apps' logos) and the login, consent and device pages (one app's logo, interactions/client-branding.ts)
 * all go through here.
 */
import type { Context } from 'koa';

/** A registered web URL we may put in a page (a logo, a policy link): http(s) only, never javascript: or data:. */
export function webUrl(value: unknown): URL | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** Adds the origins of `urls` to img-src of this response's Content-Security-Policy. */
export function allowImagesFrom(ctx: Context, urls: readonly string[]): void {
  const csp = ctx.response.get('Content-Security-Policy');
  const origins = [...new Set(urls.map((url) => new URL(url).origin))];
  if (!origins.length || !csp) return;
  const directives = csp.split(';').map((directive) => directive.trim());
  ctx.set('Content-Security-Policy', directives.map((directive) => (directive.split(' ')[0] === 'img-src' ? [directive, ...origins].join(' ') : directive)).join(';'));
}
