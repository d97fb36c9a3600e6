/**
 * The rotation schedule as pure functions of (key ring, time, policy), so that the rules can be
 * read in one place and tested without waiting:
 *
 * - There is always one `current` key and one `next` key. A ring without a next key gets one,
 *   published at once.
 * - The next key becomes current when the current one has signed for `interval` seconds (on a
 *   schedule; 0 = only on demand), and never before it has been published for `lead` seconds:
 *   a verifier that caches our JWKS for less than that has seen it before it meets a token it
 *   signed. The current key becomes retired at the same moment, and a new next key is made.
 * - A retired key is removed `retention` seconds after it retired: the longest lifetime of a
 *   token it could have signed, plus clock skew and the time instances take to notice.
 * - A revoked key (compromised: `latchkey keys revoke`) leaves the ring at once, whatever its
 *   state. If it was the current key, the next key signs at once (it is published, so verifiers
 *   know it), or a brand-new key if the next key is revoked too; a new next key is made.
 */
import { generateKey, Keyring, type StoredKey } from './keyring.js';

export interface RotationPolicy {
  /** Seconds a key signs before the next one replaces it; 0: only on demand. */
  readonly interval: number;
  /** Seconds a new key is published before it may sign. */
  readonly lead: number;
  /** Seconds a retired key stays published. */
  readonly retention: number;
  /**
   * Seconds an instance may go without looking at the ring (the longest keys.refreshInterval of the
   * servers): a key written to the ring is in every instance's JWKS that long after, not before.
   */
  readonly refresh: number;
}

export interface Plan {
  /** Make a current key (an empty ring). */
  readonly bootstrap: boolean;
  /** next → current, current → retired. */
  readonly promote: boolean;
  /** kids of keys to remove: retired ones on schedule, any revoked one. */
  readonly remove: readonly string[];
  /** Make a next key (none exists, or promotion uses it up). */
  readonly addNext: boolean;
}

export class RotationError extends Error {
  override name = 'RotationError';
}

/** A forced rotation asked before every instance publishes the next key: it may go ahead at `until` (epoch ms). */
export class NextKeyNotPublishedEverywhere extends RotationError {
  override name = 'NextKeyNotPublishedEverywhere';
  constructor(
    message: string,
    readonly until: number,
  ) {
    super(message);
  }
}

/** A look at the ring comes a moment after `refresh`: each instance waits that long after its last look ended. */
const LOOK_SLACK_MS = 1_000;

const at = (iso: string | undefined) => (iso ? Date.parse(iso) : Number.NaN);

/** When a next key may start signing: `lead` seconds after it was published. */
export function usableFrom(key: StoredKey, policy: RotationPolicy): number {
  return at(key.createdAt) + policy.lead * 1000;
}

/**
 * When every instance publishes a key: `refresh` seconds (and a moment) after it was written to
 * the ring. Until then a verifier's one refetch on its unknown kid (jose: then a 30 s cooldown;
 * openid-client: 60 s) may land on an instance that does not serve it yet. `readAt` is when this
 * process first read the key in the ring, by its own clock: it was written before then, whatever
 * its createdAt says (written by a machine whose clock runs ahead, a day or a year).
 */
export function publishedEverywhereFrom(key: StoredKey, policy: RotationPolicy, readAt = Number.POSITIVE_INFINITY): number {
  return Math.min(at(key.createdAt), readAt) + policy.refresh * 1000 + LOOK_SLACK_MS;
}

/** When a retired key leaves the JWKS. */
export function removeAfter(key: StoredKey, policy: RotationPolicy): number {
  return at(key.retiredAt) + policy.retention * 1000;
}

/** When the scheduled rotation will promote the next key (undefined: on demand only). */
export function rotatesAt(ring: Keyring, policy: RotationPolicy): number | undefined {
  const { current, next } = ring;
  if (!policy.interval || !current) return undefined;
  const due = at(current.activatedAt ?? current.createdAt) + policy.interval * 1000;
  return next ? Math.max(due, usableFrom(next, policy)) : due;
}

/** What the schedule asks for at `now` (epoch ms). */
export function plan(ring: Keyring | undefined, now: number, policy: RotationPolicy): Plan {
  const keys = ring?.keys ?? [];
  const current = ring?.current;
  const next = ring?.next;
  const due = ring ? rotatesAt(ring, policy) : undefined;
  const promote = Boolean(current && next && due !== undefined && now >= due);
  const remove = keys.filter((key) => key.state === 'retired' && now >= removeAfter(key, policy)).map((key) => key.kid);
  return { bootstrap: !current, promote, remove, addNext: !next || promote };
}

export function isEmpty(work: Plan): boolean {
  return !work.bootstrap && !work.promote && !work.addNext && work.remove.length === 0;
}

