/**
 * A sample relying party ("an app that trusts Latchkey"), written with openid-client: sign in
 * with the authorization code flow + PKCE, sign out with RP-initiated logout, and accept
 * back-channel logout tokens (verified with jose against Latchkey's JWKS).
 *
 * Used by the browser tests, and runnable on its own for the README walkthrough:
 *   ISSUER=http://localhost:3000 CLIENT_ID=demo CLIENT_SECRET=… PORT=8080 npm run sample-rp
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';

export interface RelyingPartyOptions {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** The app's own origin as browsers see it, e.g. http://app1.localhost:8080 */
  readonly publicUrl: (port: number) => string;
  readonly title: string;
  readonly port?: number;
  /**
   * At start, once listening, authenticate as the client (a revocation of a token that is none), so
   * that a wrong CLIENT_ID or CLIENT_SECRET stops the app (ClientRefused) rather than failing after a sign-in.
   */
  readonly checkClient?: boolean;
  /** Where the app says what it did that no page shows (a back-channel logout); `npm run sample-rp`: stdout. */
  readonly log?: (line: string) => void;
}

export interface RelyingParty {
  readonly url: string;
  readonly port: number;
  /** Logout tokens this app accepted (their sid), in order. */
  readonly loggedOut: string[];
  /** The claims of each ID token this app accepted, in order. */
  readonly idTokens: Record<string, unknown>[];
  close(): Promise<void>;
}

