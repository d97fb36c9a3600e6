/**
 * What every step of a sign-in shares: the interaction a request belongs to, its form checked
 * against the CSRF token bound to it, the client's branding, and the person still allowed in.
 * The steps (login.ts, consent.ts) and routes.ts build on it; a new step (a second factor, an
 * upstream provider) is a module of its own next to them.
 */
import type { Context } from 'koa';
import { errors, type Provider } from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.js';
import type { ProviderInService } from '../provider-in-service.js';
import { csrfTokens, type CsrfTokens } from '../http/csrf.js';
import { DEVICE_SIGN_IN_EXPIRED, respondWithError } from '../http/errors.js';
import { startedInThisBrowser } from '../provider/patches/browser-bound-resume.js';
import { REDIRECT_URI_OMITTED } from '../provider/patches/openid-redirect-uri.js';
import { allowLogo, brandingOf, registeredItself, type ClientBranding } from './client-branding.js';
import { returnedTo } from '../http/image-origins.js';
import { FIRST_PARTY_CLIENT_IDS } from '../http/first-party-sign-in.js';
import type { OfferedLink } from './link-confirmation.js';
import type { SessionCredential } from '../accounts/session-credentials.js';
import type { FederatedSession } from '../upstreams/sessions.js';

/** Whether this is one of Latchkey's own pages' sign-ins, back to an address of Latchkey's own origin. */
function ownPageReturn(issuer: string, clientId: string, redirectUri: unknown): boolean {
  return FIRST_PARTY_CLIENT_IDS.includes(clientId) && typeof redirectUri === 'string' && URL.parse(redirectUri)?.origin === new URL(issuer).origin;
}

/** The engine's reasons for refusing an interaction whose session ended or changed person since it started. */
const SESSION_ENDED = new Set(['session not found', 'session principal changed']);

/** Where, in the interaction's result, the first step leaves who passed it (second-factor.ts). */
export const FIRST_FACTOR_PASSED = 'latchkey_first_factor_passed';

export type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;
export type Form = Record<string, string | string[] | undefined>;

/** A form field as one string; a repeated field counts as missing. */
export function field(form: Form, name: string): string {
  const value = form[name];
  return typeof value === 'string' ? value : '';
}

export interface Interactions {
  /** The provider in service, read per request (it is replaced when the key ring changes). */
  readonly providers: ProviderInService;
  readonly csrf: CsrfTokens;
  /**
   * The interaction this request belongs to, or an error page when it is gone or not this one.
   * `restart` (a GET's default): a sign-in step whose session ended since (the person signed out, was
   * disabled or removed) sends the browser to the same authorization request again, which shows the
   * login form, instead of a dead end (see restartable).
   */
  load(ctx: Context, restart?: boolean): Promise<Interaction | undefined>;
  /** Parses the form and checks its CSRF token; answers the request itself when either fails. `restart`: as load's. */
  submitted(ctx: Context, restart?: boolean): Promise<{ interaction: Interaction; body: Form } | undefined>;
  /**
   * Where to send the browser to make the interaction's authorization request again (its person
   * can no longer go on, and without them it shows the login form), or undefined for a client that
   * must push its requests (PAR), a request that was pushed, or a device's sign-in (started at /device).
   */
  restartUrl(interaction: Pick<Interaction, 'params' | 'deviceCode'>): Promise<string | undefined>;
  /** The client's name, logo and links for the page; lets this response load that logo. */
  clientBranding(ctx: Context, interaction: Interaction): Promise<ClientBranding>;
  /**
   * The person of a sign-in waiting for consent, unless they were disabled or deleted since they
   * signed in: then the app is told access_denied (denied), and nothing is granted.
   */
  activeAccount(ctx: Context, interaction: Interaction): ReturnType<Accounts['find']>;
  /**
   * Ends the interaction with access_denied, which the engine sends to the app's redirect URI (or,
   * for a device, to its polling): the person of this sign-in may no longer sign in (disabled or
   * removed since a step of it passed). RFC 6749 §4.1.2.1: a request that fails for a reason other
   * than the client or its redirect URI is told to the client; a 403 page left the app waiting.
   */
  denied(ctx: Context, interaction: Interaction): Promise<void>;
  /** The session's person if they may still sign in (not disabled, not deleted), else undefined; answers nothing. */
  signedInAccount(interaction: Interaction): ReturnType<Accounts['find']>;
  /** What other sign-in ways add to the login page's view data (e.g. passkey.ts). */
  loginPageExtras(interaction: Interaction): Promise<Record<string, unknown>>;
  /**
   * Whether an upstream's word still counts for a sign-in through it: the upstream still configured
   * (one removed since does not complete it), and no back-channel logout of its session since.
   */
  upstreamVouches(signedIn: FederatedSession): Promise<boolean>;
  /**
   * Makes the upstream link the person just signed in to its account to confirm (link-confirmation.ts),
   * only if the sign-in holds as its resume will check it (accounts/session-credentials.ts
   * credentialsHeld: `credential`, for the interaction begun at `startedAt`).
   */
  confirmLink(link: OfferedLink, sub: string, credential: SessionCredential, startedAt: unknown): Promise<void>;
}

