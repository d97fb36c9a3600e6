/**
 * A silent request (`prompt=none`) of an app the person allowed nothing is not told who is signed
 * in at the browser.
 *
 * The login prompt's checks run before the consent prompt's, and under `prompt=none` the first one
 * that asks is the answer: `login_required` for a `login_hint` naming someone else
 * (patches/hinted-login.ts) or a `sub` asked by value (the claims parameter) of someone else, and
 * `consent_required` for one naming the person. So any app, registered in a minute (RFC 7591, the
 * developer page, a Client ID Metadata Document), could send a visitor's browser through silent
 * requests, one redirect each, trying usernames and addresses (or a `sub` another app learnt:
 * subjects are public), and learn who they are without their consent (red-team pass of 2026-12-01).
 *
 * Now, under `prompt=none`, when the grant the engine loaded for the request (the session's, one
 * built from a remembered consent, or Latchkey's own pages' implicit one) holds nothing, the checks
 * that compare the session's person with the request's naming of someone (a login hint, a `sub` by
 * value, an `id_token_hint`) do not ask: the consent prompt answers (`consent_required`), or, nothing
 * asked, the engine's refusal of a request that was granted nothing (`access_denied`). Never a code:
 * the grant holds nothing.
 *
 * The checks weighing the session's age and strength (`max_age`, an essential `acr`, `acr_values`
 * and the client's MFA requirement) told such an app the same way how long ago and how strongly the
 * person signed in (`login_required` against `consent_required`; residuals pass of 2026-12-01): for
 * it they are run (their refusals of a malformed request stand) but do not ask either. What it still
 * learns is `no_session`'s answer: whether anyone is signed in (OIDC Core §3.1.2.6).
 * Interactive requests and apps the person allowed (which may ask for a fresher or stronger
 * sign-in) are unchanged. Pinned in test/unit/provider-patches.test.ts.
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

interface GrantHeld {
  getOIDCScope(): string;
  readonly resources?: Record<string, unknown>;
}

/** Whether the grant the engine loaded for the request holds anything the person allowed. */
const allowedAnything = (grant: GrantHeld | undefined) => grant !== undefined && (grant.getOIDCScope() !== '' || Object.keys(grant.resources ?? {}).length > 0);

const strangerSilently = ({ oidc }: KoaContextWithOIDC) => oidc.prompts.has('none') && !allowedAnything(oidc.entities.Grant as GrantHeld | undefined);

/** The login checks that compare the signed-in person with someone the request names (the engine's and patches/hinted-*.ts). */
const NAMING = new Set(['hinted_login', 'claims_id_token_sub_value', 'id_token_hint', 'hinted_subject']);

/** The login checks that weigh the session's age or strength (the engine's and patches/step-up.ts). */
const WEIGHING = new Set(['max_age', 'acr_level']);

/** The checks of the login prompt named in `reasons`, every one of them there. */
function loginChecks(policy: interactionPolicy.DefaultPolicy, reasons: Set<string>) {
  const login = policy.get('login');
  if (!login) throw new Error('oidc-provider has no login prompt: review src/provider/patches/silent-strangers.ts');
  const checks = login.checks.filter((check) => reasons.has(check.reason));
  if (checks.length !== reasons.size) throw new Error(`oidc-provider's login prompt lacks one of ${[...reasons].join(', ')}: review src/provider/patches/silent-strangers.ts`);
  return checks;
}

/** `policy` (with those checks added already) leaving silent strangers to the consent prompt. */
export function silentStrangersAskedConsent(policy: interactionPolicy.DefaultPolicy): interactionPolicy.DefaultPolicy {
  for (const check of loginChecks(policy, NAMING)) {
    const asks = check.check;
    check.check = (ctx) => (strangerSilently(ctx) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : asks(ctx));
  }
  for (const check of loginChecks(policy, WEIGHING)) {
    const asks = check.check;
    // Run first, so that what it refuses outright (an acr nobody offers, a malformed claims request) is refused alike.
    check.check = async (ctx) => {
      const answer = await asks(ctx);
      return strangerSilently(ctx) ? interactionPolicy.Check.NO_NEED_TO_PROMPT : answer;
    };
  }
  return policy;
}
