/**
 * The HTTP application: request ids and logs, error answers, security headers, health, our own
 * routes, then oidc-provider mounted at the root (its documented way: koa-mount).
 */
import { randomUUID } from 'node:crypto';
import Koa, { type Middleware } from 'koa';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import helmet from 'helmet';
import type { Config } from './config.js';
import { CookieKeys } from './http/cookie-keys.js';
import { ownContextDelegates } from './http/context-delegates.js';
import { clientErrorAnswers, connectAnswers } from './http/client-errors.js';
import { respondWithError, signOutFailedPage, wantsHtml, type ErrorOut, type FailurePage } from './http/errors.js';
import { ownAnswerCors } from './http/own-answer-cors.js';
import { stylesheet } from './http/views.js';
import { scripts } from './http/scripts.js';
import type { Keyring } from './keyring/keyring.js';
import { observeProviderEvents, REQUEST_EVENT, REQUEST_LINE, type RequestEvent } from './ops/events.js';
import { health } from './http/health.js';
import { dispatch } from './http/layers.js';
import { presetHeaders, type HeaderPreset } from './http/preset-headers.js';
import type { Metrics } from './ops/metrics.js';
import { lineWriter, type LineWriter, type Logger } from './ops/logger.js';
import { aheadOf, type AheadAdmission, type AheadAnswers, type AheadRequest } from './http/ahead.js';
import { strayHostWarning } from './http/stray-host.js';
import type { ProviderHost } from './provider/host.js';
import { canonicalPaths } from './provider/patches/canonical-paths.js';
import { matchedRoute } from './provider/patches/matched-route.js';
import type { Kv } from './store/kv.js';
import { isStoreOutage, RETRY_AFTER_SECONDS, storeRefused } from './store/outage.js';

export interface AppParts {
  readonly config: Config;
  /** The provider in service (replaced when the key ring changes). */
  readonly providers: ProviderHost;
  readonly kv: Kv;
  readonly keyring: () => Keyring | undefined;
  readonly logger: Logger;
  /** The running server's metrics: request durations and provider events are recorded here. */
  readonly metrics: Metrics;
  /** Our own routes (interactions, developer pages), tried before the provider's. */
  readonly routes?: readonly Middleware[];
  /** True once the server shuts down: every answer then closes its connection (main.ts close). */
  readonly shuttingDown?: () => boolean;
  /**
   * Answers kept in memory (discovery, the JWKS) that the app's request listener writes before Koa
   * (http/ahead.ts), with the rate limits' count for their routes; their middleware stays among
   * `routes` for what is not taken ahead.
   */
  readonly ahead?: { readonly answers: readonly AheadAnswers[]; readonly admit?: AheadAdmission };
  /** By path, what a person's request there that the store failed shows instead of "Temporarily unavailable" (a sign-out). */
  readonly failurePages?: FailurePages;
}

/** By path, the page a failure there shows (its origin given: the issuer's). */
export type FailurePages = Readonly<Record<string, (origin: string) => FailurePage>>;

const REQUEST_ID = /^[\w.-]{1,128}$/;

/**
 * Marks a request the store could not serve (away, or refusing the command: store/outage.ts) to be
 * answered 503 with Retry-After: what failed is not done, and the person or program tries again. A
 * refusal (an ACL without the permission, NOPERM) is logged with the store's reply, which says what
 * to mend; an outage is said by the request line's `outage`. False for any other error.
 */
function storeCannot(ctx: Koa.Context, error: unknown, logger: Logger): boolean {
  const refused = storeRefused(error);
  if (refused) {
    logger.error({ event: 'store.refused', err: { message: refused.message }, requestId: ctx.state.requestId, path: ctx.path }, `the store refused a command: ${refused.message}`);
  } else if (!isStoreOutage(error)) return false;
  ctx.state.storeOutage = refused ? 'store_refused' : 'store';
  return true;
}

