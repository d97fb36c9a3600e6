/**
 * A `login_hint` naming someone else than the signed-in person is not answered with that person
 * (OpenID Connect Core §3.1.2.1: "Hint to the Authorization Server about the login identifier the
 * End-User might use to log in"; §3.1.2.6 login_required).
 *
 * oidc-provider reads `login_hint` only to pre-fill the login page, which a live session skips: an
 * app asking to sign Uma in (an account chooser's "Continue as uma@…", a shared computer) at a
 * browser where Tess was signed in got a code and an ID token of Tess, silently, with or without
 * `prompt=none` (found by the second granting audit of 2026-12-01). The app is told of no mismatch
 * it did not check itself, and the person at the browser is never asked.
 *
 * This adds one check to the login prompt: a hint that is neither the session's person's username
 * (compared as usernames compare) nor their verified email address (folded as addresses compare) asks for
 * the login page, pre-filled with the hint (`prompt=none`: `login_required`). A hint is a hint, so
 * whoever then signs in there is who the app gets (it is the person at the browser, who typed it);
 * this check does not run again on that sign-in. An opaque hint (nobody's username or address)
 * costs its app single sign-on: the login page each time. Under `prompt=none` an app the person
 * allowed nothing is not told whether the hint names them (patches/silent-strangers.ts).
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { emailFold, normalizeUsername, type Account } from '../../accounts/accounts.js';

/**
 * Whether `hint` names `account`: its username, or its email address if verified. An address nobody
 * verified is only what the account says (an upstream's unverified word, taken just in time), so it
 * names no one: Mallory's account holding uma's address unverified answered an app's hint of that
 * address with Mallory's code, silently (thirteenth granting pass).
 */
export function hintNames(hint: string, account: Pick<Account, 'username' | 'claims'>): boolean {
  if (normalizeUsername(hint) === normalizeUsername(account.username)) return true;
  const { email, email_verified: verified } = account.claims;
  return email !== undefined && verified === true && hint.includes('@') && emailFold(hint) === emailFold(email);
}

/** `policy` with the hinted_login check on its login prompt; `find` reads an account by its sub. */
export function withHintedLogin(
  policy: interactionPolicy.DefaultPolicy,
  find: (sub: string) => Promise<Pick<Account, 'username' | 'claims'> | undefined>,
): interactionPolicy.DefaultPolicy {
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider has no login prompt: review src/provider/patches/hinted-login.ts');
  login.checks.add(
    new interactionPolicy.Check('hinted_login', 'login_hint does not name the signed-in person', 'login_required', async (ctx: KoaContextWithOIDC) => {
      const { oidc } = ctx;
      const signedIn = oidc.session?.accountId;
      const hint = oidc.params?.login_hint;
      // No session: no_session asks already; just signed in at the login page: whoever typed it.
      if (signedIn === undefined || typeof hint !== 'string' || hint === '' || oidc.result?.login) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      const account = await find(signedIn);
      if (account === undefined) return interactionPolicy.Check.NO_NEED_TO_PROMPT; // the engine's account checks end it
      return hintNames(hint, account) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );
  return policy;
}
