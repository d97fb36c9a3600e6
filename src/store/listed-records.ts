/** Ending the records an index set lists (a grant's, a client's registration access tokens and pending requests). */
import type { Kv } from './kv.js';

/**
 * Deletes `members` (the records the set at `index` lists), then the set: the set only once every
 * record is gone. Sent together, a deletion that failed in part could delete the set and leave a
 * record, which nothing then finds again, so a removal run again ended nothing more and the
 * record outlived its ending (a client's registration access token managed a client made again
 * with the id). On Redis Cluster the set and each record live on their own master, so one master
 * failing over, or refusing the command, fails only its part (docs/security.md).
 */
export async function endMembers(kv: Kv, index: string, members: readonly string[]): Promise<void> {
  if (members.length) await kv.del(members);
  await kv.del([index]);
}

/** Deletes the records whose keys the set at `index` lists, and the set; returns how many there were. */
export async function endListed(kv: Kv, index: string): Promise<number> {
  const keys = await kv.members(index);
  await endMembers(kv, index, keys);
  return keys.length;
}

/** As endListed, but the record `keep` names and the set stay (for a later endListed to end). */
export async function endListedBut(kv: Kv, index: string, keep: string): Promise<void> {
  const keys = (await kv.members(index)).filter((key) => key !== keep);
  if (keys.length) await kv.del(keys);
}