/**
 * 503 with Retry-After. A sign-out's confirmation that failed so says "Not signed out" and offers
 * it again, whichever layer met the store (the rate limits', before the engine knows its route):
 * a person at a shared computer must not walk away from "Temporarily unavailable" believing it done.
 * Our own pages say so by path (failurePages: the account page's "Sign out" of a session).
 */
function storeOutage(ctx: Koa.Context, providers: ProviderHost, failurePages: FailurePages) {
  ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
  respondWithError(ctx, 503, {
    error: 'temporarily_unavailable',
    error_description: 'the service is temporarily unavailable, retry shortly',
  }, unfinishedPage(ctx, providers, failurePages));
}

/**
 * The words of the page for a person's request refused before it was carried out, by path: a
 * sign-out's confirmation says "Not signed out" and offers it again, our own pages' (failurePages)
 * theirs; undefined elsewhere.
 */
function unfinishedPage(ctx: Koa.Context, providers: ProviderHost, failurePages: FailurePages): FailurePage | undefined {
  const provider = providers.current;
  if (ctx.path === provider.pathFor('end_session_confirm')) return signOutFailedPage(`${ctx.origin}${provider.pathFor('end_session')}`);
  return Object.hasOwn(failurePages, ctx.path) ? failurePages[ctx.path]!(ctx.origin) : undefined;
}

/**
 * The per-address limit's 429 (http/rate-limits.ts), answered as JSON there, is a page for a person's
 * browser, as every other refusal is: the limit covers the sign-in, device, sign-out, account and
 * developer pages, where `{"error":"temporarily_unavailable"}` told a person nothing (sixteenth
 * passes, h7). The JSON stays for a program (what it accepts: respondWithError); `Retry-After` stays.
 */
function rateLimited(ctx: Koa.Context, providers: ProviderHost, failurePages: FailurePages, wait: number) {
  if (ctx.status !== 429 || !wantsHtml(ctx)) return;
  respondWithError(ctx, 429, ctx.body as ErrorOut, unfinishedPage(ctx, providers, failurePages) ?? {
    title: 'Too many requests',
    message: `Too many requests came from your network in a short time. Wait ${wait === 1 ? 'a second' : `${wait} seconds`}, then try again.`,
  });
}

/** The status label of a request's duration ("2xx"), without making a string per request. */
const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];
function statusClass(status: number): string {
  const index = Math.floor(status / 100);
  return STATUS_CLASSES[index] ?? `${index}xx`;
}

/**
 * The request line's writer. It holds fixed fields only (the path, never the query; ids, a route,
 * an error code), none of which can carry a secret: it skips the redaction pass, which cost five
 * times the rest of writing the line. Errors logged by requestContext still go through the
 * redacting logger. Written as pino would write it, from one JSON.stringify of its fields
 * (ops/logger.ts lineWriter).
 */
function requestLineOf(logger: Logger): LineWriter {
  return lineWriter(logger.child({}, { redact: { paths: [], censor: '[redacted]' } }), 'request');
}

/** The request's id: a proxy's X-Request-Id when `proxy` is on and it is well formed, else a new one. */
function requestIdOf(config: Config, offered: string | string[] | undefined): string {
  return config.proxy && typeof offered === 'string' && REQUEST_ID.test(offered) ? offered : randomUUID();
}

/**
 * The paths of the sign-in and sign-out flow, as prefixes in any case (the engine's router and ours
 * fold case): the engine's authorization endpoint (its resume, /auth/<uid>, answers the form_post
 * page), its end-session endpoint (the sign-out page), the device pages (a device's request naming an
 * upstream, or a login_hint one signs in, goes on from the confirmation straight to that upstream),
 * our interaction pages and the upstream callbacks' pages. Their forms' answers go on to the client's
 * redirect_uri, an upstream's sign-in or a post-logout URI, so their pages carry no form-action
 * (securityHeaders); every other page's forms stay on our origin, and carry form-action 'self'.
 */
