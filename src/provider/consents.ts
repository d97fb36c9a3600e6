/**
 * A person's consent to a client, remembered per user and client beyond any one session.
 *
 * oidc-provider keeps consent in a Grant tied to the sign-in session, and signing out revokes
 * that grant with its tokens (unless offline access was granted). What the person allowed is
 * worth keeping longer than the session: it is recorded here as scopes, and a later sign-in
 * starts a fresh grant with them, so the same request skips the consent screen and only new
 * permissions are asked for.
 *
 * Layout: consent:<sub>:<client_id> → JSON (the scopes, claims and APIs' scopes allowed; when; in
 * which session, signed in with which credentials), expiring ttl.grant after the last decision (as
 * ttl.grant is now: one kept for a longer lifetime before a restart is not used past it);
 * consents:<sub> → set of those client ids (for the account page's list of apps), expiring with the
 * last of them; consent-holders:<client_id> → set of the subs who consented to the client, so that
 * deleting the client forgets them all (a client made again with the id must ask again), expiring
 * with the last of them. Consents remembered before the set existed are not in it; their apps are still
 * listed while their grants live (see accounts/page/apps-section.ts).
 */
import type { Grant, KoaContextWithOIDC } from 'oidc-provider';
import type { SessionCredential } from '../accounts/session-credentials.js';
import { FIRST_PARTY_CLIENT_IDS } from '../http/first-party-sign-in.js';
import { heldBy, type HeldByGrant } from '../revocation/grants.js';
import { claimsOfScopes } from './scope-claims.js';
import type { Kv } from '../store/kv.js';
import { consentHoldersKey, consentKey, consentsKey } from '../store/keys.js';
import { epochSeconds } from '../clock.js';

/**
 * Whether an API named in a grant given at `givenAt` (epoch seconds) was removed and added again
 * since: what the person granted was for the API that was removed (apis/apis.ts predates).
 */
export type StaleResource = (identifier: string, givenAt: number | undefined) => Promise<boolean>;

/**
 * Whether a stored grant, or a remembered consent (`iat` its time), ended with its person or its
 * client (accounts.ts grantsEndedAt, endedAt; the client's delegated mark, revocation/list.ts): given
 * at or before their cutoff. `ctx`: the authorization request, whose session check read the account already.
 */
export type GrantEnded = (grant: { readonly accountId: string; readonly clientId: string; readonly iat: number | undefined; readonly jti?: string }, ctx: object, fresh?: boolean) => Promise<boolean>;

interface Remembered {
  readonly scope: string;
  /** Epoch seconds of the person's last decision (absent in consents remembered before it was kept). */
  readonly at?: number;
  readonly claims: string[];
  readonly resources: Record<string, string>;
  /** The uid of the session the person decided in (absent in consents remembered before it was kept). */
  readonly session?: string;
  /** Which credentials signed that session in (accounts/session-credentials.ts), as recorded then. */
  readonly by?: SessionCredential;
}

/**
 * Whether something of a client id given at `givenAt` (epoch seconds; anything else counts as before)
 * predates the client as registered now (`createdAt`, its client_id_issued_at): it was given to a
 * client deleted since, whose id an operator gave another (registration/clients.ts add).
 */
export function predatesClient(createdAt: number | undefined, givenAt: unknown): boolean {
  return typeof createdAt === 'number' && (typeof givenAt !== 'number' || givenAt < createdAt);
}

/** What a person allowed an app, as the account page lists it. */
export interface RememberedConsent {
  readonly clientId: string;
  /** The OpenID scopes and every API's scopes. */
  readonly scopes: string[];
  /** The same by kind, with the claims allowed by name. */
  readonly held: HeldByGrant;
  readonly at: number | undefined;
}

