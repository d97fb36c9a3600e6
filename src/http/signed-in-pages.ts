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
  /**
   * Whether the request carried a session cookie at all (a form posted from another site arrives
   * without it under SameSite=Lax, as does one from a browser blocking cookies): such a request is
   * told nothing was done, not that the person was signed out.
   */
  carriedSession(ctx: Context): boolean;
  /** Where the page is (`/account`): the link offered when a form came without a session. */
  readonly home: string;
}

/**
 * What a form that came without a signed-in session is told: nothing was done, and why. Never "Signed
 * out" (the sign-in steps' words for a session ended as they were answered): a form posted from
 * another site carries no cookie, so the person it was aimed at is still signed in, and at "Sign
 * out" of a session the words read as if the sign-out had happened (sixteenth passes, h10).
 */
function notSignedInWords(carried: boolean, where: string, home: string) {
  const again = { href: home, label: `Open ${where}` };
  return carried
    ? { title: 'Not signed in', message: `Your sign-in on ${where} has ended (you signed out, it expired, or the page asks you to sign in again). Nothing was changed: sign in there and try again.`, again }
    : {
        title: 'Nothing was done',
        message: `This form reached Latchkey without this browser’s sign-in (it was sent from another site, or this browser blocks cookies here), so nothing was changed. If you meant to do it, open ${where} and do it there.`,
        again,
      };
}

export function signedInPages<Who extends SignedIn>({ signedIn, csrf, where, carriedSession, home }: Options<Who>): SignedInPages<Who> {
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
      respondWithError(ctx, 401, { error: 'login_required', error_description: `sign in on ${where} first` }, notSignedInWords(carriedSession(ctx), where, home));
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
