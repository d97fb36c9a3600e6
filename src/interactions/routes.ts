/**
 * What a person sees during an authorization request: the login and consent pages, and cancel.
 * oidc-provider decides which prompt is due; these routes render it and report the result back.
 *
 * Every form carries a CSRF token that is an HMAC of the interaction's uid, so it is bound to
 * that interaction and cannot be made without the server's key.
 */
import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { underPrefix } from '../http/under-prefix.js';
import { routesWithAllow } from '../http/method-not-allowed.js';
import { passwordStamp, type Account, type Accounts } from '../accounts/accounts.js';
import type { LoginThrottle } from '../accounts/throttle.js';
import type { SecondFactors, SecondFactorSummary } from '../accounts/second-factors.js';
import type { Logger } from '../ops/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { Consents } from '../provider/consents.js';
import type { ProviderInService } from '../provider-in-service.js';
import { confirmConsent, showConsent } from './consent.js';
import { interactions, type Interaction } from './interaction.js';
import { linkFor, type OfferedLink } from './link-confirmation.js';
import { accountNowOf, credentialsHeld, type SessionCredential } from '../accounts/session-credentials.js';
import { showLogin, submitLogin } from './login.js';
import { upstreamChoices, upstreamStep, type UpstreamStepOptions } from './upstream.js';
import type { FederatedSession } from '../upstreams/sessions.js';
import { passkeyOnLoginPage, submitPasskey } from './passkey.js';
import { afterFirstFactor, firstFactorPassed, submitSecondFactor, unmetRequirements } from './second-factor.js';
import { choosingAccount, continueAsSignedIn, showAccountChooser } from './select-account.js';
import { formBody } from '../http/bodies.js';

interface Options {
  /** The provider in service, read per request (it is replaced when the key ring changes). */
  readonly providers: ProviderInService;
  readonly accounts: Accounts;
  readonly throttle: LoginThrottle;
  readonly consents: Consents;
  readonly logger: Logger;
  /** The running server's: counts sign-ins by outcome. */
  readonly metrics: Metrics;
  /** Secret for CSRF tokens. */
  readonly csrfKey: string;
  /** Passkeys, authenticator apps, recovery codes (the second-factor and passkey steps). */
  readonly secondFactors: SecondFactors;
  /** accounts.mfa.required */
  readonly mfaRequired: boolean;
  /** Where a person sets up a second factor. */
  readonly accountPage: string;
  /** Signing in through upstream providers (upstream.ts). */
  readonly upstream: Omit<UpstreamStepOptions, 'logger'>;
  /** Whether a client registered itself (store/adapter-indexes.ts managesItself): the pages say its name is its own word. */
  readonly managesItself: (clientId: string) => Promise<boolean>;
}

