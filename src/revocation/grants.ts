/**
 * Revoking grants from outside a protocol request: `latchkey grants revoke`, a person disabled, a
 * client deleted, a person withdrawing an app's access on the account page (which lists their grants
 * from here), and (for whoever builds them) sign-out with revocation or an admin page. Revoking a grant
 * deletes its stored artifacts (refresh tokens, opaque access tokens, codes) and the grant
 * itself, and puts it on the revocation list so that its JWT access tokens stop working too.
 *
 * oidc-provider's own revocations (refresh token reuse, code replay, end_session, the revocation
 * endpoint) reach the list through the adapter's revokeByGrantId hook, set up in provider.ts.
 */
import { adapterFactory } from '../store/adapter.js';
import { AdapterIndexes, type GrantOwner } from '../store/adapter-indexes.js';
import type { Kv } from '../store/kv.js';
import type { RevocationList } from './list.js';
import { epochSeconds, untilSecond } from '../clock.js';

/** The parts of oidc-provider's stored Grant that say who allowed what. */
interface StoredGrant {
  readonly accountId?: string;
  readonly clientId?: string;
  readonly openid?: { scope?: string; claims?: string[] };
  readonly resources?: Record<string, string>;
  readonly iat?: number;
}

/** The remembered consents (provider/consents.ts), as far as ending what a person granted needs them. */
export interface ForgetsConsents {
  forget(accountId: string, clientId: string): Promise<void>;
  forgetAccount(accountId: string, alsoTo?: Iterable<string>): Promise<void>;
}

/** Where a person's cutoff for one client is kept (accounts.ts Accounts.endClientGrants: revocation/ does not import accounts/). */
export interface EndsClientGrants {
  endClientGrants(sub: string, clientId: string, endings: RevocationList, keep: number): Promise<number | undefined>;
}

/** What a grant or a remembered consent holds: OpenID scopes, claims given by name, each API's scopes. */
export interface HeldByGrant {
  readonly openid: string[];
  readonly claims: string[];
  readonly resources: Record<string, string[]>;
}

const words = (scope: unknown) => (typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);

/** A grant's (or consent's) stored OpenID scope, claims and resources, as HeldByGrant. */
export function heldBy(scope: unknown, claims: unknown, resources: unknown): HeldByGrant {
  return {
    openid: words(scope),
    claims: Array.isArray(claims) ? claims.filter((claim): claim is string => typeof claim === 'string') : [],
    resources: Object.fromEntries(Object.entries(resources && typeof resources === 'object' ? resources : {}).map(([indicator, scope]) => [indicator, words(scope)])),
  };
}

export interface GrantSummary {
  readonly grantId: string;
  readonly accountId: string;
  readonly clientId: string;
  readonly scopes: string[];
  /** What it holds, by kind: the claims given by name (the claims parameter), each API's scopes. */
  readonly held: HeldByGrant;
  /** Epoch seconds the grant was made. */
  readonly iat: number | undefined;
}

/**
 * What a session's ending does to each grant it made (accounts/sessions.ts, patches/logout-order.ts):
 * one that does not outlive sign-out is revoked; one that does (offline access) is kept, but the
 * access tokens bound to the session end with it.
 */
export interface SessionGrantEndings {
  revoke(grantId: string): Promise<unknown>;
  endSessionBound(grantId: string): Promise<unknown>;
}

export class GrantRevocation implements SessionGrantEndings {
  readonly #indexes: AdapterIndexes;
  readonly #list: RevocationList;
  readonly #adapter: ReturnType<typeof adapterFactory>;
  /** Deletes a grant's artifacts without a list entry per grant (a client entry covers them). */
  readonly #unlisted: ReturnType<typeof adapterFactory>;

  constructor(kv: Kv, list: RevocationList) {
    this.#indexes = new AdapterIndexes(kv);
    this.#list = list;
    this.#adapter = adapterFactory(kv, 0, { grantRevoked: (grantId) => list.revokeGrant(grantId), grantEnded: (grantId) => list.endGrant(grantId) });
    this.#unlisted = adapterFactory(kv);
  }

