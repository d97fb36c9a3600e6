/**
 * How every sign-in step ends: the login result oidc-provider records in the session, with the
 * `amr` and `acr` of the methods used (accounts/assurance.ts) and `auth_time` now.
 */
import type { Context } from 'koa';
import { assurance, type Method } from '../accounts/assurance.js';
import type { Interactions } from './interaction.js';

export async function finishSignIn({ providers }: Interactions, ctx: Context, sub: string, remember: boolean, methods: Method[]): Promise<void> {
  const { acr, amr } = assurance(methods);
  await providers.current.interactionFinished(ctx.req, ctx.res, { login: { accountId: sub, remember, amr, acr } }, { mergeWithLastSubmission: false });
  ctx.respond = false;
}
