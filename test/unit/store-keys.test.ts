/**
 * Every storage key name lives in src/store/keys.ts (DESIGN.md: nothing outside src/store/ spells
 * one). Its builders must give the bytes the releases before wrote, or existing deployments' data
 * is no longer found: each is pinned here for sample arguments against the string that was spelled
 * where the key was used (hash tags included). And no module outside src/store/ spells a key
 * itself: a scan of src/ for string and template literals that begin as one of the builders' keys.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { ROOT } from '../../src/paths.js';
import * as keys from '../../src/store/keys.js';

/** Each export of store/keys.ts: what it gives (for sample arguments) and the bytes used before. */
const PINNED: Record<keyof typeof keys, readonly [unknown, string] | readonly (readonly [unknown, string])[]> = {
  oidcRecordKey: [
    [keys.oidcRecordKey('Session', 'sha256:abc'), 'oidc:Session:sha256:abc'],
    [keys.oidcRecordKey('Client', 'app-1'), 'oidc:Client:app-1'],
  ],
  OIDC_SESSION_PREFIX: [keys.OIDC_SESSION_PREFIX, 'oidc:Session:'],
  oidcGrantKey: [keys.oidcGrantKey('g1'), 'oidc:grant:g1'],
  oidcSessionUidKey: [keys.oidcSessionUidKey('u1'), 'oidc:uid:u1'],
  oidcUserCodeKey: [keys.oidcUserCodeKey('ABCD-EFGH'), 'oidc:usercode:ABCD-EFGH'],
  oidcAccountGrantsKey: [keys.oidcAccountGrantsKey('sub-1'), 'oidc:grants:account:sub-1'],
  oidcClientGrantsKey: [keys.oidcClientGrantsKey('app-1'), 'oidc:grants:client:app-1'],
  oidcAccountGrantsEndsKey: [keys.oidcAccountGrantsEndsKey('sub-1'), 'oidc:grants-ends:account:sub-1'],
  oidcClientGrantsEndsKey: [keys.oidcClientGrantsEndsKey('app-1'), 'oidc:grants-ends:client:app-1'],
  oidcAccountSessionsKey: [keys.oidcAccountSessionsKey('sub-1'), 'oidc:sessions:account:{sub-1}'],
  oidcAccountSessionsEndsKey: [keys.oidcAccountSessionsEndsKey('sub-1'), 'oidc:sessions-ends:account:{sub-1}'],
  OIDC_SESSION_ENDS_KEY: [keys.OIDC_SESSION_ENDS_KEY, 'backchannel:{bc}:session-ends'],
  BACKCHANNEL_RETRIES_KEY: [keys.BACKCHANNEL_RETRIES_KEY, 'backchannel:{bc}:retries'],
  OWED_ENDINGS_KEY: [keys.OWED_ENDINGS_KEY, 'backchannel:{bc}:owed-endings'],
  oidcRegistrationTokensKey: [keys.oidcRegistrationTokensKey('app-1'), 'oidc:rat:client:app-1'],
  oidcPendingKey: [keys.oidcPendingKey('app-1'), 'oidc:pending:client:app-1'],
  oidcPendingEndsKey: [keys.oidcPendingEndsKey('app-1'), 'oidc:pending-ends:client:app-1'],
  oidcClientNarrowedKey: [keys.oidcClientNarrowedKey('app-1'), 'oidc:narrowed:client:app-1'],
  OIDC_CLIENTS_KEY: [keys.OIDC_CLIENTS_KEY, 'oidc:clients'],
  CONFIGURED_CLIENTS_KEY: [keys.CONFIGURED_CLIENTS_KEY, 'configured-clients'],
  READY_PROBE_KEY: [keys.READY_PROBE_KEY, 'ready-probe'],
  MFA_EVERYWHERE_KEY: [keys.MFA_EVERYWHERE_KEY, 'mfa-everywhere'],
  MFA_NOT_REQUIRED_KEY: [keys.MFA_NOT_REQUIRED_KEY, 'mfa-everywhere:not-required-at'],
  CONFIGURED_APIS_KEY: [keys.CONFIGURED_APIS_KEY, 'configured-apis'],
  OIDC_INITIAL_ACCESS_TOKENS_KEY: [keys.OIDC_INITIAL_ACCESS_TOKENS_KEY, 'oidc:initial-access-tokens'],
  clientMetadataDocumentKey: [keys.clientMetadataDocumentKey('https://app.example/client.json'), 'client-metadata-document:HPwM3fX8jOq37b7sEEUjox0Jg55HxLCfw6itVv1iAQk'],
  clientMetadataDocumentAcceptedKey: [keys.clientMetadataDocumentAcceptedKey('https://app.example/client.json'), 'client-metadata-document-accepted:HPwM3fX8jOq37b7sEEUjox0Jg55HxLCfw6itVv1iAQk'],
  CLIENT_METADATA_DOCUMENTS_ACCEPTED_KEY: [keys.CLIENT_METADATA_DOCUMENTS_ACCEPTED_KEY, 'client-metadata-documents-accepted'],
  CLIENT_METADATA_DOCUMENTS_ACCEPTED_ENDS_KEY: [keys.CLIENT_METADATA_DOCUMENTS_ACCEPTED_ENDS_KEY, 'client-metadata-documents-accepted-ends'],
  trackedCacheBeatsPrefix: [keys.trackedCacheBeatsPrefix('a1b2c3'), 'tracked-cache:a1b2c3:'],
  SERVERS_ANNOUNCED_KEY: [keys.SERVERS_ANNOUNCED_KEY, 'servers:announced'],

  ACCOUNT_PREFIX: [keys.ACCOUNT_PREFIX, 'account:'],
  accountKey: [keys.accountKey('sub-1'), 'account:sub-1'],
  usernameKey: [keys.usernameKey('alice'), 'account:name:alice'],
  usernameSkeletonKey: [keys.usernameSkeletonKey('aiice'), 'account:skeleton:aiice'],
  usernameMakingKey: [keys.usernameMakingKey('aiice'), 'account:making:aiice'],
  ACCOUNTS_KEY: [keys.ACCOUNTS_KEY, 'accounts'],
  SKELETONS_INDEXED_KEY: [keys.SKELETONS_INDEXED_KEY, 'accounts:skeletons'],
  upstreamLinkKey: [keys.upstreamLinkKey('corp', 'u-9'), 'account:link:corp:u-9'],
  accountLinksKey: [keys.accountLinksKey('sub-1'), 'account:links:sub-1'],
  linkedAccountsKey: [keys.linkedAccountsKey('corp'), 'account:linked:corp'],
  LINKS_INDEXED_KEY: [keys.LINKS_INDEXED_KEY, 'account:linked-indexed'],
  emailClaimKey: [keys.emailClaimKey('sam@example.com'), 'account:email-claim:zSWmFxlp8qPG41x2Z-OQjvG9JCQkHbBEEaDuxFTKbBY'],
  emailLookKey: [keys.emailLookKey('sam@example.com'), 'account:email:zSWmFxlp8qPG41x2Z-OQjvG9JCQkHbBEEaDuxFTKbBY'],
  EMAILS_INDEXED_KEY: [keys.EMAILS_INDEXED_KEY, 'account:email-indexed'],
  waysInLockKey: [keys.waysInLockKey('sub-1'), 'account:ways-in:sub-1'],
  upstreamSignInKey: [keys.upstreamSignInKey('corp', 'u-9'), 'account:first-sign-in:-mlHShCqhDjfxocpfn7-OfobtVcgxlScyXsmXj7Ij9U'],
  SECOND_FACTORS_PREFIX: [keys.SECOND_FACTORS_PREFIX, 'mfa:'],
  secondFactorsKey: [keys.secondFactorsKey('sub-1'), 'mfa:sub-1'],
  usedPasskeyChallengeKey: [keys.usedPasskeyChallengeKey('n0nce'), 'mfa:webauthn-challenge-used:n0nce'],
  passkeyOwnerKey: [keys.passkeyOwnerKey('cred-1'), 'mfa:passkey-owner:cred-1'],
  totpPendingKey: [keys.totpPendingKey('sub-1', 'c1'), 'mfa:totp-pending:sub-1:c1'],
  usedTotpStepKey: [keys.usedTotpStepKey('sub-1', 58_000_001), 'mfa:totp-used:sub-1:58000001'],
  sessionSeenKey: [keys.sessionSeenKey('uid-1'), 'session-seen:uid-1'],
  sessionRenewingKey: [keys.sessionRenewingKey('uid-1'), 'session-renewing:uid-1'],
  sessionRenewedKey: [keys.sessionRenewedKey('sha256:abc'), 'session-renewed:sha256:abc'],
  sessionCredentialsKey: [keys.sessionCredentialsKey('uid-1'), 'session-credentials:uid-1'],
  grantCredentialsKey: [keys.grantCredentialsKey('g1'), 'grant-credentials:g1'],
  formerSessionCredentialKey: [keys.formerSessionCredentialKey('uid-1'), 'session-credential:uid-1'],

  rateLimitKey: [keys.rateLimitKey('http-ip:token', '192.0.2.7'), 'ratelimit:http-ip:token:192.0.2.7'],
  rateLimitPrefix: [keys.rateLimitPrefix('login-user'), 'ratelimit:login-user'],
  loginFailuresLimiter: [
    [keys.loginFailuresLimiter('user'), 'login-user'],
    [keys.loginFailuresLimiter('ip'), 'login-ip'],
  ],
  loginPausesLimiter: [
    [keys.loginPausesLimiter('user'), 'login-user-pauses'],
    [keys.loginPausesLimiter('ip'), 'login-ip-pauses'],
  ],
  LOGIN_CODE_FAILURES_LIMITER: [keys.LOGIN_CODE_FAILURES_LIMITER, 'login-user-codes'],
  USER_CODE_IP_LIMITER: [keys.USER_CODE_IP_LIMITER, 'user-code-ip'],
  USER_CODE_LIMITER: [keys.USER_CODE_LIMITER, 'user-code'],
  DEVICE_POLL_LIMITER: [keys.DEVICE_POLL_LIMITER, 'device-poll'],
  DEVICE_SLOW_DOWN_LIMITER: [keys.DEVICE_SLOW_DOWN_LIMITER, 'device-slow-down'],
  HTTP_LIMITERS: [keys.HTTP_LIMITERS, { perIp: 'http-ip', registrationPerIp: 'http-registration-ip', perClient: 'http-client', metadataPerIp: 'http-metadata-ip' }] as unknown as readonly [unknown, string],
  httpLimiter: [keys.httpLimiter('http-ip', 'token'), 'http-ip:token'],

  dpopProofKey: [keys.dpopProofKey('proof-jti'), 'dpop-proof:proof-jti'],
  jwtOnceKey: [keys.jwtOnceKey('digest'), 'jwt-once:digest'],
  KEYRING_KEY: [keys.KEYRING_KEY, 'keyring'],
  KEYRING_LOCK_KEY: [keys.KEYRING_LOCK_KEY, 'keyring:lock'],

  API_PREFIX: [keys.API_PREFIX, 'api:'],
  apiKey: [keys.apiKey('https://api.example'), 'api:https://api.example'],
  APIS_KEY: [keys.APIS_KEY, 'apis'],
  API_GRANTS_PREFIX: [keys.API_GRANTS_PREFIX, 'api-grants:'],
  apiGrantsKey: [keys.apiGrantsKey('app-1'), 'api-grants:app-1'],
  apiGranteesKey: [keys.apiGranteesKey('https://api.example'), 'api-grantees:https://api.example'],

  consentKey: [keys.consentKey('sub-1', 'app-1'), 'consent:sub-1:app-1'],
  consentsKey: [keys.consentsKey('sub-1'), 'consents:sub-1'],
  consentHoldersKey: [keys.consentHoldersKey('app-1'), 'consent-holders:app-1'],

  previousSecretKey: [keys.previousSecretKey('app-1'), 'client:previous-secret:app-1'],
  ownerClaimKey: [keys.ownerClaimKey('sub-1'), 'registration:owner-claim:sub-1'],
  initialAccessTokenClaimKey: [keys.initialAccessTokenClaimKey('iat-token'), 'registration:initial-access-token:CHx3VTaXvRfq6kmYK-VWdrecDICtqw1YtcJ0biWnpYw'],

  revokedJtiKey: [keys.revokedJtiKey('j1'), 'revoked:{rv}:jti:j1'],
  revokedGrantKey: [keys.revokedGrantKey('g1'), 'revoked:{rv}:grant:g1'],
  endedGrantKey: [keys.endedGrantKey('g1'), 'revoked:{rv}:grant-ended:g1'],
  REVOKED_CLIENT_PREFIX: [keys.REVOKED_CLIENT_PREFIX, 'revoked:{rv}:client:'],
  revokedClientKey: [keys.revokedClientKey('app-1'), 'revoked:{rv}:client:app-1'],
  REVOKED_KID_PREFIX: [keys.REVOKED_KID_PREFIX, 'revoked:{rv}:kid:'],
  revokedKidKey: [keys.revokedKidKey('k1'), 'revoked:{rv}:kid:k1'],
  REVOKED_CLIENT_GRANT_PREFIX: [keys.REVOKED_CLIENT_GRANT_PREFIX, 'revoked:{rv}:client-grant:'],
  revokedClientGrantKey: [
    [keys.revokedClientGrantKey('urn:app:1', 'read write:all', 'https://api.example'), 'revoked:{rv}:client-grant:urn%3Aapp%3A1:read%20write%3Aall:https://api.example'],
    [keys.revokedClientGrantKey('app-1', '', 'https://api.example'), 'revoked:{rv}:client-grant:app-1::https://api.example'],
  ],
  OPERATOR_ENDINGS_KEY: [keys.OPERATOR_ENDINGS_KEY, 'revoked:{rv}:operator-endings'],
  REVOKED_API_PREFIX: [keys.REVOKED_API_PREFIX, 'revoked:{rv}:api:'],
  revokedApiKey: [keys.revokedApiKey('https://api.example'), 'revoked:{rv}:api:https://api.example'],
  REVOKED_API_SCOPE_PREFIX: [keys.REVOKED_API_SCOPE_PREFIX, 'revoked:{rv}:api-scope:'],
  revokedApiScopeKey: [keys.revokedApiScopeKey('https://api.example', 'write:all'), 'revoked:{rv}:api-scope:https%3A%2F%2Fapi.example:write%3Aall'],
  loweredLifetimeKey: [keys.loweredLifetimeKey('https://api.example', 'people', 300), 'revoked:{rv}:lowered:people:300:https%3A%2F%2Fapi.example'],
  revokedSubjectKey: [keys.revokedSubjectKey('sub-1'), 'revoked:{rv}:sub:sub-1'],
  withdrawnKey: [keys.withdrawnKey('sub-1', 'app-1'), 'revoked:{rv}:withdrawn:sub-1:app-1'],
  REVOKED_DELEGATED_PREFIX: [keys.REVOKED_DELEGATED_PREFIX, 'revoked:{rv}:delegated:'],
  revokedDelegatedKey: [keys.revokedDelegatedKey('app-1'), 'revoked:{rv}:delegated:app-1'],
  REVOKED_RAISED_PREFIX: [keys.REVOKED_RAISED_PREFIX, 'revoked:{rv}:raised:'],
  REVOKED_RAISED_EVERYWHERE_KEY: [keys.REVOKED_RAISED_EVERYWHERE_KEY, 'revoked:{rv}:raised-everywhere'],
  revokedRaisedKey: [keys.revokedRaisedKey('app'), 'revoked:{rv}:raised:app'],
  REVOKED_NARROWED_PREFIX: [keys.REVOKED_NARROWED_PREFIX, 'revoked:{rv}:narrowed:'],
  revokedNarrowedKey: [keys.revokedNarrowedKey('urn:app:1', 'write:all'), 'revoked:{rv}:narrowed:urn%3Aapp%3A1:write%3Aall'],
  REVOCATION_FEED_KEY: [keys.REVOCATION_FEED_KEY, 'revoked:{rv}:feed'],
  STORE_EPOCH_KEY: [keys.STORE_EPOCH_KEY, 'revoked:{rv}:epoch'],
  LIFETIMES_PREFIX: [keys.LIFETIMES_PREFIX, 'revoked:{rv}:lifetime'],
  LIFETIMES_KEY: [keys.LIFETIMES_KEY, 'revoked:{rv}:lifetimes'],
  lifetimeKey: [keys.lifetimeKey('access:3600'), 'revoked:{rv}:lifetime:access:3600'],

  upstreamKey: [keys.upstreamKey('corp'), 'upstream:corp'],
  UPSTREAMS_KEY: [keys.UPSTREAMS_KEY, 'upstreams'],
  upstreamStateKey: [keys.upstreamStateKey('st-1'), 'upstream:state:st-1'],
  upstreamLogoutKey: [keys.upstreamLogoutKey('h-1'), 'upstream:logout:h-1'],
  usedLogoutTokenKey: [keys.usedLogoutTokenKey('corp', 'jti-1'), 'upstream:logout-jti:corp:WWTaBVrjHPjrcjDhkKUEiZxvYPB_nxzTyt6fvyJujCg'],
  federatedSessionKey: [keys.federatedSessionKey('uid-1'), 'upstream:session:uid-1'],
  federatedBySidKey: [keys.federatedBySidKey('corp', 'sid-1'), 'upstream:sid:corp:sid-1'],
  federatedBySubKey: [keys.federatedBySubKey('corp', 'u-9'), 'upstream:sub:corp:u-9'],
  federatedByUpstreamKey: [keys.federatedByUpstreamKey('corp'), 'upstream:sessions:corp'],
  federatedBySidEndsKey: [keys.federatedBySidEndsKey('fake', 'sid-1'), 'upstream:sid-ends:fake:sid-1'],
  federatedBySubEndsKey: [keys.federatedBySubEndsKey('fake', 'sub-1'), 'upstream:sub-ends:fake:sub-1'],
  federatedByUpstreamEndsKey: [keys.federatedByUpstreamEndsKey('fake'), 'upstream:sessions-ends:fake'],
  loggedOutSidKey: [keys.loggedOutSidKey('corp', 'sid-1'), 'upstream:logged-out:sid:corp:sid-1'],
  loggedOutSubKey: [keys.loggedOutSubKey('corp', 'u-9'), 'upstream:logged-out:sub:corp:u-9'],
};

