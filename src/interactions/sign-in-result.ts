/**
 * How every sign-in step ends: the login result oidc-provider records in the session, with the
 * `amr` and `acr` of the methods used (accounts/assurance.ts) and `auth_time` now.
 */
import type { Context } from 'koa';
import { assurance, type Method } from '../accounts/assurance.js';
import { CREDENTIAL_RESULT, type SessionCredential } from '../accounts/session-credentials.js';
import type { FederatedSession } from '../upstreams/sessions.js';
import type { Interactions } from './interaction.js';

/**
 * `upstream`: the upstream that signed the person in, recorded with the session (upstreams/sessions.ts);
 * `passkey`: the credential id of the passkey used. Both, with the methods, are recorded as the
 * session's credential (accounts/session-credentials.ts).
 */
export async function finishSignIn(
  { providers }: Interactions,
  ctx: Context,
  sub: string,
  remember: boolean,
  methods: Method[],
  upstream?: FederatedSession,
  passkey?: string,
): Promise<void> {
  const { acr, amr } = assurance(methods);
  const credential: SessionCredential = { methods, ...(passkey && { passkeys: [passkey] }), ...(upstream && { links: [`${upstream.upstream}:${upstream.sub}`] }) };
  const result = { login: { accountId: sub, remember, amr, acr }, [CREDENTIAL_RESULT]: credential, ...(upstream && { upstream }) };
  await providers.current.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.respond = false;
}