/**
 * Adds to `grant` the claims the request asks for by name (the claims parameter) that its OpenID
 * scopes give already; whether it added any. The person allowed the app those claims when they
 * allowed the scope: `prompt=none` asking `email` by name after the `email` scope was allowed was
 * consent_required, and without it the consent page asked again for what it had listed, because the
 * engine's consent check (op_claims_missing) counts only claims given by name. They are given by name
 * here, not just counted as given, since the engine releases a claim asked by name only if the grant
 * names it (filter_claims.js): a client whose ID tokens leave scope claims out gets it where it asked.
 * A claim the person refused (rejected) stays refused.
 */
function withClaimsOfItsScopes(grant: Grant, ctx: KoaContextWithOIDC): boolean {
  const held = new Set(grant.getOIDCClaimsEncountered());
  // openid's claims are every client's, never consented.
  const byScope = claimsOfScopes(grant.getOIDCScope().split(' ').filter((scope) => scope !== 'openid'));
  const added = [...ctx.oidc.requestParamClaims].filter((claim) => byScope.has(claim) && !held.has(claim));
  if (added.length) grant.addOIDCClaims(added);
  return added.length > 0;
}

export class Consents {
  constructor(
    private readonly kv: Kv,
    private readonly ttl: number,
    private readonly stale: StaleResource,
    private readonly ended: GrantEnded = async () => false,
    /** Which credentials signed a session in (SessionCredentials.of), recorded with a consent given in it. */
    private readonly signedInWith: (sessionUid: string) => Promise<SessionCredential | undefined> = async () => undefined,
  ) {}