const SRC = join(ROOT, 'src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return files(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The longest common beginning of two strings. */
const common = (a: string, b: string) => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i += 1;
  return a.slice(0, i);
};

/**
 * How every key of store/keys.ts begins: a constant without a colon as the whole literal (a plain
 * word such as `accounts` only where a key goes: inKeyPlace), one with a colon as a beginning too;
 * a builder what its keys hold whatever its arguments (the common beginning of its keys for two
 * different sets of arguments).
 */
function keyBeginnings(): { text: string; whole: boolean }[] {
  const found: { text: string; whole: boolean }[] = [];
  const constant = (value: string) => found.push({ text: value, whole: !value.includes(':') });
  for (const value of Object.values(keys) as unknown[]) {
    if (typeof value === 'string') constant(value);
    else if (typeof value === 'function') {
      const fn = value as (...args: unknown[]) => unknown;
      const [one, two] = [['\u0001', 1], ['\u0002', 2]].map(([text, number]) => fn(...Array.from({ length: Math.max(fn.length, 1) }, () => (fn === keys.usedTotpStepKey ? number : text))));
      const text = common(String(one), String(two));
      if (text) found.push({ text, whole: false });
    } else for (const name of Object.values(value as Record<string, string>)) constant(name);
  }
  return found;
}

