/**
 * The upstream step: signing in through another OpenID Connect provider.
 *
 *   POST /interaction/:uid/upstream/:id        "Continue with <upstream>" (CSRF-protected form)
 *   (GET /interaction/:uid with upstream=<id>,  the app's own request sends the person straight there
 *    or a login_hint at an upstream's domain)
 *   GET  /upstream/:id/callback                 the upstream sends the person back here
 *   POST /interaction/:uid/upstream-cancel      from the error page: back to the app with its error
 *   POST /upstream/:id/backchannel-logout       the upstream's logout token ends our sessions
 *   GET  /upstream/:id/signed-out               back from the upstream's end_session_endpoint (upstreams/logout.ts)
 *
 * The state, nonce and PKCE verifier stay server-side (pending.ts), consumed once; the browser
 * holds only a signed cookie with the state, scoped to /upstream/, so a callback reaching another
 * browser (login CSRF, an injected code) is refused. Each upstream has its own callback URL, and
 * the state record names the upstream it was issued for (mix-up defence, with openid-client's
 * check of the RFC 9207 `iss` parameter). The upstream's sign-in is a first factor, as a right
 * password is: the callback records it in the interaction and the interaction page goes on as after
 * a password (second-factor.ts: the person's second factor, the enrolment prompt, or the end with
 * amr ["fed"]), the upstream then recorded for the session (upstreams/sessions.ts: the `idp` claim).
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Claims } from '../accounts/accounts.js';
import type { UpstreamLinks } from '../accounts/links.js';
import type { AccountSessions } from '../accounts/sessions.js';
import { respondWithError } from '../http/errors.js';
import { routesWithAllow } from '../http/method-not-allowed.js';
import { render } from '../http/views.js';
import type { Logger } from '../ops/logger.js';
import { UpstreamRefused, UpstreamUnavailable, type SignedIn, type UpstreamClients, type VerifiedLogoutToken } from '../upstreams/client.js';
import type { UpstreamLogout } from '../upstreams/logout.js';
import { signedOutPage } from './logout.js';
import type { LogoutTokenReplays } from '../upstreams/logout-tokens.js';
import type { PendingSignIns } from '../upstreams/pending.js';
import { MAPPED_CLAIMS, UpstreamUnreadable, type Upstream, type Upstreams } from '../upstreams/registry.js';
import type { FederatedSessions } from '../upstreams/sessions.js';
import { field, type Interaction, type Interactions, type LoginPageExtra } from './interaction.js';
import { linkFor, linkNotice, linkWithdrawnNotice, offeredLink, offeredLinkResult } from './link-confirmation.js';
import { firstFactorResult } from './second-factor.js';
import { formBody } from '../http/bodies.js';
import { RETRY_AFTER_SECONDS } from '../store/outage.js';
import { startedInThisBrowser } from '../provider/patches/browser-bound-resume.js';
import type { SessionGrantEndings } from '../revocation/grants.js';

/** The request parameter (an extraParam, see provider.ts) that names the upstream to go to. */
const UPSTREAM_PARAMETER = 'upstream';
const STATE_COOKIE = 'lk_upstream';
const CANCEL_REASONS = new Set(['access_denied', 'temporarily_unavailable']);

/**
 * The "Continue with <upstream>" buttons of the login page (a LoginPageExtra, see interaction.ts):
 * the upstreams are read only where a login page is shown, along with the page's other reads.
 */
export function upstreamChoices(upstreams: Upstreams): LoginPageExtra {
  return async (interaction) => {
    // The link an upstream offered (link-confirmation.ts) is promised only while that addition of
    // it still offers it: removed since, added again or not, confirming links nothing
    // (routes.ts confirmLink), and the page says so rather than promise it (seventeenth passes, h2).
    const offer = offeredLink(interaction);
    const [list, stands] = await Promise.all([upstreams.list(), offer ? upstreams.offers(offer.upstream, offer.issuer, offer.made) : false]);
    return {
      upstreams: list.map(({ id, displayName }) => ({ id, displayName })),
      upstreamAction: `/interaction/${interaction.uid}/upstream`,
      ...(offer && { notice: stands ? linkNotice(offer) : linkWithdrawnNotice(offer) }),
    };
  };
}

