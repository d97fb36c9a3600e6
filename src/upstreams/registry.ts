/**
 * The upstream OpenID Connect providers people may sign in with, configured at runtime (CLI, admin
 * API) and kept in the store. The client secret Latchkey holds at each upstream is sealed like the
 * signing keys (keyring/sealing.ts, AES-256-GCM under keys.secrets), with the upstream's id as the
 * authenticated data, so it is never at rest in the clear and cannot be moved to another upstream.
 *
 * Layout: upstream:<id> (JSON, durable), upstreams (set of ids, durable).
 */
import { randomUUID } from 'node:crypto';
import { SealError, Sealer } from '../keyring/sealing.js';
import { schemelessHost } from '../loopback.js';
import type { CachedReads, Kv } from '../store/kv.js';
import { upstreamKey, UPSTREAMS_KEY } from '../store/keys.js';

/** Our claims an upstream's claims are mapped to (default: the claim of the same name). */
export const MAPPED_CLAIMS = ['email', 'email_verified', 'name', 'given_name', 'family_name', 'locale'] as const;
export type MappedClaim = (typeof MAPPED_CLAIMS)[number];

export interface UpstreamSettings {
  /** Short name: in URLs (callback, back-channel logout), the `upstream` request parameter and the `idp` claim. */
  readonly id: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly scope: string;
  readonly displayName: string;
  /** Link a first sign-in to the local account with the same email, when the upstream verified that email. */
  readonly linkByEmail: boolean;
  /** RP-initiated logout at Latchkey also ends the upstream session (when it offers end_session_endpoint). */
  readonly endSession: boolean;
  /** Email domains whose people this upstream signs in: a login_hint at one of them goes straight there. */
  readonly domains: readonly string[];
  /** Our claim → the upstream's claim it is read from. */
  readonly claims: Readonly<Record<MappedClaim, string>>;
}

export interface Upstream extends UpstreamSettings {
  readonly clientSecret: string;
  /**
   * This addition of the upstream (random, made at `add`; absent in one added before it was kept): an
   * upstream removed and added again under its id, even with the same issuer, is another addition.
   */
  readonly made?: string;
}

interface Stored extends UpstreamSettings {
  readonly sealedSecret: string;
  readonly createdAt: number;
  readonly made?: string;
}

/**
 * The URIs to register for Latchkey at the upstream: its redirect URI and back-channel logout URI,
 * and, when signing out goes on to the upstream (`endSession`), where the upstream sends people back.
 */
export function urisToRegister(issuer: string, upstream: Pick<UpstreamSettings, 'id' | 'endSession'>) {
  const base = `${issuer}/upstream/${upstream.id}`;
  return {
    redirect_uri: `${base}/callback`,
    backchannel_logout_uri: `${base}/backchannel-logout`,
    ...(upstream.endSession && { post_logout_redirect_uri: `${base}/signed-out` }),
  };
}

export class UpstreamError extends Error {
  override name = 'UpstreamError';
  constructor(
    message: string,
    readonly conflict = false,
  ) {
    super(message);
  }
}

const ID = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
const LOOPBACK = /^(localhost|127\.0\.0\.1|\[::1\]|[a-z0-9-]+\.localhost)$/i;

/** https, or http on a loopback host (development and tests); no query, fragment or credentials. */
function checkIssuer(issuer: string): string | undefined {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return 'the issuer must be a URL';
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.test(url.hostname))) {
    // `localhost:5000` parses as the scheme "localhost:": the URI meant, as for a redirect URI (sixteenth newcomer pass).
    const meant = schemelessHost(issuer);
    return `the issuer must be an https URL (http only on a loopback host, for development: localhost, 127.0.0.1, [::1])${meant ? `; did you mean ${meant}?` : ''}`;
  }
  if (url.search || url.hash || url.username || url.password) return 'the issuer has no query, fragment or credentials';
  return undefined;
}

function defaultClaims(): Record<MappedClaim, string> {
  return Object.fromEntries(MAPPED_CLAIMS.map((claim) => [claim, claim])) as Record<MappedClaim, string>;
}

/**
 * An upstream whose client secret this server cannot open: sealed under a keys.secrets it does not
 * hold (a secret dropped after a rotation, or added by a CLI with other settings). Its public
 * settings come along, for the page that says so.
 */
