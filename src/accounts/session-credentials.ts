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
 * longest session (ttl.session). A set, added to atomically, so that two sign-ins finishing at once
 * on one session both count (a read, merge and write would lose one). Until 2026-12-14 (ttl.session
 * after this layout shipped) `of` also reads the former one, session-credential:<session uid> →
 * the merged JSON; then that read goes.
 */
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { Middleware } from 'koa';
import { scoped } from '../http/layers.js';
import type { Method } from './assurance.js';
import { enrolmentStamp, type CredentialRecords } from './credentials.js';
import type { UpstreamLinks } from './links.js';
import type { Kv } from '../store/kv.js';

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
  readonly verified?: { readonly password?: string; readonly totp?: string; readonly recoveryCodes?: string };
}

/** Where, in the interaction's result, a finished sign-in leaves its credential (interactions/sign-in-result.ts). */
export const CREDENTIAL_RESULT = 'latchkey_credential';

const key = (sessionUid: string) => `session-credentials:${sessionUid}`;
/** The former layout (one merged JSON), read for one session lifetime. */
const formerKey = (sessionUid: string) => `session-credential:${sessionUid}`;

/** Whether the person `sub` still holds every credential a sign-in used. */
export type CredentialsHeld = (sub: string, credential: SessionCredential) => Promise<boolean>;

/**
 * Its passkeys still registered, its authenticator app still enrolled, its upstream links still
 * the person's and their upstreams (`upstreamKnown`) still configured, and the password,
 * authenticator app and recovery codes it verified still the person's: a password changed (by its
 * owner or an operator; `passwordOf` gives the stamp of the password now), an app removed or set up
 * again, or recovery codes made anew while the sign-in waited for its resume no longer sign it in.
 */
export function credentialsHeld(
  records: CredentialRecords,
  links: UpstreamLinks,
  upstreamKnown: (id: string) => Promise<boolean>,
  passwordOf: (sub: string) => Promise<string | undefined>,
): CredentialsHeld {
  return async (sub, credential) => {
    const parts = (credential.links ?? []).map((id) => [id.slice(0, id.indexOf(':')), id.slice(id.indexOf(':') + 1)] as const);
    const [record, linked, known, password] = await Promise.all([
      records.read(sub),
      Promise.all(parts.map(([upstream, upstreamSub]) => links.find(upstream, upstreamSub))),
      Promise.all(parts.map(([upstream]) => upstreamKnown(upstream))),
      credential.verified?.password ? passwordOf(sub) : undefined,
    ]);
    const { verified } = credential;
    if (verified?.password && verified.password !== password) return false;
    if (credential.passkeys?.some((id) => !record.passkeys.some((passkey) => passkey.id === id))) return false;
    if (credential.methods.includes('totp') && !record.totp) return false;
    if (verified?.totp && verified.totp !== enrolmentStamp(record.totp)) return false;
    if (verified?.recoveryCodes && verified.recoveryCodes !== enrolmentStamp(record.recovery)) return false;
    return linked.every((link) => link?.sub === sub) && known.every(Boolean);
  };
}

export class SessionCredentials {
  constructor(
    private readonly kv: Kv,
    /** The longest a session lives (ttl.session). */
    private readonly ttl: number,
    /** Checked as a finished sign-in resumes (recordAtSignIn); without it, not checked. */
    private readonly held?: CredentialsHeld,
  ) {}

  async record(sessionUid: string, credential: SessionCredential): Promise<void> {
    await this.kv.addToSet(key(sessionUid), JSON.stringify(credential), this.ttl);
  }

  /** Every sign-in's credentials, merged. Undefined for a session signed in before these were recorded. */
  async of(sessionUid: string): Promise<SessionCredential | undefined> {
    const [members, former] = await Promise.all([this.kv.members(key(sessionUid)), this.kv.get(formerKey(sessionUid))]);
    const all = [...members, ...(former ? [former] : [])].map((json) => JSON.parse(json) as SessionCredential);
    if (!all.length) return undefined;
    const union = <T>(pick: (credential: SessionCredential) => readonly T[] | undefined) => {
      const picked = all.filter((credential) => pick(credential));
      return picked.length ? [...new Set(picked.flatMap((credential) => pick(credential)!))] : undefined;
    };
    const passkeys = union((credential) => credential.passkeys);
    const links = union((credential) => credential.links);
    return { methods: union((credential) => credential.methods) ?? [], ...(passkeys ? { passkeys } : {}), ...(links ? { links } : {}) };
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
      const oidc = (ctx as unknown as KoaContextWithOIDC).oidc as { result?: Record<string, unknown> & { login?: { accountId?: string } }; session?: { uid?: string; accountId?: string } } | undefined;
      const credential = oidc?.result?.[CREDENTIAL_RESULT] as SessionCredential | undefined;
      const session = oidc?.session;
      if (!credential || !session?.uid || !session.accountId || session.accountId !== oidc?.result?.login?.accountId) return;
      // Which password or enrolment was verified matters to this resume only: the record keeps the rest.
      const { verified: _verified, ...kept } = credential;
      await this.record(session.uid, kept);
      if (this.held && !(await this.held(session.accountId, credential))) await endSession(session.uid);
    });
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
    if (await this.held!(sub, credential)) return;
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