/** The names of the store's methods (every interface of store/kv.ts): where a literal would be a key. */
function storeMethods(): Set<string> {
  const file = join(SRC, 'store', 'kv.ts');
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const names = new Set<string>();
  const visit = (node: ts.Node) => {
    if (ts.isInterfaceDeclaration(node)) for (const member of node.members) if (member.name && ts.isIdentifier(member.name)) names.add(member.name.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return names;
}

/**
 * Whether a literal stands where a key goes: given to one of the store's methods (`kv.members('apis')`,
 * also in an array: `cachedReads(['apis'])`), or held in a constant named as a key (`APIS_KEY = 'apis'`).
 * A plain word is a key only there (`program.command('apis')` is none).
 */
function inKeyPlace(node: ts.Node, methods: Set<string>): boolean {
  let at = node.parent;
  if (ts.isArrayLiteralExpression(at)) at = at.parent;
  if (ts.isCallExpression(at) && ts.isPropertyAccessExpression(at.expression)) return methods.has(at.expression.name.text);
  return ts.isVariableDeclaration(at) && ts.isIdentifier(at.name) && /KEY|PREFIX|^ALL$/i.test(at.name.text);
}

/** The string and template literals of a module (a template by its text before its first `${`), with their lines. */
function literals(file: string, methods: Set<string>): { text: string; line: number; keyPlace: boolean }[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: { text: string; line: number; keyPlace: boolean }[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node) || ts.isTemplateHead(node)) {
      const literal = ts.isTemplateHead(node) ? node.parent : node;
      found.push({ text: node.text, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1, keyPlace: inKeyPlace(literal, methods) });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('unit: storage key names (src/store/keys.ts)', () => {
  it('every builder gives the bytes used before, hash tags included', () => {
    assert.deepEqual(Object.keys(PINNED).sort(), Object.keys(keys).sort(), 'every export of store/keys.ts is pinned here');
    for (const [name, pins] of Object.entries(PINNED)) {
      const list = (Array.isArray(pins[0]) ? pins : [pins]) as readonly (readonly [unknown, unknown])[];
      for (const [actual, expected] of list) assert.deepEqual(actual, expected, name);
    }
  });

  it('no module outside src/store/ spells a storage key (a literal beginning as one of store/keys.ts)', () => {
    const beginnings = keyBeginnings();
    assert.ok(beginnings.some(({ text }) => text === 'revoked:{rv}:jti:') && beginnings.some(({ text, whole }) => text === 'accounts' && whole), 'the beginnings are read from the builders');
    const methods = storeMethods();
    assert.ok(methods.has('members') && methods.has('cachedReads'), "the store's methods are read from store/kv.ts");
    const plainWord = (text: string) => /^[a-z]+$/.test(text);
    const spelled: string[] = [];
    for (const file of files(SRC)) {
      if (relative(SRC, file).startsWith('store/')) continue;
      for (const { text, line, keyPlace } of literals(file, methods)) {
        const key = beginnings.find((beginning) => (beginning.whole ? text === beginning.text && (keyPlace || !plainWord(text)) : text.startsWith(beginning.text)));
        if (key) spelled.push(`${relative(ROOT, file)}:${line}: ${JSON.stringify(text)} (store/keys.ts: ${JSON.stringify(key.text)})`);
      }
    }
    assert.deepEqual(spelled, []);
  });
});
