/**
 * The second-factor step. After a right first factor (a password, or a sign-in through an upstream
 * provider: upstream.ts), a person with a passkey or an authenticator app is asked for one of them,
 * or for a recovery code, before the sign-in finishes; the first step leaves in the interaction
 * (whose cookie only this browser holds, or which the upstream's one-time state bound) who passed
 * it. So an upstream account taken over does not bypass the factor the person set up here. A person
 * without one, facing a request that needs more than one factor (patches/step-up.ts), is asked to
 * set one up on their account page, or sends the app back unmet_authentication_requirements.
 *
 * Codes share the password's brute-force throttle (accounts/throttle.ts): a wrong code counts as a
 * failed sign-in of that username and address, and while paused no code is checked.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Context } from 'koa';
import type { Accounts } from '../accounts/accounts.js';
import type { Acr, FirstFactor, Method } from '../accounts/assurance.js';
import { hasSecondFactor, type SecondFactors, type SecondFactorSummary } from '../accounts/second-factors.js';
import type { TotpOutcome } from '../accounts/totp.js';
import type { LoginThrottle } from '../accounts/throttle.js';
import { respondWithError } from '../http/errors.js';
import { PASSKEY_SCRIPTS } from '../http/scripts.js';
import { render } from '../http/views.js';
import type { Logger } from '../ops/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { requiredAcrFor } from '../provider/patches/step-up.js';
import type { FederatedSession } from '../upstreams/sessions.js';
import { field, FIRST_FACTOR_PASSED, type Form, type Interaction, type Interactions } from './interaction.js';
import { validOffer, type OfferedLink } from './link-confirmation.js';
import { finishSignIn } from './sign-in-result.js';


export interface FirstFactorPassed {
  readonly sub: string;
  readonly username: string;
  readonly remember: boolean;
  readonly method: FirstFactor;
  /** For a sign-in through an upstream: which one, for the session's record (the `idp` claim, logout). */
  readonly upstream?: FederatedSession;
  /** For a password: which one it was (accounts.ts passwordStamp), checked again as the sign-in resumes. */
  readonly passwordStamp?: string;
  /** The upstream link this sign-in to the account makes once complete (link-confirmation.ts). */
  readonly link?: OfferedLink;
}

export interface SecondFactorOptions {
  readonly accounts: Accounts;
  readonly secondFactors: SecondFactors;
  readonly throttle: LoginThrottle;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** accounts.mfa.required: every sign-in needs a second factor. */
  readonly mfaRequired: boolean;
  /** Where a person sets up a second factor. */
  readonly accountPage: string;
}

/** Who passed the first step of this interaction, when someone did. */
export function firstFactorPassed(interaction: Interaction): FirstFactorPassed | undefined {
  return passedAs((interaction.result as Record<string, unknown> | undefined)?.[FIRST_FACTOR_PASSED] as Partial<FirstFactorPassed> | undefined);
}

/** A first factor as the interaction keeps it (what firstFactorPassed reads back). */
function passedAs(value: Partial<FirstFactorPassed> | undefined): FirstFactorPassed | undefined {
  if (!value || typeof value.sub !== 'string' || typeof value.username !== 'string') return undefined;
  const method: FirstFactor = value.method === 'federated' ? 'federated' : 'password';
  const link = validOffer(value.link);
  return {
    sub: value.sub,
    username: value.username,
    remember: value.remember === true,
    method,
    ...(value.upstream && { upstream: value.upstream }),
    ...(typeof value.passwordStamp === 'string' && { passwordStamp: value.passwordStamp }),
    ...(link?.sub === value.sub && { link }),
  };
}

/** Whether `passed` is the first factor the interaction holds already (its next step shown again), not one verified in its place. */
function holdsFirstFactor(interaction: Interaction, passed: FirstFactorPassed): boolean {
  const held = firstFactorPassed(interaction);
  return held !== undefined && isDeepStrictEqual(held, passedAs(passed));
}

/** The interaction result that records `passed` (for the upstream's callback, which saves it itself). */
export const firstFactorResult = (passed: FirstFactorPassed) => ({ [FIRST_FACTOR_PASSED]: passed });

async function requiredLevel({ providers }: Interactions, interaction: Interaction, mfaRequired: boolean) {
  const client = await providers.current.Client.find(String(interaction.params.client_id));
  return requiredAcrFor(client as never, interaction.params, mfaRequired);
}

