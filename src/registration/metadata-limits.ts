/**
 * How much list metadata a client may register. RFC 7591 sets no bound, and without one a client
 * registered thousands of redirect URIs (each compared at every authorization request, listed on
 * the device page) or contacts, as far as each path's body limit let it: the admin API's and the
 * CLI's are not the registration endpoint's. Checked where a client is written, on every path
 * (dynamic registration, RFC 7592 updates, the admin API, the developer page, the CLI, the
 * configuration: registration/policy.ts); a client stored before is loaded as it is.
 */

/** At most this many entries in each list; a list not named here, at most DEFAULT_MAX_ENTRIES. */
export const MAX_LIST_ENTRIES: Readonly<Record<string, number>> = {
  redirect_uris: 50,
  post_logout_redirect_uris: 50,
  request_uris: 50,
  contacts: 10,
  'jwks.keys': 20,
};
const DEFAULT_MAX_ENTRIES = 50;

/** The longest entry of a list: 2,000 characters, what every browser takes in a URL. */
export const MAX_ENTRY_LENGTH = 2000;

/**
 * The members that hold one URI: at most MAX_ENTRY_LENGTH characters too, as a list's entries are
 * (before the twelfth fresh-eyes pass only the body's limit bounded them: a logo or policy link of
 * 50,000 characters was put in the consent page, a back-channel URI as long posted to).
 */
const SINGLE_URIS = ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri', 'initiate_login_uri', 'jwks_uri', 'backchannel_logout_uri', 'sector_identifier_uri'] as const;

/**
 * The first list member that is too long or holds too long an entry, or URI member that is too long,
 * as an RFC 7591 description starting with the member's name (the engine answers
 * invalid_redirect_uri for "redirect_uris…"), or undefined. Lists of anything but strings are left
 * to the type checks.
 */
export function listLimitProblem(metadata: Record<string, unknown>): string | undefined {
  for (const name of SINGLE_URIS) {
    const value = metadata[name];
    if (typeof value === 'string' && value.length > MAX_ENTRY_LENGTH) return `${name}: longer than ${MAX_ENTRY_LENGTH} characters`;
  }
  const keys = (metadata.jwks as { keys?: unknown } | undefined)?.keys;
  for (const [name, value] of [...Object.entries(metadata), ['jwks.keys', keys] as const]) {
    if (!Array.isArray(value)) continue;
    const most = MAX_LIST_ENTRIES[name] ?? DEFAULT_MAX_ENTRIES;
    if (value.length > most) return `${name}: at most ${most} entries (${value.length} given)`;
    const long = value.findIndex((entry) => typeof entry === 'string' && entry.length > MAX_ENTRY_LENGTH);
    if (long !== -1) return `${name}: entry ${long + 1} is longer than ${MAX_ENTRY_LENGTH} characters`;
  }
  return undefined;
}