/** A sign-in way's contribution to the login page: view data merged into it. */
export type LoginPageExtra = (interaction: Interaction) => Promise<Record<string, unknown>>;

export function interactions(
  providers: ProviderInService,
  accounts: Accounts,
  csrfKey: string,
  extras: readonly LoginPageExtra[],
  upstreamVouches: (signedIn: FederatedSession) => Promise<boolean>,
  confirmLink: Interactions['confirmLink'],
  /** Whether a client holds registration access tokens (store/adapter-indexes.ts managesItself): it registered itself. */
  managesItself: (clientId: string) => Promise<boolean>,
): Interactions {
  const csrf = csrfTokens(csrfKey, 'interaction');

  /**
   * The authorization request that started `interaction`, to make again when the person it was
   * started for can no longer go on (see restart in Interactions), for a client that may send its
   * requests to /auth (not one that must push them, whose parameters cannot be sent again). The
   * engine checks the request anew (client, redirect URI, PKCE), and the person's ended session is
   * ended there too (accounts/sessions.ts), so it shows the login form of a fresh interaction.
   */
  async function restartUrl(interaction: Pick<Interaction, 'params' | 'deviceCode'>): Promise<string | undefined> {
    // A device's sign-in started at /device, and a pushed request's parameters came from the client, not the browser's URL.
    if (interaction.deviceCode || (interaction as { parJti?: string }).parJti) return undefined;
    const provider = providers.current;
    const client = await provider.Client.find(String(interaction.params.client_id));
    if (!client || client.requirePushedAuthorizationRequests) return undefined;
    // Every parameter as it came (`resource` may be given more than once): a redirect_uri the engine
    // filled in stays out, and so does the marker that says so (patches/openid-redirect-uri.ts).
    const params = new URLSearchParams();
    const omitted = interaction.params[REDIRECT_URI_OMITTED] === '1';
    for (const [name, value] of Object.entries(interaction.params)) {
      if (name === REDIRECT_URI_OMITTED || (omitted && name === 'redirect_uri')) continue;
      for (const each of Array.isArray(value) ? value : [value]) if (typeof each === 'string') params.append(name, each);
    }
    return `${provider.pathFor('authorization')}?${params}`;
  }

  /**
   * The interaction the engine refused because its session ended or changed person since it
   * started, in the browser that holds its interaction cookie; undefined for any other refusal.
   */
  async function endedInteraction(ctx: Context, error: InstanceType<typeof errors.SessionNotFound>): Promise<Interaction | undefined> {
    if (!SESSION_ENDED.has(String(error.error_description))) return undefined;
    const provider = providers.current;
    const uid = String(ctx.params.uid);
    if (provider.createContext(ctx.req, ctx.res).cookies.get(provider.cookieName('interaction')) !== uid) return undefined;
    return (await provider.Interaction.find(uid)) as Interaction | undefined;
  }

  /**
   * restartUrl for an ended interaction (endedInteraction) at a login step only (the chooser of
   * prompt=select_account, the login form of prompt=login or max_age).
   */
  async function restartable(interaction: Interaction): Promise<string | undefined> {
    if (interaction.prompt.name !== 'login' || !interaction.session) return undefined;
    return restartUrl(interaction);
  }

  /**
   * Whether an ended interaction (endedInteraction) was ended by its person's disabling or removal
   * (which ends their sessions) at a step past the first factor (a second-factor or consent page left
   * open), started in this browser. The app is then told access_denied (denied) as operating.md says,
   * where it got a 400 page and waited (granting and endings pass of 2026-12-06: an operator's
   * disable, not a bare flag).
   */
  async function ofDisabledPerson(ctx: Context, interaction: Interaction): Promise<boolean> {
    if (!interaction.session?.accountId || !startedInThisBrowser(ctx, providers.current.issuer, interaction.uid)) return false;
    // Past the first factor, by the session's person: a login form open in a browser whose earlier
    // session's person was disabled (prompt=login, max_age) is someone else's to sign in at (review).
    const passed = (interaction.result as { [FIRST_FACTOR_PASSED]?: { sub?: unknown } } | undefined)?.[FIRST_FACTOR_PASSED];
    if (interaction.prompt.name !== 'consent' && passed?.sub !== interaction.session.accountId) return false;
    return !(await signedInAccount(interaction));
  }

  async function load(ctx: Context, restart = ctx.method === 'GET'): Promise<Interaction | undefined> {
    let interaction: Interaction;
    try {
      interaction = await providers.current.interactionDetails(ctx.req, ctx.res);
    } catch (error) {
      if (!(error instanceof errors.SessionNotFound)) throw error;
      const ended = await endedInteraction(ctx, error);
      const again = ended && restart ? await restartable(ended) : undefined;
      if (again) {
        ctx.status = 303;
        ctx.redirect(again);
        return undefined;
      }
      if (ended && (await ofDisabledPerson(ctx, ended))) {
        await denied(ctx, ended);
        return undefined;
      }
      respondWithError(ctx, 400, { error: 'session_not_found', error_description: 'the sign-in request expired or was already completed' }, ended?.deviceCode ? DEVICE_SIGN_IN_EXPIRED : undefined);
      return undefined;
    }
    if (interaction.uid !== ctx.params.uid) {
      respondWithError(ctx, 400, { error: 'session_not_found', error_description: 'this page belongs to another sign-in request' });
      return undefined;
    }
    // The engine's interaction cookie is path-scoped, so a sibling subdomain can plant it; the flow cookie it cannot.
    if (!startedInThisBrowser(ctx, providers.current.issuer, interaction.uid)) {
      respondWithError(ctx, 400, { error: 'session_not_found', error_description: 'this sign-in was not started in this browser' });
      return undefined;
    }
    ctx.set('Cache-Control', 'no-store');
    return interaction;
  }

  async function clientBranding(ctx: Context, interaction: Interaction): Promise<ClientBranding> {
    const clientId = String(interaction.params.client_id);
    const client = await providers.current.Client.find(clientId);
    const branding = brandingOf(client, clientId);
    allowLogo(ctx, branding);
    // An app that registered itself names itself: the pages say that nobody vouches for its name and
    // logo (before the twelfth fresh-eyes passes only the device page did, so an app registered as
    // "Orange Notes" with the operator's logo read as the operator's app on the sign-in and consent
    // pages). A URL client_id says so with its domain already (views/client-return.eta).
    const own = !branding.domain && client !== undefined && (await registeredItself(client, managesItself));
    // Where this request sends the person. Not Latchkey's own pages (the developer and account pages)
    // sending the person back to Latchkey's own address: that is where they are already, and with an
    // issuer on localhost it read "a program on this device". Every other client's loopback redirect
    // URI is still said to be one. A URL client_id shows its domain, and where the code goes too
    // when that is not the domain (a program or an app on this device, which any program there can
    // be: the domain says who wrote the document, not who listens; tenth pass at the new clients).
    const returnsTo = ownPageReturn(providers.current.issuer, clientId, interaction.params.redirect_uri) ? undefined : returnedTo(interaction.params.redirect_uri);
    return { ...branding, ...(returnsTo && returnsTo !== branding.domain && { returnsTo }), ...(own && { selfRegistered: true }) };
  }

  async function signedInAccount(interaction: Interaction) {
    const account = await accounts.find(String(interaction.session?.accountId));
    return account && !account.disabled ? account : undefined;
  }

  async function denied(ctx: Context, interaction: Interaction): Promise<void> {
    // The disabled person's session is ended at the resume (accounts/sessions.ts), and the engine
    // refuses to resume an interaction bound to an ended session with a 400 page: the refusal is
    // bound to no session (as the engine itself unbinds one whose person changed), so it reaches the app.
    const stored = await providers.current.Interaction.find(interaction.uid);
    const bound = stored?.session as { uid?: string } | undefined;
    if (stored && bound?.uid) {
      delete bound.uid;
      await stored.save(stored.exp - Math.floor(Date.now() / 1000));
    }
    await providers.current.interactionFinished(ctx.req, ctx.res, { error: 'access_denied', error_description: 'this account cannot sign in' }, { mergeWithLastSubmission: false });
    ctx.respond = false;
  }

  async function activeAccount(ctx: Context, interaction: Interaction) {
    const account = await signedInAccount(interaction);
    if (account) return account;
    await denied(ctx, interaction);
    return undefined;
  }

  async function submitted(ctx: Context, restart = false): Promise<{ interaction: Interaction; body: Form } | undefined> {
    const interaction = await load(ctx, restart);
    if (!interaction) return undefined;
    const body = (ctx.request.body ?? {}) as Form;
    if (!csrf.valid(interaction.uid, field(body, 'csrf'))) {
      respondWithError(ctx, 403, { error: 'invalid_request', error_description: 'the form was not sent from this sign-in page; go back and try again' });
      return undefined;
    }
    return { interaction, body };
  }

  async function loginPageExtras(interaction: Interaction) {
    return Object.assign({}, ...(await Promise.all(extras.map((extra) => extra(interaction))))) as Record<string, unknown>;
  }

  return { providers, csrf, load, submitted, restartUrl, clientBranding, activeAccount, denied, signedInAccount, loginPageExtras, upstreamVouches, confirmLink };
}
