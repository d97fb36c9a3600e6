/**
 * oidc-provider's events as log lines and counters (latchkey_provider_events_total). What is
 * logged is the client, the grant type, the account and the error code: never a token, a code,
 * a secret or a parameter value.
 */
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { Logger } from './logger.js';
import { incrementerOf, type Metrics } from './metrics.js';

/** Events worth a line; "error" events carry the protocol error, the others succeed. */
const EVENTS = [
  'authorization.success',
  'authorization.error',
  'grant.success',
  'grant.error',
  'grant.revoked',
  'end_session.success',
  'end_session.error',
  'backchannel.success',
  'backchannel.error',
  'introspection.error',
  'revocation.error',
  'userinfo.error',
  'registration_create.success',
  'registration_create.error',
  'registration_update.success',
  'registration_delete.success',
  // RFC 8628: a device asked for a code; code entry refused (bad xsrf, too many wrong codes). The
  // device_authorization.success event also carries the codes: only the client is logged.
  'device_authorization.success',
  'device_authorization.error',
  'code_verification.error',
] as const;

type EventError = { error?: string; error_description?: string; error_detail?: string; message?: string; status?: number };

/**
 * Errors whose client learns only "client authentication failed" or "grant request is invalid"
 * (RFC 6749 §5.2 tells it no more): the engine's reason goes to our log, where the developer
 * debugging a token request looks ("invalid secret provided", "client not found", "code_verifier
 * does not match code_challenge", "authorization code redirect_uri mismatch"). The engine's fixed words, never a value sent.
 */
const DETAILED = new Set(['invalid_client', 'invalid_grant']);
const detail = (error: EventError | undefined) =>
  error?.error && DETAILED.has(error.error) && typeof error.error_detail === 'string' ? { error_detail: error.error_detail } : {};

/**
 * What an event adds to its request's log line (app.ts writes it): a request that emits one event
 * is one line, not two. The second line cost a third of the log's share of a token request's CPU.
 */
export interface RequestEvent {
  readonly event: string;
  readonly sub?: string;
  readonly error_description?: string;
  readonly error_detail?: string;
}
export const REQUEST_EVENT = Symbol('request event');
/** Set by app.ts on every request whose line it will write. */
export const REQUEST_LINE = Symbol('request line');

function fields(ctx: KoaContextWithOIDC | undefined) {
  const oidc = ctx?.oidc;
  const grantType = oidc?.params?.grant_type;
  return {
    requestId: (ctx?.state as { requestId?: string } | undefined)?.requestId,
    client_id: oidc?.client?.clientId,
    ...(typeof grantType === 'string' ? { grant_type: grantType } : {}),
    ...(oidc?.session?.accountId ? { sub: oidc.session.accountId } : {}),
  };
}

/** Hands the event to the request's log line; false when it needs a line of its own. */
function onRequestLine(ctx: KoaContextWithOIDC | undefined, event: RequestEvent): boolean {
  const state = ctx?.state as Record<symbol, unknown> | undefined;
  // Outside a request (a background revocation), or a second event in the same request.
  if (!state?.[REQUEST_LINE] || state[REQUEST_EVENT]) return false;
  state[REQUEST_EVENT] = event;
  return true;
}
/** Why a failed fetch failed: "fetch failed" says it only in its innermost cause. */
function rootCause(error: unknown): string | undefined {
  let at = error;
  while (at instanceof Error && at.cause instanceof Error) at = at.cause;
  return at !== error && at instanceof Error ? at.message : undefined;
}

/** A back-channel logout's reason, and what to do when the app sits where outbound requests do not go. */
function backchannelReason(error: unknown) {
  const cause = rootCause(error);
  if (!cause) return {};
  // oidc-provider's own guard (lib/helpers/fetch_request.js) refuses loopback and private addresses.
  return /special-use IP address/.test(cause)
    ? { cause, hint: 'the app is on a loopback or private address: set OUTBOUND_ALLOW_PRIVATE_NETWORKS=true to let Latchkey reach it' }
    : { cause };
}

export function observeProviderEvents(provider: Provider, logger: Logger, metrics: Metrics): void {
  for (const event of EVENTS) {
    // Bound once (see incrementerOf): inc({ event }) hashed the label set at every event.
    const counted = incrementerOf(metrics.providerEvents, { event });
    (provider as unknown as NodeJS.EventEmitter).on(event, (...args: unknown[]) => {
      counted.inc();
      const ctx = args[0] as KoaContextWithOIDC | undefined;
      if (event === 'grant.success') {
        const grantType = ctx?.oidc?.params?.grant_type;
        metrics.countIssued(typeof grantType === 'string' ? grantType : 'unknown');
      }
      if (event === 'grant.revoked') {
        logger.info({ event, grantId: args[1] }, 'grant revoked');
        return;
      }
      const sub = ctx?.oidc?.session?.accountId;
      if (event.endsWith('.error')) {
        // backchannel.error passes (ctx, error, client, ...); the others (ctx, error).
        const error = args[1] as EventError | undefined;
        const client = (args[2] as { clientId?: string } | undefined)?.clientId;
        const status = error?.status ?? 500;
        const warn = status >= 500 || event === 'backchannel.error';
        // The request line's outcome is the error code already; it gains the event and description.
        if (!warn && !client && onRequestLine(ctx, { event, ...(sub ? { sub } : {}), ...(error?.error_description ? { error_description: error.error_description } : {}), ...detail(error) })) return;
        logger[warn ? 'warn' : 'info'](
          {
            event,
            ...fields(ctx),
            ...(client ? { client_id: client } : {}),
            error: error?.error ?? error?.message,
            error_description: error?.error_description,
            ...detail(error),
            ...(event === 'backchannel.error' ? backchannelReason(error) : {}),
          },
          event,
        );
        return;
      }
      if (event !== 'backchannel.success' && onRequestLine(ctx, { event, ...(sub ? { sub } : {}) })) return;
      logger.info({ event, ...fields(ctx) }, event);
    });
  }
}
