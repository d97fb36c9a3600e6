/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728) for an API that takes Latchkey's tokens: the
 * document at `/.well-known/oauth-protected-resource` that tells a client which authorization
 * server issues tokens for this API and how to present them, and the
 * `WWW-Authenticate: Bearer resource_metadata="…"` challenge (RFC 9728 §5.1, with RFC 6750 §3's
 * `error`, `error_description` and `scope`) that points a client with no or a bad token at it. An
 * MCP client needs nothing else to start: from one 401 it finds this document, then Latchkey's
 * RFC 8414 metadata, registers, and asks for a token for this `resource` (RFC 8707).
 *
 *   import { createProtectedResource } from 'latchkey/resource-server';
 *   const api = createProtectedResource({
 *     resource: 'https://mcp.example.com/mcp', authorizationServers: ['https://id.example.com'],
 *     scopesSupported: ['tools:read'], resourceName: 'Example MCP server',
 *   });
 *   // any framework: api.answer(method, path) for the metadata, api.unauthorized(error) for a 401
 *   // node:http: if (api.serve(req, res)) return; ... api.reject(res, error, req)
 *   // Koa: app.use(api.koa()) serves the metadata and turns a TokenRejected thrown below into the challenge
 *
 * Framework-agnostic, no dependencies (the challenge is built by challenge.ts, which has none either).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { wwwAuthenticate } from './challenge.js';

export interface ProtectedResourceOptions {
  /**
   * This API's resource identifier (RFC 9728 §1.2): an https URL without a fragment (http only for
   * localhost and loopback addresses, in development). The `aud` of the tokens it accepts and the
   * `resource` clients ask Latchkey for.
   */
  readonly resource: string;
  /** Issuer URLs of the authorization servers whose tokens it accepts (Latchkey's issuer). */
  readonly authorizationServers: readonly string[];
  /** Scopes this API understands (`scopes_supported`). */
  readonly scopesSupported?: readonly string[];
  /** Scopes a client should ask for, sent as `scope` in the challenges (as the MCP specification suggests). */
  readonly scopesRequired?: readonly string[];
  /** How tokens may be presented (`bearer_methods_supported`). Default ["header"]. */
  readonly bearerMethodsSupported?: readonly ('header' | 'body' | 'query')[];
  /** A name for people (`resource_name`). */
  readonly resourceName?: string;
  readonly resourceDocumentation?: string;
  readonly resourcePolicyUri?: string;
  readonly resourceTosUri?: string;
  /**
   * DPoP algorithms this API accepts (`dpop_signing_alg_values_supported`; ResourceServer's
   * `dpopAlgorithms`): its challenges then offer the DPoP scheme beside Bearer (RFC 9449 §7.1).
   */
  readonly dpopSigningAlgValuesSupported?: readonly string[];
  /**
   * Only DPoP-bound tokens are accepted (`dpop_bound_access_tokens_required`): published, and no
   * Bearer challenge. Published only: the ResourceServer that verifies the tokens enforces it when
   * created with the same option (pass its `dpopBoundAccessTokensRequired` here).
   */
  readonly dpopBoundAccessTokensRequired?: boolean;
  /** Further metadata members. */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** Seconds clients may cache the metadata (Cache-Control max-age). Default 3600. */
  readonly maxAge?: number;
}

/** The RFC 9728 §2 document this API serves. */
export interface ProtectedResourceMetadata {
  readonly resource: string;
  readonly authorization_servers: readonly string[];
  readonly bearer_methods_supported: readonly string[];
  readonly scopes_supported?: readonly string[];
  readonly resource_name?: string;
  readonly resource_documentation?: string;
  readonly resource_policy_uri?: string;
  readonly resource_tos_uri?: string;
  readonly [member: string]: unknown;
}

/** What a refused request is told: RFC 6750 §3.1's error code, a description for the developer, and the scopes needed. */
export interface Challenge {
  readonly error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope' | (string & {});
  readonly description?: string;
  readonly scope?: readonly string[];
  /** The authentication scheme the challenge is for (RFC 9449's `DPoP` for a DPoP-bound token's failure). Default `Bearer`. */
  readonly scheme?: 'Bearer' | 'DPoP';
  /** RFC 9449 §9: the nonce a `use_dpop_nonce` refusal tells the client to use, sent as `DPoP-Nonce`. */
  readonly dpopNonce?: string;
}

