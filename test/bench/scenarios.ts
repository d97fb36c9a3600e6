/**
 * The scenarios of issue #7, each a workload (see load.ts) that runs unchanged against Latchkey and
 * against a bare oidc-provider: same clients, same resource servers, same requests.
 */
import { createHash } from 'node:crypto';
import { Agent, type Page } from '../helpers/agent.js';
import { connectionPool, type Context, type Request, type Response, type Step, type Workload } from './load.js';

export const API = 'https://api.example.test'; // JWT access tokens
export const LEDGER = 'https://ledger.example.test'; // opaque access tokens
export const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
export const WEB = { id: 'web', secret: 'web-app-secret-with-plenty-of-entropy-0123456789', redirect: 'https://app.example.test/callback' };
export const USER = { username: 'alice', password: 'correct horse battery staple' };

export const CLIENTS = [
  { client_id: MACHINE.id, client_secret: MACHINE.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
  {
    client_id: WEB.id,
    client_secret: WEB.secret,
    client_name: 'Bench App',
    redirect_uris: [WEB.redirect],
    grant_types: ['authorization_code', 'refresh_token'],
  },
];
/** The APIs, with the operator's grants to the machine client (Latchkey reads them; the bare provider ignores them). */
export const RESOURCE_SERVERS = [
  { identifier: API, scopes: ['read', 'write'], format: 'jwt' as const, grants: [{ client_id: MACHINE.id, scopes: ['read', 'write'] }] },
  { identifier: LEDGER, scopes: ['read'], format: 'opaque' as const, grants: [{ client_id: MACHINE.id, scopes: ['read'] }] },
];

/** Latchkey as the bench runs it, Latchkey in its default configuration (rate limits on), the bare oidc-provider. */
export type TargetKind = 'latchkey' | 'defaults' | 'bare';

/** A running authorization server the scenarios talk to. */
export interface Target {
  readonly kind: TargetKind;
  /** Where requests go: http://127.0.0.1:PORT */
  readonly url: string;
  /** Its issuer (http://localhost:PORT); redirects point there. */
  readonly issuer: string;
  /** Drives the server's own login and consent pages from `page` until it leaves for the client. */
  signIn(agent: Agent, page: Page): Promise<Page>;
}

const FORM = 'application/x-www-form-urlencoded';
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const MACHINE_AUTH = basic(MACHINE.id, MACHINE.secret);
const WEB_AUTH = basic(WEB.id, WEB.secret);

// One PKCE pair for every authorization request: each code is still bound to it, and the load
// generator does not spend its CPU on SHA-256.
const VERIFIER = 'latchkey-bench-pkce-verifier-0123456789-abcdefghijklmnop';
const CHALLENGE = createHash('sha256').update(VERIFIER).digest('base64url');

export function authorizePath(scope: string, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams({
    client_id: WEB.id,
    response_type: 'code',
    redirect_uri: WEB.redirect,
    scope,
    state: 'bench',
    code_challenge: CHALLENGE,
    code_challenge_method: 'S256',
    ...extra,
  });
  return `/auth?${params}`;
}

const header = (response: Response, name: string) => {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
};
const unexpected = (response: Response) => `status ${response.status}: ${response.body.slice(0, 160).replace(/\s+/g, ' ')}`;
const field = (body: string, name: string) => new RegExp(`"${name}":"([^"]+)"`).exec(body)?.[1];
const pathOf = (location: string) => {
  const url = new URL(location, 'http://x');
  return url.pathname + url.search;
};

/** Cookies as a Cookie header, updated from Set-Cookie lines (expired ones removed). */
function withCookies(header: string | undefined, setCookie: string | string[] | undefined): string {
  const jar = new Map<string, string>();
  for (const pair of (header ?? '').split('; ')) {
    const at = pair.indexOf('=');
    if (at > 0) jar.set(pair.slice(0, at), pair.slice(at + 1));
  }
  for (const line of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
    const [pair = '', ...attributes] = line.split(';');
    const at = pair.indexOf('=');
    const name = pair.slice(0, at).trim();
    const value = pair.slice(at + 1).trim();
    const expired = attributes.some((a) => /^\s*max-age=0/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
    if (expired || !value) jar.delete(name);
    else jar.set(name, value);
  }
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
}

/** The Cookie header an Agent would send now (it keeps one host's cookies here). */
export function agentCookies(agent: Agent): string {
  return withCookies('', agent.setCookies);
}

// --- Steps ------------------------------------------------------------------------------------

function clientCredentials(resource: string, format: 'jwt' | 'opaque'): Step {
  const body = new URLSearchParams({ grant_type: 'client_credentials', scope: 'read', resource }).toString();
  return {
    name: 'token',
    request: () => ({ method: 'POST', path: '/token', headers: { authorization: MACHINE_AUTH, 'content-type': FORM }, body }),
    check: (response) => {
      if (response.status !== 200) return unexpected(response);
      const token = field(response.body, 'access_token');
      if (!token) return 'no access_token';
      const dots = token.split('.').length - 1;
      if ((format === 'jwt') !== (dots === 2)) return `expected a ${format} access token, got ${token.slice(0, 20)}…`;
      return undefined;
    },
  };
}

/** Takes tokens from a pool: in turn forever (`cycle`), or each once. */
function pool(tokens: readonly string[], cycle: boolean) {
  let next = 0;
  return (ctx: Context) => {
    if (ctx.token === undefined) {
      if (!cycle && next >= tokens.length) ctx.exhausted = '1';
      ctx.token = tokens[next % tokens.length]!;
      next += 1;
    }
    return ctx.token;
  };
}

function introspection(tokens: readonly string[]): Step {
  const take = pool(tokens, true);
  return {
    name: 'introspect',
    request: (ctx) => ({
      method: 'POST',
      path: '/token/introspection',
      headers: { authorization: MACHINE_AUTH, 'content-type': FORM },
      body: `token=${encodeURIComponent(take(ctx))}&token_type_hint=access_token`,
    }),
    check: (response) => {
      if (response.status !== 200) return unexpected(response);
      return response.body.includes('"active":true') ? undefined : `not active: ${response.body.slice(0, 120)}`;
    },
  };
}

function revocation(tokens: readonly string[], cycle: boolean): Step {
  const take = pool(tokens, cycle);
  return {
    name: 'revoke',
    request: (ctx) => ({
      method: 'POST',
      path: '/token/revocation',
      headers: { authorization: MACHINE_AUTH, 'content-type': FORM },
      body: `token=${encodeURIComponent(take(ctx))}&token_type_hint=access_token`,
    }),
    check: (response, ctx) => {
      if (ctx.exhausted) return 'the pool of fresh tokens ran out (a token was revoked twice)';
      return response.status === 200 ? undefined : unexpected(response);
    },
  };
}

/**
 * Refresh-token chains: each request takes an idle chain, and its answer moves the chain on. A
 * chain whose request got no answer (a run stopped with it in flight) is never used again: its
 * token may have been rotated, and presenting it again would revoke the whole grant.
 */
function refresh(chains: string[]): Step {
  const idle = chains.map((_, index) => index);
  const waiting: (() => void)[] = [];
  return {
    name: 'refresh',
    acquire: async (ctx) => {
      while (!idle.length) await new Promise<void>((ready) => waiting.push(ready));
      ctx.chain = String(idle.pop());
    },
    request: (ctx) => {
      if (ctx.chain === undefined) ctx.chain = String(idle.pop() ?? -1);
      const token = chains[Number(ctx.chain)] ?? 'no-idle-chain';
      const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token }).toString();
      return { method: 'POST', path: '/token', headers: { authorization: WEB_AUTH, 'content-type': FORM }, body };
    },
    check: (response, ctx) => {
      const chain = Number(ctx.chain);
      if (chain < 0) return 'no idle refresh-token chain';
      if (response.status !== 200) return unexpected(response); // the chain is broken: it stays out
      const token = field(response.body, 'refresh_token');
      if (!token || !field(response.body, 'access_token') || !field(response.body, 'id_token')) return 'missing tokens in the refresh answer';
      chains[chain] = token;
      idle.push(chain);
      waiting.shift()?.();
      return undefined;
    },
  };
}