  /** Whether a consent was remembered longer ago than ttl.grant is now (kept for a longer one before a restart). */
  #outlived(remembered: Remembered): boolean {
    return typeof remembered.at === 'number' && remembered.at + this.ttl <= epochSeconds();
  }

  /** Whether any API `resources` names was removed and added again since `givenAt`. */
  async #anyStale(resources: Iterable<string>, givenAt: number | undefined): Promise<boolean> {
    return (await Promise.all([...resources].map((identifier) => this.stale(identifier, givenAt)))).some(Boolean);
  }

  /**
   * Whether an API of `resources` was removed and added again since `givenAt` (epoch seconds): a
   * consent page of a sign-in begun before (interactions/consent.ts) was the removed API's page.
   */
  apisReplacedSince(resources: Iterable<string>, givenAt: number | undefined): Promise<boolean> {
    return this.#anyStale(resources, givenAt);
  }

  /**
   * Whether a stored grant ended with its person or its client (given at or before their cutoff): a
   * consent step confirming more on it (interactions/consent.ts) must not take it up again, nor
   * remember what it held as given now. `ctx`: the request.
   */
  grantEnded(grant: Grant, ctx: object, fresh = false): Promise<boolean> {
    return this.ended({ accountId: grant.accountId!, clientId: grant.clientId!, iat: grant.iat, jti: grant.jti }, ctx, fresh);
  }

  /**
   * Remembers what the person allowed the grant's client. `sessionUid`: the session they decided in,
   * whose credentials are recorded with it: removing one of them forgets the consent
   * (forgetGivenWith), which may be a thief's, given in the person's name to an app of theirs.
   */
  async remember(grant: Grant, sessionUid?: string): Promise<void> {
    const resources = Object.fromEntries(
      Object.keys(grant.resources ?? {}).map((indicator) => [indicator, grant.getResourceScope(indicator)]),
    );
    const by = sessionUid === undefined ? undefined : await this.signedInWith(sessionUid);
    const remembered: Remembered = {
      scope: grant.getOIDCScope(),
      at: epochSeconds(),
      claims: grant.getOIDCClaims(),
      resources,
      ...(sessionUid !== undefined && { session: sessionUid }),
      ...(by && { by }),
    };
    await Promise.all([
      this.kv.set(consentKey(grant.accountId!, grant.clientId!), JSON.stringify(remembered), { ttl: this.ttl }),
      this.kv.addToSet(consentsKey(grant.accountId!), grant.clientId!, this.ttl),
      this.kv.addToSet(consentHoldersKey(grant.clientId!), grant.accountId!, this.ttl),
    ]);
  }

  /** The apps a person's remembered consents are for. */
  async rememberedBy(accountId: string): Promise<RememberedConsent[]> {
    const clientIds = await this.kv.members(consentsKey(accountId));
    const found = await Promise.all(clientIds.map(async (clientId) => ({ clientId, json: await this.kv.get(consentKey(accountId, clientId)) })));
    return found.flatMap(({ clientId, json }) => {
      if (!json) return [];
      const remembered = JSON.parse(json) as Remembered;
      if (this.#outlived(remembered)) return [];
      const { scope, at, resources, claims } = remembered;
      const scopes = [scope, ...Object.values(resources)].join(' ').split(' ').filter(Boolean);
      return [{ clientId, scopes, held: heldBy(scope, claims, resources), at }];
    });
  }

  /**
   * Starts reading what a person allowed an app, for loadExistingGrant later in the same request
   * (store/read-ahead.ts); `request` is its Koa context.
   */
  readAhead(accountId: string, clientId: string, request: object): void {
    this.kv.readAhead?.({ strings: [consentKey(accountId, clientId)] }, request);
  }

  /** Forgets what a person allowed an app: its next request asks for consent again. */
  async forget(accountId: string, clientId: string): Promise<void> {
    await Promise.all([this.kv.del([consentKey(accountId, clientId)]), this.kv.removeFromSet(consentsKey(accountId), clientId), this.kv.removeFromSet(consentHoldersKey(clientId), accountId)]);
  }

  /**
   * Forgets the consents a person gave in sessions signed in with a credential taken away (`given`
   * picks it from the credentials recorded with each), but those given in `exceptSession` (the
   * session removing it). Their grants may have ended already (signed out without offline access):
   * the consent would otherwise get the app the person's codes silently at their next sign-in.
   * Consents remembered before their credentials were recorded stay.
   */
  async forgetGivenWith(accountId: string, given: (credential: SessionCredential) => boolean, exceptSession?: string): Promise<void> {
    const clientIds = await this.kv.members(consentsKey(accountId));
    await Promise.all(
      clientIds.map(async (clientId) => {
        const json = await this.kv.get(consentKey(accountId, clientId));
        if (!json) return;
        const { by, session } = JSON.parse(json) as Remembered;
        if (by && session !== exceptSession && given(by)) await this.forget(accountId, clientId);
      }),
    );
  }

  /**
   * Forgets every consent a person gave (an operator revoked their grants: a live session must not
   * make fresh ones from it). `alsoTo`: clients they may have consented to before the index held
   * them (those of their grants).
   */
  async forgetAccount(accountId: string, alsoTo: Iterable<string> = []): Promise<void> {
    const clientIds = new Set([...(await this.kv.members(consentsKey(accountId))), ...alsoTo]);
    await Promise.all([...clientIds].map((clientId) => this.forget(accountId, clientId)));
  }

  /**
   * Forgets every consent to a client (it was deleted: the store's clientRemoved hook; or an operator
   * revoked its grants). A client later made with the same id, by an operator, may be another app:
   * people are asked again. `alsoOf`: people who may have consented before the index held them
   * (those of its grants).
   */
  async forgetClient(clientId: string, alsoOf: Iterable<string> = []): Promise<void> {
    const holders = new Set([...(await this.kv.members(consentHoldersKey(clientId))), ...alsoOf]);
    await Promise.all([...holders].map((accountId) => Promise.all([this.kv.del([consentKey(accountId, clientId)]), this.kv.removeFromSet(consentsKey(accountId), clientId)])));
    await this.kv.del([consentHoldersKey(clientId)]);
  }

  /**
   * oidc-provider's loadExistingGrant: the session's grant for this client when it has one (and
   * it is this person's), else a new grant holding what the person allowed before.
   *
   * Latchkey's own pages (FIRST_PARTY_CLIENT_IDS) are Latchkey itself: signing in to them asks
   * no consent, their grant is implicit, for exactly the OpenID scopes they requested (which
   * the engine has already bounded by their `scope` metadata). Those ids are statically
   * configured clients, and the engine resolves static clients before stored ones: a registered
   * or CLI-added client cannot take one (registration/clients.ts refuses them; dynamic
   * registration picks its own ids; a metadata document's id is a URL).
   */
  async loadExistingGrant(ctx: KoaContextWithOIDC): Promise<Grant | undefined> {
    const { client, session, provider, result } = ctx.oidc;
    if (!client || !session?.accountId) return undefined;
    const named = session.grantIdFor(client.clientId);
    const given = (result?.consent as { grantId?: string } | undefined)?.grantId;
    // A consent page that added to the grant the session named for the app when it began, resumed
    // after the session let go of it (the person signed out of this app only, its offline access
    // kept; another grant put in its place): that grant is not named again. The letting go ended its
    // artifacts bound to this session (opaque access tokens, codes, device codes issued without
    // offline access) only by the engine's comparison with the grant the session names
    // (token_helpers.js checkSessionBinding): named again, each worked again (tenth fresh-eyes
    // endings pass). The session's grant now, or one from what the person allowed, is taken instead.
    const addedTo = (ctx.oidc.entities as { Interaction?: { grantId?: unknown } }).Interaction?.grantId;
    const grantId = given !== undefined && given === addedTo && given !== named ? named : (given ?? named);
    if (grantId) {
      const grant = await provider.Grant.find(grantId);
      // A session's grant naming an API removed and added again since is not reused: the person is
      // asked again for that API (a fresh grant from what they allowed is built below).
      const current = grant && grant.accountId === session.accountId && grant.clientId === client.clientId;
      // Nor one given before its person's or client's cutoff (`grants revoke --user` or `--client`,
      // the session kept): its revocation may have failed half-way, and a session that named it
      // would otherwise make new tokens from it, of a later second than the cutoff, without consent.
      // Nor one given to a client deleted since whose id was given again.
      if (current && !predatesClient(client.clientIdIssuedAt, grant.iat)) {
        const [stale, ended] = await Promise.all([
          this.#anyStale(Object.keys(grant.resources ?? {}), grant.iat),
          this.ended({ accountId: grant.accountId!, clientId: grant.clientId!, iat: grant.iat }, ctx),
        ]);
        if (!stale && !ended) {
          if (withClaimsOfItsScopes(grant, ctx)) await grant.save();
          return grant;
        }
      }
    }
    if (FIRST_PARTY_CLIENT_IDS.includes(client.clientId)) {
      const grant = new provider.Grant({ accountId: session.accountId, clientId: client.clientId });
      grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
      await grant.save();
      return grant;
    }
    const json = await this.kv.get(consentKey(session.accountId, client.clientId));
    if (!json) return undefined;
    const remembered = JSON.parse(json) as Remembered;
    // Nor a consent given before its person's or client's cutoff, whatever the order of the writes:
    // one remembered between a command's forgetting of the consents and its mark (or left by a
    // forgetting that failed) would otherwise make a fresh grant, of a later second than the cutoff.
    // A consent of the cutoff's second ends too; one without its time (kept before it was) ends
    // with any cutoff.
    // Nor one given to a client deleted since, whose id was given again (its consents forgotten with
    // it, but one confirmed while it was being deleted may have been remembered after).
    if (predatesClient(client.clientIdIssuedAt, remembered.at)) return undefined;
    // Nor one older than ttl.grant is now (an operator lowered it: it was kept for the longer one).
    if (this.#outlived(remembered)) return undefined;
    if (await this.ended({ accountId: session.accountId, clientId: client.clientId, iat: remembered.at }, ctx)) return undefined;
    const grant = new provider.Grant({ accountId: session.accountId, clientId: client.clientId });
    if (remembered.scope) grant.addOIDCScope(remembered.scope);
    if (remembered.claims.length) grant.addOIDCClaims(remembered.claims);
    for (const [indicator, scope] of Object.entries(remembered.resources)) {
      if (!(await this.stale(indicator, remembered.at))) grant.addResourceScope(indicator, scope);
    }
    withClaimsOfItsScopes(grant, ctx);
    await grant.save();
    return grant;
  }
}