export class UpstreamUnreadable extends Error {
  override name = 'UpstreamUnreadable';
  constructor(
    readonly upstream: UpstreamSettings,
    cause: SealError,
  ) {
    super(`the client secret of upstream "${upstream.id}" cannot be opened: ${cause.message}`, { cause });
  }
}

export class Upstreams {
  readonly #sealer: Sealer;
  /**
   * The list of upstream ids, read at every view of the login page (its buttons), from process
   * memory kept fresh by the store (tracked-cache.ts): an upstream added or removed anywhere is seen
   * as a read would see it. Only that set: each upstream's record is read from the store.
   */
  readonly #list: CachedReads;

  constructor(
    private readonly kv: Kv,
    secrets: readonly string[],
  ) {
    this.#sealer = new Sealer(secrets);
    this.#list = kv.cachedReads?.([UPSTREAMS_KEY]) ?? kv;
  }

  async add(
    settings: Omit<UpstreamSettings, 'claims' | 'domains'> & { claims?: Partial<Record<MappedClaim, string>>; domains?: readonly string[]; clientSecret: string },
  ): Promise<UpstreamSettings> {
    const { clientSecret, ...rest } = settings;
    const domains = [...new Set((rest.domains ?? []).map((domain) => domain.toLowerCase()))];
    const badDomain = domains.find((domain) => !DOMAIN.test(domain));
    if (badDomain !== undefined) throw new UpstreamError(`"${badDomain}" is not an email domain`);
    if (!ID.test(rest.id)) throw new UpstreamError('the id is 1 to 32 lowercase letters, digits and inner hyphens');
    const problem = checkIssuer(rest.issuer);
    if (problem) throw new UpstreamError(problem);
    if (!rest.clientId) throw new UpstreamError('the client id is required');
    if (!clientSecret) throw new UpstreamError('the client secret is required');
    if (!rest.scope.split(' ').includes('openid')) throw new UpstreamError('the scope must include openid');
    // An upstream asked for no `email` sends no address (OIDC Core §5.4), unless the address is read
    // from another claim it sends: linking by email would then never link, silently.
    if (rest.linkByEmail && !rest.scope.split(' ').includes('email') && (rest.claims?.email ?? 'email') === 'email') {
      throw new UpstreamError('linking by email needs an address from the upstream: add email to the scope (e.g. "openid email profile"), or map email from a claim the upstream sends');
    }
    const stored: Stored = {
      ...rest,
      issuer: rest.issuer.replace(/\/$/, ''),
      displayName: rest.displayName || rest.id,
      domains,
      claims: { ...defaultClaims(), ...rest.claims },
      sealedSecret: this.#sealer.seal(upstreamKey(rest.id), { kty: 'oct', k: Buffer.from(clientSecret).toString('base64url') }),
      createdAt: Math.floor(Date.now() / 1000),
      made: randomUUID(),
    };
    // Listed before it is written (list skips an id with no upstream): listed after, an addition cut off
    // at the listing (503) left an upstream that signed people in, that no list or login page showed,
    // and that was "exists already" when added again (twelfth fresh-eyes passes). And again after: a
    // removal of the id meanwhile may have taken it out of the list.
    await this.kv.addToSet(UPSTREAMS_KEY, rest.id);
    if (!(await this.kv.set(upstreamKey(rest.id), JSON.stringify(stored), { onlyIfAbsent: true }))) {
      throw new UpstreamError(`an upstream "${rest.id}" exists already`, true);
    }
    await this.kv.addToSet(UPSTREAMS_KEY, rest.id);
    return publicSettings(stored);
  }

  /** The upstream with its client secret opened. */
  async find(id: string): Promise<Upstream | undefined> {
    if (!ID.test(id)) return undefined;
    const json = await this.kv.get(upstreamKey(id));
    if (!json) return undefined;
    const stored = JSON.parse(json) as Stored;
    let jwk: { k?: unknown };
    try {
      jwk = this.#sealer.open(upstreamKey(id), stored.sealedSecret);
    } catch (error) {
      throw error instanceof SealError ? new UpstreamUnreadable(publicSettings(stored), error) : error;
    }
    return { ...publicSettings(stored), clientSecret: Buffer.from(String(jwk.k), 'base64url').toString('utf8'), ...(stored.made !== undefined && { made: stored.made }) };
  }