function flowPaths(provider: ProviderHost['current']): RegExp {
  const prefixes = [provider.pathFor('authorization'), provider.pathFor('end_session'), provider.pathFor('code_verification'), '/interaction/', '/upstream/'];
  return new RegExp(`^(?:${prefixes.map((prefix) => prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`, 'i');
}

/** Logs each request and turns anything thrown by our own routes into a clean error answer. */
function requestContext(config: Config, logger: Logger, metrics: Metrics, headers: ResponseHeaders, requestLine: LineWriter, providers: ProviderHost, failurePages: FailurePages, shuttingDown?: () => boolean): Middleware {
  const inFlow = flowPaths(providers.current);
  // Our own refusals at the endpoints browser apps call, readable by their pages (http/own-answer-cors.ts).
  const cors = ownAnswerCors(providers.current);
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    const requestId = requestIdOf(config, ctx.req.headers['x-request-id']);
    ctx.state.requestId = requestId;
    (ctx.state as Record<symbol, unknown>)[REQUEST_LINE] = true;
    // The request id and the security headers, on the Node response directly, all at once (see
    // securityHeaders): koa's ctx.set built two arrays per call, Node's setHeader more.
    const read = ctx.method === 'GET' || ctx.method === 'HEAD';
    (inFlow.test(ctx.path) ? (read ? headers.flowRead : headers.flowOther) : read ? headers.read : headers.other)(ctx.res, requestId);
    try {
      await next();
      if (ctx.state.storeOutage) storeOutage(ctx, providers, failurePages);
      else if (typeof ctx.state.rateLimited === 'number') rateLimited(ctx, providers, failurePages, ctx.state.rateLimited);
    } catch (error) {
      const status = (error as { status?: number; expose?: boolean }).status;
      if (status && status >= 400 && status < 500) {
        // Body parser refusals (413, malformed forms or JSON): the client's fault, said plainly
        // (co-body marks a JSON syntax error 400 without `expose`; its message is never echoed).
        respondWithError(ctx, status, {
          error: 'invalid_request',
          error_description: status === 413 ? 'the request body is too large' : 'the request body could not be read',
        });
      } else if (storeCannot(ctx, error, logger)) {
        storeOutage(ctx, providers, failurePages);
      } else {
        logger.error({ err: error, requestId, path: ctx.path }, 'unhandled error');
        respondWithError(ctx, 500, { error: 'server_error', error_description: 'an unexpected error occurred' });
      }
    } finally {
      cors(ctx);
      // A request in flight when the server began to shut down: its answer closes the connection too.
      if (shuttingDown?.() && !ctx.res.headersSent) ctx.res.setHeader('connection', 'close');
      const oidc = (ctx as unknown as { oidc?: { client?: { clientId: string }; route?: string; params?: { grant_type?: unknown } } }).oidc;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = matchedRoute(ctx);
      metrics.observeRequest(route, ctx.method, statusClass(ctx.status), seconds);
      const { error, error_description: told } = (ctx.body as { error?: unknown; error_description?: unknown } | undefined) ?? {};
      const event = (ctx.state as Record<symbol, unknown>)[REQUEST_EVENT] as RequestEvent | undefined;
      const line: Record<string, string | number | undefined> = {
        requestId,
        method: ctx.method,
        path: ctx.path,
        status: ctx.status,
        ms: seconds * 1000,
        route: oidc?.route,
        // The engine's authenticated client, or the one whose token our own protected resources
        // (the admin API, the feed) accepted: what an operator reviews after a leak (docs/operating.md, Incident runbook).
        client_id: oidc?.client?.clientId ?? (ctx.state.clientId as string | undefined),
        grant_type: typeof oidc?.params?.grant_type === 'string' ? oidc.params.grant_type : undefined,
        outcome: ctx.status < 400 ? 'ok' : typeof error === 'string' ? error : `http_${ctx.status}`,
      };
      // Added only when there is something to add (spreading an empty literal made one per request).
      if (ctx.state.storeOutage) line.outage = ctx.state.storeOutage as string;
      if (event) Object.assign(line, event);
      // The description the client was told: a patch may have rewritten the engine's after its event
      // (userinfo's "invalid token provided" for an API's token or a client's own), and the operator
      // reading the line should see what the developer saw.
      if (line.error_description !== undefined && typeof told === 'string') line.error_description = told;
      requestLine(line);
    }
  };
}

