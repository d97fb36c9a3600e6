/**
 * What a request holds back (provider/patches/deferred-consumption.ts): a token request's
 * consumption of its code or refresh token, and the records a token or authorization request
 * writes, kept on the request by the adapter (adapter.ts) and sent to the store together, in one
 * round trip, before the answer leaves or before the request reads anything more.
 */
import type { ConsumeOutcome, Kv } from './kv.js';
import { engineRequest } from './engine-request.js';
import { GRANTABLE } from './record-keys.js';

/** The adapter of a model, as a held consumption needs it (adapter.ts KvAdapter). */
export interface Consuming {
  readonly modelName: string;
  consumeRecord(id: string, at: number): Promise<ConsumeOutcome>;
  consumed(id: string, outcome: ConsumeOutcome, written: readonly string[]): Promise<void>;
}

/**
 * A token request's consumption of its code or refresh token, and the records a token or an
 * authorization request writes, held back until the request's answer is ready and sent to the
 * store together (one round trip): see settleRequest.
 */
interface Deferred {
  readonly consumptions: { readonly adapter: Consuming; readonly id: string; readonly at: number }[];
  readonly writes: { readonly key: string; readonly model: string; readonly kv: Kv; readonly write: () => Promise<unknown> }[];
}

/**
 * The session an authorization request answered from was ended while the request was in flight
 * (signed out elsewhere, its person disabled, a password change): its write was refused, and the
 * codes and tokens the request made were deleted, so its answer must not leave.
 */
export class SessionEnded extends Error {
  override name = 'SessionEnded';
}
/** Where a request keeps what it holds back: on itself (a WeakMap entry per request costs more to make and to collect). */
const DEFERRED = Symbol('latchkey.deferred');
type Holding = { [DEFERRED]?: Deferred | undefined };

/** The token request in progress (oidc-provider's context), where consumption is deferred. */
export function tokenRequest(): object | undefined {
  const ctx = engineRequest();
  return ctx?.oidc?.route === 'token' ? ctx : undefined;
}

/**
 * The token or authorization request in progress, whose writes are deferred. At the authorization
 * endpoint, and where it resumes after a sign-in, that is the code, the session (and a grant made
 * from remembered consent, or an interaction): written one after another by oidc-provider as it
 * answers, sent together instead. At a device approval's resume (device_resume), the device code's
 * approval and the session (its renewed id, which the approval names: expiresWithSession) go
 * together the same way: a store failure between them left an approval naming a session never
 * written, and the device's poll was refused (sixth blips pass, test/e2e/blips-6.test.ts).
 */
const DEFERRING_ROUTES = new Set(['token', 'authorization', 'resume', 'device_resume']);
export function deferringRequest(): object | undefined {
  const ctx = engineRequest();
  const route = ctx?.oidc?.route;
  return route !== undefined && DEFERRING_ROUTES.has(route) ? ctx : undefined;
}


/** What `request` holds back. */
export function deferredOf(request: object): Deferred {
  return ((request as Holding)[DEFERRED] ??= { consumptions: [], writes: [] });
}

/**
 * Before the request in progress reads, consumes or deletes anything more: what it held back.
 * Undefined when it held nothing back (no promise to wait for).
 *
 * Before a read (`reading`: a record's model and id, or '' for an index), consumptions alone are
 * kept back: the request reads nothing of them (only its writes, and a record it consumed itself),
 * so they go with the rest as the request settles. A refusal between (a device code's `resource`,
 * found wrong after the engine loads the grant) then leaves them unsent (forgoConsumption).
 */
export function settleFirst(reading?: { readonly model: string; readonly id: string }): Promise<unknown> | undefined {
  const request = deferringRequest();
  if (!request) return undefined;
  if (reading) {
    const deferred = (request as Holding)[DEFERRED];
    if (!deferred || (!deferred.writes.length && !deferred.consumptions.some(({ adapter, id }) => adapter.modelName === reading.model && id === reading.id))) return undefined;
  }
  return settleRequest(request);
}