  /**
   * Seals again under the first of keys.secrets each client secret sealed under another of them
   * (KEYS_SECRETS rotated: a new secret put first), so that the old secret can be dropped. Each
   * upstream is rewritten by compare-and-set, so instances doing this at once, or an operator
   * replacing the upstream meanwhile, lose nothing. One that no configured secret opens is left as it
   * is (its sign-ins answer `upstream.unreadable`). How many were sealed again.
   */
  async resealSecrets(): Promise<number> {
    let resealed = 0;
    for (const id of await this.kv.members(UPSTREAMS_KEY)) {
      const json = await this.kv.get(upstreamKey(id));
      if (!json) continue;
      const stored = JSON.parse(json) as Stored;
      if (this.#sealer.isCurrent(stored.sealedSecret)) continue;
      let jwk: ReturnType<Sealer['open']>;
      try {
        jwk = this.#sealer.open(upstreamKey(id), stored.sealedSecret);
      } catch (error) {
        if (error instanceof SealError) continue;
        throw error;
      }
      const next = JSON.stringify({ ...stored, sealedSecret: this.#sealer.seal(upstreamKey(id), jwk) });
      if (await this.kv.compareAndSet(upstreamKey(id), json, next)) resealed += 1;
    }
    return resealed;
  }

  /** Whether there is an upstream `id` (its secret is not opened). */
  async has(id: string): Promise<boolean> {
    return ID.test(id) && (await this.kv.get(upstreamKey(id))) !== undefined;
  }

  /**
   * Whether the upstream `id` still vouches for what `issuer` vouched for (a link's or an offer's
   * issuer; undefined in those made before it was recorded): configured, and under that issuer. An
   * operator who removes a provider and gives its id to another has not made the first one's word the
   * second's: a sign-in the first vouched for, waiting for its second factor or its resume as the id
   * changed hands, completed (thirteenth fresh-eyes passes, upstreams). With `made` (Upstream.made of
   * the addition that vouched; '' for one added before it was kept), that same addition: the provider
   * removed and added again, even under the same issuer, vouches for nothing from before (sixteenth
   * passes, h15: a sign-in waiting at its second factor across both completed).
   */
  async offers(id: string, issuer: string | undefined, made?: string): Promise<boolean> {
    const json = ID.test(id) ? await this.kv.get(upstreamKey(id)) : undefined;
    if (json === undefined) return false;
    const stored = JSON.parse(json) as Stored;
    return (issuer === undefined || stored.issuer === issuer) && (made === undefined || (stored.made ?? '') === made);
  }

  /** Every upstream, without secrets, by display name. */
  async list(): Promise<UpstreamSettings[]> {
    const all = await Promise.all((await this.#list.members(UPSTREAMS_KEY)).map((id) => this.kv.get(upstreamKey(id))));
    return all
      .filter((json): json is string => !!json)
      .map((json) => publicSettings(JSON.parse(json) as Stored))
      .sort((a, b) => a.displayName.localeCompare(b.displayName));
  }

  /** The upstream that signs in people of this email's domain, if one does. */
  async forEmail(email: string): Promise<UpstreamSettings | undefined> {
    const domain = /^[^@\s]+@([^@\s]+)$/.exec(email)?.[1]?.toLowerCase();
    return domain ? (await this.list()).find((upstream) => upstream.domains.includes(domain)) : undefined;
  }

  async remove(id: string): Promise<void> {
    if (!ID.test(id) || !(await this.kv.get(upstreamKey(id)))) throw new UpstreamError(`no upstream "${id}"`);
    await this.kv.del([upstreamKey(id)]);
    await this.kv.removeFromSet(UPSTREAMS_KEY, id);
  }
}

function publicSettings({ id, issuer, clientId, scope, displayName, linkByEmail, endSession, domains, claims }: Stored): UpstreamSettings {
  return { id, issuer, clientId, scope, displayName, linkByEmail, endSession, domains: domains ?? [], claims };
}
