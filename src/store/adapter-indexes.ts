/**
 * The adapter's indexes, for modules that act on many records at once (listing clients, revoking
 * every grant of a person or a client, ending a person's sessions): only store/ knows key names.
 */
import type { AdapterPayload } from 'oidc-provider';
import type { Kv } from './kv.js';
import {
  OIDC_CLIENTS_KEY,
  OIDC_INITIAL_ACCESS_TOKENS_KEY,
  oidcAccountGrantsEndsKey,
  oidcAccountGrantsKey,
  oidcAccountSessionsEndsKey,
  oidcAccountSessionsKey,
  oidcClientGrantsEndsKey,
  oidcClientGrantsKey,
  oidcRecordKey,
  oidcRegistrationTokensKey,
} from './keys.js';
import { endListed } from './listed-records.js';
import { idOfRef, isHandle, recordKey, refOf, storedClient } from './record-keys.js';

/** Whose grants: a person's (to any client) or a client's (from any person). */
export type GrantOwner = { readonly accountId: string } | { readonly clientId: string };

/** The indexes over a store (module comment above). */
export class AdapterIndexes {
  constructor(private readonly kv: Kv) {}

  /** Ids of every stored client. */
  clientIds(): Promise<string[]> {
    return this.kv.members(OIDC_CLIENTS_KEY);
  }

  /**
   * Keeps every stored client whose secret the release before kept in clear by its digest instead
   * (at start): each only while it still holds what was read (Kv.replaceRecord), so a change made
   * meanwhile is never written over; such a client is left to its next write. How many were changed.
   */
  async digestClientSecrets(): Promise<number> {
    const { replaceRecord } = this.kv;
    if (!replaceRecord) return 0;
    let changed = 0;
    for (const id of await this.clientIds()) {
      const key = recordKey('Client', id);
      const stored = await this.kv.getRecord(key);
      if (!stored || stored.consumed !== undefined || !stored.payload.includes('"client_secret"')) continue;
      const payload = JSON.parse(stored.payload) as AdapterPayload;
      if (typeof payload.client_secret !== 'string') continue;
      if (await replaceRecord.call(this.kv, key, stored.payload, JSON.stringify(storedClient(payload)), undefined)) changed++;
    }
    return changed;
  }

  /** Ids of the grants of a person or a client (some may have expired or been revoked since). */
  async grantIds(owner: GrantOwner): Promise<string[]> {
    const [live, plain] = await Promise.all([this.kv.liveMembers(grantsEndsKey(owner)), this.kv.members(grantsKey(owner))]);
    return [...new Set([...live, ...plain])];
  }

  /** Drops the index of a person's or a client's grants (once they are revoked). */
  async forgetGrants(owner: GrantOwner): Promise<void> {
    await this.kv.del([grantsEndsKey(owner), grantsKey(owner)]);
  }

  /**
   * Ids of a person's sessions, to find them by (some may have ended otherwise since): the index
   * holds their digests, given as handles (HANDLE), or the ids of ones kept by the release before.
   */
  async sessionIds(accountId: string): Promise<string[]> {
    // The live members of the expiring set, and the plain set of the release before (until it expires).
    const [live, plain] = await Promise.all([this.kv.liveMembers(oidcAccountSessionsEndsKey(accountId)), this.kv.members(oidcAccountSessionsKey(accountId))]);
    return [...new Set([...live, ...plain])].map(idOfRef);
  }

  /** Drops one session (its id or handle: sessionIds) from a person's index, and from the plain set of the release before (one round trip). */
  async forgetSession(accountId: string, sessionId: string): Promise<void> {
    const key = oidcAccountSessionsKey(accountId);
    const ref = refOf(sessionId);
    const forgotten = [this.kv.removeExpiring(oidcAccountSessionsEndsKey(accountId), ref), this.kv.removeFromSet(key, ref)];
    // An id kept by the release before (not a handle) is listed by its id there too.
    if (!isHandle(sessionId)) forgotten.push(this.kv.removeFromSet(key, sessionId));
    await Promise.all(forgotten);
  }

  /**
   * Ends every registration access token of a client (its secret was rotated: RFC 7592 would
   * otherwise show the new secret to whoever holds an old token). Returns how many there were.
   */
  endRegistrationTokens(clientId: string): Promise<number> {
    return endListed(this.kv, oidcRegistrationTokensKey(clientId));
  }

  /**
   * Ends the client's registration access tokens but the one `jti` (just saved, to be handed over),
   * and takes them out of its index: a secret rotation's (registration/clients.ts rotateSecret).
   */
  async endRegistrationTokensBut(clientId: string, jti: string): Promise<void> {
    const index = oidcRegistrationTokensKey(clientId);
    const keep = recordKey('RegistrationAccessToken', jti);
    const keys = (await this.kv.members(index)).filter((key) => key !== keep);
    if (!keys.length) return;
    await this.kv.del(keys);
    await Promise.all(keys.map((key) => this.kv.removeFromSet(index, key)));
  }

  /**
   * Whether the client holds registration access tokens: it registered itself (RFC 7591) and no
   * operator has written it since (an operator's write ends them, registration/clients.ts update).
   */
  async managesItself(clientId: string): Promise<boolean> {
    return (await this.kv.members(oidcRegistrationTokensKey(clientId))).length > 0;
  }

  /**
   * The initial access tokens made since this index exists (some may have expired or been used
   * since), each by its digest (`sha256:…`), or by its value for one made before tokens were kept
   * under their digest.
   */
  initialAccessTokenIds(): Promise<string[]> {
    return this.kv.members(OIDC_INITIAL_ACCESS_TOKENS_KEY);
  }

  /** The record of the initial access token of this digest (initialAccessTokenIds), if it is still there. */
  async initialAccessTokenByDigest(digest: string): Promise<AdapterPayload | undefined> {
    const record = await this.kv.getRecord(oidcRecordKey('InitialAccessToken', digest));
    return record ? (JSON.parse(record.payload) as AdapterPayload) : undefined;
  }

  /** Ends the initial access token of this digest: its record and its index entry. */
  async endInitialAccessTokenByDigest(digest: string): Promise<void> {
    await this.kv.del([oidcRecordKey('InitialAccessToken', digest)]);
    await this.kv.removeFromSet(OIDC_INITIAL_ACCESS_TOKENS_KEY, digest);
  }

  /** Drops an initial access token's entry (its digest, or value) from the index (it expired, was used or revoked). */
  async forgetInitialAccessToken(entry: string): Promise<void> {
    await this.kv.removeFromSet(OIDC_INITIAL_ACCESS_TOKENS_KEY, entry);
  }

  /** Drops a person's whole session index (the sessions themselves stay). */
  async forgetSessions(accountId: string): Promise<void> {
    await this.kv.del([oidcAccountSessionsEndsKey(accountId), oidcAccountSessionsKey(accountId)]);
  }
}

const grantsKey = (owner: GrantOwner) => ('accountId' in owner ? oidcAccountGrantsKey(owner.accountId) : oidcClientGrantsKey(owner.clientId));
const grantsEndsKey = (owner: GrantOwner) => ('accountId' in owner ? oidcAccountGrantsEndsKey(owner.accountId) : oidcClientGrantsEndsKey(owner.clientId));

