/**
 * Which credentials signed each session in: the methods (password, upstream, authenticator app,
 * recovery code, passkey), and which passkey and which upstream link. The session's `amr` says the
 * kind of factor but not which one; this says which, so that removing a passkey, the authenticator
 * app, recovery codes or an upstream link on the account page (a stolen-credential response) can
 * end the person's other sessions that were signed in with it, and only those.
 *
 * Kept beside the provider's session record, keyed by the session's uid, like session-activity.ts;
 * written once per completed sign-in (the resume of the authorization request), nothing on the
 * token paths.
 *
 * Layout: session-credentials:<session uid> → a set, one member (JSON) per sign-in, expiring with the
 * longest a session signed in now may live (lifetimes.ts sessionRecordsLifetime: ttl.sessionMax, a
 * session in use living past ttl.session). A set, added to atomically, so that two sign-ins finishing at once
 * on one session both count (a read, merge and write would lose one). Until 2026-12-14 (ttl.session
 * after this layout shipped) `of` also reads the former one, session-credential:<session uid> →
 * the merged JSON; then that read goes.
 *
 * A grant outlives its session when it holds offline access: so the credentials of the session a
 * grant was made or extended in are recorded against the grant too (recordGrant), and a removal
 * revokes the grants made with the credential whether their session is live or gone
 * (revokeGrantsMadeWith, from AccountSessions.endSignedInWith). Layout: grant-credentials:<grant id>
 * → a set, one member (JSON, the session's merged credentials) per session that made or extended
 * the grant, expiring with the grant (its remaining lifetime when written). Written at a resume
 * (with its sign-in's record, no round trip of its own) and at the authorization endpoint only when
 * it saved a grant; nothing on the token or introspection paths. Grants made before this record
 * existed have none and stay as before (until they expire, ttl.grant).
 */
import { Provider, type KoaContextWithOIDC } from 'oidc-provider';
import type { Middleware } from 'koa';
import { scoped } from '../http/layers.js';
import { endedWithPerson, passwordStamp, type Account, type Accounts } from './accounts.js';
import type { Method } from './assurance.js';
import { enrolmentStamp, type CredentialRecords } from './credentials.js';
import type { UpstreamLinks } from './links.js';
import type { Kv } from '../store/kv.js';
import { formerSessionCredentialKey, grantCredentialsKey, sessionCredentialsKey } from '../store/keys.js';

/**
 * What signed a session in. A session signed in again (prompt=login, the account page's "sign in
 * again") keeps its uid: the record then holds every sign-in's credentials, since what was granted
 * after the first still rests on it.
 */
export interface SessionCredential {
  readonly methods: readonly Method[];
  /** The credential ids of the passkeys used. */
  readonly passkeys?: readonly string[];
  /** The upstream links used ("<upstream>:<upstream sub>", as the account page names them). */
  readonly links?: readonly string[];
  /**
   * Which password, authenticator-app enrolment and set of recovery codes the sign-in verified
   * (accounts.ts passwordStamp, credentials.ts enrolmentStamp): checked at the resume only, never
   * kept for later.
   */
  readonly verified?: { readonly password?: string; readonly totp?: string; readonly recoveryCodes?: string; readonly upstream?: UpstreamWord };
}

/**
 * The upstream session a sign-in through an upstream took the word of (upstreams/sessions.ts
 * FederatedSession): its sid and when the callback took it (epoch ms), so that the upstream's
 * back-channel logout of that session since stops the resume.
 */
export interface UpstreamWord {
  readonly upstream: string;
  readonly sub: string;
  readonly sid: string | undefined;
  readonly at?: number;
  /**
   * The addition of the upstream that took it (upstreams/registry.ts Upstream.made; '' for one added
   * before it was kept; absent in a sign-in finished before it was carried here): the upstream removed
   * and added again, even under the same issuer, vouches for nothing from before (seventeenth passes, h2).
   */
  readonly made?: string;
  /**
   * The making of the link it signed in through (accounts/links.ts Link.made; absent for a link made
   * before it was kept): the link removed and made again while the resume waited is not that link.
   */
  readonly link?: string;
}

/** Where, in the interaction's result, a finished sign-in leaves its credential (interactions/sign-in-result.ts). */
export const CREDENTIAL_RESULT = 'latchkey_credential';

