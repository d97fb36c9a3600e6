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
 * Layout: session-credential:<session uid> → JSON, expiring with the longest session (ttl.session).
 */
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { Middleware } from 'koa';
import type { Method } from './assurance.js';
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
}

/** Where, in the interaction's result, a finished sign-in leaves its credential (interactions/sign-in-result.ts). */
export const CREDENTIAL_RESULT = 'latchkey_credential';

const key = (sessionUid: string) => `session-credential:${sessionUid}`;

export class SessionCredentials {
  constructor(
    private readonly kv: Kv,
    /** The longest a session lives (ttl.session). */
    private readonly ttl: number,
  ) {}

  async record(sessionUid: string, credential: SessionCredential): Promise<void> {
    const before = await this.of(sessionUid);
    const union = <T>(a: readonly T[] = [], b: readonly T[] = []) => [...new Set([...a, ...b])];
    const merged: SessionCredential = {
      methods: union(before?.methods, credential.methods),
      ...(before?.passkeys || credential.passkeys ? { passkeys: union(before?.passkeys, credential.passkeys) } : {}),
      ...(before?.links || credential.links ? { links: union(before?.links, credential.links) } : {}),
    };
    await this.kv.set(key(sessionUid), JSON.stringify(merged), { ttl: this.ttl });
  }

  /** Undefined for a session signed in before these were recorded. */
  async of(sessionUid: string): Promise<SessionCredential | undefined> {
    const json = await this.kv.get(key(sessionUid));
    return json ? (JSON.parse(json) as SessionCredential) : undefined;
  }

  /**
   * provider.use middleware: when a sign-in resumes the authorization request, records its
   * credential for the session it signed in, once the engine has saved it.
   */
  recordAtSignIn(provider: Provider): Middleware {
    // The authorization request's resume, and the device flow's (RFC 8628: /device/<uid>).
    const paths = [provider.pathFor('authorization'), provider.pathFor('code_verification')];
    return async (ctx, next) => {
      await next();
      if (!paths.some((path) => ctx.path.startsWith(`${path}/`))) return;
      const oidc = (ctx as unknown as KoaContextWithOIDC).oidc as { result?: Record<string, unknown> & { login?: { accountId?: string } }; session?: { uid?: string; accountId?: string } } | undefined;
      const credential = oidc?.result?.[CREDENTIAL_RESULT] as SessionCredential | undefined;
      const session = oidc?.session;
      if (credential && session?.uid && session.accountId && session.accountId === oidc?.result?.login?.accountId) await this.record(session.uid, credential);
    };
  }
}