/**
 * Every URL Latchkey produces or expects comes from the configured issuer, never from the request:
 * not from Host, X-Forwarded-Host or an absolute-form request target (`GET http://evil.example/token`).
 * oidc-provider builds discovery, redirects, form actions, DPoP's expected `htu` and the audiences
 * it accepts in client assertions from the request's href; a request naming another host would
 * otherwise make it accept an assertion made for that host (the OpenID Foundation's 2025
 * client-assertion audience injection) and print that host in discovery.
 *
 * A request for another host is served as the issuer's host rather than refused: behind a reverse
 * proxy the Host that reaches us is often the upstream's own name or address (and health checks use
 * an IP), so refusing would break ordinary deployments, while nothing that matters depends on the
 * Host any more. ctx.ip is untouched (see the proxy settings).
 *
 * Under an https issuer, ctx.protocol is https and ctx.secure true whatever the connection, so
 * that every cookie (the engine's session, interaction and resume cookies, our own) is Secure:
 * browsers reach us only at the issuer's https URL, but the TLS often ends at a proxy, and with
 * `proxy` off, or a proxy that sends no X-Forwarded-Proto, the cookies went out without Secure,
 * for a network attacker to read from any plain http:// request the browser could be made to send.
 * Under an http issuer (development) they describe the connection, as Koa's do.
 */
export function serveAsIssuer(app: Koa, issuer: string): void {
  const { origin, host, hostname, protocol } = new URL(issuer);
  // On the app's request prototype, once: every request of this app inherits them, at no cost per request.
  Object.defineProperties(app.request, {
    origin: { value: origin },
    host: { value: host },
    hostname: { value: hostname },
    ...(protocol === 'https:' && { protocol: { value: 'https' }, secure: { value: true } }),
    href: {
      get(this: Koa.Request) {
        const target = this.originalUrl;
        // The path and query only: an absolute-form target's own origin is ignored like a Host header.
        const local = /^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '') || '/' : target;
        return `${origin}${local}`;
      },
    },
  });
}

/** Features turned off on every answer (the Permissions-Policy header). */
const PERMISSIONS_POLICY = 'camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), hid=(), display-capture=(), browsing-topics=()';

/** The headers every answer starts with, by kind of request (set in requestContext). */
interface ResponseHeaders {
  /** GET and HEAD. */
  readonly read: HeaderPreset;
  readonly other: HeaderPreset;
  /** The same, on the sign-in and sign-out flow's paths (flowPaths): without form-action. */
  readonly flowRead: HeaderPreset;
  readonly flowOther: HeaderPreset;
}

/**
 * X-Request-Id, then helmet's headers, computed once: they depend on the configuration only (no
 * nonces), so helmet runs once at start against a recording response, and each request gets the
 * recorded headers, as one preset per kind of request (http/preset-headers.ts). They are set as
 * the request enters, with its id, where a middleware of their own after canonicalPaths (which
 * neither answers nor sets a header) set them before: the same headers, in the same order, on the
 * same answers, without a layer of the stack.
 */