/**
 * A token request refused before it issued anything: the consumption of its code or device code
 * (a record of `models`) that it still holds back is dropped, not sent, so the code stays unspent
 * for the client's next request. Only while the request holds back no write at all (so nothing it
 * issued can be left without the consumption that must go with it) and has sent nothing yet (a
 * read in between sends what was held back: then the code was spent as before). Whether a refusal
 * may leave the code unspent is the caller's to decide (provider/patches/deferred-consumption.ts).
 * True when a consumption was dropped.
 */
export function forgoConsumption(request: object, models: ReadonlySet<string>): boolean {
  const deferred = (request as Holding)[DEFERRED];
  if (!deferred || deferred.writes.length || !deferred.consumptions.length) return false;
  if (!deferred.consumptions.every(({ adapter }) => models.has(adapter.modelName))) return false;
  deferred.consumptions.length = 0;
  return true;
}

/**
 * A token request that failed on our side (answered 5xx: the store away or behind, a signing key
 * revoked with no ring yet to replace it, a bug): what it still holds back is dropped, not sent, so
 * its code or refresh token stays unspent and nothing it made exists. What a read in between sent
 * is sent already. True when anything was dropped.
 */
export function forgoRequest(request: object): boolean {
  const deferred = (request as Holding)[DEFERRED];
  if (!deferred) return false;
  (request as Holding)[DEFERRED] = undefined;
  return deferred.consumptions.length > 0 || deferred.writes.length > 0;
}

/**
 * Sends what a request held back (the consumption of a token request's code or refresh token, and
 * the records it wrote) in one tick, so one round trip, and then judges the consumption as
 * consume() would have. Throws invalid_grant when the request lost (a replay or a code or token
 * that is gone: nothing it made may then be answered); a store failure throws as it would have.
 * Called before the answer leaves (provider/patches/deferred-consumption.ts) and before the
 * request consumes, deletes or reads anything more from the store (a read: see settleFirst).
 * Undefined when the request held nothing back.
 */
export function settleRequest(request: object): Promise<unknown> | undefined {
  const deferred = (request as Holding)[DEFERRED];
  if (!deferred) return undefined;
  // Not `delete`: the request keeps its shape.
  (request as Holding)[DEFERRED] = undefined;
  const { consumptions, writes } = deferred;
  const outcomes = consumptions.map(({ adapter, id, at }) => adapter.consumeRecord(id, at));
  const started = writes.length === 1 ? writes[0]!.write() : Promise.all(writes.map(({ write }) => write()));
  const written = writes.some(({ model }) => model === 'Session') ? started.then((landed) => sessionLanded(writes, landed)) : started;
  // A request that consumed nothing (client_credentials) only waits for its writes.
  return outcomes.length ? judged(consumptions, Promise.all(outcomes), written, writes) : written;
}

/**
 * Throws SessionEnded when the request's session write was refused (the session had been ended),
 * once the codes and tokens it made are deleted; its grant and interaction stay (a grant kept after
 * sign-out, offline access, may have been saved again: its revocation is the ending's to decide).
 */
async function sessionLanded(writes: Deferred['writes'], landed: unknown): Promise<void> {
  const results = writes.length === 1 ? [landed] : (landed as unknown[]);
  if (!writes.some(({ model }, at) => model === 'Session' && results[at] === false)) return;
  const made = writes.filter(({ model }) => GRANTABLE.has(model)).map(({ key }) => key);
  if (made.length) await writes[0]!.kv.del(made);
  throw new SessionEnded('the session ended while this request was answered');
}

/** The consumptions' outcomes, once every write is done too; what the request wrote goes with a lost one. */
async function judged(consumptions: Deferred['consumptions'], outcomes: Promise<ConsumeOutcome[]>, written: Promise<unknown>, writes: Deferred['writes']) {
  const [results] = await Promise.all([outcomes, written]);
  const keys = writes.map(({ key }) => key);
  for (const [index, { adapter, id }] of consumptions.entries()) await adapter.consumed(id, results[index]!, keys);
}

