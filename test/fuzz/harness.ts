/**
 * Property-based fuzzing of every endpoint and every form of Latchkey, over HTTP, with fast-check.
 *
 * Each target generates hostile requests for one endpoint or form: random and duplicated
 * parameters, known-good values mixed with garbage, huge values, invalid UTF-8 and broken
 * percent-encoding, wrong content types, random bytes, nested and invalid JSON, hostile headers,
 * and now and then the real cookies, CSRF tokens and bearer tokens of a live session so that the
 * requests get past the first check. Every answer must be:
 *
 *  - not a 5xx;
 *  - free of stack traces and internals (no "    at " frames, file paths, error class names);
 *  - a well-formed protocol answer: a 4xx is a JSON object with a string `error`, or one of our
 *    HTML pages; a redirect goes to our own origin or to a URI some client registered;
 *
 * and the server must still answer (/healthz and discovery) after every target.
 *
 * Used by test/fuzz/fuzz.test.ts (fixed seed, a few runs per target, in CI) and by
 * test/fuzz/run.ts (`npm run fuzz -- --runs 10000`, the long run with figures).
 */
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { Agent, formIn, type Page } from '../helpers/agent.js';
import { signInSteps } from '../helpers/sign-in.js';
import { ALICE, grantApi, RelyingParty, startOp, webClient, type Op, type Person } from '../conformance/fixture.js';

const SECRET = 'fuzzing-client-secret-with-plenty-of-entropy-0123456';
const ADMIN_SECRET = 'fuzzing-admin-secret-with-plenty-of-entropy-0123456';
const API = 'https://api.example.test';
const FUZZER: Person = { username: 'fuzzer', password: 'the fuzzing harness password, never guessed' };
const REDIRECTS = ['https://web.example.test/callback', 'https://spa.example.test/callback'];
const REQUEST_TIMEOUT_MS = 15_000;

// ---- what a request is ---------------------------------------------------------------------------

/** The live credentials a request may carry, so that it reaches deeper than the first check. */
type Credential =
  | 'none'
  | 'interaction' // cookies of a sign-in waiting for a password, and its CSRF token
  | 'consent' // cookies of a sign-in waiting for consent, and its CSRF token
  | 'session' // a signed-in person's cookies (logout, developer page)
  | 'client' // client_secret_basic of a confidential client
  | 'access-token' // a person's access token (userinfo)
  | 'admin-token' // an admin API token
  | 'feed-token' // a revocation feed token
  | 'registration'; // a registration access token and its client URI

export interface FuzzRequest {
  readonly method: string;
  /** Path, possibly with raw percent sequences; `{uid}`, `{client}`, `{app}` are filled in from the credential. */
  readonly path: string;
  /** Raw query string (already encoded, possibly badly). */
  readonly query: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array;
  readonly credential: Credential;
  /** Form fields the harness adds with the credential (e.g. csrf), unless the request left them out. */
  readonly withCsrf?: boolean;
}

export interface Target {
  readonly name: string;
  readonly arbitrary: fc.Arbitrary<FuzzRequest>;
}

// ---- hostile values ----------------------------------------------------------------------------

