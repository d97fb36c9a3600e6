/** The key ring as configured: where it lives, its schedule, and the running service. */
import { resolve } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../ops/logger.js';
import { CLOCK_TOLERANCE, longestAccessTokenLifetime, longestSignedLifetime } from '../lifetimes.js';
import type { Kv } from '../store/kv.js';
import type { RotationPolicy } from './lifecycle.js';
import { Sealer } from './sealing.js';
import { KeyringService } from './service.js';
import { ringUsedElsewhere, ringUser } from '../store/control.js';
import { FileRingStore, KvRingStore, RingUnusable, type RingStore } from './stores.js';

/**
 * `published`: what the instances said in the store (RevocationList lifetimes()). `signed`: the
 * longest lifetime of anything signed that any instance may still have alive: a process with
 * shorter settings of its own (the CLI run without the servers' TTL settings, a server restarted
 * with lower ones) keeps a retired key as long as those tokens live, not only its own (fifth
 * fresh-eyes passes: a CLI's `keys rotate` removed a key whose ID tokens had 11 minutes left,
 * refused by every verifier). `refresh`: the longest `keys.refreshInterval` of the servers, how long
 * one of them may go on signing with a key retired elsewhere. `lead`: the longest `keys.publishLead` of the servers, whose JWKS is
 * cached half of it: a next key signs only once it has been published that long, whoever promotes
 * it (ninth fresh-eyes passes, keys and caches: the CLI run without the servers' KEYS_PUBLISH_LEAD
 * promoted a key their verifiers, caching the JWKS as told, did not know yet).
 */
export function rotationPolicy(config: Config, published: { readonly signed?: number; readonly lead?: number; readonly refresh?: number } = {}): RotationPolicy {
  const refresh = Math.max(config.keys.refreshInterval, published.refresh ?? 0);
  return {
    interval: config.keys.rotationInterval,
    lead: Math.max(config.keys.publishLead, published.lead ?? 0),
    // A just-retired key may still sign on an instance that has not noticed yet (refreshInterval),
    // and what it signed stays valid for the longest lifetime, plus the skew verifiers allow.
    retention: Math.max(longestSignedLifetime(config), published.signed ?? 0) + CLOCK_TOLERANCE + Math.ceil(refresh),
    refresh,
  };
}

/** What the servers said in the store (RevocationList lifetimes()). */
export interface LifetimesSaid {
  lifetimes(): Promise<{ readonly signed: number; readonly lead: number; readonly refresh: number }>;
}

/** rotationPolicy with the longest lifetime, publish lead and refresh interval the servers on the store published (the revocation list's lifetimes: no import of it here). */
export async function publishedRotationPolicy(config: Config, revocations: LifetimesSaid): Promise<RotationPolicy> {
  return rotationPolicy(config, await revocations.lifetimes());
}

/**
 * Seconds a revoked key's entry on the revocation list must last: until every token it signed has
 * expired, and every verifier that follows the feed has dropped the key from its cached JWKS (the
 * servers serve it with max-age publishLead/2: the longest lead they published, `published.lead`, when
 * it is longer than this process's own), and every instance has followed the ring (the longest
 * refresh interval they published, likewise); plus skew (added by the list).
 */
export function keyRevocationHorizon(config: Config, published: { readonly lead?: number; readonly refresh?: number } = {}): number {
  const lead = Math.max(config.keys.publishLead, published.lead ?? 0);
  return Math.max(longestAccessTokenLifetime(config), Math.floor(lead / 2)) + Math.ceil(Math.max(config.keys.refreshInterval, published.refresh ?? 0));
}

/**
 * Redis when the store is Redis (sealed), else keys/keyring.json: refused when a server running on
 * another embedded store uses that ring (a CLI given another EMBEDDED_FILE, or run on a store file no
 * server serves, rotated or revoked that server's keys while it said it acted on the other store).
 */
export async function ringStore(config: Config, kv: Kv): Promise<RingStore> {
  if (kv.kind === 'redis') return new KvRingStore(kv, new Sealer(config.keys.secrets));
  const other = await ringUsedElsewhere(config);
  if (other) {
    throw new RingUnusable(
      `keys.dir (KEYS_DIR): ${other.ring} is the signing key ring of the latchkey server at ${other.issuer} (pid ${other.pid}, on ${other.file}), not of ${resolve(config.embedded.file)}: unset EMBEDDED_FILE to act on that server, or give this store its own KEYS_DIR (as its server is given)`,
    );
  }
  return new FileRingStore(resolve(config.keys.dir));
}

/** `published`: what the servers said in the store (publishedRotationPolicy), planned with from the first maintenance, at open, on. */
export async function openKeyring(config: Config, kv: Kv, logger?: Logger, published?: LifetimesSaid): Promise<KeyringService> {
  return KeyringService.open({
    ...(published ? { policyNow: () => publishedRotationPolicy(config, published) } : {}),
    store: await ringStore(config, kv),
    policy: rotationPolicy(config),
    rsaBits: config.keys.rsaBits,
    refreshInterval: config.keys.refreshInterval,
    ...(kv.kind === 'redis' ? { importFrom: new ImportedRing(config, logger) } : {}),
    ...(logger ? { logger } : {}),
  });
}

/**
 * keys/keyring.json as a server on Redis imports it when the store holds no ring, unless a running
 * embedded server (one from the same directory) signs with it: the two issuers signed with one private
 * key, and a key revoked or rotated on Redis went on signing there (twelfth newcomer pass). Said, as
 * the store then makes a ring of its own.
 */
class ImportedRing extends FileRingStore {
  constructor(
    private readonly config: Config,
    private readonly logger: Logger | undefined,
  ) {
    super(resolve(config.keys.dir));
  }

  override async readRaw(): Promise<string | undefined> {
    const user = await ringUser(this.config);
    if (!user) return super.readRaw();
    this.logger?.warn(
      { ring: user.ring, pid: user.pid },
      `not importing the signing keys of ${user.ring}: the latchkey server at ${user.issuer} (pid ${user.pid}, on the embedded store ${user.file}) signs with them; the store gets a key ring of its own (stop that server first to move its keys to Redis)`,
    );
    return undefined;
  }
}
