/**
 * How every sign-in step ends: the login result oidc-provider records in the session, with the
 * `amr` and `acr` of the methods used (accounts/assurance.ts) and `auth_time` now (kept when the
 * consent page's resume signs the result in again), or when an upstream says its own sign-in was,
 * if earlier (provider/patches/sign-in-time.ts).
 */
import type { Context } from 'koa';
import { assurance, type Method } from '../accounts/assurance.js';
import { CREDENTIAL_RESULT, type SessionCredential } from '../accounts/session-credentials.js';
import type { FederatedSession } from '../upstreams/sessions.js';
import { SIGNED_IN_AT, SIGN_IN_AGE_UNKNOWN, verifiedNow } from '../provider/patches/sign-in-time.js';
import type { Interaction, Interactions } from './interaction.js';
import type { OfferedLink } from './link-confirmation.js';

/**
 * What a sign-in used besides its methods. With them, the session's credential
 * (accounts/session-credentials.ts), checked again as the sign-in resumes.
 */
export interface Used {
  /** The upstream that signed the person in, recorded with the session (upstreams/sessions.ts). */
  readonly upstream?: FederatedSession;
  /** The credential id of the passkey used. */
  readonly passkey?: string;
  /** Which password (accounts.ts passwordStamp), authenticator-app enrolment and set of recovery codes (credentials.ts enrolmentStamp) were verified. */
  readonly passwordStamp?: string;
  readonly totp?: string;
  readonly recoveryCodes?: string;
  /** An upstream link offered to this account (link-confirmation.ts): made now that the person signed in to it. */
  readonly link?: OfferedLink;
}

export async function finishSignIn(
  { providers, upstreamVouches, confirmLink }: Interactions,
  ctx: Context,
  /** The sign-in's interaction, as its step loaded it: when it began (`iat`), for the link's check. */
  interaction: Pick<Interaction, 'iat'>,
  sub: string,
  remember: boolean,
  methods: Method[],
  used: Used = {},
): Promise<void> {
  const { upstream, passkey, passwordStamp, totp, recoveryCodes, link } = used;
  if (upstream && !(await upstreamVouches(upstream))) {
    // Removed, or its session there logged out, while this sign-in waited (e.g. for its second factor): its word no longer counts.
    await providers.current.interactionFinished(
      ctx.req,
      ctx.res,
      { error: 'access_denied', error_description: 'the upstream identity provider of this sign-in was removed, or signed the person out' },
      { mergeWithLastSubmission: false },
    );
    ctx.respond = false;
    return;
  }
  const { acr, amr } = assurance(methods);
  const credential: SessionCredential = {
    methods,
    ...(passkey && { passkeys: [passkey] }),
    ...(upstream && { links: [`${upstream.upstream}:${upstream.sub}`] }),
    // Which upstream session it took the word of: a logout of it before the resume stops the resume (session-credentials.ts).
    ...((passwordStamp || totp || recoveryCodes || upstream) && {
      verified: { password: passwordStamp, totp, recoveryCodes, ...(upstream && { upstream: { upstream: upstream.upstream, sub: upstream.sub, sid: upstream.sid, at: upstream.at, ...(upstream.made !== undefined && { made: upstream.made }), ...(upstream.link !== undefined && { link: upstream.link }) } }) },
    }),
  };
  // The link is made by a sign-in its resume will take (the same check, begun when the interaction
  // was: the step's own interaction's start, not one read again here, which another tab's resume at
  // another instance may have consumed meanwhile and so checked the sign-in without its start:
  // seventeenth passes, review).
  if (link?.sub === sub) await confirmLink(link, sub, credential, interaction.iat);
  // A first factor an upstream performed earlier (its session of hours ago) makes this sign-in no fresher than that (sign-in-time.ts).
  const signedInAt = upstream?.authTime;
  // One that said no time and owed none may be of any age: it meets no max_age or recent-sign-in check (sign-in-time.ts).
  const ageUnknown = upstream?.ageUnknown === true;
  // When its last factor was verified: now, however long a consent page that follows stays open (sign-in-time.ts).
  const result = { login: { accountId: sub, remember, amr, acr, ...verifiedNow(), ...(signedInAt !== undefined && { [SIGNED_IN_AT]: signedInAt }), ...(ageUnknown && { [SIGN_IN_AGE_UNKNOWN]: true }) }, [CREDENTIAL_RESULT]: credential, ...(upstream && { upstream }) };
  await providers.current.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.respond = false;
}