const pct = (bytes: Uint8Array) => [...bytes].map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`).join('');
/** Percent-encodes text as UTF-8 (lone surrogates become U+FFFD, as a browser would send them). */
const encode = (text: string) => encodeURIComponent(Buffer.from(text, 'utf8').toString('utf8'));

const RAW_FRAGMENTS = [
  '%', '%Z', '%ZZ', '%E0%A4%A', '%C3%28', '%FF%FE%FD', '%ED%A0%80', '%F4%90%80%80', '%C0%AF', '%00', '%0A', '%0D%0A',
  '%u0041', '+', '%2B', '&', '=', '%26%3D', '%25', '%%%', '..%2F..%2F', '%2e%2e%2f', '%5B%5D', '%7B%7D',
];
const SPECIAL = [
  '', ' ', '0', '-1', '1e309', 'NaN', 'true', 'null', 'undefined', '[]', '{}', '__proto__', 'constructor', 'prototype',
  'https://evil.example/', '//evil.example', 'javascript:alert(1)', 'data:text/html,<script>alert(1)</script>',
  '<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' OR '1'='1", '../../../etc/passwd', '\u0000', '\r\n',
  '\u202e', '𝕏', 'ü'.repeat(3), '{"a":', 'a'.repeat(300), 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', 'e30.e30.e30',
];

/** A value as it appears on the wire in a query string or form body (already encoded, maybe badly). */
function wireValue(known: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: known.length ? fc.constantFrom(...known).map(encode) : fc.constant('') },
    { weight: 3, arbitrary: fc.string({ maxLength: 40 }).map(encode) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }).map(encode) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 24 }).map(pct) },
    { weight: 2, arbitrary: fc.constantFrom(...RAW_FRAGMENTS) },
    { weight: 2, arbitrary: fc.constantFrom(...SPECIAL).map(encode) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 4 }).map(encode) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 3000 }).map((depth) => encode(`${'['.repeat(depth)}${']'.repeat(depth)}`)) },
    { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 12_000 }).map((size) => 'A'.repeat(size)) },
    { weight: 1, arbitrary: fc.integer({ min: 100, max: 2_000 }).map((size) => '%FF'.repeat(size)) },
    { weight: 1, arbitrary: jwtLike().map(encode) },
  );
}

function jwtLike(): fc.Arbitrary<string> {
  const part = fc.oneof(fc.json({ maxDepth: 2 }), fc.constantFrom('{"alg":"none"}', '{"alg":"HS256","typ":"JWT"}', '{"alg":"RS256","kid":"x","jku":"https://evil.example/jwks"}'));
  return fc
    .tuple(part, part, fc.uint8Array({ maxLength: 64 }))
    .map(([header, payload, signature]) => `${Buffer.from(header).toString('base64url')}.${Buffer.from(payload).toString('base64url')}.${Buffer.from(signature).toString('base64url')}`);
}

/** A parameter name: one the endpoint knows, or something else. */
function wireKey(names: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...(names.length ? names : ['x'])) },
    { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'a[b]', 'a[]', 'scope[0]', 'x[__proto__][y]', '') },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map(encode) },
    { weight: 1, arbitrary: fc.constantFrom(...RAW_FRAGMENTS) },
  );
}

/** Encoded `k=v&k=v…`, with some keys repeated and some pairs malformed. */
function wireParams(params: Record<string, readonly string[]>): fc.Arbitrary<string> {
  const names = Object.keys(params);
  const pair = wireKey(names).chain((key) => {
    const name = decodeSafe(key);
    const known = Object.hasOwn(params, name) ? params[name]! : [];
    return fc.oneof(
      { weight: 8, arbitrary: wireValue(known).map((value) => `${key}=${value}`) },
      { weight: 1, arbitrary: fc.constant(key) },
      { weight: 1, arbitrary: fc.constant(`${key}==`) },
    );
  });
  return fc
    .tuple(fc.array(pair, { maxLength: 12 }), fc.nat({ max: 3 }), fc.constantFrom('&', '&', '&', '&&', ';'))
    .map(([pairs, duplicates, separator]) => [...pairs, ...pairs.slice(0, duplicates)].join(separator));
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

const CONTENT_TYPES = [
  'application/x-www-form-urlencoded',
  'application/x-www-form-urlencoded; charset=utf-8',
  'application/x-www-form-urlencoded; charset=iso-8859-1',
  'application/x-www-form-urlencoded; charset=utf-16',
  'application/x-www-form-urlencoded; charset=nonsense',
  'application/json',
  'application/json; charset=utf-7',
  'application/jwt',
  'text/plain',
  'text/html',
  'multipart/form-data; boundary=x',
  'multipart/form-data',
  'application/xml',
  'application/octet-stream',
  '*/*',
  'application/x-www-form-urlencoded, application/json',
  'x',
];

/** A body: what the endpoint expects (form or JSON), or anything else, with some content type. */
function wireBody(params: Record<string, readonly string[]>, kind: 'form' | 'json'): fc.Arbitrary<{ body: Uint8Array; type?: string }> {
  const form = wireParams(params).map((text) => Buffer.from(text, 'latin1'));
  const json = fc
    .oneof(
      fc.dictionary(fc.constantFrom(...Object.keys(params), '__proto__', 'constructor'), fc.jsonValue({ maxDepth: 4 }), { maxKeys: 10 }).map((value) => JSON.stringify(value)),
      fc.jsonValue({ maxDepth: 6 }).map((value) => JSON.stringify(value)),
      fc.integer({ min: 1, max: 20_000 }).map((depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
      fc.integer({ min: 1, max: 20_000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
      fc.string({ maxLength: 60 }).map((text) => `{"${text}`),
      fc.constantFrom('{', '}', 'null', '"x"', '[1,2', '{"__proto__":{"polluted":true}}', '{"a":1,"a":2}', '\ufeff{}'),
    )
    .map((text) => Buffer.from(text, 'utf8'));
  const bytes = fc.uint8Array({ maxLength: 3_000 }).map((array) => Buffer.from(array));
  const huge = fc.integer({ min: 20_000, max: 1_500_000 }).map((size) => Buffer.from(`${kind === 'json' ? '{"a":"' : 'a='}${'x'.repeat(size)}`));
  const preferred = kind === 'json' ? 'application/json' : 'application/x-www-form-urlencoded';
  const type = fc.oneof({ weight: 6, arbitrary: fc.constant(preferred) }, { weight: 3, arbitrary: fc.constantFrom(...CONTENT_TYPES) }, { weight: 1, arbitrary: fc.constant(undefined) });
  const payload = fc.oneof(
    { weight: 6, arbitrary: kind === 'json' ? json : form },
    { weight: 2, arbitrary: kind === 'json' ? form : json },
    { weight: 2, arbitrary: bytes },
    { weight: 1, arbitrary: huge },
    { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  );
  return fc.record({ body: payload, type }).map(({ body, type: contentType }) => (contentType === undefined ? { body } : { body, type: contentType }));
}

/** A header value fetch can send: latin1 without control characters. */
const headerSafe = (text: string) => text.replace(/[^\x20-\x7e\xa0-\xff]/g, '?');

function wireHeaders(): fc.Arbitrary<Record<string, string>> {
  const b64 = (text: string) => Buffer.from(text, 'latin1').toString('base64');
  const authorization = fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((text) => `Basic ${b64(headerSafe(text))}`) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((text) => `Basic ${headerSafe(text)}`) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((bytes) => `Basic ${Buffer.from(bytes).toString('base64')}`) },
    { weight: 1, arbitrary: fc.constantFrom('Basic %ZZ:%ZZ', `Basic ${b64('web:')}`, `Basic ${b64(':')}`, `Basic ${b64('%E0%A4%A:x')}`, `Basic ${b64(`web:${SECRET}x`)}`, 'Basic', 'Bearer', 'Bearer ', 'DPoP x', 'Negotiate x') },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }).map((text) => `Bearer ${headerSafe(text)}`) },
    { weight: 1, arbitrary: jwtLike().map((jwt) => `Bearer ${jwt}`) },
  );
  const accept = fc.constantFrom(undefined, 'text/html', 'application/json', '*/*', 'application/xml', 'text/html;q=0, application/json;q=0', 'x/y', '');
  const cookie = fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('lk_session', 'lk_interaction', 'lk_resume', 'lk_session.sig', '_session', 'x'), fc.string({ maxLength: 40 }))
        .map(([name, value]) => `${name}=${headerSafe(value).replace(/[;,\s]/g, '')}`),
    },
  );
  const dpop = fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: jwtLike() });
  const extra: fc.Arbitrary<Record<string, string>> = fc.oneof(
    { weight: 6, arbitrary: fc.constant<Record<string, string>>({}) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((text) => ({ 'if-none-match': headerSafe(text) })) },
    { weight: 1, arbitrary: fc.constantFrom<Record<string, string>>({ 'x-forwarded-host': 'evil.example' }, { 'x-forwarded-proto': 'https' }, { 'x-request-id': 'x'.repeat(200) }, { origin: 'https://evil.example' }) },
  );
  return fc.record({ authorization, accept, cookie, dpop, extra }).map(({ authorization: a, accept: acc, cookie: c, dpop: d, extra: e }) => {
    const headers: Record<string, string> = { ...e };
    if (a !== undefined) headers.authorization = a;
    if (acc !== undefined) headers.accept = acc;
    if (c !== undefined) headers.cookie = c;
    if (d !== undefined) headers.dpop = d;
    return headers;
  });
}