function securityHeaders(config: Config): ResponseHeaders {
  const ours = helmetHeaders(config, true);
  const flow = helmetHeaders(config, false);
  return {
    // No GET or HEAD answer is stored unless its route says otherwise (the JWKS, discovery, static
    // files do). health.ts used to set this on every such request, whatever its path.
    read: presetHeaders('X-Request-Id', [...ours, ['Cache-Control', 'no-store']]),
    other: presetHeaders('X-Request-Id', ours),
    flowRead: presetHeaders('X-Request-Id', [...flow, ['Cache-Control', 'no-store']]),
    flowOther: presetHeaders('X-Request-Id', flow),
  };
}

/**
 * What Node's HTTP parser refuses before there is a request, and a CONNECT (http/client-errors.ts),
 * answered on `server` with the headers every answer outside the sign-in flow carries (Cache-Control: no-store).
 */
export function answerClientErrors(server: Server, config: Config): void {
  const headers = [...helmetHeaders(config, true), ['Cache-Control', 'no-store']] as const;
  server.on('clientError', clientErrorAnswers(headers));
  server.on('connect', connectAnswers(headers));
}

/**
 * helmet's headers and ours. `formAction`: whether the Content-Security-Policy holds form-action
 * 'self', which every page but the sign-in and sign-out flow's carries (see flowPaths).
 */
function helmetHeaders(config: Config, formAction: boolean): [string, string][] {
  const headers: [string, string][] = [];
  const recorder = { setHeader: (name: string, value: unknown) => headers.push([name, String(value)]), removeHeader: () => {} };
  helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        // Only our own script files (http/scripts.ts: passkeys); oidc-provider's form_post page adds
        // its inline script's hash to this directive (it does so only when script-src is present).
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        // Forms post to ourselves only: a form that got into a page anyway (markup, no script
        // needed) cannot send what the browser fills in (a saved password) to another site. Not
        // on the flow's pages (flowPaths): after their forms the browser follows redirects to the
        // client's redirect_uri (or an upstream's sign-in, a post-logout URI; the form_post page
        // posts there itself) and on from there wherever the app sends it, and Chromium applies
        // form-action to that whole chain, so no list of sources can be right there.
        ...(formAction && { formAction: ["'self'"] }),
      },
    },
    strictTransportSecurity: config.issuer.startsWith('https:') ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'deny' },
    // No other origin may pull our answers into its pages as no-cors loads (an <img>, <script> or
    // <link> naming the account page, the developer page, a sign-in page), where a side channel
    // (Spectre) reads what the browser did not show it: a sibling subdomain is the same site, so
    // its loads carry the SameSite=Lax session cookie. CORS reads are not no-cors loads, so a
    // browser app's fetch of the token endpoint or userinfo is unaffected; discovery and the JWKS,
    // public documents, keep cross-origin (provider/discovery.ts, keyring/jwks-endpoint.ts).
    crossOriginResourcePolicy: { policy: 'same-origin' },
  })({} as IncomingMessage, recorder as unknown as ServerResponse, () => {});
  if (!headers.length) throw new Error('helmet set no headers');
  // Powerful features no page of ours uses are off for our pages and anything they might embed; WebAuthn
  // (passkeys) keeps its default, our own origin.
  headers.push(['Permissions-Policy', PERMISSIONS_POLICY]);
  return headers;
}

/**
 * What the request listener does around an answer written before Koa (http/ahead.ts): what
 * requestContext does around a GET or HEAD answered by a layer that neither throws nor names a
 * route, client or event (the request line's other fields are left out, as undefined ones are),
 * and Koa's `ctx.ip`.
 */
