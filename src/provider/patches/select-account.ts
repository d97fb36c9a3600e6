/**
 * `prompt=select_account` (OpenID Connect Core §3.1.2.1: "The Authorization Server SHOULD prompt
 * the End-User to select a user account"). oidc-provider's default policy has no such prompt, so
 * it refused the value with invalid_request ("unsupported prompt value requested"), which the
 * specification defines and the OpenID Foundation's suite sends.
 *
 * Two changes to the interaction policy:
 * - a requestable `select_account` prompt without checks of its own: the engine then accepts the
 *   value (its `prompts` are the requestable prompts' names) and discovery lists it in
 *   `prompt_values_supported` (promptValues below);
 * - a check of the login prompt, `select_account`: a request with the value, from a browser whose
 *   session has a person signed in, stops at the sign-in step until the person chose. The choice is
 *   the interaction's result: `select_account` (continue as the signed-in person:
 *   interactions/select-account.ts) or `login` (signed in, as anyone: the login page is the choice
 *   of another account). Without a session the login page is shown as always; signing in is the
 *   selection. With prompt=none the value cannot be combined (the engine's rule), so the check's
 *   error, account_selection_required, is what a request would be told that could not ask.
 *
 * The interaction step shows the chooser only when this check is the login prompt's one reason; with
 * another reason (prompt=login, max_age, a stronger sign-in) the person signs in, which chooses too.
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

export const SELECT_ACCOUNT = 'select_account';

export function withSelectAccount(policy: interactionPolicy.DefaultPolicy): interactionPolicy.DefaultPolicy {
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider has no login prompt: review src/provider/patches/select-account.ts');
  login.checks.add(
    new interactionPolicy.Check(SELECT_ACCOUNT, 'the End-User is asked to select an account', 'account_selection_required', (ctx: KoaContextWithOIDC) => {
      const { prompts, session, result } = ctx.oidc;
      if (!prompts.has(SELECT_ACCOUNT) || !session?.accountId || result?.login || result?.[SELECT_ACCOUNT]) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
      return interactionPolicy.Check.REQUEST_PROMPT;
    }),
  );
  const selectAccount = new interactionPolicy.Prompt({ name: SELECT_ACCOUNT, requestable: true });
  // The engine gives a requestable prompt a check of its own (asking whenever the value is sent); the login prompt's above decides instead.
  selectAccount.checks.clear();
  policy.add(selectAccount);
  return policy;
}

/** prompt_values_supported (OpenID Connect Prompt Create §4.1): none and the policy's requestable prompts, as the engine accepts them. */
export function promptValues(policy: interactionPolicy.DefaultPolicy): string[] {
  return ['none', ...policy.filter((prompt) => prompt.requestable).map((prompt) => prompt.name)];
}
