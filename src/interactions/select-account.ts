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

/** GET /interaction/:uid when choosingAccount. */
export async function showAccountChooser(steps: Interactions, ctx: Context, interaction: Interaction): Promise<void> {
  const account = await steps.activeAccount(ctx, interaction);
  if (!account) return;
  ctx.type = 'html';
  ctx.body = render('select-account', {
    title: 'Choose an account',
    client: await steps.clientBranding(ctx, interaction),
    name: account.claims.name ?? account.username,
    username: account.username,
    action: `/interaction/${interaction.uid}/continue`,
    another: `/interaction/${interaction.uid}/another`,
    abort: `/interaction/${interaction.uid}/abort`,
    csrf: steps.csrf.token(interaction.uid),
  });
}

/** POST /interaction/:uid/continue: the signed-in person is the account chosen. */
export function continueAsSignedIn(steps: Interactions) {
  return async (ctx: Context): Promise<void> => {
    const found = await steps.submitted(ctx);
    if (!found) return;
    const { interaction } = found;
    if (!choosingAccount(interaction)) {
      respondWithError(ctx, 400, { error: 'invalid_request', error_description: 'this sign-in request is not waiting for an account to be chosen' });
      return;
    }
    if (!(await steps.activeAccount(ctx, interaction))) return;
    await steps.providers.current.interactionFinished(ctx.req, ctx.res, { [SELECT_ACCOUNT]: { accountId: interaction.session!.accountId } }, { mergeWithLastSubmission: false });
    ctx.respond = false;
  };
}
