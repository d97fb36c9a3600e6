/**
 * The configuration's clients (CLIENTS) as the instance that last started with another set of them
 * saw them: a change made by editing the configuration and restarting is then told apart from none,
 * and ends what the same change written through the admin API, CLI or RFC 7592 ends
 * (provider/client-endings.ts configuredClientsChanged). One durable key holds every configured client's
 * metadata by id, its secret by digest only (as a stored client's record keeps it: storedClient).
 */
import { isDeepStrictEqual } from 'node:util';
import type { AdapterPayload } from 'oidc-provider';
import { loadedClient, storedClient } from './record-keys.js';
import { CONFIGURED_CLIENTS_KEY } from './keys.js';
import type { Kv } from './kv.js';

type Metadata = Record<string, unknown>;

/** What changed between the clients recorded and those configured now, by id. */
export interface ConfiguredClientChanges {
  /** Recorded and configured, with other metadata: as a stored client's record is loaded (its secret a handle to its digest), and as configured now. */
  readonly replaced: readonly { readonly clientId: string; readonly previous: Metadata; readonly next: Metadata }[];
  /** Recorded, and in the configuration no more. */
  readonly removed: readonly string[];
  /**
   * Records the clients configured now in place of those compared with, unless another instance
   * recorded others since (false then: it compared and ended what it found, or starts with another
   * configuration; nothing is written).
   */
  record(): Promise<boolean>;
}

/** The configured clients as they are recorded: each stored as the adapter stores it, by client_id. */
function recordOf(clients: readonly Metadata[]): Record<string, AdapterPayload> {
  return Object.fromEntries(clients.map((client) => [String(client.client_id), storedClient({ ...client } as AdapterPayload)]));
}

/**
 * After the store lost everything (keyring/service.ts afterLoss): records the clients this instance
 * is configured with, only while no record is there, so that a start with a client changed or
 * removed since still ends what it was issued after the loss. True when written.
 */
export async function recordConfiguredClientsAgain(kv: Kv, clients: readonly Metadata[]): Promise<boolean> {
  return kv.compareAndSet(CONFIGURED_CLIENTS_KEY, undefined, JSON.stringify(recordOf(clients)));
}

/**
 * Compares the clients configured now with those recorded. None recorded (the first start of a
 * release that keeps them): nothing changed, and they are recorded as they are.
 */
export async function configuredClientChanges(kv: Kv, clients: readonly Metadata[]): Promise<ConfiguredClientChanges> {
  const text = await kv.get(CONFIGURED_CLIENTS_KEY);
  const recorded = text === undefined ? undefined : (JSON.parse(text) as Record<string, AdapterPayload>);
  const now = recordOf(clients);
  const next = JSON.stringify(now);
  const replaced = Object.entries(now).flatMap(([clientId, stored]) => {
    const before = recorded?.[clientId];
    return before && !isDeepStrictEqual(before, stored) ? [{ clientId, previous: loadedClient(before) as Metadata, next: clients.find((client) => String(client.client_id) === clientId)! }] : [];
  });
  const removed = Object.keys(recorded ?? {}).filter((clientId) => !(clientId in now));
  return {
    replaced,
    removed,
    // Another instance that recorded the same clients first (started at once) is as good.
    record: async () => text === next || (await kv.compareAndSet(CONFIGURED_CLIENTS_KEY, text, next)) || (await kv.get(CONFIGURED_CLIENTS_KEY)) === next,
  };
}
