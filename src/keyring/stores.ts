/**
 * Where the key ring lives. With Redis: one durable key in the shared store, private parts sealed
 * (sealing.ts), written only by compare-and-set under a lock, so instances never lose each other's
 * changes. Without Redis: keys/keyring.json (mode 0600), guarded by a lock file, for one instance
 * and the CLI next to it.
 *
 * Both stores hand out the raw stored text with the parsed ring, so a poller can tell "changed"
 * from "unchanged" by comparing text, without decrypting.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { JWK } from 'jose';
import type { Kv } from '../store/kv.js';
import { KEYRING_KEY, KEYRING_LOCK_KEY } from '../store/keys.js';
import { checkKey, Keyring, toPublic, type KeyState, type StoredKey } from './keyring.js';
import type { Sealer } from './sealing.js';

export interface RingSnapshot {
  /** The stored text, for change detection. */
  readonly raw: string;
  readonly ring: Keyring;
}

export const LOCKED = Symbol('locked');

/**
 * A key ring that cannot be used where it is kept (a file that is not a ring, `keys.dir` naming a
 * file, a stored ring damaged): the operator's to fix, so it is one line, not a stack trace.
 */
export class RingUnusable extends Error {
  override name = 'RingUnusable';
}

/** The key ring file could not be read or written: which file, what the system said, and the setting. */
function fileFailure(action: 'read' | 'write', file: string, error: unknown): RingUnusable {
  const reason = (error as Error).message;
  return new RingUnusable(`keys.dir (KEYS_DIR): cannot ${action} the key ring ${file} (${reason}); expected a directory Latchkey can ${action}`, { cause: error });
}

/** Seconds a lock may be held before it is presumed abandoned (a crashed holder). */
const LOCK_SECONDS = 60;

export interface RingStore {
  /** For messages: "redis" or the file's path. */
  readonly description: string;
  readRaw(): Promise<string | undefined>;
  parse(raw: string): Promise<Keyring>;
  /**
   * Replaces the stored ring if it is still `previous` (undefined: none yet); undefined if it is not.
   * Stored with `generation` (ringGeneration), by default one more than `previous`'s.
   */
  write(ring: Keyring, previous: string | undefined, generation?: number): Promise<RingSnapshot | undefined>;
  /** Runs `work` holding the ring's lock; LOCKED (without running it) while someone else holds it. */
  locked<T>(work: () => Promise<T>): Promise<T | typeof LOCKED>;
  /** Whether the stored text should be rewritten though the ring did not change (re-sealing). */
  needsRewrite(raw: string): boolean;
}

/**
 * How many writes the stored ring `raw` is from the first (each write stores one more than the ring
 * it replaced): a ring of a lower generation than the one in service is an older one, a store gone
 * back in time (KeyringService #cameBack). 0 for none, and for a ring written without one (before
 * generations, or by a server of an earlier release during an upgrade), which is never called older.
 */
export function ringGeneration(raw: string | undefined): number {
  if (raw === undefined) return 0;
  try {
    const { generation } = JSON.parse(raw) as { generation?: unknown };
    return Number.isSafeInteger(generation) && (generation as number) > 0 ? (generation as number) : 0;
  } catch {
    return 0;
  }
}

export async function readRing(store: RingStore): Promise<RingSnapshot | undefined> {
  const raw = await store.readRaw();
  return raw === undefined ? undefined : { raw, ring: await store.parse(raw) };
}

const STATES = new Set<KeyState>(['next', 'current', 'retired']);

interface Dated {
  readonly kid: string;
  readonly state: KeyState;
  readonly createdAt: string;
  readonly activatedAt?: string;
  readonly retiredAt?: string;
}

function dates(entry: unknown, where: string): Dated {
  const { kid, state, createdAt, activatedAt, retiredAt } = (entry ?? {}) as Record<string, unknown>;
  const iso = (value: unknown) => typeof value === 'string' && !Number.isNaN(Date.parse(value));
  if (typeof kid !== 'string' || !STATES.has(state as KeyState) || !iso(createdAt)) {
    throw new RingUnusable(`${where} is not a Latchkey key ring (a key without kid, state or createdAt)`);
  }
  return {
    kid,
    state: state as KeyState,
    createdAt: createdAt as string,
    ...(iso(activatedAt) ? { activatedAt: activatedAt as string } : {}),
    ...(iso(retiredAt) ? { retiredAt: retiredAt as string } : {}),
  };
}

/**
 * Rings written before keys had a next state or dates: a current key without activatedAt became
 * current when it was made, and a retired key was retired when its successor was made (that is
 * what `keys generate` did).
 */
function withLegacyDates(keys: StoredKey[]): StoredKey[] {
  const current = keys.find((key) => key.state === 'current');
  return keys.map((key) => {
    if (key.state === 'current' && !key.activatedAt) return { ...key, activatedAt: key.createdAt };
    if (key.state === 'retired' && !key.retiredAt) return { ...key, retiredAt: current?.createdAt ?? key.createdAt };
    return key;
  });
}

async function checked(keys: StoredKey[], where: string): Promise<Keyring> {
  if (!keys.length) throw new RingUnusable(`${where} holds no keys`);
  if (keys.filter((key) => key.state === 'current').length > 1) throw new RingUnusable(`${where} has more than one current key`);
  // A kid names one key (its thumbprint, so one entry twice is one key in two states): the engine
  // refused such a ring with a stack trace at start, and a running server took it into its JWKS,
  // where oauth4webapi and openid-client find two keys for the kid and refuse every token it signs.
  const twice = keys.find((key, index) => keys.findIndex((other) => other.kid === key.kid) !== index);
  if (twice) throw new RingUnusable(`${where} holds the key ${twice.kid} twice; keep one entry for it`);
  for (const key of keys) await checkKey(key);
  return new Keyring(withLegacyDates(keys));
}

