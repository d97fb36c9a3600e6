/**
 * The account page's frame (/account): who is signed in, the page itself as a list of sections,
 * and what every section's forms share.
 *
 * Signing in here is signing in to Latchkey (http/first-party-sign-in.ts, as the developer page
 * does): the page reads the provider's session, re-checked on every request, so a disabled or
 * deleted person is signed out instead of served. Forms carry a CSRF token bound to that session.
 *
 * Adding a section (what the password, apps and sessions sections do, and passkeys, the
 * authenticator app and recovery codes): a module exports an AccountPageExtension, a function of
 * the AccountPage below, listed in `extensions` where main.ts wires accountPages. In it:
 *
 *   page.addSection({ id: 'passkeys', title: 'Passkeys', order: 20, view: 'account-passkeys',
 *     notices: { added: 'Passkey added.' }, data: async (ctx, person) => ({ passkeys: … }) });
 *   page.router.post('/passkeys/add', page.form, async (ctx) => {
 *     const found = await page.submitted(ctx);       // 401 for a stranger, 403 without the CSRF token
 *     if (!found) return;
 *     …                                               // a problem: return page.show(ctx, found.who, { section: 'passkeys', error: '…' }, 400)
 *     page.done(ctx, 'passkeys', 'added');            // 303 to /account, the notice shown in the section
 *   });
 *
 * The section's view (views/account-passkeys.eta, no layout) gets `it.csrf` for its forms' hidden
 * `csrf` field and `it.state` ({ error, notice, values }); the frame shows the error or notice
 * above the section (views/account.eta). A JSON POST (WebAuthn) passes the same
 * token as its `csrf` member; GET routes of a section use `page.personRequired` (the person is then
 * in ctx.state.person). Every path under /account is rate-limited per address (main.ts).
 *
 * An action that changes how the person signs in (a passkey, the authenticator app, recovery codes,
 * an upstream link, setting a password) uses `page.recentlySubmitted(ctx, section)` instead of
 * `submitted`: when the session's sign-in is older than accounts.reauthenticateAfter, or weaker than
 * the person's sign-in is now (a password alone, made before they added a second factor), the person
 * is sent to sign in again (/sign-in?again=<section>: prompt=login) and back to the section, so
 * neither a stolen session cookie alone nor a password alone can change their credentials. The
 * second step of a change begun earlier (an authenticator app's confirmation) is held to the person's
 * strength now too (`page.stronglySubmitted`): a factor they added meanwhile counts.
 * Paths taken: /sign-in, /callback, /password, /password/set, /apps/…, /sessions/…, /passkeys/…,
 * /authenticator/…, /recovery-codes, /links/….
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { csrfTokens, type CsrfTokens } from '../../http/csrf.js';
import { SIGNED_IN_AGAIN } from '../../http/first-party-sign-in.js';
import { render } from '../../http/views.js';
import { signedInPages, type Form } from '../../http/signed-in-pages.js';
import type { ProviderInService } from '../../provider-in-service.js';
import type { Account } from '../accounts.js';
import { signInTimeForChecks, type AccountSessions } from '../sessions.js';
import { satisfies } from '../assurance.js';
import type { Changed, OwedEnding, OwedEndings } from '../owed-endings.js';
import { formBody } from '../../http/bodies.js';

export { field, type Form } from '../../http/signed-in-pages.js';

export const ACCOUNT_PATH = '/account';

/** The signed-in person, as every account page handler gets them. */
export interface Person {
  readonly accountId: string;
  /** The provider's session id (what CSRF tokens are bound to). */
  readonly sessionId: string;
  /** The session's uid: unlike its id (the cookie's value), it may be shown on a page. */
  readonly sessionUid: string;
  /** When the session's person last signed in (epoch seconds): its auth_time. */
  readonly authTime: number;
  /** How strongly they signed in (accounts/assurance.ts): the session's acr. */
  readonly acr: unknown;
  readonly account: Account;
}

/** What a section shows after one of its forms: a message, and what was typed (never a secret). */
export interface SectionState {
  readonly error?: string;
  readonly notice?: string;
  readonly values?: Record<string, string>;
}

