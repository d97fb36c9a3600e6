/**
 * Sign-ins waiting for their upstream to send the person back, kept server-side by `state` for
 * upstreams.stateTtl seconds and consumed once: a replayed callback finds its state spent.
 *
 * Layout: upstream:state:<state> → record {upstream, issuer?, made?, uid, nonce, verifier, maxAge?, fresh?, startedAt?}, with a TTL.
 */
import type { Kv } from '../store/kv.js';
import { upstreamStateKey } from '../store/keys.js';

export interface PendingSignIn {
  readonly upstream: string;
  /**
   * The issuer the person was sent to (absent in records made before it was kept): the callback goes
   * on only with that provider, not another one the id was given to since.
   */
  readonly issuer?: string;
  /**
   * The addition of the upstream the person was sent to (Upstream.made; '' for one added before it was
   * kept; absent in records made before this was): the callback goes on only while that addition
   * stands, not after the upstream was removed and added again, even under the same issuer.
   */
  readonly made?: string;
  /** The interaction (Latchkey's own authorization request) that continues after the upstream. */
  readonly uid: string;
  readonly nonce: string;
  readonly verifier: string;
  /** The app's max_age, when it asked one (checked against the upstream's auth_time). */
  readonly maxAge?: number;
  /** Whether the upstream was asked for a fresh sign-in (prompt=login and max_age=0). */
  readonly fresh?: boolean;
  /** When a fresh sign-in was asked (epoch seconds). */
  readonly startedAt?: number;
}

const STATE = /^[\w-]{16,128}$/;

export class PendingSignIns {
  constructor(
    private readonly kv: Kv,
    private readonly ttl: number,
  ) {}

  async save(state: string, pending: PendingSignIn): Promise<void> {
    await this.kv.putRecord(upstreamStateKey(state), JSON.stringify(pending), this.ttl);
  }

  /** The pending sign-in of this state, taken once; 'spent' for a replay, 'unknown' for a state never issued or expired. */
  async take(state: string): Promise<PendingSignIn | 'spent' | 'unknown'> {
    if (!STATE.test(state)) return 'unknown';
    const outcome = await this.kv.consumeRecord(upstreamStateKey(state), Date.now() / 1000);
    if (outcome === 'already-consumed') return 'spent';
    const record = outcome === 'consumed' ? await this.kv.getRecord(upstreamStateKey(state)) : undefined;
    return record ? (JSON.parse(record.payload) as PendingSignIn) : 'unknown';
  }
}
