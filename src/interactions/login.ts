/**
 * The login step: the password form, and its submission checked against the brute-force
 * throttle. A correct password is a first factor: what follows it (a second factor, or the end of
 * the sign-in with amr pwd) is second-factor.ts's afterFirstFactor.
 */
import type { Context } from 'koa';
import type { Account, Accounts } from '../accounts/accounts.js';
import { findWithSecondFactors, type SecondFactorSummary } from '../accounts/second-factors.js';
import type { LoginThrottle } from '../accounts/throttle.js';
import { respondWithError } from '../http/errors.js';
import { render } from '../http/views.js';
import type { Logger } from '../ops/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { field, type Form, type Interaction, type Interactions } from './interaction.js';
import { linkNotice, offeredLink } from './link-confirmation.js';

/** "30 seconds", "2 minutes": how long a pause lasts, in words. */
function duration(seconds: number): string {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minutes`;
}

/**
 * The login page, with what was typed and why it failed, if it did, and the upstream link waiting
 * for this sign-in (link-confirmation.ts) on every showing, a failed try's too.
 */
export async function showLogin(
  { csrf, clientBranding, loginPageExtras }: Interactions,
  ctx: Context,
  interaction: Interaction,
  state: { error?: string; username?: string; remember?: boolean } = {},
): Promise<void> {
  // The client and what other sign-in ways add (a passkey challenge, the upstreams' buttons) are read together.
  const [client, extras] = await Promise.all([clientBranding(ctx, interaction), loginPageExtras(interaction)]);
  const offer = offeredLink(interaction);
  ctx.type = 'html';
  ctx.body = render('login', {
    title: 'Sign in',
    client,
    action: `/interaction/${interaction.uid}/login`,
    abort: `/interaction/${interaction.uid}/abort`,
    // A device's sign-in has no application page to go back to: cancelling tells the device (as mfa-required does).
    device: Boolean(interaction.deviceCode),
    csrf: csrf.token(interaction.uid),
    username: state.username ?? (typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : ''),
    remember: state.remember ?? false,
    error: state.error,
    // What the link waiting for this sign-in means now (upstream.ts upstreamChoices, one of the extras, overrides it).
    notice: offer && linkNotice(offer),
    // "Continue with <upstream>" buttons: upstream.ts's upstreamChoices, one of the extras.
    upstreams: [],
    ...extras,
  });
}

/** POST /interaction/:uid/login */
export function submitLogin(
  steps: Interactions,
  {
    accounts,
    throttle,
    logger,
    metrics,
    afterPassword,
  }: {
    accounts: Accounts;
    throttle: LoginThrottle;
    logger: Logger;
    metrics: Metrics;
    /** What follows a right password (second-factor.ts): it answers the request. */
    afterPassword: (ctx: Context, interaction: Interaction, account: Account, remember: boolean, factors: SecondFactorSummary) => Promise<void>;
  },
) {
  const { submitted } = steps;
  return async (ctx: Context): Promise<void> => {
    const form = (ctx.request.body ?? {}) as Form;
    const username = field(form, 'username');
    const password = field(form, 'password');
    // The sign-in pauses, whose username it is, their account and their second factors (whether the
    // person has one decides what follows a right password) are read with the interaction (one round
    // trip), and used only once the form is known to be this interaction's.
    // The try is counted (attempt) with these reads, before the password is checked: passwords
    // sent at once are held to the limits too. A form refused before the check gives it back.
    const first = username && password ? Promise.all([throttle.attempt(username, ctx.ip), findWithSecondFactors(accounts, username)]) : undefined;
    first?.catch(() => {}); // awaited below, unless the form is refused before
    // (A try refused for a pause was given back by attempt() already.)
    const giveBack = () => first?.then(([pause]) => (pause ? undefined : throttle.notFailed(username, ctx.ip))).catch(() => {});
    const found = await submitted(ctx);
    if (!found) return void (await giveBack());
    const { interaction, body } = found;
    if (interaction.prompt.name !== 'login') {
      await giveBack();
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this sign-in request is not waiting for a password' });
      return;
    }
    const remember = field(body, 'remember') === 'yes';
    if (!first) {
      ctx.status = 400;
      return showLogin(steps, ctx, interaction, { error: 'Enter your username and password.', username, remember });
    }
    const paused = async (seconds: number) => {
      metrics.logins.inc({ outcome: 'throttled' });
      logger.warn({ event: 'login.throttled', ip: ctx.ip, client_id: interaction.params.client_id }, 'sign-in paused after repeated failures');
      ctx.status = 429;
      ctx.set('Retry-After', String(seconds));
      const error = `Too many failed attempts. For your security, sign-in is paused for ${duration(seconds)}; try again after that.`;
      return showLogin(steps, ctx, interaction, { error, username, remember });
    };
    // While paused, the password is not even checked: a right guess must look like a wrong one.
    const [pause, named] = await first;
    if (pause) return paused(pause);
    const factors = named?.factors;
    const account = await accounts.verifyFound(named?.account, password);
    if (!account) {
      logger.info({ event: 'login.failed', client_id: interaction.params.client_id }, 'login failed');
      metrics.logins.inc({ outcome: 'failure' });
      const started = await throttle.attemptFailed(username, ctx.ip);
      if (started) return paused(started);
      ctx.status = 401;
      return showLogin(steps, ctx, interaction, { error: 'That username and password do not match. Try again.', username, remember });
    }
    metrics.logins.inc({ outcome: 'success' });
    logger.info({ event: 'login.succeeded', sub: account.sub, client_id: interaction.params.client_id }, 'login succeeded');
    // The username's failure count is cleared only when the sign-in is complete (second-factor.ts):
    // a second factor still to come shares it, so a known password must not reset the count of wrong codes.
    // A right password is no failure: its try is given back (a second factor to come counts its own).
    await Promise.all([throttle.notFailed(username, ctx.ip), afterPassword(ctx, interaction, account, remember, factors!)]);
  };
}