export interface UpstreamStepOptions {
  readonly upstreams: Upstreams;
  readonly clients: UpstreamClients;
  readonly pending: PendingSignIns;
  readonly links: UpstreamLinks;
  readonly federated: FederatedSessions;
  readonly sessions: AccountSessions;
  readonly logout: UpstreamLogout;
  /** Logout tokens already used (their jti), so that a replay is refused. */
  readonly logoutTokens: LogoutTokenReplays;
  /** An upstream's logout ends what its sessions' sign-out would: grants revoked, or (offline access) kept without what was bound to the session. */
  readonly grants: SessionGrantEndings;
  readonly logger: Logger;
  /** Seconds a pending sign-in (and its cookie) lives. */
  readonly stateTtl: number;
}

interface Failure {
  readonly title: string;
  readonly message: string;
  /** What the app is told if the person gives up here. */
  readonly reason: 'access_denied' | 'temporarily_unavailable';
  readonly status: number;
}

const unavailable = (upstream: { displayName: string }): Failure => ({
  title: `${upstream.displayName} is not answering`,
  message: `Signing in with ${upstream.displayName} is not possible right now: it could not be reached or did not answer in time. Try again in a moment, or sign in another way.`,
  reason: 'temporarily_unavailable',
  status: 502,
});
const unreadable = (upstream: { displayName: string }): Failure => ({
  title: `${upstream.displayName} is not available`,
  message: `Signing in with ${upstream.displayName} is not possible right now: this sign-in service cannot use its settings for it. Sign in another way, and tell the operator of this sign-in service.`,
  reason: 'temporarily_unavailable',
  status: 503,
});
const refused = (upstream: { displayName: string }): Failure => ({
  title: 'Sign-in not completed',
  message: `${upstream.displayName} did not confirm who you are: it refused the sign-in, or its answer could not be verified. Nothing was changed. Try again, or sign in another way.`,
  reason: 'access_denied',
  status: 403,
});
const REFUSALS: Record<'disabled' | 'email-unverified' | 'email-linking-off' | 'email-lookalike', (upstream: Upstream) => Failure> = {
  disabled: () => ({ title: 'Access denied', message: 'This account cannot sign in. If you think that is a mistake, ask the operator of this sign-in service.', reason: 'access_denied', status: 403 }),
  'email-unverified': (upstream) => ({
    title: 'Account not linked',
    message: `An account with your email address already exists here, and ${upstream.displayName} did not confirm that the address is yours, so the two were not linked. Sign in with your username and password, or ask the operator of this sign-in service.`,
    reason: 'access_denied',
    status: 409,
  }),
  'email-lookalike': (upstream) => ({
    title: 'Account not linked',
    message: `An account here has an email address that apps could take for yours (it differs only in letter case, character width or invisible characters), so no account was made with it and nothing was linked to ${upstream.displayName}. Sign in another way, or ask the operator of this sign-in service.`,
    reason: 'access_denied',
    status: 409,
  }),
  'email-linking-off': (upstream) => ({
    title: 'Account not linked',
    message: `An account with your email address already exists here. It is not linked to ${upstream.displayName}, and accounts are not linked by email for it. Sign in with your username and password, or ask the operator of this sign-in service.`,
    reason: 'access_denied',
    status: 409,
  }),
};

/** Seconds a sign-in told to try again (its address claimed by another at the moment) is told to wait. */
const BUSY_RETRY_AFTER = 5;

/** Another sign-in or a new account with the same address held it all the while this one waited (links.ts `busy`): nothing was made or linked. */
const busy = (upstream: Upstream): Failure => ({
  title: 'Try again',
  message: `Another sign-in with your email address was being completed here at the same moment, so this sign-in with ${upstream.displayName} did not finish. Nothing was changed. Go back and try again.`,
  reason: 'temporarily_unavailable',
  status: 503,
});

/**
 * Our claims from the upstream's, through the upstream's mapping; values of the wrong type are left
 * out. An upstream added with email domains (--domain) vouches for addresses at those domains only:
 * another domain's address is taken unverified (an upstream where people, or their tenant's admins,
 * set any address would otherwise vouch for addresses it does not own: linking, apps' email_verified).
 */