/** A response to send: status, headers and body, for any framework. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

const WELL_KNOWN = '/.well-known/oauth-protected-resource';
const STATUS: Record<string, number> = { invalid_request: 400, invalid_token: 401, insufficient_scope: 403 };

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** A TokenRejected from ResourceServer.verify (or anything shaped like it) as a Challenge. */
function asChallenge(error: unknown): Challenge | undefined {
  if (!(error instanceof Error) || error.name !== 'TokenRejected') return undefined;
  const { code, scheme, dpopNonce } = error as Error & { code?: unknown; scheme?: unknown; dpopNonce?: unknown };
  return {
    error: typeof code === 'string' ? code : 'invalid_token',
    description: error.message,
    scheme: scheme === 'DPoP' ? 'DPoP' : 'Bearer',
    ...(typeof dpopNonce === 'string' && dpopNonce && { dpopNonce }),
  };
}

export class ProtectedResource {
  /** The metadata document. */
  readonly metadata: ProtectedResourceMetadata;
  /** Where the metadata is served (RFC 9728 §3.1: the well-known path before the resource's own path). */
  readonly metadataUrl: string;
  /** The path part of metadataUrl, for routing. */
  readonly metadataPath: string;
  /** The paths answer() serves the metadata at: metadataPath, and it without a trailing slash. */
  readonly #metadataPaths: ReadonlySet<string>;
  readonly #options: ProtectedResourceOptions;

