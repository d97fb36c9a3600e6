/**
 * Configuration: config/default.yaml, then config/<NODE_ENV>.yaml, then the file named by
 * CONFIG_FILE, then environment variables. Validated once; the result is frozen.
 * Every leaf of default.yaml is a setting, and its env var is derived from its path, so a
 * setting cannot exist without an env var (see envName).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { isAbsolute, join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { schemelessHost } from './loopback.js';
import { ROOT } from './paths.js';
import { jsonProblem } from './json-problem.js';
import { withoutQuerySecrets } from './url-secrets.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const seconds = z.number().int().positive();
/** An enumerated setting is read in any case (`INFO` is `info`). */
const lowerCase = (value: unknown) => (typeof value === 'string' ? value.toLowerCase() : value);
/**
 * The longest an initial access token may live (configured default and `--expires-in`): one that
 * is forgotten must still end by itself (an operator revokes a leaked one at once).
 */
export const INITIAL_ACCESS_TOKEN_MAX = 30 * 86_400;
const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port');
/**
 * A name of metrics.hosts: a DNS name as a Host header carries it, any case, a trailing dot allowed.
 * The listener compares it with the Host's name (ops/metrics.ts namedForUs), its port taken off, so
 * an entry with a port, a scheme, a path or a wildcard would never match: refused here, not at every scrape.
 */
const metricsHostName = z
  .string()
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/, 'expected a name as a scraper reaches the listener by, without a port, scheme, path or wildcard (latchkey.monitoring.svc)');
const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'expected a scope token (RFC 6749 §3.3)');

/** "; use https://id.example.com": the origin of an issuer given with a trailing slash or a path, which is what was meant. */
const originOf = (input: unknown) => {
  const origin = typeof input === 'string' ? URL.parse(input)?.origin : undefined;
  return origin && origin !== 'null' ? `; use ${origin}` : '';
};

/**
 * Scope names no API may define (configured, `latchkey apis add`, the admin API): the OpenID
 * Connect scopes (OIDC Core §5.4, §11), which a person consents to and userinfo answers, and the
 * privileged APIs' own (the admin API's, the revocation feed's), which the registration policy
 * keeps from self-service clients by name. A scope string must mean one thing: an API's `email`
 * would be granted by a person's consent to their email address (and the other way round), an
 * API's `admin` refused in every self-service client's metadata. src/apis/ holds the built-in
 * APIs to this list at start.
 */
export const RESERVED_SCOPES: ReadonlySet<string> = new Set(['openid', 'profile', 'email', 'address', 'phone', 'offline_access', 'admin', 'admin:read', 'revocations']);

/** Why `scope` may not be an API's, if it may not (RESERVED_SCOPES). */
export function reservedScopeProblem(scope: string): string | undefined {
  if (!RESERVED_SCOPES.has(scope)) return undefined;
  return `"${scope}" is reserved (an OpenID Connect scope, or a privileged API's) and cannot be an API's scope: name it for the API, such as "ledger:${scope}"`;
}
/** RFC 6749 §3.3's separator, said wherever scopes come joined with commas (apis/scope-commas.ts). */
export const COMMA_RULE = 'scopes are separated by spaces, not commas (RFC 6749 section 3.3)';

/**
 * An API's scope holding a comma: `--scope read,write` (or `"scopes": ["read,write"]`) made one scope
 * named so, which no client asks for by that name, and which the authorization endpoint reads as a
 * mistake for a space (twelfth newcomer pass).
 */
