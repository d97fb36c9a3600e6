/**
 * A minimal user agent over fetch: keeps cookies per host, follows redirects by hand (so tests
 * can stop at the client's redirect_uri), and reads forms out of our HTML pages.
 */
import assert from 'node:assert/strict';

export interface Page {
  readonly url: string;
  readonly status: number;
  readonly html: string;
  readonly headers: Headers;
}

export class Agent {
  readonly #cookies = new Map<string, Map<string, string>>();
  /** Every Set-Cookie line received, in order, with its attributes. */
  readonly setCookies: string[] = [];

  cookieNames(host: string): string[] {
    return [...(this.#cookies.get(host)?.keys() ?? [])];
  }

  clearCookies(): void {
    this.#cookies.clear();
  }

  /** The Cookie header this agent would send to `url` (e.g. to replay its session in a raw request). */
  cookieHeader(url: string): string {
    return [...(this.#cookies.get(new URL(url).host) ?? [])].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url);
    const jar = this.#cookies.get(target.host);
    const headers = new Headers(init.headers);
    if (jar?.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    if (!headers.has('accept')) headers.set('accept', 'text/html');
    const response = await fetch(target, { ...init, headers, redirect: 'manual' });
    this.keepCookies(url, response);
    return response;
  }

  /** Keeps the cookies `response` sets as `url`'s (e.g. one answered by another instance of the same issuer). */
  keepCookies(url: string, response: Response): void {
    const target = new URL(url);
    const jar = this.#cookies.get(target.host) ?? new Map<string, string>();
    for (const line of response.headers.getSetCookie()) {
      this.setCookies.push(line);
      const [pair = '', ...attributes] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    this.#cookies.set(target.host, jar);
  }

  /**
   * Follows redirects from `url` until a page answers or a redirect leaves for `stopAt`
   * (a URL prefix, typically the client's redirect_uri), which is returned unvisited.
   */
  async follow(url: string, init: RequestInit = {}, stopAt?: string): Promise<Page> {
    let response = await this.request(url, init);
    let current = url;
    for (let hops = 0; hops < 20 && response.status >= 300 && response.status < 400; hops += 1) {
      const next = new URL(response.headers.get('location')!, current).href;
      if (stopAt && next.startsWith(stopAt)) return { url: next, status: response.status, html: '', headers: response.headers };
      current = next;
      response = await this.request(next);
    }
    return { url: current, status: response.status, html: await response.text(), headers: response.headers };
  }

  /** Submits the form whose action contains `actionPart`, with our fields on top of its hidden ones. */
  async submit(page: Page, actionPart: string, fields: Record<string, string>, stopAt?: string): Promise<Page> {
    const form = formIn(page.html, actionPart);
    const body = new URLSearchParams({ ...form.hidden, ...fields });
    return this.follow(new URL(form.action, page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    }, stopAt);
  }
}

export function formIn(html: string, actionPart: string): { action: string; hidden: Record<string, string> } {
  const forms = html.match(/<form[\s\S]*?<\/form>/g) ?? [];
  const form = forms.find((f) => (f.match(/action="([^"]*)"/)?.[1] ?? '').includes(actionPart));
  if (!form) throw new Error(`no form with action containing ${actionPart} in:\n${html.slice(0, 2000)}`);
  const action = decode(form.match(/action="([^"]*)"/)![1]!);
  const hidden: Record<string, string> = {};
  for (const input of form.match(/<input[^>]*type="hidden"[^>]*>/g) ?? []) {
    const name = input.match(/name="([^"]*)"/)?.[1];
    const value = input.match(/value="([^"]*)"/)?.[1] ?? '';
    if (name) hidden[name] = decode(value);
  }
  return { action, hidden };
}

function decode(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n: string) => String.fromCharCode(parseInt(n, 16)))
    .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/**
 * A POST to the account page's `path` (under /account) as a crafted form would send it, whatever
 * forms the page shows: the CSRF token of `page` (an account page: its session's, read off its
 * recovery-codes form) with `fields`.
 */
export function postToAccount(agent: Agent, page: Page, path: string, fields: Record<string, string>): Promise<Page> {
  return agent.follow(new URL(`/account${path}`, page.url).href, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf: formIn(page.html, '/account/recovery-codes').hidden.csrf!, ...fields }),
  });
}

/** The error an authorization answer at `redirectUri` carries, or 'code' when it carries a code. */
export function answerAt(page: Page, redirectUri: string): string {
  assert.ok(page.url.startsWith(redirectUri), `expected an answer at ${redirectUri}, got ${page.status} ${page.url}`);
  const answer = new URL(page.url).searchParams;
  return answer.get('code') ? 'code' : String(answer.get('error'));
}