function mapClaims(upstream: Upstream, { claims: from, sources }: Pick<SignedIn, 'claims' | 'sources'>): Claims {
  const claims: Record<string, unknown> = {};
  for (const ours of MAPPED_CLAIMS) {
    const value = from[upstream.claims[ours]];
    if (ours === 'email_verified' ? typeof value === 'boolean' : typeof value === 'string' && value.length <= 256) claims[ours] = value;
  }
  // An address is an address: "bob@corp.example " (a space), "bob@corp.example." (the root's dot),
  // '"bob"@corp.example', "bob@corp。example" (an ideographic full stop, a dot to IDNA), "Bob
  // <bob@corp.example>" are the same mailbox to an app that trims, unquotes or maps it, but not to the
  // lookalike check (emailFold), so an upstream vouching for one made a second person with bob's
  // verified address (second factors pass of 2026-12-06). What is not a plain address is not taken.
  if (typeof claims.email === 'string' && !PLAIN_ADDRESS.test(claims.email)) delete claims.email;
  // email_verified speaks of the address beside it: read from the source the email came from (the ID
  // token's when it names one), never the other's (userinfo vouching for another address than the
  // ID token names, which says nothing of it, made that address verified).
  const emailSource = upstream.claims.email in sources.idToken ? sources.idToken : sources.userinfo;
  let verified = emailSource[upstream.claims.email_verified];
  // And the standard email_verified speaks of the standard email (OIDC Core §5.1), nothing else: an
  // address an operator maps from another claim (--claim email=preferred_username: a username, a upn,
  // anything the person or their tenant sets) is vouched for by it only when it is that same address.
  // An operator who maps email_verified to another claim too (--claim email_verified=…) pairs the two.
  if (verified === true && upstream.claims.email_verified === 'email_verified' && emailSource.email !== claims.email) verified = false;
  // Said beside no address, it speaks of none: not of the address the account holds (an upstream with
  // --domain made an outside address verified by leaving it out, its own word taken for it).
  if ('email' in claims && typeof verified === 'boolean') claims.email_verified = verified;
  else delete claims.email_verified;
  if (claims.email && claims.email_verified === undefined) claims.email_verified = false;
  if (typeof claims.email === 'string' && upstream.domains.length && !upstream.domains.includes(emailDomain(claims.email) ?? '')) claims.email_verified = false;
  return claims as Claims;
}

/**
 * A plain address (RFC 5322 §3.4.1 addr-spec, as a person writes one; RFC 6531 letters of any script):
 * a dot-atom local part and a domain of two labels or more, no quotes, comments, spaces, display name
 * or trailing dot.
 */
