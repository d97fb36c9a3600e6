/**
 * The passkey step: on the login page, sign-in with a passkey alone (a discoverable credential,
 * offered by the browser's autofill where it can, and by a button), so a person with only a passkey
 * never types a password; on the second-factor page, one of the person's own passkeys after their
 * password. The browser side is views/static/passkeys.js with @simplewebauthn/browser, both served
 * from ourselves (http/scripts.ts); the assertion comes back as a form field, with the CSRF token.
 */
import type { Context } from 'koa';
import type { Method } from '../accounts/assurance.js';
import type { SecondFactors } from '../accounts/second-factors.js';
import { respondWithError } from '../http/errors.js';
import { PASSKEY_SCRIPTS } from '../http/scripts.js';
import { field, type Interaction, type Interactions } from './interaction.js';
import { linkFor } from './link-confirmation.js';
import { showLogin } from './login.js';
import { answeredFor, firstFactorPassed, showMovedOn, showSecondFactor, type SecondFactorOptions } from './second-factor.js';
import { finishSignIn } from './sign-in-result.js';

/** The second-factor step's options (where to add a factor too: its page says so when the person's cannot reach what the app asks). */
type PasskeyOptions = SecondFactorOptions;

/** What the login page needs to offer a passkey: the ceremony's options, and where to send the assertion. */
export function passkeyOnLoginPage(secondFactors: SecondFactors) {
  return async (interaction: Interaction): Promise<Record<string, unknown>> => ({
    passkey: {
      options: JSON.stringify(await secondFactors.passkeys.authenticationOptions(interaction.uid)),
      action: `/interaction/${interaction.uid}/passkey`,
    },
    scripts: PASSKEY_SCRIPTS,
  });
}

/** POST /interaction/:uid/passkey (field `credential`: the assertion as JSON). */
export function submitPasskey(steps: Interactions, options: PasskeyOptions) {
  const { accounts, secondFactors, throttle, logger, metrics } = options;
  return async (ctx: Context): Promise<void> => {
    const found = await steps.submitted(ctx);
    if (!found) return;
    const { interaction, body } = found;
    if (interaction.prompt.name !== 'login') {
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this sign-in request is not waiting for a sign-in' });
      return;
    }
    const passed = firstFactorPassed(interaction);
    // A form of a page naming someone else (the login page's, or a second-factor page from before
    // another tab passed the first factor as another person): nothing is checked (second-factor.ts).
    if (passed && !answeredFor(body, passed)) return showMovedOn(steps, options, ctx, interaction, passed);
    let credential: unknown;
    try {
      credential = JSON.parse(field(body, 'credential'));
    } catch {
      credential = undefined;
    }
    const signedIn = credential === undefined ? undefined : await secondFactors.passkeys.authenticate(interaction.uid, credential, passed?.sub);
    const account = signedIn && (await accounts.find(signedIn.sub));
    // The person past the first factor was disabled or removed since: the app is told (access_denied).
    if (signedIn && passed && (!account || account.disabled)) return steps.denied(ctx, interaction);
    if (!signedIn || !account || account.disabled) {
      metrics.secondFactors.inc({ method: 'passkey', outcome: 'failure' });
      logger.info({ event: 'passkey.failed', client_id: interaction.params.client_id }, 'passkey refused');
      ctx.status = 401;
      const error = 'That passkey was not accepted. Try again, or use another way to sign in.';
      return passed ? showSecondFactor(steps, options, ctx, interaction, passed, error) : showLogin(steps, ctx, interaction, { error });
    }
    if (passed) await throttle.succeeded(passed.username);
    metrics.secondFactors.inc({ method: 'passkey', outcome: 'success' });
    logger.info({ event: 'passkey.succeeded', sub: account.sub, second_factor: Boolean(passed), client_id: interaction.params.client_id }, 'passkey accepted');
    const kind: Method = signedIn.passkey.deviceType === 'singleDevice' ? 'passkey-device-bound' : 'passkey-synced';
    await finishSignIn(steps, ctx, interaction, account.sub, passed?.remember ?? field(body, 'remember') === 'yes', passed ? [passed.method, kind] : [kind], { ...(passed ?? linkFor(interaction, account.sub)), passkey: signedIn.passkey.id });
  };
}
