/**
 * An `id_token_hint` names who is to sign in (OpenID Connect Core §3.1.2.1: "If the End-User
 * identified by the ID Token is logged in or is logged in by the request, then the Authorization
 * Server returns a positive response; otherwise, it SHOULD return an error, such as
 * login_required").
 *
 * oidc-provider validates the hint when the request arrives (checkIdTokenHint, at the authorization,
 * device authorization and PAR endpoints) and its login prompt's `id_token_hint` check compares the
 * session's person with it there; but the validated hint is not loaded again when the sign-in
 * resumes (nor at /device), so that check passes whoever signed in. An app that asked to sign Sam
 * in again (a re-authentication before a sensitive action) got a code and an ID token for whoever
 * else typed their password at the login page (found by the eighth-round granting audit).
 *
 * This adds one check to the login prompt for where the engine's cannot run: the request's hint,
 * as stored with it (it was verified when the request arrived), must name the session's person.
 * Right after a sign-in as someone else, the app is told login_required; a session that changed
 * person otherwise (another sign-in in the same browser meanwhile) signs in again.
 *
 * Its sibling, a `sub` value in the claims parameter's id_token member (§5.5.1), was held by the
 * engine at the resume, but by sending the person who signed in as someone else back to the login
 * page, for ever: now the app is told login_required too.
 */
import { decodeJwt } from 'jose';
import { errors, interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

/** The `sub` the hint names; undefined without a hint, or one that does not decode (refused when it arrived). */
function hintedSubject(hint: unknown): string | undefined {
  if (typeof hint !== 'string') return undefined;
  try {
    const { sub } = decodeJwt(hint);
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
}

/** The `sub` an essential or voluntary `value` of the claims parameter's id_token member names (OIDC Core §5.5.1). */
function claimedSubject(claims: unknown): string | undefined {
  if (typeof claims !== 'string') return undefined;
  try {
    const value = (JSON.parse(claims) as { id_token?: { sub?: { value?: unknown } } } | null)?.id_token?.sub?.value;
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** `policy` with the hinted_subject check on its login prompt. */
export function withHintedSubject(policy: interactionPolicy.DefaultPolicy): interactionPolicy.DefaultPolicy {
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider has no login prompt: review src/provider/patches/hinted-subject.ts');
  login.checks.add(
    new interactionPolicy.Check('hinted_subject', 'id_token_hint and authenticated subject do not match', 'login_required', (ctx: KoaContextWithOIDC) => {
      const { oidc } = ctx;
      const signedIn = oidc.session?.accountId;
      if (signedIn === undefined) return interactionPolicy.Check.NO_NEED_TO_PROMPT; // no_session asks already
      // Subjects are public (no pairwise): the hint's sub, or the sub value asked for, is the account's.
      // A sign-in just made as someone else than the request names ends it: the app is told (the
      // engine's own checks would show the login page again, for ever, or, for a hint not loaded at
      // the resume, let it through).
      const claimed = claimedSubject(oidc.params?.claims);
      if (claimed !== undefined && claimed !== signedIn && oidc.result?.login) {
        throw new errors.LoginRequired('the person who signed in is not the subject the claims parameter names');
      }
      // Where the engine loaded the hint (the request's arrival), its own id_token_hint check compares it.
      if (oidc.entities.IdTokenHint !== undefined) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const hinted = hintedSubject(oidc.params?.id_token_hint);
      if (hinted === undefined || hinted === signedIn) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      if (oidc.result?.login) throw new errors.LoginRequired('the person who signed in is not the one id_token_hint names');
      return interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );
  return policy;
}