/** Several sign-ins' credentials (JSON, as recorded) as one: the union of each part. */
function merged(jsons: readonly string[]): SessionCredential | undefined {
  const all = jsons.map((json) => JSON.parse(json) as SessionCredential);
  if (!all.length) return undefined;
  const union = <T>(pick: (credential: SessionCredential) => readonly T[] | undefined) => {
    const picked = all.filter((credential) => pick(credential));
    return picked.length ? [...new Set(picked.flatMap((credential) => pick(credential)!))] : undefined;
  };
  const passkeys = union((credential) => credential.passkeys);
  const links = union((credential) => credential.links);
  return { methods: union((credential) => credential.methods) ?? [], ...(passkeys ? { passkeys } : {}), ...(links ? { links } : {}) };
}

/** A grant as the engine holds it in a request. */
interface GrantMade {
  readonly jti: string;
  readonly accountId?: string;
  /** Seconds it has left (oidc-provider's BaseModel#remainingTTL). */
  readonly remainingTTL?: number;
}

/** What a request at the authorization endpoint or a resume leaves in ctx.oidc, as read here. */
interface Made {
  readonly entities?: { readonly Grant?: GrantMade };
  readonly session?: { readonly uid?: string; readonly accountId?: string };
}

/** The grant the request made, extended or reused for the signed-in session's person, if any. */
function grantOf(oidc: Made | undefined): GrantMade | undefined {
  const grant = oidc?.entities?.Grant;
  const accountId = oidc?.session?.accountId;
  return grant?.jti && accountId && grant.accountId === accountId ? grant : undefined;
}

/** Requests whose grant recordAtSignIn recorded (recordGrantsInSessions then does nothing). */
const recordedHere = new WeakSet<object>();

/** A resume's sign-in, from its answer: what recordAtSignIn records. */
interface SignIn {
  readonly sessionUid: string;
  readonly sub: string;
  readonly credential: SessionCredential;
  /** The credential as kept (without which password or enrolment was verified: that matters to this resume only). */
  readonly kept: SessionCredential;
  readonly grant: GrantMade | undefined;
  /** The session was made by this request: no other sign-in can have been recorded for its uid. */
  readonly newSession: boolean;
  /** When the interaction resumed began (its `iat`). */
  readonly startedAt: unknown;
}

/** A sign-in's record written: with its grant's when it needed no earlier sign-in's, else with those read. */
interface Recorded {
  readonly grantWritten: boolean;
  readonly earlier?: SessionCredential | undefined;
}

/** The sign-in a resume made, once the engine answered it; undefined when it signed no session in. */
function signInOf(ctx: object): SignIn | undefined {
  const oidc = (ctx as unknown as KoaContextWithOIDC).oidc as
    | { result?: Record<string, unknown> & { login?: { accountId?: string } }; session?: { uid?: string; accountId?: string; new?: boolean }; entities?: { Interaction?: { iat?: unknown } } }
    | undefined;
  const credential = oidc?.result?.[CREDENTIAL_RESULT] as SessionCredential | undefined;
  const session = oidc?.session;
  if (!credential || !session?.uid || !session.accountId || session.accountId !== oidc?.result?.login?.accountId) return undefined;
  const { verified: _verified, ...kept } = credential;
  return { sessionUid: session.uid, sub: session.accountId, credential, kept, grant: grantOf(oidc as unknown as Made), newSession: session.new === true, startedAt: oidc?.entities?.Interaction?.iat };
}

/**
 * Whether the person `sub` still holds every credential a sign-in used. `startedAt`: when the
 * sign-in's interaction began (its `iat`, epoch seconds), before any of its credentials was verified.
 */
export type CredentialsHeld = (sub: string, credential: SessionCredential, startedAt: unknown) => Promise<boolean>;

/** What the check reads of the account now: the password's stamp and the person's cutoffs. */
export type AccountNow = (sub: string) => Promise<(Pick<Account, 'endedAt' | 'grantsEndedAt'> & { readonly passwordStamp: string | undefined }) | undefined>;

/** AccountNow as `accounts` holds it now (the resume's check, and the link confirmation's: interactions/routes.ts). */
export const accountNowOf =
  (accounts: Pick<Accounts, 'find'>): AccountNow =>
  async (sub) => {
    const account = await accounts.find(sub);
    return account && { passwordStamp: passwordStamp(account), endedAt: account.endedAt, grantsEndedAt: account.grantsEndedAt };
  };

/**
 * Its passkeys still registered, its authenticator app still enrolled, its upstream links still
 * the person's and their upstreams (`upstreamKnown`) still configured, and the password,
 * authenticator app and recovery codes it verified still the person's: a password changed (by its
 * owner or an operator; `passwordOf` gives the stamp of the password now), an app removed or set up
 * again, or recovery codes made anew while the sign-in waited for its resume no longer sign it in.
 * Nor does a sign-in begun before everything of the person ended (accounts.ts endedAt: disabled,
 * enabled again since, or a password set by an operator), whatever it verified.
 */