function codeFrom(response: Response, ctx: Context): string | undefined {
  if (response.status !== 302 && response.status !== 303) return unexpected(response);
  const location = header(response, 'location') ?? '';
  if (!location.startsWith(WEB.redirect)) return `redirected to ${location.slice(0, 120)}, not the client`;
  const code = new URL(location).searchParams.get('code');
  if (!code) return `no code: ${location.slice(0, 160)}`;
  ctx.code = code;
  return undefined;
}

const codeExchange: Step = {
  name: 'token',
  request: (ctx) => ({
    method: 'POST',
    path: '/token',
    headers: { authorization: WEB_AUTH, 'content-type': FORM },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: ctx.code!, redirect_uri: WEB.redirect, code_verifier: VERIFIER }).toString(),
  }),
  check: (response) => {
    if (response.status !== 200) return unexpected(response);
    return field(response.body, 'id_token') && field(response.body, 'access_token') ? undefined : 'missing id_token or access_token';
  },
};

function ssoAuthorize(sessions: readonly string[]): Step {
  let next = 0;
  const path = authorizePath('openid');
  return {
    name: 'authorize',
    request: (ctx) => {
      ctx.cookie ??= sessions[next++ % sessions.length]!;
      return { method: 'GET', path, headers: { cookie: ctx.cookie, accept: 'text/html' } };
    },
    check: codeFrom,
  };
}

