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
 * and renewal take no claim; adding a way in takes none either (it leaves more, never fewer).
 */
import type { Accounts } from './accounts.js';
import type { UpstreamLinks } from './links.js';
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
}

/** How many ways in `ways` holds. */
export const countOf = (ways: Ways): number => (ways.password ? 1 : 0) + ways.passkeys.length + ways.links.length;

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
  ) {}

  /** The person's ways in, read now. */
  async of(sub: string): Promise<Ways> {
    const [account, { passkeys }, links] = await Promise.all([this.accounts.find(sub), this.secondFactors.summary(sub), this.links.list(sub)]);
    return { password: Boolean(account?.passwordHash), passkeys: passkeys.map((passkey) => passkey.id), links: links.map((link) => link.id) };
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