/**
 * Whether the factors a person holds can reach `level` at all: any second factor reaches `mfa`, only
 * a passkey `phr` (codes are not offered then). One that cannot is offered "Return to the
 * application" (unmetRequirements) beside where to add what is missing: before the fourteenth
 * passes a person with an authenticator app but no passkey, asked for `phr`, could only cancel, and
 * the app was told access_denied ("the user cancelled") instead of unmet_authentication_requirements.
 */
export function factorsReach(summary: SecondFactorSummary, level: Acr): boolean {
  if (level === 'phr') return summary.passkeys.length > 0;
  return level === 'pwd' || hasSecondFactor(summary);
}

/**
 * After a right first factor: asks for a second factor when the person has one, asks them to set
 * one up when the request needs it and they have none, or finishes the sign-in with the first
 * factor alone. Where the first step was this very request (a password), the second-factor page
 * comes after a redirect (303), so reloading it does not send the password again. `factors`: the
 * person's second factors, when the first step read them with the account (login.ts).
 */
export function afterFirstFactor(steps: Interactions, options: SecondFactorOptions) {
  const { secondFactors, mfaRequired, accountPage } = options;
  return async (ctx: Context, interaction: Interaction, passed: FirstFactorPassed, factors?: SecondFactorSummary): Promise<void> => {
    // The first factor the interaction holds is the one its next step serves. One just verified in
    // its place (another tab of the same sign-in, still at the login page, given another person's
    // password) replaces it: the page named that person and checked the codes of the one before.
    const held = holdsFirstFactor(interaction, passed);
    if (hasSecondFactor(factors ?? (await secondFactors.summary(passed.sub)))) {
      if (held) return showSecondFactor(steps, options, ctx, interaction, passed);
      interaction.result = firstFactorResult(passed);
      await interaction.persist();
      ctx.status = 303;
      ctx.redirect(`/interaction/${interaction.uid}`);
      return;
    }
    if ((await requiredLevel(steps, interaction, mfaRequired)) === 'pwd') {
      // Complete with the first factor alone: only now is the username's failure count cleared
      // (sent with the engine's read of the interaction: one round trip).
      const finished = finishSignIn(steps, ctx, interaction, passed.sub, passed.remember, [passed.method], passed);
      if (passed.method === 'password') await Promise.all([options.throttle.succeeded(passed.username), finished]);
      return finished;
    }
    // Recorded, as for the second-factor page: the unmet answer is taken only at this step (unmetRequirements).
    if (!held) {
      interaction.result = firstFactorResult(passed);
      await interaction.persist();
    }
    return showEnrolmentNeeded(steps, ctx, interaction, accountPage);
  };
}

async function showEnrolmentNeeded(steps: Interactions, ctx: Context, interaction: Interaction, accountPage: string) {
  const { csrf, clientBranding } = steps;
  ctx.status = 403;
  ctx.type = 'html';
  ctx.body = render('mfa-required', {
    title: 'Second factor required',
    client: await clientBranding(ctx, interaction),
    accountPage,
    // A device's sign-in has no application page to go back to: the person starts again on the device.
    device: Boolean(interaction.deviceCode),
    unmet: `/interaction/${interaction.uid}/unmet`,
    csrf: csrf.token(interaction.uid),
    // An app asking a passkey (phr) is not met by an authenticator app: the page says which to add.
    passkey: (await requiredLevel(steps, interaction, false)) === 'phr',
  });
}

/** The second-factor page: the methods the person has that the request accepts. */
export async function showSecondFactor(
  steps: Interactions,
  { secondFactors, mfaRequired, accountPage }: Pick<SecondFactorOptions, 'secondFactors' | 'mfaRequired' | 'accountPage'>,
  ctx: Context,
  interaction: Interaction,
  passed: FirstFactorPassed,
  error?: string,
): Promise<void> {
  const summary = await secondFactors.summary(passed.sub);
  const level = await requiredLevel(steps, interaction, mfaRequired);
  // Only a passkey is phishing-resistant: a request that needs it is not offered codes.
  const codes = level !== 'phr';
  const passkey = summary.passkeys.length ? await secondFactors.passkeys.authenticationOptions(interaction.uid, passed.sub) : undefined;
  ctx.type = 'html';
  ctx.body = render('second-factor', {
    title: 'Confirm it is you',
    client: await steps.clientBranding(ctx, interaction),
    username: passed.username,
    // Whose page this is, sent back with each of its forms (answeredFor).
    for: passed.username,
    totp: codes && summary.totp !== undefined,
    // Codes kept without a passkey or an app sign nobody in (recovery-codes.ts use): not offered then.
    recovery: codes && hasSecondFactor(summary) && summary.recoveryCodesLeft > 0,
    passkey: passkey && { options: JSON.stringify(passkey), action: `/interaction/${interaction.uid}/passkey` },
    scripts: passkey ? PASSKEY_SCRIPTS : [],
    action: `/interaction/${interaction.uid}/second-factor`,
    abort: `/interaction/${interaction.uid}/abort`,
    // A device's sign-in has no application page to go back to: cancelling tells the device (as mfa-required does).
    device: Boolean(interaction.deviceCode),
    // Nothing the person holds reaches what the request needs: where to add it, and the way back that tells the app so.
    ...(!factorsReach(summary, level) && { accountPage, unmet: `/interaction/${interaction.uid}/unmet` }),
    csrf: steps.csrf.token(interaction.uid),
    error,
  });
}

