/**
 * A logout token the app's endpoint did not take is sent again (OpenID Connect Back-Channel Logout
 * 1.0), by whichever instance claims it first (provider/backchannel-delivery.ts).
 *
 * oidc-provider's Client#backchannelLogout(sub, sid) signs a logout token (a new jti, iat now) and
 * posts it once: anything but 200 or 204 rejects, and every caller (the engine's end_session_confirm,
 * accounts/sessions.ts) only says so in the log (backchannel.error). An app whose endpoint was down
 * for a moment never learnt the person signed out, and kept its session for them.
 *
 * What it changes: when that post fails as a delivery (no answer: refused, reset, timed out; or 5xx,
 * 408, 429), `keep` is told (who, for whom: the client, with its creation time, sub and sid, never
 * the token; the creation time tells the client from another an operator makes later with its id), then the call
 * rejects as before, so the engine's events and answers are unchanged. An answer of the app is not
 * a delivery failure and is not retried: Back-Channel Logout 1.0 §2.8 has the RP answer 400 when the
 * logout token is invalid or the logout failed (with an `error` in its body), a verdict on the token
 * that a fresh token with the same claims would get again; so do other 4xx (the URI is wrong, the app
 * refuses us). What the outbound guard refuses before any connection (a special-use address, a
 * redirect) is kept once, for a server's sweep, whose guard (the operator's settings for the servers,
 * which a CLI may not share) decides: refused there, it is dropped and said. (RFC 8935's rule for security event tokens, which the
 * working group took for failed logout requests: retransmit only after a potentially recoverable
 * error, such as a server unavailable for a moment, and after a delay.)
 *
 * Before the post, too: an ending that goes on to tell an app may stop after the session went and
 * before the post (the store cut off or paused at the session's ending: a 503, a CLI's non-zero
 * exit), and its retry then finds no session and nothing to tell the app from; before the twenty-fifth
 * endings pass (2026-12-04) such an app was never told. So every ending keeps who it is about to
 * tell (`pendingLogout`, as not yet attempted, due at the schedule's first delay) before the
 * session goes, and drops it once its own post settled (a failed delivery is kept again as above):
 * what an ending that stopped half-way did not tell is told by the sweep. An app whose ending's post
 * outlasts that delay may be told twice (each a fresh token for a session already ended).
 *
 * A retry posts through the engine's own method, kept as `deliverOnce` (not the patched one, so a
 * retry does not keep itself again): each attempt signs a new token, with a fresh iat and jti, as a
 * relying party checking iat against its window (§2.6) must see.
 * Relies on: Client#backchannelLogout(sub, sid) posting through the configured fetch and rejecting,
 * on an answer other than 200/204, with an Error whose `response` is the fetch Response. Pinned by
 * test/unit/provider-patches.test.ts and test/e2e/backchannel-delivery.test.ts.
 */
import type { Provider } from 'oidc-provider';
import { OutboundError } from '../../http/outbound.js';
import { RETRIES, type LogoutRetries } from '../../pending-logouts.js';

export type { KeepRetry, LogoutRetries } from '../../pending-logouts.js';

/** The engine's own Client#backchannelLogout, kept on the prototype under this symbol. */
const ONCE = Symbol('backchannelLogout, once');

interface LogsOut {
  clientId: string;
  clientIdIssuedAt?: number;
  backchannelLogout(sub: string, sid: string | undefined): Promise<void>;
  [ONCE]?: (sub: string, sid: string | undefined) => Promise<void>;
  [RETRIES]?: LogoutRetries;
}

/** Whether a failed post is worth another attempt: no answer (refused, reset, timed out), or 5xx, 408, 429. */
export function deliveryFailed(error: unknown): boolean {
  const status = (error as { response?: { status?: unknown } } | undefined)?.response?.status;
  if (typeof status === 'number') return status >= 500 || status === 408 || status === 429;
  // Refused by the outbound guard before any connection: the operator's to mend, not the app's moment.
  for (let at = error; at instanceof Error; at = at.cause) {
    if (at instanceof OutboundError) return at.code === 'timeout' || at.code === 'network';
    if (/special-use IP address/.test(at.message)) return false;
  }
  return true;
}

/** Whether the outbound guard refused the post before any connection (no answer of the app's). */
function refusedByGuard(error: unknown): boolean {
  if (typeof (error as { response?: { status?: unknown } } | undefined)?.response?.status === 'number') return false;
  for (let at = error; at instanceof Error; at = at.cause) {
    if (at instanceof OutboundError || /special-use IP address/.test(at.message)) return true;
  }
  return false;
}

/** The engine's post of a fresh logout token, once (a client of a provider this patch was applied to). */
export function deliverOnce(client: object, sub: string, sid: string | undefined): Promise<void> {
  const logsOut = client as LogsOut;
  return (logsOut[ONCE] ?? logsOut.backchannelLogout).call(logsOut, sub, sid);
}

/** `keep` failing (the store down too) is not said here: the post's own failure is (backchannel.error), as before. */
export function retryBackchannelLogouts(provider: Provider, retries: LogoutRetries): void {
  const prototype = provider.Client.prototype as unknown as LogsOut;
  const once = prototype.backchannelLogout;
  const { keep } = retries;
  Object.defineProperty(prototype, ONCE, { value: once });
  Object.defineProperty(prototype, RETRIES, { value: retries });
  prototype.backchannelLogout = async function (this: LogsOut, sub, sid) {
    try {
      await once.call(this, sub, sid);
    } catch (error) {
      // What this process's outbound guard refused is kept too, for a server's sweep to post: a CLI
      // run without the servers' outbound.allowPrivateNetworks refused an app on the private network
      // the servers reach, and nothing was sent or said (fresh-eyes passes, 2026-12-06, second). A
      // server's sweep refused by its own guard drops it, saying so (backchannel-delivery.ts).
      if (deliveryFailed(error) || refusedByGuard(error)) await keep(this.clientId, this.clientIdIssuedAt, sub, sid).catch(() => {});
      throw error;
    }
  };
}