export function credentialsHeld(
  records: CredentialRecords,
  links: UpstreamLinks,
  /** Whether the upstream `id` is configured under `issuer` (a link's; undefined: any), and as the addition `made` when given (registry.ts offers). */
  upstreamKnown: (id: string, issuer: string | undefined, made?: string) => Promise<boolean>,
  accountOf: AccountNow,
  /** Whether the upstream logged out the session a sign-in took its word of, since it took it. */
  loggedOutSince: (word: UpstreamWord) => Promise<boolean> = async () => false,
): CredentialsHeld {
  return async (sub, credential, startedAt) => {
    const parts = (credential.links ?? []).map((id) => [id.slice(0, id.indexOf(':')), id.slice(id.indexOf(':') + 1)] as const);
    // The account with the records: one round trip (it was read for the password's stamp before, and is read ahead for the engine).
    const { verified } = credential;
    const [record, linksHeld, account, loggedOut] = await Promise.all([
      records.read(sub),
      // Each link read once: still the person's, and its upstream configured under the issuer it
      // records (the id given to another provider since is not the one that signed the person in).
      // The link this sign-in went through, as the very addition that vouched for it: the upstream
      // removed and added again while the resume waited ended what it vouched for, and the addition
      // does not make it whole (seventeenth passes, h2: the resume signed the person in).
      Promise.all(
        parts.map(async ([upstream, upstreamSub]) => {
          const link = await links.find(upstream, upstreamSub);
          const word = verified?.upstream;
          const through = word?.upstream === upstream && word.sub === upstreamSub ? word : undefined;
          // The link itself as it was made then: removed on the account page and made again by its
          // owner (an upstream account of theirs taken back) while this resume waited, it is another
          // (eighteenth passes, h18: the thief's held sign-in signed in).
          if (through?.link !== undefined && link?.made !== through.link) return false;
          return link?.sub === sub && (await upstreamKnown(upstream, link.iss, through?.made));
        }),
      ),
      accountOf(sub),
      verified?.upstream ? loggedOutSince(verified.upstream) : false,
    ]);
    // Checked before the resume and once it wrote the session (and its upstream's record): either the
    // logout, which marks before it looks for sessions, found the record, or this reads its mark.
    if (loggedOut) return false;
    if (account && typeof startedAt === 'number' && endedWithPerson(account, startedAt, 'session')) return false;
    if (verified?.password && verified.password !== account?.passwordStamp) return false;
    if (credential.passkeys?.some((id) => !record.passkeys.some((passkey) => passkey.id === id))) return false;
    if (credential.methods.includes('totp') && !record.totp) return false;
    if (verified?.totp && verified.totp !== enrolmentStamp(record.totp)) return false;
    if (verified?.recoveryCodes && verified.recoveryCodes !== enrolmentStamp(record.recovery)) return false;
    return linksHeld.every(Boolean);
  };
}

export class SessionCredentials {
  constructor(
    private readonly kv: Kv,
    /** The longest a session signed in now may live (lifetimes.ts sessionRecordsLifetime). */
    private readonly ttl: number,
    /** Checked as a finished sign-in resumes (recordAtSignIn); without it, not checked. */
    private readonly held?: CredentialsHeld,
  ) {}

  async record(sessionUid: string, credential: SessionCredential): Promise<void> {
    await this.kv.addToSet(sessionCredentialsKey(sessionUid), JSON.stringify(credential), this.ttl);
  }

  /** Every sign-in's credentials, merged. Undefined for a session signed in before these were recorded. */
  async of(sessionUid: string): Promise<SessionCredential | undefined> {
    const [members, former] = await Promise.all([this.kv.members(sessionCredentialsKey(sessionUid)), this.kv.get(formerSessionCredentialKey(sessionUid))]);
    return merged([...members, ...(former ? [former] : [])]);
  }

  /**
   * Records, against the grant `grantId` made or extended in the session `sessionUid`, the
   * credentials that signed that session in (every sign-in's), for as long as the grant lives
   * (`ttl`, its remaining lifetime): the grant outlives its session when it holds offline access,
   * and removing one of those credentials must still find it (revokeGrantsMadeWith). Nothing for a
   * session signed in before its credentials were recorded.
   */
  async recordGrant(grant: GrantMade, sessionUid: string): Promise<void> {
    const used = await this.of(sessionUid);
    if (used) await this.#writeGrant(grant, used);
  }

