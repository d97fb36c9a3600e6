/**
 * The account chooser of `prompt=select_account` (OpenID Connect Core §3.1.2.1), shown when a
 * person is signed in already and the login prompt's only reason is the selection
 * (provider/patches/select-account.ts): continue as that person, or use another account (the login
 * page of the same interaction: signing in as anyone is the choice), or cancel.
 */
import type { Context } from 'koa';
import { respondWithError } from '../http/errors.js';
import { render } from '../http/views.js';
import { SELECT_ACCOUNT } from '../provider/patches/select-account.js';
import type { Interaction, Interactions } from './interaction.js';

/** Whether this interaction waits for the person to choose an account, and nothing else. */
export function choosingAccount(interaction: Interaction): boolean {
  const { name, reasons } = interaction.prompt;
  return name === 'login' && reasons.length === 1 && reasons[0] === SELECT_ACCOUNT && Boolean(interaction.session?.accountId);
}

/**
 * The chooser's person was deleted or disabled since they signed in (a session the operator's
 * removal did not reach): no choice to offer. The same authorization request again, which ends
 * that session and shows the login form, instead of a dead end; for a client that must push its
 * requests (which cannot be sent again), the error page as before.
 */
async function startAgain(steps: Interactions, ctx: Context, interaction: Interaction): Promise<void> {
  const again = await steps.restartUrl(interaction);
  if (!again) {
    await steps.activeAccount(ctx, interaction);
    return;
  }
  ctx.status = 303;
  ctx.redirect(again);
}

/** GET /interaction/:uid when choosingAccount. */
export async function showAccountChooser(steps: Interactions, ctx: Context, interaction: Interaction): Promise<void> {
  const account = await steps.signedInAccount(interaction);
  if (!account) return startAgain(steps, ctx, interaction);
  ctx.type = 'html';
  ctx.body = render('select-account', {
    title: 'Choose an account',
    client: await steps.clientBranding(ctx, interaction),
    name: account.claims.name ?? account.username,
    username: account.username,
    action: `/interaction/${interaction.uid}/continue`,
    another: `/interaction/${interaction.uid}/another`,
    abort: `/interaction/${interaction.uid}/abort`,
    // A device's sign-in has no application page to go back to: cancelling tells the device (as mfa-required does).
    device: Boolean(interaction.deviceCode),
    csrf: steps.csrf.token(interaction.uid),
  });
}

/** POST /interaction/:uid/continue: the signed-in person is the account chosen. */
export function continueAsSignedIn(steps: Interactions) {
  return async (ctx: Context): Promise<void> => {
    // The session ended since the chooser was shown (the person removed): the request again, at the login form.
    const found = await steps.submitted(ctx, true);
    if (!found) return;
    const { interaction } = found;
    if (!choosingAccount(interaction)) {
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this sign-in request is not waiting for an account to be chosen' });
      return;
    }
    if (!(await steps.signedInAccount(interaction))) return startAgain(steps, ctx, interaction);
    await steps.providers.current.interactionFinished(ctx.req, ctx.res, { [SELECT_ACCOUNT]: { accountId: interaction.session!.accountId } }, { mergeWithLastSubmission: false });
    ctx.respond = false;
  };
}