const credentialArb = (...options: Credential[]) => fc.oneof({ weight: 2, arbitrary: fc.constant<Credential>('none') }, { weight: 3, arbitrary: fc.constantFrom(...options) });

interface Shape {
  readonly methods: readonly string[];
  readonly paths: fc.Arbitrary<string>;
  readonly params: Record<string, readonly string[]>;
  /** Where parameters go: the query, a form body, a JSON body, or either. */
  readonly carry: 'query' | 'form' | 'json' | 'either';
  readonly credentials: readonly Credential[];
  readonly csrf?: boolean;
}

function requests({ methods, paths, params, carry, credentials, csrf = false }: Shape): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      method: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...methods) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') }),
      path: paths,
      query: fc.oneof({ weight: carry === 'query' || carry === 'either' ? 6 : 1, arbitrary: wireParams(params) }, { weight: 2, arbitrary: fc.constant('') }),
      body: wireBody(params, carry === 'json' ? 'json' : 'form'),
      headers: wireHeaders(),
      credential: credentials.length ? credentialArb(...credentials) : fc.constant<Credential>('none'),
      withCsrf: fc.boolean(),
    })
    .map(({ method, path, query, body, headers, credential, withCsrf }) => {
      const hasBody = method !== 'GET' && method !== 'HEAD';
      const sendsBody = hasBody && carry !== 'query';
      return {
        method,
        path,
        query,
        headers: sendsBody && body.type !== undefined ? { ...headers, 'content-type': body.type } : headers,
        ...(sendsBody ? { body: body.body } : {}),
        credential,
        withCsrf: csrf && withCsrf,
      };
    });
}

const uidPath = (prefix: string, suffix = '') =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant(`${prefix}/{uid}${suffix}`) },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((text) => `${prefix}/${encode(text)}${suffix}`) },
    { weight: 1, arbitrary: fc.constantFrom(...RAW_FRAGMENTS).map((raw) => `${prefix}/${raw}${suffix}`) },
    { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 12 }).map((bytes) => `${prefix}/${pct(bytes)}${suffix}`) },
  );

// ---- the targets ---------------------------------------------------------------------------------