  async #writeGrant({ jti, remainingTTL }: GrantMade, used: SessionCredential): Promise<void> {
    if (!remainingTTL || remainingTTL <= 0) return;
    await this.kv.addToSet(grantCredentialsKey(jti), JSON.stringify(used), Math.ceil(remainingTTL));
  }

  /** The credentials of the sessions that made or extended the grant, merged; undefined when none were recorded. */
  async ofGrant(grantId: string): Promise<SessionCredential | undefined> {
    return merged(await this.kv.members(grantCredentialsKey(grantId)));
  }

  /**
   * provider.use middleware: when a grant is made or extended in a signed-in session, records the
   * session's credentials against it (recordGrant). That is at a resume (the sign-in's, and the
   * consent's: the grant the session holds for the client then), and at the authorization endpoint
   * or a device's verification only when the request saved a grant (one made from a remembered
   * consent, provider/consents.ts): an authorization request that reuses the session's grant as it
   * is writes nothing. Nothing on the token paths. Install it in front of recordAtSignIn, so that a
   * resume's own sign-in is recorded for the session first.
   */
  recordGrantsInSessions(provider: Provider): Middleware {
    const paths = [provider.pathFor('authorization'), provider.pathFor('code_verification')];
    const saved = new WeakMap<object, Set<string>>();
    provider.on('grant.saved', (grant: { jti?: string }) => {
      const request = Provider.ctx as object | undefined;
      if (!request || !grant.jti) return;
      const jtis = saved.get(request) ?? new Set<string>();
      jtis.add(grant.jti);
      saved.set(request, jtis);
    });
    return scoped({ paths, prefixes: paths.map((path) => `${path}/`) }, async (ctx, next) => {
      await next();
      // A resume that signed the session in recorded its grant already (recordAtSignIn).
      if (recordedHere.has(ctx)) return;
      const oidc = (ctx as unknown as KoaContextWithOIDC).oidc as unknown as Made | undefined;
      const grant = grantOf(oidc);
      const session = oidc?.session;
      if (!grant || !session?.uid) return;
      const resuming = paths.some((path) => ctx.path.length > path.length + 1 && ctx.path.toLowerCase().startsWith(`${path.toLowerCase()}/`));
      if (!resuming && !saved.get(ctx)?.has(grant.jti)) return;
      await this.recordGrant(grant, session.uid);
    });
  }

  /**
   * Revokes the person's grants made or extended in a session that `signedInWith` says was signed
   * in with a credential (removed), whether that session is live or gone (offline access kept after
   * signing out): `grantIds` are the person's grants, `keep` those left alone (the acting
   * session's, and those already revoked). A grant without a record (made before these were kept)
   * stays. How many were revoked.
   */
  async revokeGrantsMadeWith(grantIds: readonly string[], signedInWith: (credential: SessionCredential) => boolean, revokeGrant: (grantId: string) => Promise<unknown>, keep: ReadonlySet<string>): Promise<number> {
    const revoked = await Promise.all(
      grantIds
        .filter((grantId) => !keep.has(grantId))
        .map(async (grantId) => {
          const used = await this.ofGrant(grantId);
          if (!used || !signedInWith(used)) return false;
          await revokeGrant(grantId);
          await this.kv.del([grantCredentialsKey(grantId)]);
          return true;
        }),
    );
    return revoked.filter(Boolean).length;
  }

  /**
   * provider.use middleware: when a sign-in resumes the authorization request, records its
   * credential for the session it signed in, once the engine has saved it.
   *
   * Before that, a sign-in whose credential was removed since it was verified (a stolen passkey
   * removed while the thief held the redirect to this resume, for as long as the interaction
   * lives; or its upstream removed by an operator) is turned into access_denied: no session is
   * signed in with it. The removal's ending of sessions (AccountSessions.endSignedInWith,
   * removeUpstream) covers the sessions recorded before it. A removal landing during this request,
   * after that check, may have looked for the session before it was saved or recorded: so once
   * recorded the credential is checked again, and if it is gone the session is ended
   * (`endSession`, with every grant it made, so the code just issued goes too). Either the removal
   * read the record, or this check reads the removal.
   */
  recordAtSignIn(provider: Provider, endSession: (uid: string) => Promise<void>, readAhead?: SignInReadAhead): Middleware {
    // The authorization request's resume, and the device flow's (RFC 8628: /device/<uid>).
    const paths = [provider.pathFor('authorization'), provider.pathFor('code_verification')];
    // Scoped by the prefixes its own test stays within (http/layers.ts): a resume, and nothing else, pays for it.
    return scoped({ prefixes: paths.map((path) => `${path}/`) }, async (ctx, next) => {
      const resuming = paths.some((path) => ctx.path.startsWith(`${path}/`));
      if (resuming && this.held) await this.#refuseRemovedCredential(provider, ctx.cookies.get((provider as unknown as Named).cookieName('resume')), readAhead && ((sub, clientId, uid) => readAhead(ctx, sub, clientId, uid)));
      await next();
      if (!resuming) return;
      const signIn = signInOf(ctx);
      if (!signIn) return;
      // Recorded with the request's own writes (recordAlongside), or here when those were not sent.
      const { grantWritten, earlier } = await (this.#recording.get(ctx) ?? this.#record(signIn));
      const { grant, kept } = signIn;
      if (grant) recordedHere.add(ctx);
      const used = merged([JSON.stringify(kept), ...(earlier ? [JSON.stringify(earlier)] : [])])!;
      await Promise.all([
        grant && !grantWritten && this.#writeGrant(grant, used),
        this.held && (async () => {
          if (!(await this.held!(signIn.sub, signIn.credential, signIn.startedAt))) await endSession(signIn.sessionUid);
        })(),
      ]);
    });
  }

  /** Each resume's record, started with its own writes (recordAlongside), for recordAtSignIn to go on from. */
  readonly #recording = new WeakMap<object, Promise<Recorded>>();

  /**
   * For deferred-consumption's `alongside` (provider/patches/deferred-consumption.ts): a resume's
   * sign-in recorded in the same round trip as the code and session it made, not after them; and
   * the grant's record with it, or the session's earlier sign-ins read for that (#record).
   * recordAtSignIn checks the credential again once this has landed.
   */
  recordAlongside(provider: Provider): (ctx: object & { readonly path: string }) => Promise<Recorded> | undefined {
    const paths = [provider.pathFor('authorization'), provider.pathFor('code_verification')];
    return (ctx) => {
      if (!paths.some((path) => ctx.path.startsWith(`${path}/`))) return undefined;
      const signIn = signInOf(ctx);
      if (!signIn) return undefined;
      const recording = this.#record(signIn);
      this.#recording.set(ctx, recording);
      return recording;
    };
  }

  /**
   * Writes a sign-in's record. The grant the resume made or extended gets the session's credentials,
   * this sign-in's among them (recordGrantsInSessions leaves it to recordAtSignIn): for a session
   * made by this request that is this sign-in's alone, written at once; else the earlier ones are
   * read with the record's write, and the grant's written after (with the check's reads).
   */
  #record({ sessionUid, kept, grant, newSession }: SignIn): Promise<Recorded> {
    const record = this.record(sessionUid, kept);
    if (!grant) return record.then(() => ({ grantWritten: false }));
    if (newSession) return Promise.all([record, this.#writeGrant(grant, kept)]).then(() => ({ grantWritten: true }));
    return Promise.all([record, this.of(sessionUid)]).then(([, earlier]) => ({ grantWritten: false, earlier }));
  }

  /** The interaction the engine is about to resume (by its resume cookie, as the engine finds it). */
  async #refuseRemovedCredential(provider: Provider, uid: string | undefined, readAhead?: (sub: string, clientId: string | undefined, uid: string) => () => void): Promise<void> {
    const interaction = uid ? await provider.Interaction.find(uid) : undefined;
    const result = interaction?.result as (Record<string, unknown> & { login?: { accountId?: string } }) | undefined;
    const credential = result?.[CREDENTIAL_RESULT] as SessionCredential | undefined;
    const sub = result?.login?.accountId;
    if (!interaction || !credential || !sub) return;
    // What the engine reads next for this sign-in (the interaction again among it) goes out with the check's reads (one round trip).
    let dropInteraction: (() => void) | undefined;
    if (readAhead) {
      const clientId = (interaction.params as Record<string, unknown> | undefined)?.client_id;
      dropInteraction = readAhead(sub, typeof clientId === 'string' ? clientId : undefined, interaction.uid);
    }
    if (await this.held!(sub, credential, interaction.iat)) return;
    // The engine must read the refusal, not the interaction as it was read ahead.
    dropInteraction?.();
    interaction.result = { error: 'access_denied', error_description: 'a credential this sign-in used was removed or changed since' };
    await interaction.persist();
  }
}

/**
 * Starts the reads the engine makes once a sign-in resumes (the interaction `uid`, its account, the
 * person's remembered consent to the client), in the request `request` (its Koa context): see
 * store/read-ahead.ts. Returns what drops the interaction's, for a check that then changes it.
 */
export type SignInReadAhead = (request: object, sub: string, clientId: string | undefined, uid: string) => () => void;

/** oidc-provider's Provider#cookieName, missing from its types. */
interface Named {
  cookieName(type: 'resume'): string;
}