/** POST /interaction/:uid/second-factor: an authenticator-app code (method=totp) or a recovery code (method=recovery). */
export function submitSecondFactor(steps: Interactions, options: SecondFactorOptions) {
  const { accounts, secondFactors, throttle, logger, metrics, mfaRequired } = options;
  return async (ctx: Context): Promise<void> => {
    const found = await steps.submitted(ctx);
    if (!found) return;
    const { interaction, body } = found;
    const passed = firstFactorPassed(interaction);
    if (interaction.prompt.name !== 'login' || !passed) {
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this sign-in request is not waiting for a second factor' });
      return;
    }
    const method = field(body, 'method');
    const code = field(body, 'code');
    const metricMethod = method === 'totp' ? 'totp' : 'recovery_code';
    if ((method !== 'totp' && method !== 'recovery') || !code) {
      ctx.status = 400;
      return showSecondFactor(steps, options, ctx, interaction, passed, 'Enter the code.');
    }
    if ((await requiredLevel(steps, interaction, mfaRequired)) === 'phr') {
      ctx.status = 400;
      return showSecondFactor(steps, options, ctx, interaction, passed, 'This application asks for a passkey.');
    }
    // Before anything is checked or counted.
    if (!answeredFor(body, passed)) return showMovedOn(steps, options, ctx, interaction, passed);
    const account = await accounts.find(passed.sub);
    // Disabled or removed since the first factor: the app is told (access_denied), not left waiting.
    if (!account || account.disabled) return steps.denied(ctx, interaction);
    // The try is counted before the code is checked: codes sent at once are held to the limit too.
    const pause = await throttle.attempt(passed.username, ctx.ip);
    if (pause) return paused(ctx, pause);
    // Past the person's budget of wrong codes since their last completed sign-in, an app's code is
    // not checked: the pauses only slow a thief holding the password, who would otherwise try codes
    // for ever. A recovery code (or a passkey) still signs in, which starts the count afresh.
    if ((await throttle.codeAttempt(passed.username)) && method === 'totp') {
      await Promise.all([throttle.notFailed(passed.username, ctx.ip), throttle.codeNotFailed(passed.username)]);
      metrics.secondFactors.inc({ method: metricMethod, outcome: 'throttled' });
      logger.warn({ event: 'second_factor.locked', sub: account.sub, client_id: interaction.params.client_id }, 'authenticator-app codes refused unchecked: too many wrong codes since the last sign-in');
      ctx.status = 403;
      return showSecondFactor(steps, options, ctx, interaction, passed, 'Too many wrong codes were typed for this account, so codes from your authenticator app are not accepted now. Use a recovery code or a passkey, or ask your administrator.');
    }

    const verified: TotpOutcome =
      method === 'totp' ? await secondFactors.totp.verify(account.sub, code, interaction.uid) : await spentRecoveryCode(secondFactors, account.sub, code, interaction.uid);
    const { outcome } = verified;
    if (outcome === 'unreadable') {
      await Promise.all([throttle.notFailed(passed.username, ctx.ip), throttle.codeNotFailed(passed.username)]);
      metrics.secondFactors.inc({ method: metricMethod, outcome: 'failure' });
      logger.error({ event: 'second_factor.unreadable', sub: account.sub }, 'authenticator-app secret sealed under a secret no longer in keys.secrets: reset it (latchkey users mfa reset)');
      ctx.status = 401;
      return showSecondFactor(steps, options, ctx, interaction, passed, 'Your authenticator app cannot be checked right now. Use another way, or ask your administrator.');
    }
    if (outcome !== 'ok') {
      metrics.secondFactors.inc({ method: metricMethod, outcome: outcome === 'replayed' ? 'replayed' : 'failure' });
      logger.info({ event: 'second_factor.failed', method: metricMethod, reason: outcome, sub: account.sub, client_id: interaction.params.client_id }, 'second factor refused');
      const started = await throttle.attemptFailed(passed.username, ctx.ip);
      if (started) return paused(ctx, started);
      ctx.status = 401;
      const error = outcome === 'replayed' ? 'That code was already used. Wait for the next one.' : 'That code is not right. Try again.';
      return showSecondFactor(steps, options, ctx, interaction, passed, error);
    }
    await throttle.succeededAttempt(passed.username, ctx.ip);
    metrics.secondFactors.inc({ method: metricMethod, outcome: 'success' });
    logger.info({ event: 'second_factor.succeeded', method: metricMethod, sub: account.sub, client_id: interaction.params.client_id }, 'second factor accepted');
    const methods: Method[] = [passed.method, method === 'totp' ? 'totp' : 'recovery-code'];
    const enrolment = verified.outcome === 'ok' ? verified.enrolment : undefined;
    await finishSignIn(steps, ctx, interaction, account.sub, passed.remember, methods, { ...passed, ...(method === 'totp' ? { totp: enrolment } : { recoveryCodes: enrolment }) });

    async function paused(ctx: Context, seconds: number) {
      metrics.secondFactors.inc({ method: metricMethod, outcome: 'throttled' });
      logger.warn({ event: 'second_factor.throttled', ip: ctx.ip, client_id: interaction.params.client_id }, 'second factor paused after repeated failures');
      ctx.status = 429;
      ctx.set('Retry-After', String(seconds));
      return showSecondFactor(steps, options, ctx, interaction, passed!, `Too many failed attempts. Try again in ${seconds} seconds.`);
    }
  };
}