interface Session {
  pending?: { state: string; nonce: string; verifier: string };
  user?: { sub: string; name?: string; sid?: string; idToken: string };
}

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function page(res: ServerResponse, title: string, body: string, status = 200) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font:16px system-ui;margin:3rem auto;max-width:32rem;color:#1c2430}a.button{display:inline-block;padding:.6rem 1rem;border-radius:8px;background:#1f5fbf;color:#fff;text-decoration:none}</style>
</head><body><h1>${escape(title)}</h1>${body}</body></html>`);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) throw new Error('body too large');
  }
  return new URLSearchParams(body);
}

/** Latchkey refused the app's client credentials at start (see RelyingPartyOptions.checkClient). */
export class ClientRefused extends Error {
  /** `description`: Latchkey's, when it says more than that the authentication failed (a secret pasted with a space). */
  constructor(clientId: string, description?: string) {
    const why = description && description !== 'client authentication failed' ? `invalid_client: ${description}` : 'invalid_client';
    super(
      `Latchkey refused CLIENT_ID=${clientId} with this CLIENT_SECRET (${why}): set CLIENT_SECRET to the client_secret that latchkey clients add printed for ${clientId} (lost: npx latchkey clients rotate-secret ${clientId} --grace 0 prints a new one), or, if Latchkey has no client ${clientId} (npx latchkey clients list shows its clients; an unknown client is refused alike), set CLIENT_ID to yours or add it (walkthrough, step 2)`,
    );
  }
}

/** What the sign-in failure page says; for a refused secret, which setting to check (the walkthrough's usual slip). */
function failure(error: unknown, clientId: string): string {
  if (!(error instanceof oidc.ResponseBodyError)) return error instanceof Error ? error.message : String(error);
  const said = `${error.error}: ${error.error_description ?? error.message}`;
  return error.error === 'invalid_client'
    ? `${said}. Check CLIENT_SECRET: it is the client_secret that latchkey clients add printed (shown only once; lost, get a new one with npx latchkey clients rotate-secret ${clientId} --grace 0); and CLIENT_ID: npx latchkey clients list shows the clients Latchkey has`
    : said;
}

export async function startRelyingParty(options: RelyingPartyOptions): Promise<RelyingParty> {
  const config = await oidc.discovery(new URL(options.issuer), options.clientId, options.clientSecret, undefined, {
    execute: options.issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
  });
  const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri!));
  const sessions = new Map<string, Session>();
  const loggedOut: string[] = [];
  const idTokens: Record<string, unknown>[] = [];
  let base = '';
  // One cookie name per app: browsers keep cookies per host, not per port, so two sample apps on
  // localhost:8080 and localhost:8081 would otherwise overwrite each other's session cookie.
  const cookie = `rp_session_${options.clientId.replace(/[^\w-]/g, '_')}`;
  const cookiePattern = new RegExp(`(?:^|;\\s*)${cookie}=([\\w-]+)`);

  function session(req: IncomingMessage, res: ServerResponse): Session {
    const id = cookiePattern.exec(req.headers.cookie ?? '')?.[1];
    if (id && sessions.has(id)) return sessions.get(id)!;
    const fresh = randomBytes(16).toString('base64url');
    sessions.set(fresh, {});
    res.setHeader('set-cookie', `${cookie}=${fresh}; Path=/; HttpOnly; SameSite=Lax`);
    return sessions.get(fresh)!;
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', base);
    if (req.method === 'POST' && url.pathname === '/backchannel-logout') {
      // OpenID Connect Back-Channel Logout 1.0 §2.6: verify, then end the sessions of that sid.
      try {
        const token = (await readForm(req)).get('logout_token') ?? '';
        const { payload } = await jwtVerify(token, jwks, {
          issuer: config.serverMetadata().issuer,
          audience: options.clientId,
          typ: 'logout+jwt',
          algorithms: ['RS256'],
          requiredClaims: ['iat', 'jti', 'sid'],
        });
        if (!(payload.events as Record<string, unknown> | undefined)?.[BACKCHANNEL_EVENT] || 'nonce' in payload) throw new Error('not a logout token');
        let ended = 0;
        for (const [id, s] of sessions) {
          if (s.user?.sid === payload.sid) {
            sessions.delete(id);
            ended += 1;
          }
        }
        loggedOut.push(String(payload.sid));
        options.log?.(`back-channel logout: ended session sid=${String(payload.sid)}${ended ? '' : ' (no one was signed in here with it)'}`);
        res.writeHead(200, { 'cache-control': 'no-store' }).end();
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}');
      }
      return;
    }

    // Opened at another name than its own (127.0.0.1 for localhost): the sign-in starts at its own, or
    // the session cookie set here would not come back to the callback at the registered address.
    if (url.pathname === '/login' && req.headers.host !== new URL(base).host) {
      res.writeHead(302, { location: `${base}/login${url.search}` }).end();
      return;
    }

    const s = session(req, res);
    switch (url.pathname) {
      case '/': {
        const body = s.user
          ? `<p id="status">Signed in as <strong>${escape(s.user.name ?? s.user.sub)}</strong></p><p><a class="button" id="signout" href="/logout">Sign out</a></p>`
          : `<p id="status">Not signed in${url.searchParams.has('error') ? ` (${escape([url.searchParams.get('error'), url.searchParams.get('error_description')].filter(Boolean).join(': '))})` : ''}</p><p><a class="button" id="signin" href="/login">Sign in with Latchkey</a></p>`;
        return page(res, options.title, body);
      }
      case '/login': {
        const pending = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier() };
        s.pending = pending;
        const prompt = url.searchParams.get('prompt');
        const target = oidc.buildAuthorizationUrl(config, {
          redirect_uri: `${base}/callback`,
          scope: 'openid profile email',
          state: pending.state,
          nonce: pending.nonce,
          code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
          code_challenge_method: 'S256',
          ...(prompt ? { prompt } : {}),
        });
        res.writeHead(302, { location: target.href }).end();
        return;
      }
      case '/callback': {
        const pending = s.pending;
        s.pending = undefined;
        if (url.searchParams.has('error') || !pending) {
          // With Latchkey's error_description: "invalid_scope" alone did not say which scope the client may not ask for.
          const said = new URLSearchParams({ error: url.searchParams.get('error') ?? 'no_pending_request' });
          const description = url.searchParams.get('error_description');
          if (description) said.set('error_description', description);
          res.writeHead(302, { location: `/?${said}` }).end();
          return;
        }
        const tokens = await oidc.authorizationCodeGrant(config, url, {
          pkceCodeVerifier: pending.verifier,
          expectedState: pending.state,
          expectedNonce: pending.nonce,
        });
        const claims = tokens.claims()!;
        idTokens.push({ ...claims });
        // Profile claims come from userinfo; the ID token carries identity and session (sub, sid).
        const profile = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
        s.user = { sub: claims.sub, name: profile.name, sid: claims.sid as string | undefined, idToken: tokens.id_token! };
        res.writeHead(302, { location: '/' }).end();
        return;
      }
      case '/logout': {
        const idToken = s.user?.idToken;
        s.user = undefined;
        if (!idToken) {
          res.writeHead(302, { location: '/' }).end();
          return;
        }
        const target = oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: `${base}/signed-out` });
        res.writeHead(302, { location: target.href }).end();
        return;
      }
      case '/signed-out':
        return page(res, options.title, '<p id="status">You are signed out.</p><p><a class="button" href="/">Home</a></p>');
      default:
        return page(res, 'Not found', '<p>Nothing here.</p>', 404);
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) page(res, 'Sign-in failed', `<p id="status">${escape(failure(error, options.clientId))}</p>`, 500);
    });
  });
  await new Promise<void>((done, fail) => server.once('error', fail).listen(options.port ?? 0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  base = options.publicUrl(port);
  const close = () =>
    new Promise<void>((done) => {
      server.close(() => done());
      server.closeAllConnections();
    });
  // After listening, so that a busy PORT (the likelier slip) is what a start with both is told.
  if (options.checkClient) {
    try {
      // RFC 7009 §2.2: an unknown token is a 200; only the client's authentication can fail.
      await oidc.tokenRevocation(config, 'not-a-token-only-a-check-of-the-client-credentials');
    } catch (error) {
      await close();
      if (error instanceof oidc.ResponseBodyError && error.error === 'invalid_client') throw new ClientRefused(options.clientId, error.error_description);
      throw error;
    }
  }
  return { url: base, port, loggedOut, idTokens, close };
}

// `npm run sample-rp`: one app, configured by the environment. (No top-level await: test files
// import this module, and mocha may load them through require().)
async function main() {
  const env = (name: string, fallback?: string) => {
    const value = process.env[name] ?? fallback;
    if (value === undefined) throw new Error(`set ${name}`);
    return value;
  };
  const clientId = env('CLIENT_ID', 'demo');
  if (!process.env.CLIENT_SECRET) {
    throw new Error(
      `set CLIENT_SECRET to the client_secret that 'latchkey clients add' printed for this app (the README's walkthrough, step 2, which needs jq; without it, install jq, and npx latchkey clients rotate-secret ${clientId} --grace 0 | jq -r .client_secret prints a new one)`,
    );
  }
  // Each said in one line, as Latchkey says its own settings (PORT=abc said "options.port should be
  // >= 0", ISSUER=localhost:3000 "only requests to HTTPS are allowed": fifteenth newcomer pass).
  const portText = env('PORT', '8080').trim();
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) throw new Error(`PORT: expected the sample app's own port, a number such as 8080, got "${portText}"`);
  const webUrl = (name: string, fallback: string, example: string) => {
    const value = env(name, fallback);
    const url = URL.parse(value);
    if (!url || !['http:', 'https:'].includes(url.protocol) || !url.host) throw new Error(`${name}: expected an http:// or https:// URL such as ${example}, got "${value}"`);
    return value;
  };
  const issuer = webUrl('ISSUER', 'http://localhost:3000', 'http://localhost:3000 (the issuer Latchkey logs at start, "latchkey is listening")');
  const publicUrl = webUrl('PUBLIC_URL', `http://localhost:${port}`, `http://localhost:${port} (the app's own origin, as its redirect URI starts)`);
  const rp = await startRelyingParty({
    issuer,
    clientId,
    checkClient: true,
    log: (line) => console.log(line),
    clientSecret: env('CLIENT_SECRET'),
    publicUrl: () => publicUrl,
    title: env('TITLE', 'Sample app'),
    port,
  }).catch((error: unknown) => {
    // PORT is this app's own port: exported for Latchkey in the same shell, it is taken by Latchkey.
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new Error(`port ${port} is in use: PORT is the sample app's own port (default 8080), not Latchkey's; give it a free one, registered in the app's redirect URI http://localhost:<PORT>/callback (walkthrough, step 2)`);
    }
    if (unreachable(error)) throw new Error(`cannot reach Latchkey at ${issuer} (${unreachable(error)}): start it (npm start), or set ISSUER to where it runs`);
    if (notHttp(error)) throw new Error(`no Latchkey at ${issuer}: what listens there does not speak HTTP (${notHttp(error)}); set ISSUER to the issuer Latchkey logs at start ("latchkey is listening")`);
    const tls = tlsFailure(error);
    // https:// to Latchkey's own port, which speaks plain http (TLS ends at a proxy in front): Node's fetch said only "fetch failed".
    if (tls?.plain) throw new Error(`no TLS at ${issuer} (${tls.code}): Latchkey itself speaks plain http (TLS ends at a proxy in front of it); set ISSUER to the issuer Latchkey logs at start ("latchkey is listening"), such as ${issuer.replace(/^https:/, 'http:')}`);
    if (tls) throw new Error(`the TLS certificate at ${issuer} is not trusted here (${tls.code}: ${tls.message}); give Node its CA with NODE_EXTRA_CA_CERTS=<ca.pem>, or set ISSUER to the issuer Latchkey logs at start ("latchkey is listening")`);
    throw notLatchkey(issuer, error) ?? withCause(error);
  });
  console.log(`sample app on ${rp.url} (redirect URI ${rp.url}/callback)`);
}

