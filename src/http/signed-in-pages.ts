/**
 * What Latchkey's own signed-in pages (the developer page, the account page) share: rendering a
 * page, and accepting a form only from the signed-in person with the CSRF token bound to their
 * session. Who is signed in is the page's to say (the provider's session, re-checked per request).
 */
import type { Context } from 'koa';
import type { CsrfTokens } from './csrf.js';
import { respondWithError } from './errors.js';
import { render } from './views.js';

export type Form = Record<string, string | string[] | undefined>;
export const field = (form: Form, name: string) => (typeof form[name] === 'string' ? (form[name] as string) : '');

export interface SignedIn {
  readonly accountId: string;
  readonly sessionId: string;
}

export interface SignedInPages<Who extends SignedIn> {
  /** Renders views/<view>.eta in the wide layout, never cached. */
  page(ctx: Context, view: string, data: Record<string, unknown>, status?: number): void;
  /** A POST from a signed-in person with a valid CSRF token; answers the request itself otherwise. */
  submitted(ctx: Context): Promise<{ who: Who; body: Form } | undefined>;
}

interface Options<Who extends SignedIn> {
  /** The signed-in person, or undefined (also when they were disabled or deleted since). */
  signedIn(ctx: Context): Promise<Who | undefined>;
  /** Bound to the session id. */
  readonly csrf: CsrfTokens;
  /** The page's name in error messages: "your developer page". */
  readonly where: string;
}

export function signedInPages<Who extends SignedIn>({ signedIn, csrf, where }: Options<Who>): SignedInPages<Who> {
  function page(ctx: Context, view: string, data: Record<string, unknown>, status = 200) {
    ctx.status = status;
    ctx.type = 'html';
    // These pages show secrets once (a new client secret, recovery codes, an authenticator's key):
    // RFC 6749 §5.1's pair, as the token endpoint sends it (provider/patches/pragma-no-cache.ts).
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    ctx.body = render(view, { wide: true, ...data });
  }

  async function submitted(ctx: Context) {
    const who = await signedIn(ctx);
    if (!who) {
      respondWithError(ctx, 401, { error: 'login_required', error_description: `sign in on ${where} first` });
      return undefined;
    }
    const body = (ctx.request.body ?? {}) as Form;
    if (!csrf.valid(who.sessionId, field(body, 'csrf'))) {
      // Also a form left open in another tab across a change that renewed the session's id: said as such to a person.
      const again = { href: ctx.path.split('/').slice(0, 2).join('/') || '/', label: 'Reload the page' };
      respondWithError(ctx, 403, { error: 'invalid_request', error_description: `the form was not sent from ${where}; reload it and try again` }, {
        title: 'This form is out of date',
        message: `It was not sent from ${where} as it is now (opened before a change, or in another tab). Nothing was done: reload the page and try again.`,
        again,
      });
      return undefined;
    }
    return { who, body };
  }

  return { page, submitted };
}