const PLAIN_ADDRESS = /^[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+(?:\.[\p{L}\p{M}\p{N}!#$%&'*+/=?^_`{|}~-]+)*@(?:[\p{L}\p{N}](?:[\p{L}\p{M}\p{N}-]*[\p{L}\p{M}\p{N}])?\.)+[\p{L}\p{N}](?:[\p{L}\p{M}\p{N}-]*[\p{L}\p{M}\p{N}])?$/u;

/** A request's max_age in seconds as oidc-provider takes it (checkMaxAge: a non-negative safe integer once a number); undefined for none. */
function requestedMaxAge(value: unknown): number | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const seconds = +value;
  return Number.isSafeInteger(seconds) && seconds >= 0 ? seconds : undefined;
}

/** The domain of an address (its part after the one @), lowercased; undefined for what is not an address. */
function emailDomain(email: string): string | undefined {
  return /^[^@\s]+@([^@\s]+)$/.exec(email)?.[1]?.toLowerCase();
}

/** The sign-in an upstream's error page is of: its uid, and its device code when a device's. */
type SignInAt = Pick<Interaction, 'uid' | 'deviceCode'>;

export function upstreamStep(steps: Interactions, options: UpstreamStepOptions) {
  const { upstreams, clients, pending, links, federated, sessions, logout, logoutTokens, grants, logger, stateTtl } = options;
  const { providers, csrf } = steps;

  /** An error page with the way back to the login page of the sign-in `at` and, to give up, back to the app (a device's: telling the device). */
  function fail(ctx: Context, at: SignInAt, failure: Failure): void {
    ctx.status = failure.status;
    ctx.type = 'html';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = render('upstream-error', {
      title: failure.title,
      message: failure.message,
      back: `/interaction/${at.uid}`,
      cancel: `/interaction/${at.uid}/upstream-cancel`,
      csrf: csrf.token(at.uid),
      reason: failure.reason,
      device: Boolean(at.deviceCode),
      requestId: ctx.state.requestId,
    });
  }

  /** The upstream (undefined: none), or false when its secret cannot be opened: the page is answered and the log says why. */
  async function readable(ctx: Context, at: SignInAt, id: string): Promise<Upstream | undefined | false> {
    try {
      return await upstreams.find(id);
    } catch (error) {
      if (!(error instanceof UpstreamUnreadable)) throw error;
      logger.error(
        { event: 'upstream.unreadable', upstream: id, err: error.message, hint: 'give the server the KEYS_SECRETS that sealed it (keys.secrets: the first seals, all open), or remove the upstream and add it again' },
        'upstream client secret unreadable',
      );
      fail(ctx, at, unreadable(error.upstream));
      return false;
    }
  }

  /** To the upstream, with a fresh pending sign-in. */
  async function start(ctx: Context, interaction: Interaction, id: string): Promise<void> {
    const upstream = await readable(ctx, interaction, id);
    if (upstream === false) return;
    if (!upstream) {
      // The request's own words are not repeated on our page (it is the request's `upstream`, or a login_hint's domain's).
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'the upstream provider asked for is not one this service offers' });
      return;
    }
    if (interaction.prompt.name !== 'login') {
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this sign-in request is not waiting for a sign-in' });
      return;
    }
    let started: Awaited<ReturnType<UpstreamClients['start']>>;
    try {
      const { login_hint: hint, max_age: maxAge } = interaction.params;
      const prompt = await requestedPrompt(interaction);
      // Any max_age goes on to the upstream, whose auth_time is then checked against it: its session
      // of hours ago is not a sign-in of now (the ID token's auth_time is the moment we finish). Read
      // as the engine reads it (any spelling of a whole number, " 60", "60.0", "6e1"), since the
      // engine does not weigh it again as the sign-in resumes: one read as none here let an upstream
      // session of hours ago through an app's max_age=60.0 (tenth pass over second factors and upstreams).
      const seconds = requestedMaxAge(maxAge);
      // A fresh sign-in asked of us (an app's prompt=login or max_age=0, the account page's "sign in
      // again") is asked of the upstream too, so its session alone does not answer for the person.
      // So is the sign-in that confirms a link offered by email (link-confirmation.ts): it makes another
      // provider's identity a way into this account, and it is the account's person's to make by
      // signing in now, as a password typed or a passkey verified is. That provider's session alone (a
      // shared browser whose person signed out of Latchkey but not of it) joined a second person's
      // identity to the first one's account, with no one asked anything (fourteenth fresh-eyes passes).
      const fresh = (typeof prompt === 'string' && prompt.split(' ').includes('login')) || seconds === 0 || offeredLink(interaction) !== undefined;
      started = await clients.start(upstream, typeof hint === 'string' && hint.length <= 256 ? hint : undefined, fresh, seconds);
    } catch (error) {
      if (!(error instanceof UpstreamUnavailable)) throw error;
      logger.warn({ event: 'upstream.unavailable', upstream: id, err: error.cause }, 'upstream provider unavailable');
      return fail(ctx, interaction, unavailable(upstream));
    }
    const { url, pending: p } = started;
    await pending.save(p.state, { upstream: id, issuer: upstream.issuer, made: upstream.made ?? '', uid: interaction.uid, nonce: p.nonce, verifier: p.verifier, ...(p.maxAge !== undefined && { maxAge: p.maxAge }), ...(p.fresh && { fresh: true, startedAt: p.startedAt }) });
    ctx.cookies.set(STATE_COOKIE, p.state, { path: '/upstream/', httpOnly: true, sameSite: 'lax', signed: true, maxAge: stateTtl * 1000, overwrite: true });
    ctx.set('Cache-Control', 'no-store');
    ctx.redirect(url.href);
  }

  /**
   * The request's prompt; a device's is its device code's. The engine keeps with a device
   * authorization the prompt=login it makes of max_age=0, but leaves prompt out of the parameters
   * at /device, where its sign-in happens (patches/device-fresh-login.ts): a device asking for a
   * fresh sign-in took an upstream's session of hours ago for one (tenth pass over second factors
   * and upstreams).
   */
  async function requestedPrompt(interaction: Interaction): Promise<unknown> {
    if (!interaction.deviceCode) return interaction.params.prompt;
    return ((await providers.current.DeviceCode.find(interaction.deviceCode))?.params as { prompt?: unknown } | undefined)?.prompt;
  }

  /**
   * GET /interaction/:uid with the `upstream` parameter, or a login_hint whose email domain an
   * upstream signs in: straight to that upstream. True when it answered.
   */
  async function direct(ctx: Context, interaction: Interaction): Promise<boolean> {
    if (interaction.prompt.name !== 'login' || offeredLink(interaction)) return false;
    const { [UPSTREAM_PARAMETER]: named, login_hint: hint } = interaction.params;
    const id = typeof named === 'string' && named ? named : typeof hint === 'string' ? (await upstreams.forEmail(hint))?.id : undefined;
    if (!id) return false;
    await start(ctx, interaction, id);
    return true;
  }

  async function callback(ctx: Context): Promise<void> {
    ctx.set('Cache-Control', 'no-store');
    const id = ctx.params.id!;
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    const bound = ctx.cookies.get(STATE_COOKIE, { signed: true });
    if (!state || state !== bound) {
      logger.warn({ event: 'upstream.state_mismatch', upstream: id }, 'upstream callback refused: state does not match this browser');
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this answer from the sign-in provider does not belong to a sign-in started in this browser' });
      return;
    }
    const taken = await pending.take(state);
    // Cleared once the state is taken, not before: a store outage at the take (503) leaves this
    // browser able to retry the same answer once the store is back.
    ctx.cookies.set(STATE_COOKIE, null, { path: '/upstream/', httpOnly: true, sameSite: 'lax', signed: true });
    if (taken === 'spent' || taken === 'unknown' || taken.upstream !== id) {
      logger.warn({ event: 'upstream.state_refused', upstream: id, outcome: typeof taken === 'string' ? taken : 'other-upstream' }, 'upstream callback refused');
      respondWithError(ctx, 400, { error: 'session_not_found', error_description: taken === 'spent' ? 'this answer from the sign-in provider was already used' : 'this sign-in expired or was not started here' });
      return;
    }
    const provider = providers.current;
    // The state cookie is path-scoped (/upstream/), so a sibling subdomain can plant it: the sign-in must be this browser's own.
    if (!startedInThisBrowser(ctx, provider.issuer, taken.uid)) {
      logger.warn({ event: 'upstream.state_refused', upstream: id, outcome: 'other-browser' }, 'upstream callback refused');
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this answer from the sign-in provider does not belong to a sign-in started in this browser' });
      return;
    }
    const interaction = await provider.Interaction.find(taken.uid);
    const at = interaction ?? { uid: taken.uid };
    const upstream = await readable(ctx, at, id);
    if (upstream === false) return;
    // A result is a sign-in done already; a link offered (link-confirmation.ts) may be followed by another try.
    // The upstream removed, or its id given to another issuer since the person was sent to the first
    // one, is no upstream for this sign-in: its code and our PKCE verifier went to the new provider's
    // token endpoint, and the sign-in went on under the new one's trust (fourteenth pass over upstreams).
    // Nor the same provider removed and added again: the removal ended what it signed in, and a sign-in
    // begun before it is not made whole by the addition after (sixteenth passes, h15; as a password
    // verified before a disable is not by the enable).
    const madeAgain = taken.made !== undefined && upstream !== undefined && taken.made !== (upstream.made ?? '');
    if (!interaction || (interaction.result && !offeredLink(interaction)) || !upstream || (taken.issuer !== undefined && taken.issuer !== upstream.issuer) || madeAgain) {
      respondWithError(ctx, 400, { error: 'session_not_found', error_description: 'the sign-in request expired or was already completed' });
      return;
    }
    let signedIn: Awaited<ReturnType<UpstreamClients['finish']>>;
    try {
      signedIn = await clients.finish(upstream, new URL(ctx.href), { state, nonce: taken.nonce, verifier: taken.verifier, ...(taken.maxAge !== undefined && { maxAge: taken.maxAge }), ...(taken.fresh && { fresh: true, ...(taken.startedAt !== undefined && { startedAt: taken.startedAt }) }) });
    } catch (error) {
      if (error instanceof UpstreamUnavailable) {
        logger.warn({ event: 'upstream.unavailable', upstream: id, err: error.cause }, 'upstream provider unavailable');
        return fail(ctx, at, unavailable(upstream));
      }
      if (error instanceof UpstreamRefused) {
        logger.warn({ event: 'upstream.refused', upstream: id, reason: (error.cause as Error | undefined)?.message }, 'upstream sign-in refused');
        return fail(ctx, at, refused(upstream));
      }
      throw error;
    }
    const claims = mapClaims(upstream, signedIn);
    const outcome = await links.signIn(upstream, signedIn.sub, claims);
    if ('refused' in outcome) {
      logger.info({ event: 'upstream.link_refused', upstream: id, reason: outcome.refused }, 'upstream sign-in not linked');
      return fail(ctx, at, REFUSALS[outcome.refused](upstream));
    }
    if ('busy' in outcome) {
      logger.warn({ event: 'upstream.email_claim_held', upstream: id }, 'upstream sign-in not finished: its email address stayed claimed by another sign-in');
      ctx.set('Retry-After', String(BUSY_RETRY_AFTER));
      return fail(ctx, at, busy(upstream));
    }
    if ('confirm' in outcome) {
      // The upstream's word is not the account: its person signs in to the account itself to link it.
      logger.info({ event: 'upstream.link_offered', upstream: id, sub: outcome.confirm.sub }, 'upstream sign-in waits for the local account to link');
      interaction.result = offeredLinkResult({ upstream: id, upstreamSub: signedIn.sub, issuer: upstream.issuer, made: upstream.made ?? '', sub: outcome.confirm.sub, displayName: upstream.displayName, claims });
      await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
      ctx.status = 303;
      ctx.redirect(`/interaction/${interaction.uid}`);
      return;
    }
    logger.info({ event: 'login.succeeded', sub: outcome.account.sub, upstream: id, linked: outcome.link.how }, 'login succeeded through upstream');
    // This request carries no interaction cookie (it is scoped to /interaction/<uid>), the pending
    // sign-in bound it instead: the first factor is recorded here, and the interaction page, which
    // has the cookie, goes on from it (a second factor, or the end of the sign-in).
    interaction.result = firstFactorResult({
      sub: outcome.account.sub,
      username: outcome.account.username,
      remember: false,
      method: 'federated',
      upstream: { upstream: id, sub: signedIn.sub, sid: signedIn.sid, idToken: signedIn.idToken, at: Date.now(), made: upstream.made ?? '', ...(outcome.link.made !== undefined && { link: outcome.link.made }), ...(signedIn.authTime !== undefined && { authTime: signedIn.authTime }), ...(signedIn.ageUnknown && { ageUnknown: true }) },
      // Signing in to an offered account through its own link is signing in to it: the offer goes on,
      // when this sign-in was asked of the upstream as a fresh one (start: every one begun once the
      // offer was made is). One begun before the offer, answered from that upstream's session and
      // finished after it (its state cookie put back), confirms nothing.
      ...(taken.fresh ? linkFor(interaction, outcome.account.sub) : {}),
    });
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    ctx.status = 303;
    ctx.redirect(`/interaction/${interaction.uid}`);
  }

  async function backchannelLogout(ctx: Context): Promise<void> {
    ctx.set('Cache-Control', 'no-store');
    const refuse = (description: string) => {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: description };
    };
    // The upstream retries a logout it was not answered (Back-Channel Logout 1.0 §2.8): told when, as for a store outage.
    const unavailable = (description: string, retryAfter = RETRY_AFTER_SECONDS) => {
      ctx.status = 503;
      ctx.set('Retry-After', String(retryAfter));
      ctx.body = { error: 'temporarily_unavailable', error_description: description };
    };
    const upstream = await upstreams.find(ctx.params.id!).catch((error: unknown) => {
      if (!(error instanceof UpstreamUnreadable)) throw error;
      logger.error({ event: 'upstream.unreadable', upstream: ctx.params.id, err: error.message }, 'upstream client secret unreadable');
      return false as const;
    });
    if (upstream === false) return unavailable('this upstream cannot be used now');
    const token = field((ctx.request.body ?? {}) as Record<string, string>, 'logout_token');
    if (!upstream || !token) return refuse('a logout_token from a known upstream is required');
    let named: VerifiedLogoutToken;
    try {
      named = await clients.verifyLogoutToken(upstream, token);
    } catch (error) {
      if (error instanceof UpstreamUnavailable) {
        logger.warn({ event: 'upstream.unavailable', upstream: upstream.id, err: error.cause }, 'upstream keys unreadable for a logout token');
        return unavailable('the upstream keys could not be read', error.retryAfter);
      }
      if (!(error instanceof UpstreamRefused)) throw error;
      logger.warn({ event: 'upstream.logout_refused', upstream: upstream.id, reason: error.message }, 'upstream logout token refused');
      return refuse(error.message);
    }
    if (await logoutTokens.spent(upstream.id, named.jti)) {
      logger.warn({ event: 'upstream.logout_refused', upstream: upstream.id, reason: 'replayed jti' }, 'upstream logout token refused');
      return refuse('this logout token was used already (jti)');
    }
    // First, for a sign-in it vouched for that has no session yet (waiting for its second factor).
    await federated.loggedOut(upstream.id, named);
    const provider = providers.current;
    let ended = 0;
    for (const uid of await federated.sessionsOf(upstream.id, named)) {
      const session = await provider.Session.findByUid(uid);
      if (session?.accountId) {
        // As the person signing out there would: the session's grants without offline access go too
        // (Back-Channel Logout §2.7), so its access tokens stop working, not only its cookie.
        await sessions.signOutSession(session, grants);
        ended += 1;
      }
      await federated.forget(uid);
    }
    // Spent only now: a failure above leaves the token to be sent again, which ends what this try did not (logout-tokens.ts).
    await logoutTokens.spend(upstream.id, named.jti, named.acceptedUntil);
    logger.info({ event: 'upstream.logout', upstream: upstream.id, ended }, 'upstream back-channel logout');
    ctx.status = 200;
    ctx.body = '';
  }

  const form = formBody('16kb');

  /** Routes under /interaction (mounted on the interaction router). */
  function interactionRoutes(router: Router): void {
    router.post('/:uid/upstream/:id', form, async (ctx) => {
      const found = await steps.submitted(ctx);
      if (found) await start(ctx, found.interaction, ctx.params.id!);
    });
    router.post('/:uid/upstream-cancel', form, async (ctx) => {
      const found = await steps.submitted(ctx);
      if (!found) return;
      const reason = field(found.body, 'reason');
      await providers.current.interactionFinished(
        ctx.req,
        ctx.res,
        {
          error: CANCEL_REASONS.has(reason) ? reason : 'access_denied',
          error_description: reason === 'temporarily_unavailable' ? 'the upstream identity provider is unavailable' : 'the sign-in through the upstream identity provider did not complete',
        },
        { mergeWithLastSubmission: false },
      );
      ctx.respond = false;
    });
  }

  /** Routes under /upstream (the upstream's callback and back-channel logout). */
  function outerRoutes(): Middleware {
    const router = new Router({ prefix: '/upstream' });
    router.get('/:id/callback', callback);
    router.post('/:id/backchannel-logout', form, backchannelLogout);
    router.get('/:id/signed-out', async (ctx) => {
      ctx.set('Cache-Control', 'no-store');
      const destination = await logout.destination(typeof ctx.query.state === 'string' ? ctx.query.state : '');
      if (destination) return ctx.redirect(destination);
      const provider = providers.current;
      const body = await signedOutPage(provider, ctx, `${ctx.origin}${provider.pathFor('end_session')}`);
      ctx.type = 'html';
      ctx.body = body;
    });
    return routesWithAllow(router);
  }

  return { direct, interactionRoutes, outerRoutes };
}