/** The interaction routes, and the upstream step's routes outside /interaction (its callback, its logout). */
export function interactionRoutes(options: Options): Middleware[] {
  const { providers, accounts, throttle, consents, logger, metrics, csrfKey, secondFactors, upstream: upstreamOptions } = options;
  const router = new Router({ prefix: '/interaction' });
  const form = formBody('16kb');
  const extras = [passkeyOnLoginPage(secondFactors), upstreamChoices(upstreamOptions.upstreams)];
  // The check the sign-in's resume makes (accounts/session-credentials.ts), made here before the link:
  // a sign-in its resume refuses (begun before the person was disabled and enabled again, or before
  // an operator set the password; a password changed or a second factor removed since it was
  // verified) made the link all the same (seventeenth passes, h2).
  const held = credentialsHeld(secondFactors.records, upstreamOptions.links, (id, issuer, made) => upstreamOptions.upstreams.offers(id, issuer, made), accountNowOf(accounts), (word) => upstreamOptions.federated.loggedOutSince(word));
  // An offered link is made only while its upstream is still configured, under the issuer that offered
  // it, as the addition that offered it (one removed since links nothing, added again or not:
  // seventeenth passes, h2), and by a sign-in that holds.
  // A sign-in whose start is not known is checked without the person's cutoff (credentialsHeld): it makes no link.
  const confirmLink = async (link: OfferedLink, sub: string, credential: SessionCredential, startedAt: unknown) => {
    const [offered, holds] = typeof startedAt !== 'number' ? [false, false] : await Promise.all([upstreamOptions.upstreams.offers(link.upstream, link.issuer, link.made), held(sub, credential, startedAt)]);
    if (!offered || !holds) {
      logger.info({ event: 'upstream.link_not_made', upstream: link.upstream, sub: link.sub }, 'upstream link not made: its upstream no longer offers it, or the sign-in no longer holds');
      return;
    }
    const made = await upstreamOptions.links.linkConfirmed(link.upstream, link.upstreamSub, link.sub, link.claims, link.issuer);
    logger.info({ event: made ? 'upstream.linked' : 'upstream.link_not_made', upstream: link.upstream, sub: link.sub }, made ? 'upstream link made after signing in to the account' : 'upstream link not made');
  };
  // The issuer its link records is the one that vouched for the sign-in (the callback made or followed the link).
  const upstreamVouches = async (signedIn: FederatedSession) =>
    (await upstreamOptions.upstreams.offers(signedIn.upstream, (await upstreamOptions.links.find(signedIn.upstream, signedIn.sub))?.iss, signedIn.made)) &&
    !(await upstreamOptions.federated.loggedOutSince(signedIn));
  const steps = interactions(providers, accounts, csrfKey, extras, upstreamVouches, confirmLink, options.managesItself);
  const { load, submitted } = steps;
  const upstream = upstreamStep(steps, { ...upstreamOptions, logger });
  const afterFirst = afterFirstFactor(steps, options);

  router.get('/:uid', async (ctx) => {
    const interaction = await load(ctx);
    if (!interaction) return;
    // A first factor passed (a password, or an upstream's sign-in): the second factor, or the end.
    const passed = firstFactorPassed(interaction);
    if (interaction.prompt.name === 'login' && passed) {
      // Disabled or removed since that first factor (an operator acting while the page is open): the app is told.
      const person = await accounts.find(passed.sub);
      if (!person || person.disabled) return steps.denied(ctx, interaction);
      return afterFirst(ctx, interaction, passed);
    }
    // Not straight to an upstream while a link it offered waits: the login page asks for the account's own sign-in.
    if (await upstream.direct(ctx, interaction)) return;
    // prompt=select_account with a person signed in: continue as them, or another account (select-account.ts).
    if (choosingAccount(interaction)) return showAccountChooser(steps, ctx, interaction);
    if (interaction.prompt.name === 'login') return showLogin(steps, ctx, interaction);
    return showConsent(steps, ctx, interaction, consents);
  });

  // The chooser's "use another account": the login page of the same interaction, where signing in chooses.
  router.get('/:uid/another', async (ctx) => {
    const interaction = await load(ctx);
    if (!interaction) return;
    if (!choosingAccount(interaction)) return ctx.redirect(`/interaction/${interaction.uid}`);
    return showLogin(steps, ctx, interaction);
  });
  router.post('/:uid/continue', form, continueAsSignedIn(steps));

  const afterPassword = (ctx: Context, interaction: Interaction, account: Account, remember: boolean, factors: SecondFactorSummary) =>
    afterFirst(ctx, interaction, { sub: account.sub, username: account.username, remember, method: 'password', passwordStamp: passwordStamp(account), ...linkFor(interaction, account.sub) }, factors);
  router.post('/:uid/login', form, submitLogin(steps, { accounts, throttle, logger, metrics, afterPassword }));
  router.post('/:uid/second-factor', form, submitSecondFactor(steps, options));
  router.post('/:uid/passkey', form, submitPasskey(steps, options));
  router.post('/:uid/unmet', form, unmetRequirements(steps, options));

  upstream.interactionRoutes(router);

  router.post('/:uid/confirm', form, confirmConsent(steps, consents));

  router.post('/:uid/abort', form, async (ctx) => {
    const found = await submitted(ctx);
    if (!found) return;
    await providers.current.interactionFinished(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'the user cancelled the request' },
      { mergeWithLastSubmission: false },
    );
    ctx.respond = false;
  });

  return [underPrefix('/interaction', routesWithAllow(router)), underPrefix('/upstream', upstream.outerRoutes())];
}