/**
 * A person signing in with a password on Latchkey's pages (consent remembered from before). With
 * `bare`, the same four requests on the bare oidc-provider's development pages (login-ab.ts's
 * `bare`, started with BARE_REMEMBER_CONSENT=1): its form has no CSRF token, and any login passes
 * with no password checked.
 */
export function passwordLogin(bare = false): Step[] {
  const start = authorizePath('openid', { prompt: 'login' });
  const keepCookies = (response: Response, ctx: Context) => {
    ctx.cookie = withCookies(ctx.cookie, response.headers['set-cookie']);
  };
  const redirect = (response: Response, ctx: Context, into: string) => {
    if (response.status !== 302 && response.status !== 303) return unexpected(response);
    keepCookies(response, ctx);
    ctx[into] = pathOf(header(response, 'location') ?? '/');
    return undefined;
  };
  const get = (path: string, ctx: Context): Request => ({ method: 'GET', path, headers: { cookie: ctx.cookie ?? '', accept: 'text/html' } });
  return [
    { name: 'authorize', request: () => ({ method: 'GET', path: start, headers: { accept: 'text/html' } }), check: (r, ctx) => redirect(r, ctx, 'page') },
    {
      name: 'login-page',
      request: (ctx) => get(ctx.page!, ctx),
      check: (response, ctx) => {
        if (response.status !== 200) return unexpected(response);
        keepCookies(response, ctx);
        const csrf = bare ? '' : /name="csrf" value="([^"]+)"/.exec(response.body)?.[1];
        const action = (bare ? /action="([^"]*)"/ : /action="([^"]*\/login)"/).exec(response.body)?.[1];
        if (csrf === undefined || !action) return 'no login form';
        ctx.csrf = csrf;
        ctx.action = action;
        return undefined;
      },
    },
    {
      name: 'login-submit',
      request: (ctx) => ({
        method: 'POST',
        path: ctx.action!,
        headers: { cookie: ctx.cookie ?? '', 'content-type': FORM, accept: 'text/html' },
        body: new URLSearchParams(bare ? { prompt: 'login', login: USER.username, password: USER.password } : { csrf: ctx.csrf!, username: USER.username, password: USER.password }).toString(),
      }),
      check: (r, ctx) => redirect(r, ctx, 'resume'),
    },
    { name: 'resume', request: (ctx) => get(ctx.resume!, ctx), check: codeFrom },
  ];
}

function document(name: string, path: string, mustContain: string): Step {
  return {
    name,
    request: () => ({ method: 'GET', path, headers: { accept: 'application/json' } }),
    check: (response) => (response.status === 200 && response.body.includes(mustContain) ? undefined : unexpected(response)),
  };
}

// --- Setup: pools of tokens, sessions and refresh-token chains ------------------------------------