/**
 * Discovery that reached something other than Latchkey at ISSUER, in one line that says what to set:
 * another program on the port (Latchkey started with PORT=3001, ISSUER left at its default), or
 * Latchkey under another spelling of its issuer (127.0.0.1 for localhost). openid-client's own words
 * were "unexpected HTTP response status code" and "discovered metadata issuer does not match".
 */
function notLatchkey(issuer: string, error: unknown): Error | undefined {
  if (!(error instanceof oidc.ClientError)) return undefined;
  const cause: unknown = error.cause;
  if (error.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' && cause instanceof Response) {
    return new Error(`no Latchkey at ${issuer}: its discovery document answered HTTP ${cause.status}; set ISSUER to the issuer Latchkey logs at start ("latchkey is listening")`);
  }
  const said = (cause as { body?: { issuer?: unknown } } | undefined)?.body?.issuer;
  if (error.code === 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED' && typeof said === 'string') {
    return new Error(`Latchkey at ${issuer} calls itself ${said}: set ISSUER=${said} (the issuer must match exactly)`);
  }
  return undefined;
}

/**
 * Why a fetch that connected got no HTTP answer: another kind of server on the port (a database, a
 * Redis), which closes or answers in its own protocol. Node's fetch said only "fetch failed".
 */
function notHttp(error: unknown): string | undefined {
  for (let at = error; at instanceof Error; at = at.cause) {
    const code = (at as NodeJS.ErrnoException).code;
    if (code === 'UND_ERR_SOCKET' || code?.startsWith('HPE_')) return at.message;
  }
  return undefined;
}