/**
 * The plan for `latchkey keys rotate`: promote the next key now. Refused while the next key has
 * been published for less than `lead` (verifiers may not know it yet) unless `force` (--now):
 * verifiers that cached the JWKS then refetch it on the unknown kid. Either way the old key stays
 * published and trusted until it is removed on schedule; a compromised key is revoked instead.
 */
export function planRotation(ring: Keyring, now: number, policy: RotationPolicy, force: boolean, nextReadAt?: number): Plan {
  const { next } = ring;
  const compromised = 'If the current key is compromised, run `latchkey keys revoke <kid>` instead';
  if (!force && !next) throw new RotationError(`no next key is published yet; pass --now to rotate anyway. ${compromised}`);
  if (!force && next && now < usableFrom(next, policy)) {
    throw new RotationError(
      `the next key ${next.kid} has been published since ${next.createdAt}; it may sign from ` +
        `${new Date(usableFrom(next, policy)).toISOString()} (keys.publishLead), so verifiers that cache the JWKS know it. ` +
        `Run again then, or pass --now. ${compromised}`,
    );
  }
  // --now skips the verifiers' cache (they refetch on the unknown kid), never the instances' look at
  // the ring: a next key made a moment ago (by a forced rotation just before, perhaps one whose answer
  // a blip lost and which is run again) is not yet in every instance's JWKS, where that refetch may land.
  if (force && next && now < publishedEverywhereFrom(next, policy, nextReadAt)) {
    const until = publishedEverywhereFrom(next, policy, nextReadAt);
    throw new NextKeyNotPublishedEverywhere(
      `the next key ${next.kid} was written to the key ring at ${next.createdAt}; every server publishes it from ${new Date(until).toISOString()} (keys.refreshInterval)`,
      until,
    );
  }
  const base = plan(ring, now, policy);
  return { ...base, bootstrap: !ring.current, promote: Boolean(ring.current), addNext: true };
}

/**
 * The plan for `latchkey keys revoke`: the keys leave the ring at once. Refused for a kid the ring
 * does not hold (a typo must not look like success). The rest of the schedule is left for later.
 */
export function planRevocation(ring: Keyring, kids: readonly string[]): Plan {
  const unknown = kids.filter((kid) => !ring.keys.some((key) => key.kid === kid));
  if (unknown.length) throw new RotationError(`no key ${unknown.join(', ')} in the ring (\`latchkey keys list\` shows the kids)`);
  const revoked = (key: StoredKey | undefined) => key !== undefined && kids.includes(key.kid);
  const { current, next } = ring;
  const replaceCurrent = !current || revoked(current);
  return {
    // The published next key takes over; a brand-new one when the next key goes too.
    bootstrap: replaceCurrent && (!next || revoked(next)),
    promote: replaceCurrent && next !== undefined && !revoked(next),
    remove: [...new Set(kids)],
    addNext: true,
  };
}

/** Carries out a plan: returns the new ring (the input is not changed). */
export async function apply(ring: Keyring | undefined, work: Plan, now: number, rsaBits: number): Promise<Keyring> {
  const iso = new Date(now).toISOString();
  // Removed first, so that a revoked current or next key is never promoted.
  let keys: StoredKey[] = (ring?.keys ?? []).filter((key) => !work.remove.includes(key.kid));
  if (work.bootstrap) {
    keys = keys.filter((key) => key.state !== 'current');
    keys.push(await generateKey(rsaBits, 'current', now));
  }
  if (work.promote) {
    const next = keys.find((key) => key.state === 'next');
    // A forced rotation without a published next key has to sign with a brand new one.
    const successor = next ?? (await generateKey(rsaBits, 'current', now));
    keys = keys
      .filter((key) => key !== next)
      .map((key) => (key.state === 'current' ? { ...key, state: 'retired' as const, retiredAt: iso } : key));
    keys.push({ ...successor, state: 'current', activatedAt: iso });
  }
  if (work.addNext && !keys.some((key) => key.state === 'next')) keys.push(await generateKey(rsaBits, 'next', now));
  return new Keyring(keys);
}

/** A key as `latchkey keys list` shows it, with the dates the schedule gives it. */
export function describeRing(ring: Keyring, policy: RotationPolicy) {
  const rotation = rotatesAt(ring, policy);
  return ring.keys.map((key) => ({
    kid: key.kid,
    alg: key.jwk.alg,
    state: key.state,
    createdAt: key.createdAt,
    ...(key.activatedAt ? { activatedAt: key.activatedAt } : {}),
    ...(key.retiredAt ? { retiredAt: key.retiredAt } : {}),
    ...(key.state === 'next' ? { usableFrom: new Date(usableFrom(key, policy)).toISOString() } : {}),
    ...(key.state === 'next' && rotation !== undefined ? { rotatesAt: new Date(rotation).toISOString() } : {}),
    ...(key.state === 'retired' ? { removeAfter: new Date(removeAfter(key, policy)).toISOString() } : {}),
  }));
}
