/**
 * Removing an upstream provider (`latchkey upstreams remove`, DELETE /admin/upstreams/{id}). The
 * operator withdrew the trust in it, so what it vouched for ends, as when a person is disabled but
 * for the sessions it signed in only: sign-in through it stops at once (its callback and logout
 * endpoints answer as for an unknown upstream), and every live session it signed in ends: those
 * whose recorded credentials (SessionCredentials) name one of its links, so also a session signed in
 * again another way since (what was granted in between rests on it), and those whose last sign-in
 * went through it (`amr` fed; all a session signed in before those records has). Each grant the
 * session made is revoked with its tokens, offline access included
 * (refresh tokens, opaque and JWT access tokens), with back-channel logout to its apps. And the
 * grants made or extended in a session a sign-in through it signed in, whose session is gone
 * (offline access kept after signing out, or after the session expired), are revoked the same way:
 * found among the grants of the people linked through it (UpstreamLinks.peopleLinkedTo) by the
 * credentials recorded against each grant (SessionCredentials.recordGrant); their grants made with
 * other sign-ins only (password, passkey) stay. A grant made before those records existed has none
 * and is not found (it lasts until it expires, ttl.grant). The
 * accounts it made stay, with their links, so re-adding the same provider under the same id (how
 * its client secret is changed) finds the same people; they sign in again. A link names the issuer
 * that vouched for it (those made by an earlier release are given it here, before the upstream
 * goes), so another provider added under the id finds none of them (accounts/links.ts).
 *
 * The ending runs before the upstream goes (should it fail half-way, the upstream is still there and
 * removing it again finishes the job) and once more after, for sign-ins that completed meanwhile.
 * That second one has nothing to be sent again for (the upstream is gone: "no upstream"), so it is
 * kept as owed in the store before the upstream goes (accounts/owed-endings.ts), and the sweep
 * finishes it should the removal be cut off (twenty-ninth endings pass, for operators).
 */
import { UpstreamError, type Upstreams } from './registry.js';
import type { FederatedSessions } from './sessions.js';
import { inBatches } from '../store/kv.js';

/** The parts of oidc-provider's Session read here. */
interface SignedInSession {
  readonly accountId?: string;
  readonly amr?: string[];
}

export interface UpstreamEndingOptions<S extends SignedInSession> {
  readonly federated: FederatedSessions;
  readonly findSession: (uid: string) => Promise<S | undefined>;
  /**
   * Which upstream links ("<upstream>:<upstream sub>") the session's sign-ins used
   * (SessionCredentials.of); undefined for none, or a session signed in before these were recorded.
   */
  readonly linksOf: (uid: string) => Promise<readonly string[] | undefined>;
  /** Signs the session out with every grant it made (AccountSessions.endWithEveryGrant). */
  readonly endSession: (session: S) => Promise<void>;
  /** The people linked through the upstream `id`, now or once (UpstreamLinks.peopleLinkedTo). */
  readonly peopleLinked: (id: string) => Promise<readonly string[]>;
  /**
   * Ends the person's sessions signed in through the upstream `id` and revokes their grants made in
   * one, live or gone (AccountSessions.endSignedInWith with throughUpstream(id)); how many sessions
   * ended.
   */
  readonly endSignedInThrough: (sub: string, id: string) => Promise<number>;
}

/** People whose grants are looked at at once. */
const PEOPLE_BATCH = 16;

/**
 * What removing an upstream ends, run on what is there now (the upstream there or gone): the
 * sessions it signed in, found by its index of them, and what its people were granted through it,
 * their sessions live or gone. How many sessions ended.
 */
export function endingsThrough<S extends SignedInSession>({ federated, findSession, linksOf, endSession, peopleLinked, endSignedInThrough }: UpstreamEndingOptions<S>): (id: string) => Promise<number> {
  const endIndexed = async (id: string) => {
    let ended = 0;
    for (const uid of await federated.sessionsThrough(id)) {
      const [session, links] = await Promise.all([findSession(uid), linksOf(uid)]);
      // The federated record names the session's last upstream, so `amr` fed means this one.
      const through = links?.some((link) => link.startsWith(`${id}:`)) || session?.amr?.includes('fed');
      if (session?.accountId && through) {
        await endSession(session);
        ended += 1;
      }
      await federated.forget(uid);
    }
    return ended;
  };
  const endGrants = async (id: string) => {
    const people = await peopleLinked(id);
    const ended = await inBatches(people, PEOPLE_BATCH, (sub) => endSignedInThrough(sub, id));
    return ended.reduce((sum, count) => sum + count, 0);
  };
  return async (id) => (await endIndexed(id)) + (await endGrants(id));
}

export interface UpstreamRemovalOptions {
  readonly upstreams: Upstreams;
  /** What the removal ends (endingsThrough). */
  readonly endThrough: (id: string) => Promise<number>;
  /**
   * Keeps the second ending owed until done, and drops it (OwedEndings.owe, drop); a failure to
   * keep it fails the removal with the upstream still there.
   */
  readonly owed: { owe(ending: { readonly upstream: string }): Promise<string | undefined>; drop(member: string | undefined): Promise<void> };
  /**
   * Writes the upstream's issuer into its links that record none (UpstreamLinks.recordIssuer), so
   * that a provider added again under the id with another issuer does not follow them.
   */
  readonly recordIssuer: (id: string, issuer: string) => Promise<void>;
}

/** Removes the upstream and ends the sessions it signed in; how many ended. UpstreamError when there is no such upstream. */
export async function removeUpstream(id: string, { upstreams, endThrough, owed, recordIssuer }: UpstreamRemovalOptions): Promise<number> {
  if (!(await upstreams.has(id))) throw new UpstreamError(`no upstream "${id}"`);
  const before = await endThrough(id);
  const member = await owed.owe({ upstream: id });
  const issuer = (await upstreams.list()).find((upstream) => upstream.id === id)?.issuer;
  if (issuer !== undefined) await recordIssuer(id, issuer);
  await upstreams.remove(id);
  const after = await endThrough(id);
  await owed.drop(member);
  return before + after;
}