function aheadRequest(app: Koa, config: Config, metrics: Metrics, headers: ResponseHeaders, requestLine: LineWriter): AheadRequest {
  const proxyIpHeader = app.proxyIpHeader.toLowerCase();
  const quotedPaths = new Map<string, string>();
  return {
    begin(req, res) {
      const requestId = requestIdOf(config, req.headers['x-request-id']);
      headers.read(res, requestId);
      return requestId;
    },
    end(req, path, requestId, status, started) {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const method = req.method!;
      // matchedRoute's label for a request neither the engine nor a router matched.
      metrics.observeRequest('other', method, statusClass(status), seconds);
      const outcome = status < 400 ? 'ok' : `http_${status}`;
      if (!requestLine.written) {
        requestLine({ requestId, method, path, status, ms: seconds * 1000, outcome });
        return;
      }
      // The same fields, written as JSON.stringify writes them without it: a request id is
      // REQUEST_ID's characters or a UUID, the method GET or HEAD, the path one of the answers'
      // (quoted once), the status and duration finite numbers (written as String writes them).
      let quoted = quotedPaths.get(path);
      if (quoted === undefined) quotedPaths.set(path, (quoted = JSON.stringify(path)));
      requestLine.written(`"requestId":"${requestId}","method":"${method}","path":${quoted},"status":${status},"ms":${seconds * 1000},"outcome":"${outcome}"`);
    },
    // Koa's request.ips and request.ip (koa/lib/request.js), for the app's proxy settings.
    ip(req) {
      const forwarded = req.headers[proxyIpHeader];
      let ips = app.proxy && typeof forwarded === 'string' && forwarded ? forwarded.split(',').map((ip) => ip.trim()) : [];
      if (app.maxIpsCount > 0) ips = ips.slice(-app.maxIpsCount);
      return ips[0] || req.socket.remoteAddress || '';
    },
  };
}

export function createApp({ config, providers, kv, keyring, logger, metrics, routes = [], ahead, failurePages = {}, shuttingDown }: AppParts): Koa {
  // Behind `proxyHops` proxies, the client address is that many entries from the right of
  // X-Forwarded-For (Koa's maxIpsCount); what a client wrote further left is never its address.
  const app = new Koa({ proxy: config.proxy, maxIpsCount: config.proxyHops });
  // One key set for every request, as the provider's (an array made the cookies package build a
  // Keygrip per request, and compare each signed cookie with tsscmp's two extra HMACs). oidc-provider
  // mounted at the root reads and writes its cookies through this app's context.
  app.keys = new CookieKeys(config.cookie.keys);
  app.silent = true; // errors are logged by requestContext, with the request id
  serveAsIssuer(app, config.issuer);
  // ctx.path, ctx.status, ctx.set(): a function of their own each, not Koa's shared closures.
  ownContextDelegates(app.context);

  providers.forEach((provider) => {
    provider.on('server_error', (ctx: Koa.Context, error: unknown) => {
      if (!storeCannot(ctx, error, logger)) logger.error({ err: error, requestId: ctx.state.requestId, path: ctx.path }, 'provider server_error');
    });
    observeProviderEvents(provider, logger, metrics);
  });

  const headers = securityHeaders(config);
  const requestLine = requestLineOf(logger);
  app.use(requestContext(config, logger, metrics, headers, requestLine, providers, failurePages, shuttingDown));
  const strayHost = strayHostWarning(config.issuer, config.proxy, logger);
  if (strayHost) app.use(strayHost);
  // Each of the engine's routes in its own spelling only, before any path is compared (the route
  // paths come from the configuration: every provider built later has the same).
  app.use(canonicalPaths(providers.current));
  // Each request meets only the layers whose scope admits its path (http/layers.ts), in this order;
  // unscoped ones (rate limits, the provider) meet every request.
  app.use(dispatch([health(kv, keyring), stylesheet(), scripts(), ...routes, providers.middleware()]));
  app.use(async (ctx) => {
    respondWithError(ctx, 404, { error: 'not_found', error_description: 'no such endpoint' });
  });
  if (ahead?.answers.length) {
    // The app's listener (what main.ts serves, and any test's server) writes these answers before Koa's.
    const callback = app.callback.bind(app);
    const request = aheadRequest(app, config, metrics, headers, requestLine);
    app.callback = () => aheadOf(callback(), ahead.answers, request, ahead.admit) as ReturnType<Koa['callback']>;
  }
  return app;
}
