/**
 * Removing an upstream provider (`latchkey upstreams remove`, DELETE /admin/upstreams/{id}). The
 * operator withdrew the trust in it, so what it vouched for ends, as when a person is disabled but
 * for the sessions it signed in only: sign-in through it stops at once (its callback and logout
 * endpoints answer as for an unknown upstream), and every live session whose last sign-in went
 * through it ends, each grant the session made revoked with its tokens, offline access included
 * (refresh tokens, opaque and JWT access tokens), with back-channel logout to its apps. The
 * accounts it made stay, with their links, so re-adding the same provider under the same id (how
 * its client secret is changed) finds the same people; they sign in again.
 */
import { UpstreamError, type Upstreams } from './registry.js';
import type { FederatedSessions } from './sessions.js';

/** The parts of oidc-provider's Session read here. */
interface SignedInSession {
  readonly accountId?: string;
  readonly amr?: string[];
}

export interface UpstreamRemovalOptions<S extends SignedInSession> {
  readonly upstreams: Upstreams;
  readonly federated: FederatedSessions;
  readonly findSession: (uid: string) => Promise<S | undefined>;
  /** Signs the session out with every grant it made (AccountSessions.signOutSession, everyGrant). */
  readonly endSession: (session: S) => Promise<void>;
}

/** Removes the upstream and ends the sessions it signed in; how many ended. UpstreamError when there is no such upstream. */
export async function removeUpstream<S extends SignedInSession>(id: string, { upstreams, federated, findSession, endSession }: UpstreamRemovalOptions<S>): Promise<number> {
  if (!(await upstreams.has(id))) throw new UpstreamError(`no upstream "${id}"`);
  const endAll = async () => {
    let ended = 0;
    for (const uid of await federated.sessionsThrough(id)) {
      const session = await findSession(uid);
      // A session whose person signed in again another way since (a password) no longer rests on it.
      if (session?.accountId && session.amr?.includes('fed')) {
        await endSession(session);
        ended += 1;
      }
      await federated.forget(uid);
    }
    return ended;
  };
  // The sessions first: should ending them fail half-way, the upstream is still there and removing it
  // again finishes the job. Then once more for sign-ins that completed meanwhile.
  const before = await endAll();
  await upstreams.remove(id);
  return before + (await endAll());
}