/** n client_credentials access tokens, minted on `concurrency` connections. */
export async function mint(target: Target, format: 'jwt' | 'opaque', n: number, concurrency = 8): Promise<string[]> {
  const pool = connectionPool(target.url);
  const step = clientCredentials(format === 'jwt' ? API : LEDGER, format);
  const tokens: string[] = [];
  let started = 0;
  const worker = async () => {
    while (started < n) {
      started += 1;
      const response = await pool.request(step.request({})!);
      if (response.status === 429) {
        // The default configuration's flood guard counts the set-up too (a second measurement's
        // pool can meet it): wait as told and mint this one again.
        started -= 1;
        await new Promise((resume) => setTimeout(resume, Number(response.headers['retry-after'] ?? 1) * 1000));
        continue;
      }
      const error = step.check(response, {});
      if (error) throw new Error(`minting ${format} tokens at ${target.kind}: ${error}`);
      tokens.push(field(response.body, 'access_token')!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  pool.close();
  return tokens;
}

/** Starts an authorization request in `agent` and follows it through the server's pages to the client. */
export async function authorizeWith(target: Target, agent: Agent, scope: string, extra: Record<string, string> = {}): Promise<string> {
  let page = await agent.follow(`${target.issuer}${authorizePath(scope, extra)}`, {}, WEB.redirect);
  if (!page.url.startsWith(WEB.redirect)) page = await target.signIn(agent, page);
  if (!page.url.startsWith(WEB.redirect)) throw new Error(`${target.kind}: the authorization request ended at ${page.url} (${page.status})`);
  const code = new URL(page.url).searchParams.get('code');
  if (!code) throw new Error(`${target.kind}: no code in ${page.url}`);
  return code;
}

export async function redeem(target: Target, code: string): Promise<Record<string, string>> {
  const response = await fetch(`${target.url}/token`, {
    method: 'POST',
    headers: { authorization: WEB_AUTH, 'content-type': FORM },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: WEB.redirect, code_verifier: VERIFIER }),
  });
  const body = (await response.json()) as Record<string, string>;
  if (response.status !== 200) throw new Error(`${target.kind}: code exchange answered ${response.status} ${JSON.stringify(body)}`);
  return body;
}

/** n signed-in browsers (their Cookie headers), each with a grant for the web client. */
export async function sessions(target: Target, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const agent = new Agent();
    await authorizeWith(target, agent, 'openid');
    out.push(agentCookies(agent));
  }
  return out;
}

/** n refresh tokens, each from its own consented authorization (one signed-in browser). */
export async function refreshChains(target: Target, n: number): Promise<string[]> {
  const agent = new Agent();
  const chains: string[] = [];
  for (let i = 0; i < n; i += 1) {
    const tokens = await redeem(target, await authorizeWith(target, agent, 'openid offline_access', { prompt: 'consent' }));
    if (!tokens.refresh_token) throw new Error(`${target.kind}: no refresh token for offline_access`);
    chains.push(tokens.refresh_token);
  }
  return chains;
}

// --- The scenarios -------------------------------------------------------------------------------

export interface Sizes {
  /** Tokens to introspect (in turn). */
  readonly introspectionPool: number;
  /** JWTs to revoke in turn (revoking one again costs the same: verify + SET). */
  readonly jwtRevocationPool: number;
  readonly sessions: number;
  readonly chains: number;
}

export interface Scenario {
  readonly id: string;
  /** Its number in issue #7. */
  readonly number: string;
  readonly title: string;
  readonly targets: readonly TargetKind[];
  /** Served by the token, introspection or revocation endpoint: p99 at 80% of peak must stay under 50 ms. */
  readonly tokenEndpoint: boolean;
  /** A hot path: at most 3 Redis round trips per token request. */
  readonly hotPath: boolean;
  /** The step that is "the token request" of a multi-step flow (latency and round-trip goals). */
  readonly tokenStep?: string;
  /** Connection counts to try to find the peak; the best is then measured. */
  readonly ramp?: readonly number[];
  /** Connections when there is no ramp. */
  readonly connections?: number;
  /** Each request uses up one fresh token: prepare() is given how many the phase will need. */
  readonly consumesTokens?: boolean;
  prepare(target: Target, sizes: Sizes, tokensNeeded?: number): Promise<Workload>;
}

