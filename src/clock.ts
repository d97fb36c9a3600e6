/**
 * Epoch seconds, the unit of a token's `iat` and of every cutoff (revocation/list.ts,
 * accounts.ts endedAt), and waiting for the next one.
 */

/** The epoch second now. */
export const epochSeconds = (): number => Math.floor(Date.now() / 1000);

/**
 * Resolves once epoch second `second` has begun (at once if it has). An ending answers only once
 * its cutoff's second has passed: what is issued after it is then of a later second, which the
 * cutoff (at or before it: refused) does not catch.
 */
export function untilSecond(second: number): Promise<void> {
  const wait = second * 1000 - Date.now();
  return wait > 0 ? new Promise((resolve) => setTimeout(resolve, wait)) : Promise.resolve();
}
