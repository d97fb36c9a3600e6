/**
 * A person's ways to sign in on their own: their password, each passkey (a passkey alone signs in),
 * each upstream link. The account page never removes the last of them (links-section.ts,
 * passkeys-section.ts). They live in three records (the account, the second-factor record, the links),
 * which no single command spans on Redis Cluster: a removal counts them and removes one holding the
 * person's ways-in claim (store/kv.ts holding), so that of two removals sent at the same moment (two
 * tabs: the last link and the last passkey, or two passkeys, or two links) the second counts what
 * the first left. Before the ninth fresh-eyes passes of 2026-12-06 each counted before the other
 * removed, and both went: nothing signed the person in any more.
 *
 * An authenticator app and recovery codes are no way in (they follow a password), so their removal
 * and renewal take no claim; adding a way in takes none either (it leaves more, never fewer). Nor is
 * a link whose upstream is no longer offered, or whose id another issuer was given since (links.ts
 * signIn drops it): counted, it let a person remove their last working link and keep only that one,
 * which signed them in nowhere (thirteenth fresh-eyes passes, upstreams).
 */
import type { Accounts } from './accounts.js';
import type { ListedLink, UpstreamLinks } from './links.js';
import type { UpstreamSettings, Upstreams } from '../upstreams/registry.js';
import type { SecondFactors } from './second-factors.js';
import { holding, STILL_HELD, type Kv } from '../store/kv.js';
import { waysInLockKey } from '../store/keys.js';

export { STILL_HELD };

/** A person's ways in, as they are now. */
export interface Ways {
  readonly password: boolean;
  /** Passkey ids. */
  readonly passkeys: readonly string[];
  /** Link ids ("<upstream>:<upstream sub>"). */
  readonly links: readonly string[];
  /** Those of them that sign in now (upstreamOf). */
  readonly linksSigningIn: readonly string[];
}

/** How many ways in `ways` holds. */
export const countOf = (ways: Ways): number => (ways.password ? 1 : 0) + ways.passkeys.length + ways.linksSigningIn.length;

/**
 * The upstream `link` signs in through now: offered, under the issuer that vouched for the link (one
 * made before issuers were recorded follows any). An upstream whose client secret this server cannot
 * open is offered still: the operator gives the server its secret back.
 */
export function upstreamOf<T extends Pick<UpstreamSettings, 'id' | 'issuer'>>(link: Pick<ListedLink, 'upstream' | 'iss'>, offered: readonly T[]): T | undefined {
  return offered.find((upstream) => upstream.id === link.upstream && (link.iss === undefined || link.iss === upstream.issuer));
}

/**
 * The claim's life: long past a removal's work (its sessions ended before and after the write), so
 * that it does not lapse under a removal still running; a removal stopped half-way holds it this long.
 */
const CLAIM_TTL = 30;
/** How long a removal waits for another's (ms): well past one's work. */
const CLAIM_WAIT = 10_000;

export class WaysIn {
  constructor(
    private readonly kv: Kv,
    private readonly accounts: Pick<Accounts, 'find'>,
    private readonly secondFactors: Pick<SecondFactors, 'summary'>,
    private readonly links: Pick<UpstreamLinks, 'list'>,
    private readonly upstreams: Pick<Upstreams, 'list'>,
  ) {}

  /** The person's ways in, read now. */
  async of(sub: string): Promise<Ways> {
    const [account, { passkeys }, links, offered] = await Promise.all([this.accounts.find(sub), this.secondFactors.summary(sub), this.links.list(sub), this.upstreams.list()]);
    return {
      password: Boolean(account?.passwordHash),
      passkeys: passkeys.map((passkey) => passkey.id),
      links: links.map((link) => link.id),
      linksSigningIn: links.filter((link) => upstreamOf(link, offered)).map((link) => link.id),
    };
  }

  /**
   * Runs `removal` with the person's ways in as they are now, holding their claim until it answers:
   * what it decides from them (that another way stays) holds until its removal is written, as no other
   * removal of a way of theirs runs meanwhile. STILL_HELD when another removal held the claim all the
   * while this one waited.
   */
  removing<T>(sub: string, removal: (ways: Ways) => Promise<T>): Promise<T | typeof STILL_HELD> {
    return holding(this.kv, waysInLockKey(sub), async () => removal(await this.of(sub)), { ttl: CLAIM_TTL, wait: CLAIM_WAIT });
  }
}