const CLIENT_IDS = ['web', 'spa', 'ops', 'nobody', 'latchkey-developer'];
const SCOPES = ['openid', 'openid profile email offline_access', 'openid read', 'admin', 'revocations', 'openid openid', 'x'];
const AUTH_PARAMS: Record<string, readonly string[]> = {
  client_id: CLIENT_IDS,
  response_type: ['code', 'token', 'id_token', 'code id_token', 'none', ''],
  redirect_uri: [...REDIRECTS, 'https://evil.example/cb', 'https://web.example.test/callback/', 'http://web.example.test/callback'],
  scope: SCOPES,
  state: ['s', 'x'.repeat(500)],
  nonce: ['n'],
  code_challenge: ['E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', 'short'],
  code_challenge_method: ['S256', 'plain', 'S512'],
  prompt: ['none', 'login', 'consent', 'select_account', 'none login', 'create'],
  max_age: ['0', '1', '-1', 'abc', '99999999999999999999'],
  id_token_hint: ['not.a.jwt'],
  login_hint: ['alice', 'fuzzer'],
  ui_locales: ['en', 'zz'],
  claims: ['{"userinfo":{"email":null}}', '{"id_token":{"auth_time":{"essential":true}}}', '{"userinfo":{"email":{"value":1,"values":[{}]}}}', '[]', '{'],
  response_mode: ['query', 'fragment', 'form_post', 'web_message', 'jwt', 'query.jwt'],
  request: ['eyJhbGciOiJub25lIn0.e30.'],
  request_uri: ['urn:ietf:params:oauth:request_uri:x', 'https://evil.example/r'],
  resource: [API, 'https://unknown.example', 'not a url'],
  display: ['page', 'popup', 'x'],
  acr_values: ['1'],
  registration: ['{}'],
};
const TOKEN_PARAMS: Record<string, readonly string[]> = {
  grant_type: ['authorization_code', 'refresh_token', 'client_credentials', 'password', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:openid:params:grant-type:ciba', ''],
  code: ['x'],
  redirect_uri: REDIRECTS,
  code_verifier: ['a'.repeat(43), 'short'],
  refresh_token: ['x'],
  client_id: CLIENT_IDS,
  client_secret: [SECRET, 'wrong'],
  client_assertion_type: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer', 'x'],
  client_assertion: ['eyJhbGciOiJub25lIn0.e30.'],
  scope: SCOPES,
  resource: [API, 'https://unknown.example', `{issuer}/admin`, `{issuer}/revocations`],
  username: ['alice'],
  password: ['x'],
};
const TOKEN_TYPE_PARAMS: Record<string, readonly string[]> = {
  token: ['x', '{access-token}'],
  token_type_hint: ['access_token', 'refresh_token', 'x'],
  client_id: CLIENT_IDS,
  client_secret: [SECRET],
};
/** The account page's forms (src/accounts/page/). */
const ACCOUNT_FORMS = ['/password', '/password/set', '/authenticator/start', '/authenticator/confirm', '/authenticator/remove', '/recovery-codes', '/passkeys/add', '/passkeys/remove', '/sessions/sign-out', '/apps/withdraw', '/links/remove'];
const LOGIN_FIELDS: Record<string, readonly string[]> = { username: ['alice', 'fuzzer', 'ALICE', 'Zoë'], password: ['x', ALICE.password], remember: ['yes', 'no'], csrf: ['forged'] };
const REGISTRATION_FIELDS: Record<string, readonly string[]> = {
  redirect_uris: [], client_name: ['x'], token_endpoint_auth_method: ['none', 'client_secret_basic', 'private_key_jwt', 'tls_client_auth', 'x'],
  grant_types: [], response_types: [], application_type: ['web', 'native', 'x'], jwks: [], jwks_uri: ['https://evil.example/jwks', 'http://127.0.0.1:1/'],
  scope: SCOPES, logo_uri: ['https://x.example/logo.png', 'javascript:alert(1)'], backchannel_logout_uri: ['https://x.example/bc'],
  post_logout_redirect_uris: [], sector_identifier_uri: ['https://evil.example/s'], subject_type: ['public', 'pairwise'], client_id: ['web'],
  id_token_signed_response_alg: ['none', 'HS256', 'RS256'], owner: ['x'], contacts: [], default_max_age: ['-1'], request_uris: [], tls_client_auth_subject_dn: ['x'],
};
const DEVICE_PARAMS: Record<string, readonly string[]> = {
  client_id: ['tv', 'web', 'spa', 'nobody'],
  client_secret: [SECRET, 'wrong'],
  scope: SCOPES,
  resource: [API, 'https://unknown.example', 'not a url'],
  claims: ['{"userinfo":{"email":null}}', '{'],
};
const USER_CODE_FIELDS: Record<string, readonly string[]> = {
  user_code: ['BCDF-GHJK', 'bcdf ghjk', '', 'x'.repeat(300), '%00', '<script>'],
  xsrf: ['forged', ''],
  confirm: ['yes', ''],
  abort: ['yes', ''],
};
const ADMIN_FIELDS: Record<string, readonly string[]> = {
  ...REGISTRATION_FIELDS,
  username: ['alice', 'fuzz-user', ''], password: ['short', 'a long enough password for a fuzz user'], email: ['x@example.test', 'not an email'], email_verified: ['true'],
  name: ['x'], locale: ['en', 'x'.repeat(40)], given_name: ['x'], family_name: ['x'],
};

const ADMIN_SURFACE_FIELDS: Record<string, readonly string[]> = {
  identifier: ['https://fuzz-api.example.test', API, 'urn:fuzz', 'not a uri', 'https://x.example/#f', `https://x.example/${'a'.repeat(600)}`],
  scopes: [], format: ['jwt', 'opaque', 'x'], accessTokenTTL: [], introspect: [], default: [],
  id: ['fuzz-up', 'self', 'UPPER', ''], issuer: ['https://up.example.test', 'http://127.0.0.1:1', 'javascript:x', 'not a url'], client_id: ['x'], client_secret: ['y'],
  scope: ['openid', 'email', ''], display_name: ['x'.repeat(65)], link_by_email: [], end_session: [], domains: [], claims: [],
};

export function targets(): Target[] {
  const q = (params: Record<string, readonly string[]>) => params;
  return [
    { name: 'discovery', arbitrary: requests({ methods: ['GET'], paths: fc.constantFrom('/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/.well-known/webfinger'), params: q({ resource: ['acct:alice@x'], rel: ['x'] }), carry: 'query', credentials: [] }) },
    { name: 'jwks', arbitrary: requests({ methods: ['GET', 'HEAD'], paths: fc.constant('/jwks'), params: q({ kid: ['x'] }), carry: 'query', credentials: [] }) },
    { name: 'authorization endpoint', arbitrary: requests({ methods: ['GET', 'POST'], paths: fc.constant('/auth'), params: AUTH_PARAMS, carry: 'either', credentials: ['session'] }) },
    { name: 'authorization resume', arbitrary: requests({ methods: ['GET'], paths: uidPath('/auth'), params: q({}), carry: 'query', credentials: ['interaction', 'session'] }) },
    { name: 'interaction page', arbitrary: requests({ methods: ['GET'], paths: uidPath('/interaction'), params: q({}), carry: 'query', credentials: ['interaction', 'consent'] }) },
    { name: 'login form', arbitrary: requests({ methods: ['POST'], paths: uidPath('/interaction', '/login'), params: LOGIN_FIELDS, carry: 'form', credentials: ['interaction', 'consent'], csrf: true }) },
    { name: 'second-factor form', arbitrary: requests({ methods: ['POST'], paths: uidPath('/interaction', '/second-factor'), params: q({ csrf: ['forged'], method: ['totp', 'recovery', 'x', '__proto__'], code: ['123456', '000000', 'abcd-efgh-jkmn-pqrs', 'x'.repeat(200)] }), carry: 'form', credentials: ['interaction', 'consent'], csrf: true }) },
    { name: 'passkey form', arbitrary: requests({ methods: ['POST'], paths: uidPath('/interaction', '/passkey'), params: q({ csrf: ['forged'], credential: ['{}', 'null', '[]', '{', '{"id":"x","rawId":"x","type":"public-key","response":{"userHandle":"eA","clientDataJSON":"e30","authenticatorData":"AA","signature":"AA"}}', '{"response":{"userHandle":"../../x"}}'] }), carry: 'form', credentials: ['interaction', 'consent'], csrf: true }) },
    { name: 'unmet form', arbitrary: requests({ methods: ['POST'], paths: uidPath('/interaction', '/unmet'), params: q({ csrf: ['forged'] }), carry: 'form', credentials: ['interaction', 'consent'], csrf: true }) },
    { name: 'consent form', arbitrary: requests({ methods: ['POST'], paths: uidPath('/interaction', '/confirm'), params: q({ csrf: ['forged'], scope: SCOPES }), carry: 'form', credentials: ['consent', 'interaction'], csrf: true }) },
    { name: 'account chooser', arbitrary: fc.oneof(requests({ methods: ['POST'], paths: uidPath('/interaction', '/continue'), params: q({ csrf: ['forged'] }), carry: 'form', credentials: ['interaction', 'consent'], csrf: true }), requests({ methods: ['GET'], paths: uidPath('/interaction', '/another'), params: q({}), carry: 'query', credentials: ['interaction', 'consent'] })) },
    { name: 'cancel form', arbitrary: requests({ methods: ['POST'], paths: uidPath('/interaction', '/abort'), params: q({ csrf: ['forged'] }), carry: 'form', credentials: ['interaction', 'consent'], csrf: true }) },
    { name: 'device authorization', arbitrary: requests({ methods: ['POST'], paths: fc.constant('/device/auth'), params: DEVICE_PARAMS, carry: 'form', credentials: ['client'] }) },
    { name: 'device code entry', arbitrary: requests({ methods: ['GET', 'POST'], paths: fc.constant('/device'), params: USER_CODE_FIELDS, carry: 'either', credentials: ['session'] }) },
    { name: 'device resume', arbitrary: requests({ methods: ['GET'], paths: uidPath('/device'), params: q({}), carry: 'query', credentials: ['interaction', 'session'] }) },
    { name: 'token endpoint', arbitrary: requests({ methods: ['POST'], paths: fc.constant('/token'), params: TOKEN_PARAMS, carry: 'form', credentials: ['client'] }) },
    { name: 'userinfo', arbitrary: requests({ methods: ['GET', 'POST'], paths: fc.constant('/me'), params: q({ access_token: ['x', '{access-token}'], claims: ['{}'] }), carry: 'either', credentials: ['access-token'] }) },
    { name: 'introspection', arbitrary: requests({ methods: ['POST'], paths: fc.constant('/token/introspection'), params: TOKEN_TYPE_PARAMS, carry: 'form', credentials: ['client'] }) },
    { name: 'token revocation', arbitrary: requests({ methods: ['POST'], paths: fc.constant('/token/revocation'), params: TOKEN_TYPE_PARAMS, carry: 'form', credentials: ['client'] }) },
    { name: 'pushed authorization requests', arbitrary: requests({ methods: ['POST'], paths: fc.constant('/request'), params: AUTH_PARAMS, carry: 'form', credentials: ['client'] }) },
    { name: 'dynamic registration', arbitrary: requests({ methods: ['POST'], paths: fc.constant('/reg'), params: REGISTRATION_FIELDS, carry: 'json', credentials: [] }) },
    { name: 'registration management', arbitrary: requests({ methods: ['GET', 'PUT', 'DELETE'], paths: fc.oneof(fc.constant('/reg/{client}'), uidPath('/reg')), params: REGISTRATION_FIELDS, carry: 'json', credentials: ['registration'] }) },
    { name: 'end session', arbitrary: requests({ methods: ['GET', 'POST'], paths: fc.constant('/session/end'), params: q({ id_token_hint: ['not.a.jwt'], post_logout_redirect_uri: ['https://web.example.test/signed-out', 'https://evil.example/'], client_id: CLIENT_IDS, state: ['s'], ui_locales: ['en'], logout_hint: ['alice'] }), carry: 'either', credentials: ['session'] }) },
    { name: 'end session confirm form', arbitrary: requests({ methods: ['POST'], paths: fc.constantFrom('/session/end/confirm', '/session/end/success'), params: q({ xsrf: ['forged'], logout: ['yes', ''] }), carry: 'form', credentials: ['session'], csrf: true }) },
    { name: 'developer pages', arbitrary: requests({ methods: ['GET'], paths: fc.constantFrom('/developer', '/developer/', '/developer/sign-in', '/developer/callback', '/developer/apps'), params: q({ error: ['access_denied'], code: ['x'], state: ['x'], iss: ['x'] }), carry: 'query', credentials: ['session'] }) },
    { name: 'developer forms', arbitrary: requests({ methods: ['POST'], paths: fc.oneof(fc.constant('/developer/apps'), uidPath('/developer/apps', '/secret'), uidPath('/developer/apps', '/delete'), fc.constantFrom('/developer/apps/{app}/secret', '/developer/apps/{app}/delete')), params: q({ name: ['My app', 'x'.repeat(100)], type: ['web', 'spa', 'native', 'x', '__proto__', 'constructor'], redirect_uris: ['https://app.example.test/cb', 'https://a.example/cb https://b.example/cb', 'com.example.app:/cb', 'http://evil.example/cb', '*'], csrf: ['forged'] }), carry: 'form', credentials: ['session'], csrf: true }) },
    {
      name: 'account page and forms',
      arbitrary: fc.oneof(
        requests({ methods: ['GET', 'HEAD'], paths: fc.constantFrom('/account', '/account/', '/account/sign-in', '/account/callback', '/account/%ZZ'), params: q({ done: ['authenticator.added', '__proto__', 'x'], error: ['access_denied'], code: ['x'], state: ['x', 'password', '__proto__'], iss: ['x'] }), carry: 'query', credentials: ['session'] }),
        requests({
          methods: ['POST'],
          paths: fc.constantFrom(...ACCOUNT_FORMS.map((form) => `/account${form}`)),
          params: q({ csrf: ['forged'], current: ['x', FUZZER.password], password: ['a new password for the fuzzer', 'x'], confirm: ['a new password for the fuzzer'], code: ['123456', 'x'.repeat(200)], id: ['x', '__proto__', 'corp:x'], name: ['My key', 'x'.repeat(300)], credential: ['{}', 'null', '[]', '{', '{"id":"x","rawId":"x","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"AA"}}'], session: ['x', '__proto__'], client: ['web', 'x', '__proto__'] }),
          carry: 'form',
          credentials: ['session'],
          csrf: true,
        }),
      ),
    },
    {
      name: 'upstream sign-in callback and back-channel logout',
      arbitrary: fc.oneof(
        requests({ methods: ['GET'], paths: fc.constantFrom('/upstream/self/callback', '/upstream/self/signed-out', '/upstream/nope/callback', '/upstream/%ZZ/callback', '/upstream/self%FF/callback'), params: q({ code: ['x'], state: ['x', 'a'.repeat(300)], iss: ['x', 'https://evil.example'], error: ['access_denied', 'login_required'], error_description: ['x'], session_state: ['x'] }), carry: 'query', credentials: ['session', 'interaction'] }),
        requests({ methods: ['POST'], paths: fc.constantFrom('/upstream/self/backchannel-logout', '/upstream/nope/backchannel-logout', '/upstream/%ZZ/backchannel-logout'), params: q({ logout_token: ['x', 'a.b.c', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'] }), carry: 'form', credentials: [] }),
        requests({ methods: ['POST'], paths: uidPath('/interaction', '/upstream/self'), params: q({ csrf: ['forged'] }), carry: 'form', credentials: ['interaction'], csrf: true }),
      ),
    },
    {
      name: 'admin API',
      arbitrary: requests({
        methods: ['GET', 'POST', 'PUT', 'DELETE'],
        paths: fc.oneof(
          fc.constantFrom('/admin/openapi.json', '/admin/clients', '/admin/users', '/admin/clients/web', '/admin/clients/{client}', '/admin/clients/fuzz-made/secret', '/admin/users/alice/disable', '/admin/users/fuzz-user/enable', '/admin'),
          uidPath('/admin/clients'),
          uidPath('/admin/users', '/disable'),
        ),
        params: ADMIN_FIELDS,
        carry: 'json',
        credentials: ['admin-token'],
      }),
    },
    {
      // The admin API's APIs, grants, upstreams and second factors (bad input and blips, tenth pass).
      name: 'admin API: APIs, grants, upstreams, second factors',
      arbitrary: requests({
        methods: ['GET', 'POST', 'PUT', 'DELETE'],
        paths: fc.oneof(
          fc.constantFrom('/admin/apis', `/admin/apis/${encodeURIComponent(API)}`, '/admin/apis/%ZZ', '/admin/apis/https%3A%2F%2Fnowhere.example', '/admin/clients/web/grants', `/admin/clients/web/grants/${encodeURIComponent(API)}`, '/admin/clients/web/grants/%ZZ', '/admin/clients/{client}/grants/%2F', '/admin/upstreams', '/admin/upstreams/self', '/admin/upstreams/%ZZ', '/admin/users/alice/mfa', '/admin/users/alice/mfa/reset', '/admin/users/%ZZ/mfa/reset'),
          uidPath('/admin/upstreams'),
          uidPath('/admin/users', '/mfa/reset'),
        ),
        params: ADMIN_SURFACE_FIELDS,
        carry: 'json',
        credentials: ['admin-token'],
      }),
    },
    { name: 'revocation feed', arbitrary: requests({ methods: ['GET', 'HEAD'], paths: fc.constant('/revocations'), params: q({ after: ['0-0', '1-2-3', '99999999999999999-0'], limit: ['1', '1000', '1001', '-1', '0', 'abc'] }), carry: 'query', credentials: ['feed-token'] }) },
    { name: 'health and static', arbitrary: requests({ methods: ['GET', 'HEAD'], paths: fc.constantFrom('/healthz', '/readyz', '/metrics', '/static/latchkey.css', '/static/../package.json', '/favicon.ico'), params: q({}), carry: 'query', credentials: [] }) },
    {
      name: 'anywhere',
      arbitrary: requests({
        methods: ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'],
        paths: fc.oneof(
          fc.array(fc.oneof(fc.string({ maxLength: 12 }).map(encode), fc.constantFrom(...RAW_FRAGMENTS), fc.constantFrom('auth', 'token', 'interaction', 'reg', 'admin', 'developer', 'session', 'end', 'me', 'jwks', '.well-known')), { minLength: 1, maxLength: 6 }).map((segments) => `/${segments.join('/')}`),
          fc.integer({ min: 1_000, max: 20_000 }).map((size) => `/${'a'.repeat(size)}`),
          fc.constantFrom('//evil.example/', '/%2F%2Fevil.example', '/\\evil.example', '/auth/', '/token/', '/reg/', '/interaction/', '/session/end/confirm/x'),
        ),
        params: AUTH_PARAMS,
        carry: 'either',
        credentials: ['session', 'client'],
      }),
    },
  ];
}

// ---- running -------------------------------------------------------------------------------------

export interface Failure {
  readonly target: string;
  readonly problem: string;
  readonly request: string;
  readonly status: number;
  readonly body: string;
}

export interface Figures {
  requests: number;
  byStatus: Record<string, number>;
  serverErrors: number;
  failures: Failure[];
  runs: number;
  byTarget: Record<string, { runs: number; requests: number }>;
}

/** A live OP with the people, clients and credentials the fuzzer borrows. */
export class FuzzBench {
  readonly figures: Figures = { requests: 0, byStatus: {}, serverErrors: 0, failures: [], runs: 0, byTarget: {} };
  #credentialsUsed = new Map<Credential, number>();
  #interaction: { agent: Agent; uid: string; csrf: string } | undefined;
  #consent: { agent: Agent; uid: string; csrf: string } | undefined;
  #session: { agent: Agent; csrf: string; appId: string; logoutXsrf: string } | undefined;
  #registration: { clientId: string; token: string } | undefined;
  #adminToken = '';
  #feedToken = '';
  #accessToken = '';
  #registeredRedirects: string[] = [];
  #target = '';

  private constructor(
    readonly op: Op,
    private readonly web: RelyingParty,
  ) {}

  static async start(): Promise<FuzzBench> {
    const op = await startOp({
      people: [ALICE, FUZZER],
      env: {
        REGISTRATION_OPEN: 'true',
        // Fuzzed logins fail all day long from one address; the harness's own sign-ins must not be paused.
        ACCOUNTS_THROTTLE_MAX_FAILURES_PER_IP: '100000000',
        DEVICE_FLOW_MAX_FAILURES_PER_IP: '100000000',
        RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read'], format: 'jwt', grants: [{ client_id: 'web', scopes: ['read'] }] }]),
      },
      clients: [
        webClient('web', SECRET, { grant_types: ['authorization_code', 'refresh_token', 'client_credentials'], post_logout_redirect_uris: ['https://web.example.test/signed-out'] }),
        { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['https://spa.example.test/callback'], grant_types: ['authorization_code', 'refresh_token'] },
        { client_id: 'ops', client_secret: ADMIN_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'admin revocations' },
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] },
      ],
    });
    // The operator grants `ops` the privileged APIs; `web` gets the API's scope (config above).
    await grantApi(op, 'ops', `${op.issuer}/admin`, ['admin']);
    await grantApi(op, 'ops', `${op.issuer}/revocations`, ['revocations']);
    const bench = new FuzzBench(op, await RelyingParty.create(op, 'web', { secret: SECRET }));
    // An upstream provider for /upstream/self/…: the OP itself, so that its discovery and keys answer.
    const added = await fetch(`${op.issuer}/admin/upstreams`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await bench.#clientToken(`${op.issuer}/admin`, 'admin')}` },
      body: JSON.stringify({ id: 'self', issuer: op.issuer, client_id: 'web', client_secret: SECRET, scope: 'openid' }),
    });
    assert.equal(added.status, 201, await added.text());
    return bench;
  }

  stop(): Promise<void> {
    return this.op.stop();
  }

  // -- credentials, made lazily and renewed when a fuzzed request may have used them up --

  async #freshInteraction(): Promise<{ agent: Agent; uid: string; csrf: string }> {
    const agent = new Agent();
    const flow = await this.web.authorize(agent, { scope: 'openid profile' });
    return { agent, uid: /\/interaction\/([^/?#]+)/.exec(flow.page.url)![1]!, csrf: formIn(flow.page.html, '/login').hidden.csrf ?? '' };
  }

  async #freshConsent(): Promise<{ agent: Agent; uid: string; csrf: string }> {
    const agent = new Agent();
    const flow = await this.web.authorize(agent, { scope: 'openid profile email', prompt: 'consent' });
    const page: Page = await agent.submit(flow.page, '/login', { username: FUZZER.username, password: FUZZER.password }, this.web.redirectUri);
    return { agent, uid: /\/interaction\/([^/?#]+)/.exec(page.url)![1]!, csrf: formIn(page.html, '/confirm').hidden.csrf ?? '' };
  }

  async #freshSession(): Promise<{ agent: Agent; csrf: string; appId: string; logoutXsrf: string }> {
    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(`${this.op.issuer}/developer/sign-in`), { username: FUZZER.username, password: FUZZER.password, login: 'required' });
    const csrf = formIn(page.html, '/developer/apps').hidden.csrf ?? '';
    const made = await agent.submit(page, '/developer/apps', { name: 'Fuzz target app', type: 'web', redirect_uris: 'https://fuzz-app.example.test/cb' });
    const appId = /app-[\w-]+/.exec(made.html)?.[0] ?? 'app-none';
    const logout = await agent.follow(this.op.metadata.end_session_endpoint!);
    const logoutXsrf = /name="xsrf" value="([^"]+)"/.exec(logout.html)?.[1] ?? '';
    return { agent, csrf, appId, logoutXsrf };
  }

  async #clientToken(resource: string, scope: string): Promise<string> {
    const response = await fetch(this.op.metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`ops:${ADMIN_SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
    });
    return ((await response.json()) as { access_token: string }).access_token;
  }

  async #freshRegistration(): Promise<{ clientId: string; token: string }> {
    const response = await fetch(this.op.metadata.registration_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://fuzz-reg.example.test/cb'] }),
    });
    const body = (await response.json()) as { client_id: string; registration_access_token: string };
    return { clientId: body.client_id, token: body.registration_access_token };
  }

  async #freshAccessToken(): Promise<string> {
    const flow = await this.web.signIn(new Agent(), FUZZER, { scope: 'openid profile' });
    return (await this.web.redeem(flow)).access_token;
  }

  /** Renews every credential every so many uses, since fuzzed requests spend and revoke them. */
  async #credential<T>(kind: Credential, current: T | undefined, make: () => Promise<T>, renewEvery = 10): Promise<T> {
    const used = (this.#credentialsUsed.get(kind) ?? 0) + 1;
    this.#credentialsUsed.set(kind, used);
    if (current !== undefined && used % renewEvery !== 0) return current;
    return make();
  }

  /** Fills in placeholders and attaches the chosen credential. */
  async #materialize(request: FuzzRequest): Promise<{ url: string; init: RequestInit & { headers: Headers }; describe: string }> {
    const headers = new Headers();
    let path = request.path;
    let body = request.body;
    let query = request.query.replaceAll('%7Bissuer%7D', encodeURIComponent(this.op.issuer));
    const addForm = (fields: Record<string, string>) => {
      const extra = new URLSearchParams(fields).toString();
      body = Buffer.concat([Buffer.from(body ?? []), Buffer.from(body?.length ? `&${extra}` : extra)]);
    };
    const cookiesOf = (agent: Agent) => agent.cookieHeader(this.op.issuer);

    switch (request.credential) {
      case 'interaction':
      case 'consent': {
        const state = request.credential === 'interaction'
          ? (this.#interaction = await this.#credential('interaction', this.#interaction, () => this.#freshInteraction(), 3))
          : (this.#consent = await this.#credential('consent', this.#consent, () => this.#freshConsent(), 3));
        path = path.replaceAll('{uid}', state.uid);
        headers.set('cookie', cookiesOf(state.agent));
        if (request.withCsrf && body !== undefined) addForm({ csrf: state.csrf });
        break;
      }
      case 'session': {
        this.#session = await this.#credential('session', this.#session, () => this.#freshSession(), 25);
        path = path.replaceAll('{app}', this.#session.appId);
        headers.set('cookie', cookiesOf(this.#session.agent));
        if (request.withCsrf && body !== undefined) addForm(path.startsWith('/session') ? { xsrf: this.#session.logoutXsrf } : { csrf: this.#session.csrf });
        break;
      }
      case 'client':
        headers.set('authorization', `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`);
        break;
      case 'access-token':
        this.#accessToken = await this.#credential('access-token', this.#accessToken || undefined, () => this.#freshAccessToken(), 50);
        headers.set('authorization', `Bearer ${this.#accessToken}`);
        query = query.replaceAll('%7Baccess-token%7D', this.#accessToken);
        break;
      case 'admin-token':
        this.#adminToken = await this.#credential('admin-token', this.#adminToken || undefined, () => this.#clientToken(`${this.op.issuer}/admin`, 'admin'), 200);
        headers.set('authorization', `Bearer ${this.#adminToken}`);
        break;
      case 'feed-token':
        this.#feedToken = await this.#credential('feed-token', this.#feedToken || undefined, () => this.#clientToken(`${this.op.issuer}/revocations`, 'revocations'), 200);
        headers.set('authorization', `Bearer ${this.#feedToken}`);
        break;
      case 'registration':
        this.#registration = await this.#credential('registration', this.#registration, () => this.#freshRegistration(), 5);
        path = path.replaceAll('{client}', this.#registration.clientId);
        headers.set('authorization', `Bearer ${this.#registration.token}`);
        break;
      case 'none':
        break;
    }
    path = path.replaceAll('{uid}', 'no-such-uid').replaceAll('{client}', 'no-such-client').replaceAll('{app}', 'app-none');
    // The request's own headers win over the credential's: a valid cookie with a forged Authorization, and so on.
    for (const [name, value] of Object.entries(request.headers)) headers.set(name, value);
    const url = `${this.op.issuer}${path}${query ? `?${query}` : ''}`;
    const describe = `${request.method} ${url.length > 300 ? `${url.slice(0, 300)}…(${url.length})` : url} [${request.credential}] ${JSON.stringify(Object.fromEntries(headers))} body=${body === undefined ? '-' : `${Buffer.from(body).subarray(0, 300).toString('latin1')}${body.length > 300 ? `…(${body.length})` : ''}`}`;
    return { url, init: { method: request.method, headers, ...(body === undefined ? {} : { body: Buffer.from(body) }), redirect: 'manual' }, describe };
  }

  /** Sends one fuzzed request and judges the answer; failures are recorded, not thrown. */
  async send(target: string, request: FuzzRequest): Promise<void> {
    this.#target = target;
    const { url, init, describe } = await this.#materialize(request);
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      text = request.method === 'HEAD' ? '' : await response.text();
    } catch (error) {
      this.#count(0);
      this.#fail('no answer (connection failed or timed out)', describe, 0, String(error));
      return;
    }
    this.#count(response.status);
    for (const problem of await this.#judge(response, text, request.method)) this.#fail(problem, describe, response.status, text);
  }

  #count(status: number) {
    this.figures.requests += 1;
    const stats = (this.figures.byTarget[this.#target] ??= { runs: 0, requests: 0 });
    stats.requests += 1;
    this.figures.byStatus[status] = (this.figures.byStatus[status] ?? 0) + 1;
    if (status >= 500) this.figures.serverErrors += 1;
  }

  #fail(problem: string, request: string, status: number, body: string) {
    this.figures.failures.push({ target: this.#target, problem, request, status, body: body.slice(0, 1500) });
  }

  async #judge(response: Response, text: string, method: string): Promise<string[]> {
    const problems: string[] = [];
    const { status } = response;
    if (status >= 500) problems.push(`answered ${status}`);
    for (const [pattern, what] of LEAKS) if (pattern.test(text)) problems.push(`the body shows ${what}`);
    const type = response.headers.get('content-type') ?? '';
    if (status >= 300 && status < 400 && status !== 304) {
      const location = response.headers.get('location');
      if (!location) problems.push('a redirect without Location');
      else if (!(await this.#allowedRedirect(location))) problems.push(`redirects off-site to ${location.slice(0, 200)}`);
    }
    if (status >= 400 && method !== 'HEAD') {
      if (/json/.test(type)) {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          problems.push('a JSON error answer that is not JSON');
        }
        const error = (body as { error?: unknown } | undefined)?.error;
        const description = (body as { error_description?: unknown } | undefined)?.error_description;
        if (body !== undefined && (typeof error !== 'string' || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(error))) problems.push('a JSON error answer without a well-formed "error"');
        if (description !== undefined && typeof description !== 'string') problems.push('error_description is not a string');
      } else if (/html/.test(type)) {
        // An error sent to the client's registered redirect URI in response_mode=form_post (the
        // engine's self-submitting form, status 400): the client's page, not ours, shows it.
        const posted = /<title>Submitting Callback<\/title>[^]*<form method="post" action="([^"]+)">/.exec(text);
        if (posted && /<input type="hidden" name="error" value="[^"]+"\/>/.test(text)) {
          if (!(await this.#allowedRedirect(posted[1]!.replaceAll('&amp;', '&')))) problems.push(`posts an error off-site to ${posted[1]!.slice(0, 200)}`);
        } else if (!text.includes('<p class="brand">Latchkey</p>') || !/<h1>[^<]+<\/h1>/.test(text)) problems.push('an HTML error answer that is not one of our pages');
      } else {
        problems.push(`an error answer of type "${type}": ${text.slice(0, 80)}`);
      }
    }
    return problems;
  }

  async #allowedRedirect(location: string): Promise<boolean> {
    const target = new URL(location, this.op.issuer);
    const own = [new URL(this.op.issuer).origin, new URL(this.op.metadata.token_endpoint!).origin];
    if (own.includes(target.origin)) return true;
    const registered = (uris: string[]) => uris.some((uri) => target.href === uri || target.href.startsWith(`${uri}?`) || target.href.startsWith(`${uri}#`) || (uri.includes('?') && target.href.startsWith(`${uri}&`)));
    const known = [...REDIRECTS, 'https://web.example.test/signed-out'];
    if (registered(known) || registered(this.#registeredRedirects)) return true;
    // Clients made by fuzzed requests (developer page, admin API, registration) registered URIs of their own.
    this.#adminToken ||= await this.#clientToken(`${this.op.issuer}/admin`, 'admin');
    const response = await fetch(`${this.op.issuer}/admin/clients`, { headers: { authorization: `Bearer ${this.#adminToken}` } });
    const clients = (await response.json()) as { redirect_uris?: string[]; post_logout_redirect_uris?: string[] }[];
    this.#registeredRedirects = clients.flatMap((client) => [...(client.redirect_uris ?? []), ...(client.post_logout_redirect_uris ?? [])]);
    return registered(this.#registeredRedirects);
  }

  /** The server still answers: health and discovery. */
  async stillAnswers(): Promise<void> {
    const health = await fetch(`${this.op.issuer}/healthz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    assert.equal(health.status, 200, '/healthz');
    const discovery = await fetch(`${this.op.issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    assert.equal(discovery.status, 200, 'discovery');
    this.figures.requests += 2;
  }

  /** Runs `runs` generated requests against one target; returns the failures it added. */
  async fuzz(target: Target, runs: number, seed: number): Promise<Failure[]> {
    const before = this.figures.failures.length;
    const stats = (this.figures.byTarget[target.name] ??= { runs: 0, requests: 0 });
    await fc.assert(
      fc.asyncProperty(target.arbitrary, async (request) => {
        stats.runs += 1;
        this.figures.runs += 1;
        await this.send(target.name, request);
        return true;
      }),
      { numRuns: runs, seed, endOnFailure: true },
    );
    try {
      await this.stillAnswers();
    } catch (error) {
      this.#fail(`the server stopped answering: ${String(error)}`, target.name, 0, '');
    }
    return this.figures.failures.slice(before);
  }
}

/** What must never appear in an answer: traces, internals, paths of this machine. */
const LEAKS: [RegExp, string][] = [
  [/\n\s+at [^\n]+[(:]\d+/, 'a stack frame'],
  [/ {4}at [\w$.<>[\] ]+ \(/, 'a stack frame'],
  [/node_modules/, 'a node_modules path'],
  [/file:\/\//, 'a file URL'],
  [/\.(ts|js|mjs|cjs):\d+:\d+/, 'a source position'],
  [new RegExp(resolve('.').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'a path of this machine'],
  [/\b(TypeError|ReferenceError|RangeError|URIError|SyntaxError|AssertionError)\b/, 'an internal error class'],
  [/\bECONNREFUSED|ERR_[A-Z_]{4,}\b/, 'an internal error code'],
];