/** One part of the account page. */
export interface AccountSection {
  /** Its anchor on the page and its name in `done`/`show`: 'password', 'passkeys', … */
  readonly id: string;
  readonly title: string;
  /** Its place on the page, lowest first (password 10, passkeys 20, authenticator app 30, recovery codes 40, upstream links 45, apps 50, sessions 60). */
  readonly order: number;
  /** views/<view>.eta, a partial (no layout): rendered with `data`, `csrf` (the form token) and `state`. */
  readonly view: string;
  /** What the view shows for this person. */
  data?(ctx: Context, person: Person): Promise<Record<string, unknown>>;
  /** Whether the section is on the page for this person (always, without it). */
  shown?(person: Person): Promise<boolean>;
  /** Messages `done(ctx, id, key)` can show after a redirect (by key, so nothing is echoed from the URL). */
  readonly notices?: Readonly<Record<string, string>>;
  /** Script files of ours (script-src 'self') the page loads for this section, e.g. WebAuthn's. */
  readonly scripts?: readonly string[];
}

/** How a section module extends the page (see accountPages' `extensions`). */
export interface AccountPage {
  /** Routes under /account (prefixed): add actions as router.post('/passkeys/add', form, …). */
  readonly router: Router;
  /** Parses a urlencoded form body (use it on each POST route). */
  readonly form: Middleware;
  readonly csrf: CsrfTokens;
  addSection(section: AccountSection): void;
  /** The signed-in person, or undefined (a disabled or deleted person's session is ended). */
  signedIn(ctx: Context): Promise<Person | undefined>;
  /** GET middleware: puts the signed-in person in ctx.state.person, or sends the browser to sign in. */
  readonly personRequired: Middleware;
  /** A POST from the signed-in person with a valid CSRF token; answers 401/403 itself otherwise. */
  submitted(ctx: Context): Promise<{ who: Person; body: Form } | undefined>;
  /**
   * `submitted`, for an action that changes how the person signs in: also needs a sign-in that is
   * recent and as strong as the person's sign-in is now (mayChangeCredentials), else sends the person
   * to sign in again and back to `section` (303) and answers undefined.
   */
  recentlySubmitted(ctx: Context, section: string): Promise<{ who: Person; body: Form } | undefined>;
  /** `submitted`, with a sign-in as strong as the person's is now (of any age: a password change asks for the current password). */
  stronglySubmitted(ctx: Context, section: string): Promise<{ who: Person; body: Form } | undefined>;
  /** Whether the person signed in recently enough, and strongly enough, to change credentials (what recentlySubmitted checks). */
  mayChangeCredentials(person: Person): Promise<boolean>;
  /** Shows the whole account page; `state` goes to the section named `section` (an error: pass a 4xx status). */
  show(ctx: Context, person: Person, result?: { section: string } & SectionState, status?: number): Promise<void>;
  /** After a successful POST: back to the page (303), showing the section's notice `key`. */
  done(ctx: Context, section: string, key: string): void;
  /** A page of its own in the same look (e.g. something shown once): views/<view>.eta with the layout. */
  page(ctx: Context, view: string, data: Record<string, unknown>, status?: number): void;
  /**
   * Removes a credential (`remove`: false when there was none to remove), or replaces it (new
   * recovery codes), and ends the person's other sessions it signed in (owed-endings.ts
   * signedInWith: by the session's recorded credential, or its `amr` for one older than those
   * records), each with every grant it made (offline access too: they were granted on the strength
   * of that credential) and back-channel logout: before the removal too, so that a failure half-way
   * (the store lost in the middle) leaves the credential there to remove again, and after it, for a
   * sign-in with it that finished meanwhile. Kept as owed before anything (OwedEndings): a removal
   * cut off after its write is finished by the sweep. This browser's session is spared, under a new
   * id (renewSession; a caller may renew it first). How many sessions ended, or undefined when `remove` found nothing.
   */
  removeCredential(ctx: Context, person: Person, removed: Exclude<Changed, { kind: 'password' }>, remove: () => Promise<boolean>): Promise<number | undefined>;
  /**
   * After a change of how the person signs in: this browser's session goes on under a new id
   * (AccountSessions.renewId), so a copy of its cookie, which the other sessions' ending spares with
   * it (same uid), signs nobody in.
   */
  renewSession(ctx: Context, person: Person): Promise<void>;
}