  /** Revokes one grant: its artifacts, the grant, and its JWT access tokens. False if the grant was gone already. */
  revoke(grantId: string): Promise<boolean> {
    return this.#revoke(grantId, this.#adapter);
  }

  /**
   * A session ended (signed out) that keeps this grant, which holds offline access: the access
   * tokens issued in the session without offline access are bound to it (the engine's
   * expiresWithSession) and end with it. An opaque one does by itself (the engine checks its session
   * when it finds it); a JWT is verified alone, so every JWT access token of the grant issued up to
   * now goes on the revocation list. The grant, its refresh tokens and their opaque access tokens
   * stay: offline access outlives the sign-out, and the app refreshes for a JWT it lost this way.
   */
  async endSessionBound(grantId: string): Promise<void> {
    await this.#list.revokeGrant(grantId);
  }

  /**
   * What session records held as they ended (the store's sessionEnded hook): whoever ended the
   * session ended the grants of the session as they read it, and a grant saved into it after that
   * read (a consent finishing at another instance), or into a renewal of it the ending followed,
   * would outlive the ending with its JWT access tokens. Each grant that does not outlive sign-out
   * and is still there is revoked (one revoked already is gone: nothing is listed twice). One that
   * does (offline access) is left to the ending's own rule (a sign-out ends its session-bound tokens,
   * the account page's keeps them; credential endings revoke it whole afterwards:
   * SessionCredentials.revokeGrantsMadeWith).
   */
  async endHeld(apps: readonly { grantId?: unknown; persistsLogout?: unknown }[]): Promise<void> {
    // A grant any record says outlives sign-out (two tabs, one after an offline_access consent) is not revoked.
    const persisting = new Set(apps.filter(({ persistsLogout }) => persistsLogout === true).map(({ grantId }) => grantId));
    const ended = new Set(apps.filter(({ grantId }) => typeof grantId === 'string' && !persisting.has(grantId)).map(({ grantId }) => grantId as string));
    await Promise.all(
      [...ended].map(async (grantId) => {
        if ((await this.#adapter('Grant').find(grantId)) !== undefined) await this.#adapter('Grant').destroy(grantId);
      }),
    );
  }

  /**
   * A revocation of one grant that first forgets the consent it was made under, for when what made
   * it is taken away (a credential removed or reset, an upstream removed): the consent may be a
   * thief's, given in the person's name to an app of theirs, which would otherwise get the person's
   * codes silently at their next sign-in.
   */
  revokingWithConsent(consents: Pick<ForgetsConsents, 'forget'>): (grantId: string) => Promise<boolean> {
    return async (grantId) => {
      const { accountId, clientId } = ((await this.#adapter('Grant').find(grantId)) ?? {}) as StoredGrant;
      if (accountId && clientId) await consents.forget(accountId, clientId);
      return this.revoke(grantId);
    };
  }

  /**
   * Forgets every consent a person gave, those of their grants included (given before the index
   * held them): before their grants are revoked, so that none is made again from one.
   */
  async forgetConsentsOf(accountId: string, consents: ForgetsConsents): Promise<void> {
    await consents.forgetAccount(accountId, (await this.ofAccount(accountId)).map((grant) => grant.clientId));
  }

  async #revoke(grantId: string, adapter: ReturnType<typeof adapterFactory>): Promise<boolean> {
    const existed = (await adapter('Grant').find(grantId)) !== undefined;
    // Destroying a grant revokes its artifacts first (one set of keys per grant, whatever the model)
    // and, with the list's hook, its JWT access tokens: a grant that is gone may still have live
    // ones, so that is done regardless (store/adapter.ts).
    await adapter('Grant').destroy(grantId);
    return existed;
  }

  /**
   * A client was deleted (the store's clientRemoved hook, whichever way it was removed): every
   * access token issued to it up to now goes on the list as one client entry (JWTs of people and
   * its own client_credentials JWTs; introspection checks opaque ones against it too), then every
   * grant it holds is deleted with its refresh tokens, opaque access tokens and codes.
   */
  async clientRemoved(clientId: string): Promise<void> {
    await this.#list.revokeClient(clientId);
    await this.#revokeAll({ clientId }, this.#unlisted);
  }

  /** The live grants a person has given: to which client, what scopes (OpenID and APIs'), since when. */
  ofAccount(accountId: string): Promise<GrantSummary[]> {
    return this.#summaries({ accountId });
  }

  /** The live grants a client holds, from whom. */
  ofClient(clientId: string): Promise<GrantSummary[]> {
    return this.#summaries({ clientId });
  }

  async #summaries(owner: GrantOwner): Promise<GrantSummary[]> {
    const grantIds = await this.#indexes.grantIds(owner);
    const grants = await Promise.all(grantIds.map(async (grantId) => ({ grantId, payload: (await this.#adapter('Grant').find(grantId)) as StoredGrant | undefined })));
    return grants.flatMap(({ grantId, payload }) => {
      const { accountId, clientId } = payload ?? {};
      if (!accountId || !clientId || ('accountId' in owner ? accountId !== owner.accountId : clientId !== owner.clientId)) return [];
      const scopes = [payload!.openid?.scope ?? '', ...Object.values(payload!.resources ?? {})].join(' ').split(' ').filter(Boolean);
      return [{ grantId, accountId, clientId, scopes, held: heldBy(payload!.openid?.scope, payload!.openid?.claims, payload!.resources), iat: payload!.iat }];
    });
  }

  /** Revokes every grant a person has given one client. Returns how many there were. */
  async revokeAccountClient(accountId: string, clientId: string): Promise<number> {
    const grants = (await this.ofAccount(accountId)).filter((grant) => grant.clientId === clientId);
    await Promise.all(grants.map((grant) => this.revoke(grant.grantId)));
    return grants.length;
  }

  /**
   * A person withdraws one client's access (the account page), or an operator does for them
   * (`latchkey grants revoke --user --client`): first one cutoff ends every token, code, refresh
   * token and consent of theirs for the client up to now (a `withdrawn` entry on the list and feed,
   * and the account's clientGrantsEndedAt, `cutoff`), then the consent is forgotten and the grants
   * revoked one by one, so that a failure half-way leaves none of them working. Answers once the
   * cutoff's second has passed (what the person gives the app afterwards is of a later second), with
   * how many grants there were and whether there was such a person.
   */
  async withdraw(accountId: string, clientId: string, cutoff: EndsClientGrants, consents: Pick<ForgetsConsents, 'forget'>): Promise<{ revoked: number; person: boolean }> {
    const endedAt = await cutoff.endClientGrants(accountId, clientId, this.#list, await this.#list.grantLifetime());
    await consents.forget(accountId, clientId);
    const revoked = await this.revokeAccountClient(accountId, clientId);
    if (endedAt !== undefined) await untilSecond(Math.max(endedAt, epochSeconds()) + 1);
    return { revoked, person: endedAt !== undefined };
  }

  /** Revokes every grant a person has given (to any client). Returns how many there were. */
  async revokeAccount(accountId: string): Promise<number> {
    return this.#revokeAll({ accountId });
  }

  /**
   * revokeAccount after forgetConsentsOf: what a person granted ends, consents first, so that no
   * grant is made again from one in between (a disabled person).
   */
  async revokeAccountWithConsents(accountId: string, consents: ForgetsConsents): Promise<number> {
    await this.forgetConsentsOf(accountId, consents);
    return this.revokeAccount(accountId);
  }

  /** Revokes every grant a client holds (from any person). Returns how many there were. */
  async revokeClient(clientId: string): Promise<number> {
    return this.#revokeAll({ clientId });
  }

  async #revokeAll(owner: GrantOwner, adapter = this.#adapter): Promise<number> {
    const grantIds = await this.#indexes.grantIds(owner);
    const existed = await Promise.all(grantIds.map((grantId) => this.#revoke(grantId, adapter)));
    await this.#indexes.forgetGrants(owner);
    return existed.filter(Boolean).length;
  }
}