const RAMP = [1, 4, 16];

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'cc-jwt',
    number: '1',
    title: 'client_credentials → JWT access token (RS256)',
    targets: ['latchkey', 'bare'],
    tokenEndpoint: true,
    hotPath: true,
    ramp: RAMP,
    prepare: async () => ({ steps: [clientCredentials(API, 'jwt')] }),
  },
  {
    id: 'cc-opaque',
    number: '2',
    title: 'client_credentials → opaque access token',
    targets: ['latchkey', 'bare'],
    tokenEndpoint: true,
    hotPath: true,
    ramp: RAMP,
    prepare: async () => ({ steps: [clientCredentials(LEDGER, 'opaque')] }),
  },
  {
    id: 'introspect-opaque',
    number: '3a',
    title: 'introspection of an opaque access token',
    targets: ['latchkey', 'bare'],
    tokenEndpoint: true,
    hotPath: true,
    ramp: RAMP,
    prepare: async (target, sizes) => ({ steps: [introspection(await mint(target, 'opaque', sizes.introspectionPool))] }),
  },
  {
    id: 'introspect-jwt',
    number: '3b',
    title: 'introspection of a JWT access token (signature + revocation list)',
    targets: ['latchkey'],
    tokenEndpoint: true,
    hotPath: true,
    ramp: RAMP,
    prepare: async (target, sizes) => ({ steps: [introspection(await mint(target, 'jwt', sizes.introspectionPool))] }),
  },
  {
    id: 'refresh',
    number: '4',
    title: 'refresh_token grant with rotation (new refresh, access and ID token)',
    targets: ['latchkey', 'bare'],
    tokenEndpoint: true,
    hotPath: true,
    ramp: RAMP,
    prepare: async (target, sizes) => ({ steps: [refresh(await refreshChains(target, sizes.chains))] }),
  },
  {
    id: 'sso-code',
    number: '5',
    title: 'authorization request with an SSO session → code → token (ID + access token)',
    targets: ['latchkey', 'bare'],
    tokenEndpoint: true,
    hotPath: true,
    tokenStep: 'token',
    ramp: RAMP,
    prepare: async (target, sizes) => ({ steps: [ssoAuthorize(await sessions(target, sizes.sessions)), codeExchange] }),
  },
  {
    id: 'login',
    number: '6',
    title: 'password login (argon2id) → code',
    targets: ['latchkey'],
    tokenEndpoint: false,
    hotPath: false,
    connections: 8,
    // One sign-in first, so that the consent is remembered and every iteration is login only.
    prepare: async (target) => {
      await sessions(target, 1);
      return { steps: passwordLogin() };
    },
  },
  {
    id: 'discovery',
    number: '7a',
    title: 'discovery document',
    targets: ['latchkey', 'bare'],
    tokenEndpoint: false,
    hotPath: false,
    connections: 16,
    prepare: async () => ({ steps: [document('discovery', '/.well-known/openid-configuration', '"issuer"')] }),
  },
  {
    id: 'jwks',
    number: '7b',
    title: 'JWKS',
    targets: ['latchkey', 'bare'],
    tokenEndpoint: false,
    hotPath: false,
    connections: 16,
    prepare: async () => ({ steps: [document('jwks', '/jwks', '"keys"')] }),
  },
  {
    id: 'revoke-opaque',
    number: '8a',
    title: 'revocation of an opaque access token',
    targets: ['latchkey', 'bare'],
    tokenEndpoint: true,
    hotPath: false,
    connections: 16,
    consumesTokens: true,
    prepare: async (target, _sizes, needed = 1) => ({ steps: [revocation(await mint(target, 'opaque', needed), false)] }),
  },
  {
    id: 'revoke-jwt',
    number: '8b',
    title: 'revocation of a JWT access token (onto the revocation list)',
    targets: ['latchkey'],
    tokenEndpoint: true,
    hotPath: false,
    ramp: RAMP,
    prepare: async (target, sizes) => ({ steps: [revocation(await mint(target, 'jwt', sizes.jwtRevocationPool), true)] }),
  },
];