/** What a removal of a way in is told when another of the person's (another tab's) held their ways in all the while it waited (WaysIn). */
export const ANOTHER_REMOVAL = 'Another change to how you sign in was being made at the same moment, so nothing was removed. Reload this page and try again.';

const dateTime = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });

/** When something happened (epoch seconds), as the page says it: "30 Nov 2026, 08:12 UTC". */
export function when(epochSeconds: number): string {
  return `${dateTime.format(new Date(epochSeconds * 1000))} UTC`;
}

interface Options {
  /** The provider in service, read per request (it is replaced when the key ring changes). */
  readonly providers: ProviderInService;
  /** Re-checks the session's person on every request. */
  readonly sessions: AccountSessions;
  readonly csrfKey: string;
  /** accounts.reauthenticateAfter: seconds a sign-in counts as recent. */
  readonly reauthenticateAfter: number;
  /** Ends what a removed credential signed in, kept as owed until done. */
  readonly owed: OwedEndings;
  /** Whether the person has a second factor now (a passkey or an authenticator app) that the session `sessionUid` did not add. */
  readonly secondFactorBeyond?: (sub: string, sessionUid: string) => Promise<boolean>;
}

export function accountPage({ providers, sessions, csrfKey, reauthenticateAfter, owed, secondFactorBeyond }: Options): AccountPage {
  const router = new Router({ prefix: ACCOUNT_PATH });
  const form = formBody('16kb');
  const csrf = csrfTokens(csrfKey, 'account');
  const sections: AccountSection[] = [];

  async function signedIn(ctx: Context): Promise<Person | undefined> {
    const found = await sessions.signedIn(providers.current, ctx);
    return (
      found && { accountId: found.accountId, sessionId: found.session.jti, sessionUid: found.session.uid, authTime: signInTimeForChecks(found.session), acr: found.session.acr, account: found.account }
    );
  }

  const carriedSession = (ctx: Context) => ctx.cookies.get(providers.current.cookieName('session')) !== undefined;
  const pages = signedInPages({ signedIn, csrf, where: 'your account page', carriedSession, home: ACCOUNT_PATH });
  const { page } = pages;
  // The person a POST came from, for done() to sign the notice it sends them back with.
  async function submitted(ctx: Context) {
    const found = await pages.submitted(ctx);
    if (found) ctx.state.person = found.who;
    return found;
  }
  // A notice says something was done ("That session is signed out", "every other session is signed
  // out"), so a link from anywhere must not show one: done() sends `<section>.<key>.<mac>`, the MAC
  // bound to the session (its uid, kept across the id renewals an action makes), and the page shows
  // only a notice whose MAC fits the session viewing it (the twelfth sessions pass).
  const notices = csrfTokens(csrfKey, 'account-notice');
  const noticeMac = (person: Person, shown: string) => notices.token(`${person.sessionUid}:${shown}`);

  const recent = (person: Person) => Math.floor(Date.now() / 1000) - person.authTime <= reauthenticateAfter;
  // A session signed in with a password alone before the person added a second factor (elsewhere:
  // one this session added it proved at adding) is no longer as strong as their sign-in: whoever
  // had only the password would otherwise add a passkey of their own, make recovery codes or remove
  // the new factor (second-factor pass, 2026-12-06; NIST SP 800-63B §6.1.2.1: binding an
  // authenticator takes authentication at the level it gives).
  const asStrongAsNow = async (person: Person) => satisfies(person.acr, 'mfa') || !(await secondFactorBeyond?.(person.accountId, person.sessionUid));
  const mayChangeCredentials = async (person: Person) => recent(person) && (await asStrongAsNow(person));

  async function submittedIf(ctx: Context, section: string, fit: (person: Person) => Promise<boolean>) {
    const found = await submitted(ctx);
    if (!found || (await fit(found.who))) return found;
    ctx.status = 303;
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(`${ACCOUNT_PATH}/sign-in?again=${encodeURIComponent(section)}`);
    return undefined;
  }
  const recentlySubmitted = (ctx: Context, section: string) => submittedIf(ctx, section, mayChangeCredentials);
  const stronglySubmitted = (ctx: Context, section: string) => submittedIf(ctx, section, asStrongAsNow);

  const personRequired: Middleware = async (ctx, next) => {
    const person = await signedIn(ctx);
    if (!person) {
      ctx.set('Cache-Control', 'no-store');
      ctx.redirect(`${ACCOUNT_PATH}/sign-in`);
      return;
    }
    ctx.state.person = person;
    await next();
  };

  async function show(ctx: Context, person: Person, result?: { section: string } & SectionState, status = 200) {
    const token = csrf.token(person.sessionId);
    const doneKey = doneShown(ctx, person);
    const visible = (await Promise.all(sections.map(async (section) => ((await section.shown?.(person)) === false ? undefined : section)))).filter(
      (section) => section !== undefined,
    );
    const rendered = await Promise.all(
      visible.map(async (section) => {
        const key = doneKey.startsWith(`${section.id}.`) ? doneKey.slice(section.id.length + 1) : '';
        const notice =
          key === SIGNED_IN_AGAIN ? 'You signed in again: go ahead.' : section.notices && Object.hasOwn(section.notices, key) ? section.notices[key] : undefined;
        const state: SectionState = result?.section === section.id ? result : notice ? { notice } : {};
        const data = (await section.data?.(ctx, person)) ?? {};
        return { id: section.id, title: section.title, state, html: render(section.view, { ...data, csrf: token, state }) };
      }),
    );
    const scripts = [...new Set(sections.flatMap((section) => section.scripts ?? []))];
    page(ctx, 'account', { title: 'Your account', username: person.account.username, name: person.account.claims.name, sections: rendered, scripts }, status);
  }

  /**
   * The `<section>.<key>` of `?done=` whose notice this person may be shown: one done() signed for
   * their session, or "signed in again" (first-party-sign-in.ts) while their sign-in is recent;
   * '' for anything else (a link's).
   */
  function doneShown(ctx: Context, person: Person): string {
    const asked = typeof ctx.query.done === 'string' ? ctx.query.done : '';
    const dot = asked.lastIndexOf('.');
    const shown = asked.slice(0, Math.max(dot, 0));
    if (shown && notices.valid(`${person.sessionUid}:${shown}`, asked.slice(dot + 1))) return shown;
    return asked.endsWith(`.${SIGNED_IN_AGAIN}`) && recent(person) ? asked : '';
  }

  function done(ctx: Context, section: string, key: string) {
    const person = ctx.state.person as Person | undefined;
    const shown = `${section}.${key}`;
    ctx.status = 303;
    ctx.redirect(`${ACCOUNT_PATH}?done=${encodeURIComponent(person ? `${shown}.${noticeMac(person, shown)}` : shown)}#${encodeURIComponent(section)}`);
  }

  async function renewSession(ctx: Context, person: Person) {
    if ((await sessions.renewId(providers.current, ctx, person.sessionId, person.sessionUid)) === 'done') return;
    // Renewed meanwhile by another request holding this browser's id (a copy of the cookie finishing
    // a consent at that moment, say): which one is this browser is not known, so every session of
    // the person ends with what it was granted, this browser's too (it signs in again).
    const ending: OwedEnding = { sub: person.accountId, changed: { kind: 'password' } };
    const member = await owed.owe(ending);
    await owed.finish(ending);
    await owed.drop(member);
  }

  async function removeCredential(ctx: Context, person: Person, removed: Exclude<Changed, { kind: 'password' }>, remove: () => Promise<boolean>) {
    const ending = { sub: person.accountId, changed: removed, except: person.sessionUid };
    const member = await owed.owe(ending);
    const before = await owed.finish(ending);
    const found = await remove();
    const after = found ? await owed.finish(ending) : 0;
    await owed.drop(member);
    if (!found) return undefined;
    await renewSession(ctx, person);
    return before + after;
  }

  function addSection(section: AccountSection) {
    sections.push(section);
    sections.sort((a, b) => a.order - b.order);
  }

  return { router, form, csrf, addSection, signedIn, personRequired, submitted, recentlySubmitted, stronglySubmitted, mayChangeCredentials, show, done, page, removeCredential, renewSession };
}
