/**
 * Epoch seconds, the unit of a token's `iat` and of every cutoff (revocation/list.ts,
 * accounts.ts endedAt), and waiting for the next one.
 *
 * One clock for every process of a deployment: the store's. A cutoff ("issued at or before this
 * second") is written by one process (an instance, a worker, the CLI on an operator's machine) and
 * compared with times stamped by others (a token's `iat`, a consent's time), at introspection and
 * at every resource server. On each process's own clock, a writer whose clock was behind an
 * issuer's by a few seconds wrote a cutoff that every token the issuer stamped in those seconds
 * was after: a person disabled or a client removed with the CLI 30 s slow left the JWT access
 * tokens of the last 30 s working at every API (endings pass of 2026-12-02). So each process that
 * works on the store reads the store's clock (followStoreClock) and stamps and compares on it.
 */

/** Milliseconds to add to this process's clock to read the store's (followStoreClock); 0 until then, and on the embedded store. */
let offset = 0;
/**
 * The store's clock as last followed: the epoch milliseconds it read at the middle of the round trip
 * kept, and performance.now() then (storeMilliseconds counts on from it). Undefined until followed.
 */
let followed: { readonly store: number; readonly at: number } | undefined;

/**
 * Clocks that agree within this are taken to agree: what the measure itself can tell (a round trip
 * or less) is noise, and a process on the store's own host is not moved by it.
 */
export const CLOCK_AGREEMENT_MS = 50;

/** The epoch second now, on the store's clock. */
export const epochSeconds = (): number => Math.floor((Date.now() + offset) / 1000);

/**
 * The epoch second now on this machine's own clock: for what is compared with times the engine
 * stamped itself on it (a session's loginTs and exp), which the store's clock would move.
 */
export const machineSeconds = (): number => Math.floor(Date.now() / 1000);

/**
 * Epoch milliseconds now on the store's clock, counted on from its last reading on this process's
 * monotonic clock: a step of this machine's clock since then (NTP, a migrated VM) does not move it,
 * as it moves Date.now() plus the offset until the next follow. For a bound Redis compares with its
 * own clock (store/redis.ts, a consumption's): read off a clock stepped 10 s forward, the bound was
 * 10 s late, and a consumption Redis ran after its request's 503 spent the code (third session review).
 * This machine's clock until the store's is followed.
 */
export const storeMilliseconds = (): number => (followed ? followed.store + (performance.now() - followed.at) : Date.now() + offset);

/** Milliseconds this process's clock is behind the store's (negative: ahead), as applied. */
export const storeClockOffset = (): number => offset;

/**
 * Resolves once epoch second `second` has begun (at once if it has). An ending answers only once
 * its cutoff's second has passed: what is issued after it is then of a later second, which the
 * cutoff (at or before it: refused) does not catch.
 */
export function untilSecond(second: number): Promise<void> {
  const wait = second * 1000 - (Date.now() + offset);
  return wait > 0 ? new Promise((resolve) => setTimeout(resolve, wait)) : Promise.resolve();
}

/**
 * Reads the store's clock (`time`: its epoch milliseconds) three times and keeps the reading of the
 * shortest round trip: the offset is the store's time less this clock's at the round trip's middle,
 * good to half that round trip. One within CLOCK_AGREEMENT_MS (or the round trip) counts as none.
 * Returns the offset applied from now on.
 */
export async function followStoreClock(time: () => Promise<number>): Promise<number> {
  let best: { rtt: number; offset: number; store: number; at: number } | undefined;
  for (let sample = 0; sample < 3; sample += 1) {
    const sent = Date.now();
    const sentAt = performance.now();
    const store = await time();
    const receivedAt = performance.now();
    const received = Date.now();
    const rtt = receivedAt - sentAt;
    if (!best || rtt < best.rtt) best = { rtt, offset: store - (sent + received) / 2, store, at: (sentAt + receivedAt) / 2 };
  }
  const { rtt, offset: measured, store, at } = best!;
  offset = Math.abs(measured) <= Math.max(CLOCK_AGREEMENT_MS, rtt) ? 0 : Math.round(measured);
  followed = { store, at };
  return offset;
}