/**
 * A TLS handshake that failed: `plain` when what answered speaks no TLS at all (an https ISSUER for
 * Latchkey's own plain-http port), else a certificate Node does not trust (self-signed, another name).
 */
function tlsFailure(error: unknown): { code: string; message: string; plain: boolean } | undefined {
  for (let at = error; at instanceof Error; at = at.cause) {
    const code = (at as NodeJS.ErrnoException).code;
    if (!code) continue;
    if (/^ERR_SSL_(WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST)$/.test(code) || code === 'EPROTO') return { code, message: at.message, plain: true };
    if (/CERT|^ERR_TLS_|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) return { code, message: at.message, plain: false };
  }
  return undefined;
}

/** Node's "fetch failed", with what failed under it (a cause it does not say otherwise). */
function withCause(error: unknown): unknown {
  if (!(error instanceof Error) || error.message !== 'fetch failed') return error;
  let at: unknown = error.cause;
  while (at instanceof Error && at.cause instanceof Error) at = at.cause;
  return at instanceof Error ? new Error(`cannot fetch Latchkey's discovery document (${(at as NodeJS.ErrnoException).code ?? at.message})`) : error;
}

/** Why a fetch failed to connect (e.g. ECONNREFUSED), from the error or its causes. */
function unreachable(error: unknown): string | undefined {
  for (let at = error; at instanceof Error; at = at.cause) {
    const code = (at as NodeJS.ErrnoException).code;
    if (code && /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ECONNRESET|ETIMEDOUT|EHOSTUNREACH)$/.test(code)) return code;
  }
  return undefined;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
