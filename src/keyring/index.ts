/** The key ring as configured: where it lives, its schedule, and the running service. */
import { resolve } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../ops/logger.js';
import { CLOCK_TOLERANCE, longestAccessTokenLifetime, longestSignedLifetime } from '../lifetimes.js';
import type { Kv } from '../store/kv.js';
import type { RotationPolicy } from './lifecycle.js';
import { Sealer } from './sealing.js';
import { KeyringService } from './service.js';
import { FileRingStore, KvRingStore, type RingStore } from './stores.js';

/**
 * `published`: the longest lifetime of anything signed that any instance said in the store it may
 * still have alive (RevocationList lifetimes().signed): a process with shorter settings of its own
 * (the CLI run without the servers' TTL settings, a server restarted with lower ones) keeps a
 * retired key as long as those tokens live, not only its own (fifth fresh-eyes passes: a CLI's
 * `keys rotate` removed a key whose ID tokens had 11 minutes left, refused by every verifier).
 */
export function rotationPolicy(config: Config, published = 0): RotationPolicy {
  return {
    interval: config.keys.rotationInterval,
    lead: config.keys.publishLead,
    // A just-retired key may still sign on an instance that has not noticed yet (refreshInterval),
    // and what it signed stays valid for the longest lifetime, plus the skew verifiers allow.
    retention: Math.max(longestSignedLifetime(config), published) + CLOCK_TOLERANCE + Math.ceil(config.keys.refreshInterval),
  };
}

/** rotationPolicy with the longest lifetime the servers on the store published (the revocation list's lifetimes: no import of it here). */
export async function publishedRotationPolicy(config: Config, revocations: { lifetimes(): Promise<{ readonly signed: number }> }): Promise<RotationPolicy> {
  return rotationPolicy(config, (await revocations.lifetimes()).signed);
}

/**
 * Seconds a revoked key's entry on the revocation list must last: until every token it signed has
 * expired, and every verifier that follows the feed has dropped the key from its cached JWKS (we
 * serve it with max-age publishLead/2), and every instance has followed the ring; plus skew (added
 * by the list).
 */
export function keyRevocationHorizon(config: Config): number {
  return Math.max(longestAccessTokenLifetime(config), Math.floor(config.keys.publishLead / 2)) + Math.ceil(config.keys.refreshInterval);
}

/** Redis when the store is Redis (sealed), else keys/keyring.json. */
export function ringStore(config: Config, kv: Kv): RingStore {
  return kv.kind === 'redis' ? new KvRingStore(kv, new Sealer(config.keys.secrets)) : new FileRingStore(resolve(config.keys.dir));
}

export async function openKeyring(config: Config, kv: Kv, logger?: Logger): Promise<KeyringService> {
  return KeyringService.open({
    store: ringStore(config, kv),
    policy: rotationPolicy(config),
    rsaBits: config.keys.rsaBits,
    refreshInterval: config.keys.refreshInterval,
    ...(kv.kind === 'redis' ? { importFrom: new FileRingStore(resolve(config.keys.dir)) } : {}),
    ...(logger ? { logger } : {}),
  });
}