/**
 * Whether a second-factor form came from a page naming the person who holds the interaction's first
 * factor now. A page shown before another tab of the same sign-in passed the first factor as someone
 * else names the person before: its code or passkey would be checked against the other person's.
 */
export const answeredFor = (body: Form, passed: FirstFactorPassed) => field(body, 'for') === passed.username;

/** What a form from such a page gets: nothing checked or counted, and the page of the person the sign-in holds now. */
export function showMovedOn(steps: Interactions, options: Pick<SecondFactorOptions, 'secondFactors' | 'mfaRequired' | 'accountPage'>, ctx: Context, interaction: Interaction, passed: FirstFactorPassed) {
  ctx.status = 409;
  return showSecondFactor(steps, options, ctx, interaction, passed, `This sign-in went on as ${passed.username} in another tab or window. If that is you, confirm it here; if not, cancel and start again.`);
}

/** A recovery code, answered as an app's code is: ok with the stamp of the set it was spent from, or wrong. */
async function spentRecoveryCode(factors: SecondFactors, sub: string, code: string, uid: string): Promise<TotpOutcome> {
  const set = await factors.recoveryCodes.use(sub, code, uid);
  return set ? { outcome: 'ok', enrolment: set } : { outcome: 'wrong' };
}

/**
 * POST /interaction/:uid/unmet: the person will not set up a second factor now; the app is told.
 * Only where it is offered: someone passed the first factor and the request needs a level their
 * factors cannot reach (none at all: the enrolment prompt of afterFirstFactor; no passkey for a
 * request asking one: the second-factor page, factorsReach); anywhere else the app would be told a
 * false reason.
 */
export function unmetRequirements(steps: Interactions, { secondFactors, mfaRequired }: Pick<SecondFactorOptions, 'secondFactors' | 'mfaRequired'>) {
  const { providers, submitted } = steps;
  return async (ctx: Context): Promise<void> => {
    const found = await submitted(ctx);
    if (!found) return;
    const { interaction } = found;
    const passed = firstFactorPassed(interaction);
    const offered =
      interaction.prompt.name === 'login' &&
      passed !== undefined &&
      !factorsReach(await secondFactors.summary(passed.sub), await requiredLevel(steps, interaction, mfaRequired));
    if (!offered) {
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this sign-in request is not waiting for a second factor to be set up' });
      return;
    }
    await providers.current.interactionFinished(
      ctx.req,
      ctx.res,
      { error: 'unmet_authentication_requirements', error_description: 'the application requires a second factor, which this account has not set up' },
      { mergeWithLastSubmission: false },
    );
    ctx.respond = false;
  };
}