  constructor(options: ProtectedResourceOptions) {
    let url: URL;
    try {
      url = new URL(options.resource);
    } catch {
      throw new TypeError(`latchkey/resource-server: resource ${options.resource} is not a URL`);
    }
    if (url.hash || !(url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname)))) {
      throw new TypeError('latchkey/resource-server: resource must be an https URL without a fragment (http only for loopback)');
    }
    if (options.authorizationServers.length === 0) throw new TypeError('latchkey/resource-server: name at least one authorization server');
    this.#options = options;
    // §3.1 removes only a slash right after the host: `/v1/` keeps its own (§3.3: the document's
    // resource is the identifier the path went into). Clients that strip it (the MCP SDK) are answered too.
    this.metadataPath = `${WELL_KNOWN}${url.pathname === '/' ? '' : url.pathname}`;
    this.#metadataPaths = new Set([this.metadataPath, this.metadataPath.replace(/(?<=.)\/$/, '')]);
    this.metadataUrl = `${url.origin}${this.metadataPath}${url.search}`;
    const optional = {
      scopes_supported: options.scopesSupported,
      resource_name: options.resourceName,
      resource_documentation: options.resourceDocumentation,
      resource_policy_uri: options.resourcePolicyUri,
      resource_tos_uri: options.resourceTosUri,
      dpop_signing_alg_values_supported: options.dpopSigningAlgValuesSupported?.length ? [...options.dpopSigningAlgValuesSupported] : undefined,
      dpop_bound_access_tokens_required: options.dpopBoundAccessTokensRequired,
    };
    this.metadata = {
      ...options.extra,
      resource: options.resource,
      authorization_servers: [...options.authorizationServers],
      bearer_methods_supported: [...(options.bearerMethodsSupported ?? ['header'])],
      ...Object.fromEntries(Object.entries(optional).filter(([, value]) => value !== undefined)),
    };
  }

  /**
   * The answer to a request for the metadata document (GET or HEAD at metadataPath, or at it without
   * a trailing slash; 405 for other methods there), or undefined for any other path: then the
   * request is the API's.
   */
  answer(method: string, path: string): HttpAnswer | undefined {
    if (!this.#metadataPaths.has(path.split('?')[0]!)) return undefined;
    if (method !== 'GET' && method !== 'HEAD') {
      return { status: 405, headers: { allow: 'GET, HEAD', 'content-type': 'application/json' }, body: JSON.stringify({ error: 'method_not_allowed' }) };
    }
    return {
      status: 200,
      headers: {
        'content-type': 'application/json',
        'cache-control': `public, max-age=${this.#options.maxAge ?? 3600}`,
        // Public metadata: browser-based clients may read it from any origin.
        'access-control-allow-origin': '*',
      },
      body: method === 'HEAD' ? '' : JSON.stringify(this.metadata),
    };
  }

  /**
   * The WWW-Authenticate value (RFC 6750 §3, RFC 9728 §5.1, RFC 9449 §7.1; built in challenge.ts):
   * Bearer, and DPoP when this API accepts it, each with resource_metadata. Without a challenge
   * (the request had no token) it carries no error, as RFC 6750 §3.1 asks; a TokenRejected is
   * taken as it is (its `scheme`, when it has one, names the failing scheme).
   */
  challenge(challenge?: Challenge | Error): string {
    const { error, description, scope, scheme } = (challenge instanceof Error ? asChallenge(challenge) : challenge) ?? {};
    const dpopAlgorithms = this.#options.dpopSigningAlgValuesSupported ?? [];
    return wwwAuthenticate({
      error,
      description,
      scheme,
      dpopAlgorithms,
      bearer: !(this.#options.dpopBoundAccessTokensRequired && dpopAlgorithms.length),
      resourceMetadata: this.metadataUrl,
      scope: scope ?? this.#options.scopesRequired,
    });
  }

  /** The whole refusal: 401 (403 for insufficient_scope, 400 for invalid_request), the challenge, a JSON body. */
  unauthorized(challenge?: Challenge | Error): HttpAnswer {
    const resolved = challenge instanceof Error ? asChallenge(challenge) : challenge;
    const status = resolved?.error ? (STATUS[resolved.error] ?? 401) : 401;
    const body = resolved?.error ? { error: resolved.error, error_description: resolved.description } : { error: 'unauthorized' };
    // RFC 9449 §9: without the nonce in DPoP-Nonce a client told use_dpop_nonce cannot ever comply.
    const nonce = resolved?.dpopNonce;
    return {
      status,
      headers: {
        'www-authenticate': this.challenge(resolved),
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'access-control-expose-headers': nonce ? 'WWW-Authenticate, DPoP-Nonce' : 'WWW-Authenticate',
        ...(nonce && { 'dpop-nonce': nonce }),
      },
      body: JSON.stringify(body),
    };
  }

  /** node:http: answers a request for the metadata and returns true; false for any other request. */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    const answer = this.answer(req.method ?? 'GET', req.url ?? '/');
    if (!answer) return false;
    res.writeHead(answer.status, answer.headers).end(answer.body);
    return true;
  }

  /**
   * node:http: refuses a request. Pass the request so that one without an Authorization header
   * gets the plain challenge; `error` is what ResourceServer.verify threw.
   */
  reject(res: ServerResponse, error?: Challenge | Error, req?: IncomingMessage): void {
    const answer = this.unauthorized(req && !req.headers.authorization ? undefined : error);
    res.writeHead(answer.status, answer.headers).end(answer.body);
  }

  /**
   * Koa middleware: serves the metadata, and answers a TokenRejected thrown by the handlers after
   * it (typically ResourceServer.verify) with the challenge.
   */
  koa(): (ctx: KoaLikeContext, next: () => Promise<unknown>) => Promise<void> {
    const send = (ctx: KoaLikeContext, answer: HttpAnswer) => {
      ctx.status = answer.status;
      ctx.set(answer.headers);
      ctx.body = answer.body;
    };
    return async (ctx, next) => {
      const answer = this.answer(ctx.method, ctx.path);
      if (answer) return send(ctx, answer);
      try {
        await next();
      } catch (error) {
        const challenge = asChallenge(error);
        if (!challenge) throw error;
        send(ctx, this.unauthorized(ctx.get('authorization') ? challenge : undefined));
      }
    };
  }
}

/** The parts of a Koa context the middleware uses (so this module needs no Koa types). */
export interface KoaLikeContext {
  readonly method: string;
  readonly path: string;
  status: number;
  body: unknown;
  set(headers: Record<string, string>): void;
  get(header: string): string;
}

/** See ProtectedResource. */
export function createProtectedResource(options: ProtectedResourceOptions): ProtectedResource {
  return new ProtectedResource(options);
}