/** keys/keyring.json: private JWKs in clear, so the file is mode 0600 in a 0700 directory. */
export class FileRingStore implements RingStore {
  readonly file: string;
  readonly description: string;

  constructor(dir: string) {
    this.file = join(dir, 'keyring.json');
    this.description = this.file;
  }

  async readRaw(): Promise<string | undefined> {
    try {
      const mode = statSync(this.file).mode & 0o777;
      if (mode & 0o077) chmodSync(this.file, 0o600); // never leave private keys readable by others
      return await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fileFailure('read', this.file, error);
    }
  }

  async parse(raw: string): Promise<Keyring> {
    let parsed: { version?: unknown; keys?: unknown };
    try {
      parsed = JSON.parse(raw) as typeof parsed;
    } catch {
      throw new RingUnusable(`${this.file} is not a Latchkey key ring (not JSON)`);
    }
    if (parsed.version !== 1 || !Array.isArray(parsed.keys)) throw new RingUnusable(`${this.file} is not a Latchkey key ring`);
    const keys = parsed.keys.map((entry: { jwk?: JWK }) => ({ ...dates(entry, this.file), jwk: entry.jwk ?? {} }));
    return checked(keys, this.file);
  }

  async write(ring: Keyring, previous: string | undefined, generation = ringGeneration(previous) + 1): Promise<RingSnapshot | undefined> {
    if ((await this.readRaw()) !== previous) return undefined;
    const raw = `${JSON.stringify({ version: 1, generation, keys: ring.keys }, null, 2)}\n`;
    try {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      const temporary = `${this.file}.${process.pid}.tmp`;
      writeFileSync(temporary, raw, { mode: 0o600 });
      renameSync(temporary, this.file);
    } catch (error) {
      throw fileFailure('write', this.file, error);
    }
    return { raw, ring };
  }

  async locked<T>(work: () => Promise<T>): Promise<T | typeof LOCKED> {
    const lock = `${this.file}.lock`;
    let fd: number;
    try {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      fd = openSync(lock, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw fileFailure('write', this.file, error);
      const abandoned = existsSync(lock) && Date.now() - statSync(lock).mtimeMs > LOCK_SECONDS * 1000;
      if (!abandoned) return LOCKED;
      unlinkSync(lock);
      return this.locked(work);
    }
    closeSync(fd);
    try {
      return await work();
    } finally {
      try {
        unlinkSync(lock);
      } catch {
        // already gone
      }
    }
  }

  needsRewrite(): boolean {
    return false;
  }

  /** For an upgrade to Redis: the ring this directory holds, if any (synchronous, at start). */
  hasRing(): boolean {
    return existsSync(this.file) && readFileSync(this.file, 'utf8').trim().length > 0;
  }
}

/**
 * The ring in the shared store, one durable key: dates, the public JWK (for people inspecting
 * Redis; what we publish is derived from the opened private key) and the sealed private JWK.
 */
export class KvRingStore implements RingStore {
  readonly description = 'the shared store';

  constructor(
    private readonly kv: Kv,
    private readonly sealer: Sealer,
  ) {}

  async readRaw(): Promise<string | undefined> {
    return this.kv.get(KEYRING_KEY);
  }

  async parse(raw: string): Promise<Keyring> {
    const where = 'the key ring in the shared store';
    let parsed: { format?: unknown; keys?: unknown };
    try {
      parsed = JSON.parse(raw) as typeof parsed;
    } catch {
      throw new RingUnusable(`${where} is not JSON`);
    }
    if (parsed.format !== 1 || !Array.isArray(parsed.keys)) throw new RingUnusable(`${where} has an unknown format`);
    const keys = parsed.keys.map((entry: { sealed?: unknown }) => {
      const dated = dates(entry, where);
      if (typeof entry.sealed !== 'string') throw new RingUnusable(`${where}: key ${dated.kid} has no sealed private key`);
      return { ...dated, jwk: this.sealer.open(dated.kid, entry.sealed) };
    });
    return checked(keys, where);
  }

  async write(ring: Keyring, previous: string | undefined, generation = ringGeneration(previous) + 1): Promise<RingSnapshot | undefined> {
    const raw = JSON.stringify({
      format: 1,
      generation,
      keys: ring.keys.map(({ jwk, ...dated }) => ({ ...dated, public: toPublic(jwk), sealed: this.sealer.seal(dated.kid, jwk) })),
    });
    return (await this.kv.compareAndSet(KEYRING_KEY, previous, raw)) ? { raw, ring } : undefined;
  }

  async locked<T>(work: () => Promise<T>): Promise<T | typeof LOCKED> {
    const token = randomUUID();
    if (!(await this.kv.set(KEYRING_LOCK_KEY, token, { ttl: LOCK_SECONDS, onlyIfAbsent: true }))) return LOCKED;
    try {
      return await work();
    } finally {
      await this.kv.deleteIfEquals(KEYRING_LOCK_KEY, token).catch(() => {});
    }
  }

  needsRewrite(raw: string): boolean {
    const { keys } = JSON.parse(raw) as { keys: { sealed: string }[] };
    return keys.some(({ sealed }) => !this.sealer.isCurrent(sealed));
  }
}