export function commaScopeProblem(scope: string): string | undefined {
  if (!scope.includes(',')) return undefined;
  return `"${scope}" holds a comma: ${COMMA_RULE}; name each on its own: ${scope.split(',').filter(Boolean).join(' ')}`;
}
const apiScope = scopeToken.superRefine((scope, ctx) => {
  const problem = reservedScopeProblem(scope) ?? commaScopeProblem(scope);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const issuer = z
  .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL such as https://id.example.com' })
  .refine((value) => !value.endsWith('/'), { error: (issue) => `must not end with a slash${originOf(issue.input)}` })
  .refine((value) => !/[?#]/.test(value), 'must not have a query or fragment')
  // Every endpoint is served at the root of the host: with a path, clients would look for discovery
  // at <issuer>/.well-known/… and find nothing, and the endpoints would not be under it either.
  .refine(
    (value) => (URL.parse(value)?.pathname ?? '/') === '/',
    { error: (issue) => `must be an origin without a path, such as https://id.example.com: Latchkey serves discovery and every endpoint at the root of its host${originOf(issue.input)}` },
  )
  // One spelling everywhere: discovery's issuer and every token's iss are this string, while every
  // endpoint URL is built from its origin (app.ts serveAsIssuer). Spelt otherwise (a capital in the
  // host, the default port, a Unicode domain), the two differed and clients refused the discovery
  // document or the tokens.
  .refine(
    (value) => {
      const url = URL.parse(value);
      return !url || url.pathname !== '/' || url.origin === value;
    },
    { error: (issue) => `must be written as the URL parser writes its origin (lower-case host, no default port, a domain in punycode, no user name), so that it reads the same in discovery, in tokens and in every endpoint URL${originOf(issue.input)}` },
  );

const resourceServer = z.strictObject({
  // "localhost:4000" passes as a URL (the scheme "localhost:"): a host and port without http(s)://.
  identifier: z
    .string()
    .refine((value) => !schemelessHost(value), { error: (issue) => `a host and port without a scheme; expected ${schemelessHost(String(issue.input))}` })
    .pipe(z.url()),
  scopes: z.array(apiScope).default([]),
  format: z.enum(['jwt', 'opaque']).default('jwt'),
  accessTokenTTL: seconds.optional(),
  // Operator grants from configuration (see src/apis/): client_credentials scopes, introspection, default API.
  grants: z
    .array(
      z.strictObject({
        client_id: z.string().min(1),
        scopes: z.array(scopeToken).default([]),
        introspect: z.boolean().optional(),
        default: z.boolean().optional(),
      }),
    )
    .optional(),
});

/** ioredis takes the URL's path for a database number: `/x` was SELECT NaN, refused by Redis as an uncaught error. */
const redisUrl = z
  .url({
    protocol: /^rediss?$/,
    // Written as host:port (as redis-cli takes it), it is told the scheme it lacks, without its credentials.
    error: (issue) => {
      const bare = typeof issue.input === 'string' && /^[\w.:[\]-]+(?:\/\d*)?$/.test(issue.input) && !issue.input.includes('//') ? issue.input : undefined;
      return `expected a redis:// or rediss:// URL (or nothing: the embedded store)${bare ? `, such as redis://${bare}` : ''}`;
    },
  })
  // URL.parse: refinements run after a failed check too, and `new URL` threw on what is not a URL at
  // all (REDIS_URL=127.0.0.1:6379, without its scheme): a TypeError's stack trace at start (fourteenth newcomer pass).
  .refine((value) => /^\/?\d*$/.test(URL.parse(value)?.pathname ?? ''), 'its path is a database number, as in redis://127.0.0.1:6379/0 (or none)');

/** The most worker processes `workers` (WORKERS) and `serve --workers` take. */
export const MAX_WORKERS = 256;

const schema = z.strictObject({
  issuer: z.union([z.literal(''), issuer]),
  port: z.number().int().min(0).max(65535),
  workers: z.number().int().min(0).max(MAX_WORKERS),
  shutdownTimeout: seconds,
  host: z.string().min(1),
  proxy: z.boolean(),
  proxyHops: z.number().int().min(1).max(16),
  redis: z.strictObject({
    url: z.union([z.literal(''), redisUrl]),
    mode: z.enum(['standalone', 'sentinel', 'cluster']),
    sentinels: z.array(hostPort),
    sentinelName: z.string().min(1),
    clusterNodes: z.array(hostPort),
    keyPrefix: z.string(),
    commandTimeout: z.number().int().positive(),
  }),
  embedded: z.strictObject({ file: z.string().min(1) }),
  cookie: z.strictObject({ keys: z.array(z.string().min(1)).min(1) }),
  keys: z.strictObject({
    dir: z.string().min(1),
    rsaBits: z.number().int().min(2048).multipleOf(1024),
    secrets: z.array(z.string().min(1)).min(1),
    rotationInterval: z.number().int().min(0),
    publishLead: seconds,
    refreshInterval: z.number().positive().max(300),
  }),
  ttl: z.strictObject({
    accessToken: seconds,
    clientCredentials: seconds,
    authorizationCode: seconds.max(600, 'RFC 6749 §4.1.2 recommends at most 10 minutes'),
    idToken: seconds,
    refreshToken: seconds,
    refreshReuseGrace: z.number().int().min(0).max(60, 'a reuse window longer than a minute defeats refresh token rotation'),
    session: seconds,
    sessionMax: seconds,
    interaction: seconds,
    deviceCode: seconds.max(1800, 'RFC 8628 §5.2: a user code must expire soon; at most 30 minutes'),
    grant: seconds,
    apiAccessTokenMax: seconds,
  }),
  idToken: z.strictObject({ scopeClaims: z.boolean() }),
  accounts: z.strictObject({
    argon2: z.strictObject({
      memoryCost: z.number().int().min(19456, 'OWASP minimum for argon2id is 19456 KiB'),
      timeCost: z.number().int().min(2, 'OWASP minimum for argon2id at 19 MiB is 2'),
      parallelism: z.number().int().min(1).max(16),
    }),
    throttle: z.strictObject({
      maxFailures: z.number().int().min(1),
      maxFailuresPerIp: z.number().int().min(1),
      window: seconds,
      baseDelay: seconds,
      maxDelay: seconds,
      maxCodeFailures: z.number().int().min(1),
    }),
    mfa: z.strictObject({ required: z.boolean() }),
    reauthenticateAfter: seconds,
  }),
  clients: z.array(z.looseObject({ client_id: z.string().min(1) })),
  resourceServers: z.array(resourceServer),
  outbound: z.strictObject({ allowPrivateNetworks: z.boolean() }),
  backchannel: z.strictObject({
    // From BACKCHANNEL_RETRY_SCHEDULE, "10,30,120" is text: numbers read from it.
    retrySchedule: z.array(z.coerce.number().positive().max(86400, 'at most a day between two attempts')).max(20, 'at most 20 attempts more'),
    sweepInterval: z.number().positive().max(60, 'at most a minute: what is due waits for the next sweep'),
  }),
  par: z.strictObject({ required: z.boolean() }),
  pkce: z.strictObject({ required: z.enum(['all', 'public']) }),
  dpop: z.strictObject({ requireNonce: z.boolean() }),
  upstreams: z.strictObject({ timeout: z.number().int().min(1).max(60), stateTtl: seconds }),
  metrics: z.strictObject({ enabled: z.boolean(), host: z.string().min(1), port: z.number().int().min(0).max(65535), hosts: z.array(metricsHostName) }),
  rateLimit: z.strictObject({
    window: seconds,
    perIp: z.number().int().min(0),
    perClient: z.number().int().min(0),
    registrationPerIp: z.number().int().min(0),
    metadataPerIp: z.number().int().min(0),
  }),
  deviceFlow: z.strictObject({
    pollInterval: seconds.max(60),
    maxFailuresPerIp: z.number().int().min(1),
    maxFailuresPerCode: z.number().int().min(1),
    window: seconds,
  }),
  clientAssertions: z.strictObject({ maxLifetime: z.number().int().min(1).max(3600) }),
  // At most the engine's own minute: its fetch never lets a JWKS stay fresh longer (client-jwks-freshness.ts).
  clientJwks: z.strictObject({ maxAge: z.number().int().min(1).max(60, "at most 60: a client's keys are read again within a minute") }),
  registration: z.strictObject({
    open: z.boolean(),
    authMethods: z.array(z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'])).min(1),
    initialAccessTokenTTL: seconds.max(INITIAL_ACCESS_TOKEN_MAX, 'an initial access token is for one registration soon; at most 30 days (2592000)'),
    secretRotationGrace: z.number().int().min(0),
    maxAppsPerDeveloper: z.number().int().min(1).max(10_000),
  }),
  clientMetadataDocuments: z
    .strictObject({
      enabled: z.boolean(),
      cacheMin: z.number().int().min(1),
      cacheMax: seconds,
      timeoutMs: z.number().int().min(100).max(30_000),
      maxBytes: z.number().int().min(512).max(1_048_576),
    })
    .refine((value) => value.cacheMin <= value.cacheMax, { message: 'must not exceed clientMetadataDocuments.cacheMax (CLIENT_METADATA_DOCUMENTS_CACHE_MAX)', path: ['cacheMin'] }),
  // Any case (LOG_LEVEL=INFO, LOG_FORMAT=JSON, as other tools spell them): pino's names are lower-case.
  log: z.strictObject({
    level: z.preprocess(lowerCase, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])),
    format: z.preprocess(lowerCase, z.enum(['auto', 'json', 'pretty'])),
  }),
});

/**
 * `issuerGiven`: the issuer was set (ISSUER, a file), not derived from the port. `embeddedFileGiven`:
 * embedded.file was set (EMBEDDED_FILE, a file), not the default relative to where latchkey runs.
 */
export type Config = z.infer<typeof schema> & {
  readonly env: string;
  readonly production: boolean;
  readonly issuerGiven: boolean;
  readonly embeddedFileGiven: boolean;
};
export type ResourceServerConfig = z.infer<typeof resourceServer>;

/** The cookie key shipped in default.yaml: public, so production refuses it. */
const DEFAULT_COOKIE_KEY = 'insecure-development-cookie-key';
/** The key ring secret shipped in default.yaml: public, so production refuses it. */
export const DEFAULT_KEYRING_SECRET = 'insecure-development-keyring-secret';
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

type Tree = { [key: string]: unknown };
const isTree = (value: unknown): value is Tree =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** `ttl.accessToken` → `TTL_ACCESS_TOKEN`. */
export function envName(path: readonly string[]): string {
  // An acronym stays one word: `initialAccessTokenTTL` → INITIAL_ACCESS_TOKEN_TTL, as the README says.
  return path.map((segment) => segment.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

/**
 * A settings file written as a .env (`PORT=3001`, the README's Docker lines' file, given as
 * CONFIG_FILE since `npm start` does not read .env) parses as one YAML string: said so, naming how
 * the first setting it sets is written in YAML, never its value.
 */
function dotEnvLines(text: string | undefined): string {
  const names = [...envFileNames(text ?? '')];
  if (!names.length) return '';
  const meant = settings().find(({ path }) => names.includes(envName(path)))?.path;
  const example = meant ? `: ${envName(meant)} is written ${nested(meant)}` : '';
  return ` (as config/default.yaml writes them), not NAME=value lines as in a .env, which are environment variables: export them, or write each as YAML${example}`;
}

/** Every setting path, with its default value: the leaves of default.yaml. */
export function settings(tree: Tree = readYaml(join(ROOT, 'config', 'default.yaml')), prefix: string[] = []) {
  const out: { path: string[]; value: unknown }[] = [];
  for (const [key, value] of Object.entries(tree)) {
    if (isTree(value)) out.push(...settings(value, [...prefix, key]));
    else out.push({ path: [...prefix, key], value });
  }
  return out;
}

/**
 * Each settings file's text as it was last parsed, with its tree. Parsing default.yaml (15 KB of
 * commented YAML) costs 40–80 ms of CPU, and a process reads it more than once: a CLI command
 * checks the environment's names against it, then loads the settings; a test process starts many
 * servers. The same text gives the same tree, so it is parsed once; a file whose text changed is
 * parsed again. Each caller gets its own copy (the trees are merged and written into).
 */
const parsedFiles = new Map<string, { text: string; tree: Tree }>();

/**
 * A file that cannot be read or parsed, in one line: the parser's first line ends with a colon
 * before the excerpt it draws under it, so the offending line is quoted instead.
 */
function yamlError(error: unknown, text: string | undefined): string {
  const first = (error as Error).message.split('\n')[0]!;
  if (!(error instanceof YAMLParseError)) return first;
  const line = error.linePos?.[0]?.line;
  const source = line === undefined ? undefined : text?.split('\n')[line - 1]?.trim();
  const shown = source === undefined ? undefined : quotableLine(source);
  return `not valid YAML: ${first.replace(/:$/, '')}${shown ? ` (${JSON.stringify(shown)})` : ''}`;
}

/**
 * The line a YAML refusal quotes: a `key: value` line, whole, unless its key names a secret (keys.secrets,
 * cookie.keys, a client_secret, a password) or its value may hold one (credentials in a URL, a client's
 * secret in a flow mapping): then its key alone. Nothing else is quoted: a NAME=value line (a .env's,
 * pasted in) or a list item may be a secret (seventeenth passes, h12: a broken `secrets: [...]` or
 * `url: redis://:password@…` line was quoted whole); the refusal says the line and column anyway.
 */
function quotableLine(source: string): string | undefined {
  if (ENV_LINE.test(source)) return undefined;
  const match = /^(-\s+)?([A-Za-z_][\w.-]*):(?:\s+(.*))?$/.exec(source);
  if (!match) return undefined;
  const [, dash = '', key = '', value = ''] = match;
  return SECRET_KEY.test(key) || /@|secret|passw|token|credential|private/i.test(value) ? `${dash}${key}: …` : source;
}

/**
 * A key named like a secret: neither its value nor its line is written back (given, quotableLine).
 * Redis's password goes by other names too (pass, auth_pass, requirepass, pwd, auth): h11 taught
 * given() them, and the YAML refusal still quoted `requirepass: hunter2…` whole (review of the
 * seventeenth passes, h15); one list for both now.
 */
const SECRET_NAME = /secret|pass|pwd|auth|token|cookie|credential|private/i;
const SECRET_KEY = new RegExp(`${SECRET_NAME.source}|keys?$`, 'i');

/** A .env's line: an environment variable's name (after `export `), then `=`. */
const ENV_LINE = /^(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*=/;

/**
 * Whether `text` is a .env: each line that is not blank or a comment is NAME=value. YAML reads such a
 * file as one string, as no YAML at all when a value holds ": " on a later line (its error quoted the
 * first line, a value with it), or as a mapping of one odd key when the only line does ("KEYS_SECRETS=abc"
 * an unknown setting): it is refused as a .env whichever (sixteenth passes' review, h12).
 */
const DOT_ENV = Symbol('a .env');

function dotEnvShaped(text: string): boolean {
  const lines = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  return lines.length > 0 && lines.every((line) => ENV_LINE.test(line));
}

function readYaml(file: string): Tree {
  let text: string | undefined;
  let parsed: unknown;
  try {
    text = readFileSync(file, 'utf8');
    const known = parsedFiles.get(file);
    if (known?.text === text) return structuredClone(known.tree);
    parsed = dotEnvShaped(text) ? DOT_ENV : parseYaml(text);
  } catch (error) {
    throw new ConfigError(`${file}: ${yamlError(error, text)}`);
  }
  if (parsed === DOT_ENV) throw new ConfigError(`${file}: expected a mapping of settings${dotEnvLines(text)}`);
  if (parsed == null) parsed = {};
  if (!isTree(parsed)) throw new ConfigError(`${file}: expected a mapping of settings${dotEnvLines(text)}`);
  parsedFiles.set(file, { text, tree: structuredClone(parsed) });
  return parsed;
}

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isTree(current) && isTree(value) ? merge(current, value) : value;
  }
  return out;
}

/** Lists of objects: their env vars take JSON only. */
const JSON_LISTS = new Set(['clients', 'resourceServers']);

/** Env vars are strings; convert by the type of the setting's default. */
function fromEnv(raw: string, fallback: unknown, label: string, jsonOnly: boolean): unknown {
  if (typeof fallback === 'number') {
    if (raw.trim() === '' || Number.isNaN(Number(raw))) throw new ConfigError(`${label}: expected a number, got ${JSON.stringify(raw)}`);
    return Number(raw);
  }
  if (typeof fallback === 'boolean') {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    return raw;
  }
  if (Array.isArray(fallback)) {
    if (raw.trim().startsWith('[')) {
      try {
        return JSON.parse(raw);
      } catch (error) {
        throw new ConfigError(`${label}: not valid JSON (${jsonProblem(error, raw)})`);
      }
    }
    if (jsonOnly) throw new ConfigError(`${label}: expected a JSON array of objects (see config/default.yaml), got text that does not start with [`);
    return raw.split(',').map((item) => item.trim()).filter(Boolean);
  }
  return raw;
}

function setPath(tree: Tree, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    if (!isTree(node[key])) node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1]!] = value;
}

function label(path: readonly (string | number | symbol)[]): string {
  // The env var is the setting's (RESOURCE_SERVERS for resourceServers.0.identifier).
  const index = path.findIndex((key) => typeof key !== 'string');
  const keys = (index < 0 ? path : path.slice(0, index)) as string[];
  const name = path.map(String).join('.');
  return keys.length ? `${name} (${envName(keys)})` : name || '(root)';
}

function valueAt(path: readonly PropertyKey[], tree: Tree): unknown {
  let value: unknown = tree;
  for (const key of path) value = isTree(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  return value;
}

/** The setting a misspelt key was probably meant to be: one beside it that differs by a letter or two, or by case. */
function nearest(path: readonly PropertyKey[], defaults: Tree): string[] | undefined {
  const parent = valueAt(path.slice(0, -1), defaults);
  const typo = String(path.at(-1));
  if (!isTree(parent)) return undefined;
  const near = Object.keys(parent).find((key) => key.toLowerCase() === typo.toLowerCase() || editDistance(key, typo) <= 2);
  return near === undefined ? undefined : [...path.slice(0, -1).map(String), near];
}

/**
 * A setting a file holds as one key, as the README names it: its path dotted (`redis.url:`, read
 * as one key named so) or its env var (`KEYS_SECRETS:`). Each was an unknown setting with no word
 * of the one meant (tenth newcomer pass). The setting's path, and how it was written.
 */
function writtenAsOneKey(path: readonly PropertyKey[], defaults: Tree): { meant: string[]; as: 'dotted' | 'env' } | undefined {
  const key = String(path.at(-1));
  const paths = settings(defaults).map((setting) => setting.path);
  const dotted = [...path.slice(0, -1).map(String), ...key.split('.')].join('.').toLowerCase();
  const byPath = key.includes('.') ? paths.find((each) => each.join('.').toLowerCase() === dotted) : undefined;
  if (byPath) return { meant: byPath, as: 'dotted' };
  // An env var is written in capitals or with an underscore (KEYS_SECRETS, keys_secrets): a plain word in
  // lower case under a group (redis: {host: …}) is that group's unknown setting, not the top-level
  // setting's env var (HOST): seventeenth passes, the newcomer's first hour.
  const envLike = key !== key.toLowerCase() || key.includes('_');
  const byEnv = envLike && /^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$/.test(key) ? paths.find((each) => envName(each) === key.toUpperCase()) : undefined;
  return byEnv ? { meant: byEnv, as: 'env' } : undefined;
}

/** How a file writes the setting at `path`, on one line: `ttl: {accessToken: …}`. */
function nested(path: readonly string[]): string {
  return path.reduceRight((inner, key) => `${key}: ${inner === '…' ? inner : `{${inner}}`}`, '…');
}

/** "; did you mean ttl.accessToken (TTL_ACCESS_TOKEN)?"; a group of settings (redis) has no env var to name. */
function didYouMean(meant: readonly string[] | undefined, defaults: Tree): string {
  if (!meant) return '';
  return `; did you mean ${isTree(valueAt(meant, defaults)) ? meant.join('.') : label(meant)}?`;
}

/** Levenshtein distance; with `transpositions`, two neighbours swapped (ULR for URL) count as one edit (optimal string alignment). */
function editDistance(a: string, b: string, transpositions = false): number {
  let before: number[] = [];
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (transpositions && i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) next[j] = Math.min(next[j]!, before[j - 2]! + 1);
    }
    before = row;
    row = next;
  }
  return row[b.length]!;
}

/** A value of the wrong type, in words (zod says "expected boolean, received string"). */
function expectedType(expected: string, missing: boolean): string {
  if (missing) return 'required';
  const words: Record<string, string> = { boolean: 'expected true or false', number: 'expected a number', int: 'expected a whole number', string: 'expected text', array: 'expected a list', object: 'expected a mapping' };
  return words[expected] ?? `expected ${expected}`;
}

/**
 * A bound in words ("expected at most 65535", "expected at least one value"), where zod says
 * "expected number to be <=65535" or "expected array to have >=1 items"; a message of our own
 * (the OWASP minimum) is kept.
 */
function bound(issue: { code: 'too_small' | 'too_big'; message: string; origin: string; minimum?: unknown; maximum?: unknown; inclusive?: boolean }): string {
  if (!/^Too (small|big):/.test(issue.message)) return issue.message;
  const limit = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
  if (issue.origin === 'array') {
    if (issue.code === 'too_small') return limit === 1 ? 'expected at least one value' : `expected at least ${limit} values`;
    return `expected at most ${limit} values`;
  }
  if (issue.origin === 'string') return issue.code === 'too_small' && limit === 1 ? 'must not be empty' : `expected ${issue.code === 'too_small' ? 'at least' : 'at most'} ${limit} characters`;
  if (issue.code === 'too_small') return issue.inclusive === false ? `expected more than ${limit}` : `expected at least ${limit}`;
  return issue.inclusive === false ? `expected less than ${limit}` : `expected at most ${limit}`;
}

/**
 * ", got <value>" for an error message, except for values that may hold secrets. `meant`: given for
 * an unknown key, the setting it was probably meant to be (or []), whose secrecy it shares (keys.secret).
 */
function given(path: readonly PropertyKey[], tree: Tree, meant?: readonly string[]): string {
  const names = [path, ...(meant ? [meant] : [])].map((each) => each.map(String).join('.'));
  if (names.some((name) => /^(clients|cookie|keys\.secrets)/i.test(name))) return ''; // (a misspelt one too: keys.Secrets)
  // An unknown key meant as no setting, named like a secret (keys_secret, redis_password), may hold one: not written back to the terminal or the log.
  // Redis's password goes by other names too (pass, auth_pass, requirepass, pwd, auth): seventeenth passes' review.
  if (meant?.length === 0 && SECRET_NAME.test(String(path.at(-1)))) return '';
  let value = valueAt(path, tree);
  if (value === undefined) return '';
  // An unknown key's mapping or list may hold anything (Redis: {url: …}, Keys: {secrets: […]}): not echoed.
  if (meant !== undefined && typeof value === 'object' && value !== null) return '';
  // A URL's credentials, whichever setting (or misspelt one) holds it: up to the last @ before the
  // path, as the URL parser reads them (a password may hold an @ unescaped; its end was shown).
  // Written without its scheme (REDIS_URL=user:password@host:6379), its credentials are hidden all the same.
  if (typeof value === 'string') value = withoutQuerySecrets(value.includes('//') ? value.replace(/\/\/[^/?#]*@/, '//***@') : value.replace(/^[^/?#]*@/, '***@'));
  const text = JSON.stringify(value);
  return `, got ${text.length > 80 ? `${text.slice(0, 77)}...` : text}`;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * The settings still holding the public development secrets (production refuses them; on Redis,
 * outside production, `serve` warns, since that store is shared and durable).
 */
export function publicDefaultSecrets(config: Pick<Config, 'cookie' | 'keys'>): string[] {
  const found: string[] = [];
  if (config.cookie.keys.includes(DEFAULT_COOKIE_KEY)) found.push('cookie.keys (COOKIE_KEYS)');
  if (config.keys.secrets.includes(DEFAULT_KEYRING_SECRET)) found.push('keys.secrets (KEYS_SECRETS)');
  return found;
}

/**
 * What `serve` warns about the issuer, for configurations that start but do not work as meant:
 * - an IP address as its host: the passkeys' relying-party ID is the issuer's host, and WebAuthn
 *   takes only a domain there, so browsers refuse every passkey;
 * - a loopback issuer on another port than the server's, without a proxy: every redirect and
 *   discovery URL sends browsers and clients to a port where nothing of ours listens;
 * - an https loopback issuer on the server's own port, without a proxy: nothing there speaks TLS;
 * - an https issuer on another host, without a proxy: TLS ends at a proxy in front of this plain-http
 *   server, whose address every client then counts as (rate limits, the sign-in pause).
 */
export function issuerWarnings(config: Pick<Config, 'issuer' | 'port' | 'proxy'>): string[] {
  const url = new URL(config.issuer);
  const warnings: string[] = [];
  if (isIP(url.hostname.replace(/^\[|\]$/g, ''))) {
    warnings.push(`issuer (ISSUER): ${url.hostname} is an IP address, for which browsers refuse passkeys (WebAuthn needs a host name); use a name, e.g. http://localhost${url.port ? `:${url.port}` : ''} locally`);
  }
  // Production refuses it (productionProblems); elsewhere it runs, so a deployment without NODE_ENV=production is told.
  if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname) && !url.hostname.endsWith('.localhost')) {
    warnings.push(`issuer (ISSUER): ${config.issuer} is plain http on a host other than localhost: cookies, codes and tokens cross the network unencrypted, and browsers refuse passkeys there; serve it behind TLS and set ISSUER=https://${url.host} (NODE_ENV=production refuses http)`);
  }
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  // This server speaks plain HTTP: on its own port, an https issuer is answered by nothing (newcomer pass).
  if (LOOPBACK.has(url.hostname) && port === config.port && url.protocol === 'https:' && !config.proxy) {
    warnings.push(`issuer (ISSUER): ${config.issuer} is https, but this server serves plain http on port ${config.port} (TLS is a proxy's in front of it): clients sent to the issuer fail to connect; use http://${url.host} locally, or put a TLS proxy on another port and set PROXY=true`);
  }
  // A newcomer's deployment behind nginx or Caddy without PROXY=true runs, until one person's failed
  // sign-ins pause everyone's (thirteenth newcomer pass).
  if (!LOOPBACK.has(url.hostname) && url.protocol === 'https:' && !config.proxy) {
    warnings.push(`issuer (ISSUER): ${config.issuer} is https, so requests reach this plain-http server through a TLS proxy, but proxy (PROXY) is off: unless that proxy keeps the client's address, every client counts as the proxy's address for rate limits and the sign-in pause (one person's failed sign-ins pause everyone's); set PROXY=true, with PROXY_HOPS the number of proxies that append to X-Forwarded-For`);
  }
  if (LOOPBACK.has(url.hostname) && port !== config.port && !config.proxy) {
    warnings.push(`issuer (ISSUER): ${config.issuer} names port ${port} but this server listens on ${config.port} (PORT): browsers and clients sent to the issuer will not reach it unless a proxy forwards that port; unset ISSUER (it follows PORT) or make them agree`);
  }
  return warnings;
}

/**
 * Which of `names` a `.env` file in `dir` sets (never their values). Only docker compose reads it:
 * a newcomer who made it as the README's Docker lines do, then ran `npm start`, was told to set the
 * secrets it holds (fourteenth newcomer pass).
 */
export function envFileSets(names: readonly string[], dir = process.cwd()): string[] {
  let text: string;
  try {
    text = readFileSync(join(dir, '.env'), 'utf8').slice(0, 65_536);
  } catch {
    return [];
  }
  const set = envFileNames(text);
  return names.filter((name) => set.has(name));
}

/**
 * The names a `.env` text gives a value that is not empty, read as Node's own `--env-file` reads it
 * (util.parseEnv: `export`, comments, CRLF, a quoted value over lines, whose lines set nothing). An
 * empty value (`REDIS_URL=`, `ISSUER=""`, `PORT= # comment`: a template's blanks) sets nothing
 * compose's `${…:-default}` would take, and exported it would fail the start (PORT) or change
 * nothing: the fifteenth passes' review (h7) found both named by a line-by-line reading.
 */
export function envFileNames(text: string): Set<string> {
  return new Set(Object.entries(parseEnv(text)).flatMap(([name, value]) => ((value ?? '').trim() === '' ? [] : [name])));
}

/**
 * The warning `serve` logs when `./.env` sets Latchkey settings the environment does not hold (never
 * their values), other than `except` (the INSECURE warning's own): `npm start` does not read it, so a
 * newcomer who followed the README's Docker lines (`PORT=3001` in `.env` when port 3000 is taken),
 * or wrote `REDIS_URL` or `ISSUER` there, got the defaults without a word (fifteenth newcomer pass).
 */
export function envFileWarning(except: readonly string[] = [], env: NodeJS.ProcessEnv = process.env, dir = process.cwd()): string | undefined {
  const names = [...settings().map(({ path }) => envName(path)), 'CONFIG_FILE', 'NODE_ENV'];
  const ignored = envFileSets(names, dir).filter((name) => env[name] === undefined && !except.includes(name));
  if (!ignored.length) return undefined;
  const list = ignored.length === 1 ? ignored[0]! : `${ignored.slice(0, -1).join(', ')} and ${ignored.at(-1)!}`;
  return `./.env sets ${list}, which this server does not read: only docker compose reads .env, Latchkey reads the environment (the configuration files' values apply instead); to use ${ignored.length === 1 ? 'it' : 'them'} here, export ${ignored.length === 1 ? 'it' : 'them'} in this shell first (set -a; . ./.env; set +a)`;
}

/** The warning `serve` logs on Redis while the public development secrets are in use, if they are. */
export function publicSecretsWarning(config: Pick<Config, 'cookie' | 'keys'>, dir = process.cwd()): { settings: string[]; message: string } | undefined {
  const settings = publicDefaultSecrets(config);
  if (!settings.length) return undefined;
  const inEnvFile = envFileSets(settings.map((setting) => /\(([A-Z_]+)\)/.exec(setting)?.[1] ?? '').filter((name) => !process.env[name]), dir);
  const envFile = inEnvFile.length
    ? `; ./.env sets ${inEnvFile.join(' and ')}, but only docker compose reads .env: Latchkey reads the environment, so export them in this shell first (set -a; . ./.env; set +a)`
    : '';
  // What each public default gives away: only what that setting protects.
  const risks = [
    ...(settings.some((name) => name.startsWith('cookie.')) ? ['forge cookies'] : []),
    ...(settings.some((name) => name.startsWith('keys.')) ? ['decrypt the signing keys kept in Redis'] : []),
  ];
  const one = settings.length === 1;
  return {
    settings,
    message: `INSECURE: ${settings.join(' and ')} still ${one ? 'holds' : 'hold'} the public development default; anyone can ${risks.join(' and ')}. Set your own ${one ? 'secret' : 'secrets'} (openssl rand -base64 48)${envFile}`,
  };
}

/**
 * Refusals that only apply in production: each names the setting to fix and how. `serving`: for
 * `serve`, which alone refuses an issuer left unset (http://localhost:<port>, named in every token
 * and URL, so that clients anywhere else fail on it: fifteenth newcomer pass); the CLI run there
 * without ISSUER takes the issuer the servers on its store announce. Said with the others, in the
 * same line: after the image's bare `docker run` it came only once REDIS_URL was mended (review of
 * the fifteenth passes, h7).
 */
function productionProblems(config: z.infer<typeof schema> & { issuer: string }, issuerUnset: boolean, serving: boolean): string[] {
  const problems: string[] = [];
  if (!config.redis.url && config.redis.mode === 'standalone') {
    problems.push('redis.url (REDIS_URL): required in production (the embedded store is for development only); set REDIS_URL=redis://host:6379');
  }
  if (serving && issuerUnset) {
    problems.push(`issuer (ISSUER): not set, so every token and URL would name http://localhost:${config.port}, which only this machine reaches; set ISSUER to the public URL clients reach this server at (ISSUER=https://id.example.com behind TLS; ISSUER=http://localhost:${config.port} to serve this machine alone)`);
  }
  const url = new URL(config.issuer);
  if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) {
    problems.push(`issuer (ISSUER): must be https in production (http is allowed only for localhost); serve it behind TLS and set ISSUER=https://${url.host}`);
  }
  // One reason a setting: the default is public (and short, which would say nothing more).
  if (config.cookie.keys.includes(DEFAULT_COOKIE_KEY)) {
    problems.push('cookie.keys (COOKIE_KEYS): the default key is public; set your own secret keys (openssl rand -base64 48)');
  } else if (config.cookie.keys.some((key) => key.length < 32)) {
    problems.push('cookie.keys (COOKIE_KEYS): each key must be at least 32 characters (openssl rand -base64 48)');
  }
  if (config.keys.secrets.includes(DEFAULT_KEYRING_SECRET)) {
    problems.push('keys.secrets (KEYS_SECRETS): the default secret is public; set your own to encrypt the signing keys in Redis (openssl rand -base64 48), and keep it');
  } else if (config.keys.secrets.some((secret) => secret.length < 32)) {
    problems.push('keys.secrets (KEYS_SECRETS): each secret must be at least 32 characters (openssl rand -base64 48)');
  }
  return problems;
}

/**
 * Environment variables Latchkey's own programs read that are not settings (the sample app, the
 * test helpers): never taken for a misspelt setting.
 */
const OTHER_ENV = new Set(['CONFIG_FILE', 'NODE_ENV', 'CLIENT_ID', 'CLIENT_SECRET', 'PUBLIC_URL', 'API_CLIENT_SECRET', 'REDIS_SERVER_BIN', 'REDIS_CLI_BIN', 'CHROMIUM_PATH']);
/** The shell's, the system's, npm's and CI's variables: never a setting's misspelling, however close. */
const FOREIGN_ENV = /^(NODE_|NPM_|LC_|XDG_|SSH_|GIT_|GITHUB_|RUNNER_|DOCKER_|KUBERNETES_|BENCH_|HOME$|PATH$|USER$|SHELL$|TERM$|PWD$|OLDPWD$|LANG$|LANGUAGE$|HOSTNAME$|HOSTTYPE$|LOGNAME$|TMPDIR$|TZ$|MAIL$|EDITOR$|PAGER$|DISPLAY$|COLUMNS$|LINES$|SHLVL$|DEBUG$|INIT_CWD$|COLOR$|COLORTERM$|_$)/;
/** Redis connection parts other programs take one by one, which Latchkey takes in REDIS_URL. */
const REDIS_URL_PARTS = /^REDIS_(HOST|HOSTNAME|PORT|PASSWORD|PASS|USER|USERNAME|DB|DATABASE|TLS|SSL)$/;

/**
 * One line for each environment variable that looks like a misspelt setting (the server and the
 * CLI read settings by their exact names, so `REDIS_ULR` would be ignored without a word): a name
 * that differs from a setting's by case, by a letter or two (one for names of five letters or fewer),
 * that starts with `LATCHKEY_`, or that starts like a group of settings (`REDIS_…`, `TTL_…`) without
 * being one of them. Each names the closest known setting; nothing else is said, and nothing fails.
 */
export function envWarnings(env: NodeJS.ProcessEnv = process.env, dir = join(ROOT, 'config')): string[] {
  const paths = settings(readYaml(join(dir, 'default.yaml'))).map(({ path }) => path);
  const known = paths.map(envName);
  const knownSet = new Set([...known, ...OTHER_ENV]);
  // A group's prefix, `REDIS_` for redis.url and its siblings, with the settings under it.
  const groups = new Map<string, string[]>();
  for (const path of paths) {
    if (path.length < 2) continue;
    const prefix = `${envName(path.slice(0, -1))}_`;
    groups.set(prefix, [...(groups.get(prefix) ?? []), envName(path)]);
  }
  const knownNames = [...knownSet];
  /** The candidate nearest `name`; with `within`, only one that is at most that far (a distance is at least the lengths' difference, so the rest are not measured). */
  const closest = (name: string, among: readonly string[], within = Infinity) => {
    let best: { name: string; distance: number } | undefined;
    for (const candidate of among) {
      if (Math.abs(candidate.length - name.length) > within) continue;
      const distance = editDistance(candidate, name, true);
      if (!best || distance < best.distance) best = { name: candidate, distance };
    }
    return best;
  };
  const warnings: string[] = [];
  for (const name of Object.keys(env).sort()) {
    const upper = name.toUpperCase();
    if (knownSet.has(name) || OTHER_ENV.has(upper) || FOREIGN_ENV.test(upper) || !/^[A-Z][A-Z0-9_]*$/.test(upper)) continue;
    let meant: string | undefined;
    const unprefixed = upper.replace(/^LATCHKEY_/, '');
    if (knownSet.has(upper)) meant = upper;
    else if (unprefixed !== upper && knownSet.has(unprefixed)) meant = unprefixed;
    else if (REDIS_URL_PARTS.test(upper)) meant = 'REDIS_URL (redis://user:password@host:port)';
    else {
      const within = unprefixed.length <= 5 ? 1 : 2;
      const near = closest(unprefixed, knownNames, within);
      // A setting's name cut short (KEYS_ROTATION for KEYS_ROTATION_INTERVAL), or the one setting of its
      // first word (CONFIG_PATH): the nearest by letters named another (newcomer pass). One word alone
      // (NODE, CONFIG) is too likely another program's.
      const words = unprefixed.includes('_');
      const longer = words ? knownNames.filter((known) => known.startsWith(`${unprefixed}_`)) : [];
      const first = unprefixed.split('_')[0];
      const sameFirst = words ? knownNames.filter((known) => known.split('_')[0] === first) : [];
      if (near && near.distance <= within) meant = near.name;
      else if (longer.length === 1) meant = longer[0];
      else {
        const group = [...groups.keys()].filter((prefix) => unprefixed.startsWith(prefix)).sort((a, b) => b.length - a.length)[0];
        if (group) meant = closest(unprefixed, groups.get(group)!)!.name;
        else if (sameFirst.length === 1) meant = sameFirst[0];
      }
    }
    if (meant) warnings.push(`${name} is not a Latchkey setting; did you mean ${meant}?`);
  }
  // Only NODE_ENV=production refuses unsafe settings: NODE_ENV=prod (or Production) ran as development without a word.
  const nodeEnv = env.NODE_ENV;
  if (nodeEnv && nodeEnv !== 'production' && /^prod|^prd$/i.test(nodeEnv) && !existsSync(join(dir, `${nodeEnv}.yaml`))) {
    warnings.push(`NODE_ENV=${nodeEnv} is not production (only NODE_ENV=production refuses unsafe settings, and there is no config/${nodeEnv}.yaml); did you mean NODE_ENV=production?`);
  }
  warnings.push(...unreadConfigFiles(dir, nodeEnv || 'development', env.CONFIG_FILE));
  return warnings;
}

/**
 * A settings file in config/ that no NODE_ENV reads: only `<NODE_ENV>.yaml` is, so a newcomer's
 * `config/development.yml` (or `.json`) changed nothing, without a word (newcomer pass). The one
 * CONFIG_FILE names is read (it was called unread, "give it as CONFIG_FILE", at each start). A folder
 * that cannot be listed says nothing: a warning never fails a start (config/ may be searchable but
 * not readable, mode 711, its files still read by name; readdir threw, and serve exited).
 */
function unreadConfigFiles(dir: string, nodeEnv: string, configFile: string | undefined): string[] {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return [];
  }
  const given = configFile ? resolve(process.cwd(), configFile) : undefined;
  return files
    // `.YAML` is left alone: a case-insensitive file system (macOS) reads it as `.yaml`.
    .filter((file) => /^[^.]+\.(yml|json)$/i.test(file) && resolve(dir, file) !== given)
    .sort()
    .map((file) => {
      const name = file.slice(0, file.indexOf('.'));
      const reads = name === nodeEnv ? 'this start reads' : `NODE_ENV=${name} reads`;
      return `config/${file} is not read: a settings file in config/ is named <NODE_ENV>.yaml (${reads} config/${name}.yaml); rename it, or give it as CONFIG_FILE`;
    });
}

/** `serving`: for `serve`, whose refusals in production are more than the CLI's (productionProblems). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, dir = join(ROOT, 'config'), { serving = false }: { serving?: boolean } = {}): Config {
  const defaults = readYaml(join(dir, 'default.yaml'));
  const nodeEnv = env.NODE_ENV || 'development';
  let tree = defaults;
  for (const file of [join(dir, `${nodeEnv}.yaml`), env.CONFIG_FILE]) {
    if (!file) continue;
    const path = isAbsolute(file) ? file : join(process.cwd(), file);
    if (file === env.CONFIG_FILE && !existsSync(path)) throw new ConfigError(`CONFIG_FILE: ${path} does not exist`);
    // Not "EISDIR: illegal operation on a directory, read", which names neither the setting nor what it wants.
    if (file === env.CONFIG_FILE && statSync(path).isDirectory()) throw new ConfigError(`CONFIG_FILE: ${path} is a directory; expected a YAML file of settings`);
    if (existsSync(path)) tree = merge(tree, readYaml(path));
  }
  tree = structuredClone(tree);
  for (const { path, value } of settings(defaults)) {
    const raw = env[envName(path)];
    if (raw !== undefined) setPath(tree, path, fromEnv(raw, value, label(path), JSON_LISTS.has(path.join('.'))));
  }

  const result = schema.safeParse(tree);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
    if (issue.code === 'unrecognized_keys') {
      // Only a file holds a key that is no setting (env vars are read by the settings' names), so no env var is named for it.
      const name = path.map(String).join('.');
      const meant = nearest(path, defaults);
      const oneKey = meant ? undefined : writtenAsOneKey(path, defaults);
      if (oneKey) {
        const group = oneKey.meant.length > 1 ? 'nests under its group' : 'writes as';
        const how = oneKey.as === 'dotted' ? `a file nests a setting under its group: ${nested(oneKey.meant)}` : `that is the environment variable of ${oneKey.meant.join('.')}, which a file ${group}${oneKey.meant.length > 1 ? ':' : ''} ${nested(oneKey.meant)}`;
        throw new ConfigError(`${name}: unknown setting${given(path, tree, oneKey.meant)}; ${how}`);
      }
      // Redis's address or password in parts, as other programs take them (redis: {host, port, password}): one URL here.
      const redisPart = !meant && path.length === 2 && path[0] === 'redis' && REDIS_URL_PARTS.test(`REDIS_${String(path[1]).toUpperCase()}`);
      if (redisPart) throw new ConfigError(`${name}: unknown setting${given(path, tree, [])}; Redis's host, port, user, password and database are all in redis.url (redis://user:password@host:port/db), which a file nests under its group: redis: {url: …}`);
      throw new ConfigError(`${name}: unknown setting${given(path, tree, meant ?? [])}${didYouMean(meant, defaults)}`);
    }
    // A group (redis) given a value, as `redis: redis://…` in a file: it has no env var to name, and
    // the value was meant for one of its settings, which are named instead.
    const group = valueAt(path, defaults);
    if (isTree(group)) {
      const name = path.map(String).join('.');
      const members = Object.keys(group).slice(0, 2).map((key) => `${name}.${key}`).join(', ');
      throw new ConfigError(`${name}: a group of settings (${members}, …), expected a mapping of them${given(path, tree)}`);
    }
    const what =
      issue.code === 'invalid_type' ? expectedType(issue.expected, valueAt(path, tree) === undefined)
      : issue.code === 'too_small' || issue.code === 'too_big' ? bound(issue)
      : issue.code === 'invalid_format' && issue.message === 'Invalid URL' ? 'expected a URL such as https://api.example.com'
      : issue.message.replace(/^(Invalid input|Too big|Too small|Invalid option|Invalid number): /, '');
    throw new ConfigError(`${label(path)}: ${what}${given(path, tree)}`);
  }
  const config = { ...result.data, issuer: result.data.issuer || `http://localhost:${result.data.port}` };
  if (config.ttl.grant < config.ttl.refreshToken) {
    throw new ConfigError(`${label(['ttl', 'grant'])}: must not be shorter than ttl.refreshToken`);
  }
  if (config.keys.publishLead < 2 * config.keys.refreshInterval) {
    throw new ConfigError(`${label(['keys', 'publishLead'])}: must be at least twice keys.refreshInterval, so every instance publishes a key before it signs`);
  }
  if (config.proxyHops !== 1 && !config.proxy) {
    throw new ConfigError(`${label(['proxyHops'])}: counts reverse proxies, so it needs proxy (PROXY=true); without it X-Forwarded-For is ignored`);
  }
  if (config.redis.mode === 'sentinel' && !config.redis.sentinels.length) {
    throw new ConfigError(`${label(['redis', 'sentinels'])}: required when redis.mode is sentinel`);
  }
  if (config.redis.mode === 'cluster' && !config.redis.clusterNodes.length) {
    throw new ConfigError(`${label(['redis', 'clusterNodes'])}: required when redis.mode is cluster`);
  }
  const production = nodeEnv === 'production';
  if (production) {
    const problems = productionProblems(config, result.data.issuer === '', serving);
    if (problems.length) throw new ConfigError(`refusing to start in production: ${problems.join('; ')}`);
  }
  const embeddedFileGiven = env[envName(['embedded', 'file'])] !== undefined || config.embedded.file !== valueAt(['embedded', 'file'], defaults);
  return deepFreeze({ ...config, env: nodeEnv, production, issuerGiven: result.data.issuer !== '', embeddedFileGiven });
}
