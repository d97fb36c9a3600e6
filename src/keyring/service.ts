/**
 * The key ring of a running instance: held in memory (signing and JWKS never wait for the store),
 * refreshed from the store every `refreshInterval` seconds so that a rotation made by another
 * instance or by `latchkey keys rotate` is used within seconds, without a restart. The same timer
 * runs the rotation schedule; the work is done under the ring's lock, so of many instances exactly
 * one performs a due rotation, and the others pick its result up.
 */
import { createHash } from 'node:crypto';
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import type { Logger } from '../ops/logger.js';
import { StoreBehind } from '../store/outage.js';
import type { Keyring } from './keyring.js';
import { apply, isEmpty, NextKeyNotPublishedEverywhere, plan, planRevocation, planRotation, RotationError, type RotationPolicy } from './lifecycle.js';
import { LOCKED, readRing, ringGeneration, type RingSnapshot, type RingStore } from './stores.js';

export interface KeyringServiceOptions {
  readonly store: RingStore;
  readonly policy: RotationPolicy;
  readonly rsaBits: number;
  /** Seconds between looks at the stored ring (and checks of the schedule). */
  readonly refreshInterval: number;
  /** Where the ring lived before, imported once when the store has none (keys/ when moving to Redis). */
  readonly importFrom?: RingStore;
  readonly logger?: Logger;
  /**
   * The policy to plan with (retainFor), from the start on: the first maintenance, at open, ran
   * with `policy` alone, so a server restarted with shorter settings than the others' removed, as
   * it started, a retired key their tokens still needed (ninth fresh-eyes passes, keys and caches).
   */
  readonly policyNow?: () => Promise<RotationPolicy>;
}

/** The public JWKS as served: body, validator and cache lifetime, computed once per ring. */
export interface PublishedJwks {
  /**
   * Served as a string, not as bytes: Node writes a string body in one piece with the head, but a
   * Buffer's after a copy of the head into a new backing store per answer (measured: more young
   * collections; docs/performance.md).
   */
  readonly body: string;
  readonly etag: string;
  /** Seconds verifiers may cache it: half the publish lead (the other half covers instances noticing). */
  readonly maxAge: number;
  /** The Cache-Control value that says so (`public, max-age=<maxAge>`). */
  readonly cacheControl: string;
}

/** How long a writer waits for a lock held by someone else before giving up. */
const LOCK_WAIT_MS = 30_000;
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
/** How long a signer waits for the ring replacing a revoked current key (KeyringService.ready), reading it every REPLACEMENT_POLL_MS. */
const REPLACEMENT_WAIT_MS = 2_000;
const REPLACEMENT_POLL_MS = 50;

/**
 * Reads the ring, lets `change` compute a new one from it, and writes that back, holding the lock
 * and with compare-and-set; waits while someone else holds the lock. Returns what is stored after.
 */
export async function updateRing(
  store: RingStore,
  change: (current: RingSnapshot | undefined, now: number) => Promise<Keyring | undefined>,
  waitMs = LOCK_WAIT_MS,
): Promise<RingSnapshot | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const outcome = await store.locked(async () => {
      const latest = await readRing(store);
      const ring = await change(latest, Date.now());
      if (!ring) return { done: latest };
      const written = await store.write(ring, latest?.raw);
      return written ? { done: written } : undefined; // lost a race with a lock-less writer: again
    });
    if (outcome !== LOCKED && outcome) return outcome.done;
    if (Date.now() > deadline) throw new RotationError(`the key ring in ${store.description} stayed locked by another process; try again`);
    await sleep(100 + Math.random() * 100);
  }
}

/**
 * `latchkey keys rotate`: next → current now (see planRotation for when that is refused). Forced
 * (`--now`) while the next key is not yet in every instance's JWKS, it waits until it is (at most
 * the servers' keys.refreshInterval, and a moment), outside the lock, saying so to `waiting`.
 */
export async function rotateRing(
  store: RingStore,
  policy: RotationPolicy,
  rsaBits: number,
  force: boolean,
  waiting?: (message: string) => void,
): Promise<{ before: Keyring; after: Keyring }> {
  // The next key as first read here, and when: the wait is bounded by that read, not only by its
  // createdAt, which another machine's clock wrote (one ahead made the wait as long, or, past
  // setTimeout's 24.8 days, a loop through the lock).
  let seen: { kid: string; at: number } | undefined;
  for (;;) {
    let before: Keyring | undefined;
    try {
      const after = await updateRing(store, async (latest, now) => {
        if (!latest) throw new RotationError('there is no key ring yet: `latchkey serve` creates it at its first start');
        before = latest.ring;
        const { next } = latest.ring;
        if (next && seen?.kid !== next.kid) seen = { kid: next.kid, at: now };
        return apply(latest.ring, planRotation(latest.ring, now, policy, force, next && seen?.at), now, rsaBits);
      });
      return { before: before!, after: after!.ring };
    } catch (error) {
      if (!(error instanceof NextKeyNotPublishedEverywhere)) throw error;
      const wait = Math.max(0, error.until - Date.now());
      waiting?.(`${error.message}: waiting ${Math.ceil(wait / 1000)} s`);
      await sleep(wait);
    }
  }
}

/**
 * `latchkey keys revoke`: the keys leave the ring now (see planRevocation). Every instance follows
 * within keys.refreshInterval: its JWKS, signing and verification drop them; and at its next
 * signature, which finds the kid entry first (ready). Tokens they signed are refused through the
 * revocation list (the caller writes its kid entries first).
 */
export async function revokeFromRing(store: RingStore, kids: readonly string[], rsaBits: number): Promise<{ before: Keyring; after: Keyring }> {
  let before: Keyring | undefined;
  const after = await updateRing(store, async (latest, now) => {
    if (!latest) throw new RotationError('there is no key ring yet: `latchkey serve` creates it at its first start');
    before = latest.ring;
    return apply(latest.ring, planRevocation(latest.ring, kids), now, rsaBits);
  });
  return { before: before!, after: after!.ring };
}

/**
 * What the provider asks before it signs (provider.ts, patches/revoked-key-signing.ts): which key
 * signs now, and whether that key may still sign.
 */
export interface SigningGate {
  /** Whether `kid` is the key that signs now (the current key of the newest ring this process holds). Synchronous: the engine picks its key so. */
  signsWith(kid: string): boolean;
  /**
   * Resolves once the key that signs now is not revoked; rejects (a store outage: 503) when it is
   * and the store holds no ring without it yet, or cannot be read. Called before the engine picks
   * its key.
   */
  ready(): Promise<void>;
}

/**
 * Nothing revoked is signed with: the ring's current key was revoked (the revocation list's kid
 * entry says so) and no ring without it could be read. A store outage for the caller (503 with
 * Retry-After, store/outage.ts): better than a token no verifier accepts.
 */
export class SigningKeyRevoked extends StoreBehind {
  override name = 'SigningKeyRevoked';
  constructor(kid: string, cause?: unknown) {
    super(`the signing key ${kid} is revoked and the key ring that replaces it could not be read`, { cause });
  }
}

export class KeyringService implements SigningGate {
  readonly #options: KeyringServiceOptions;
  #snapshot: RingSnapshot;
  #jwks: PublishedJwks;
  #verificationKeys: JWTVerifyGetKey;
  readonly #listeners: ((ring: Keyring) => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;
  /** Why refreshes failed since the last that did not: each reason said once, not once per tick. */
  readonly #failing = new Set<string>();
  /** The last read found no ring in the store (refresh). */
  #missing = false;
  /** What else the instance writes back when it writes back its ring (afterLoss). */
  readonly #afterLoss: (() => Promise<void>)[] = [];
  /** The ring was written back and the afterLoss listeners have not all run through yet: run at each look until they do. */
  #afterLossOwed = false;
  #changesMade = 0;
  /** The policy to plan with now (retainFor): the configured one until told otherwise. */
  #policyNow: () => Promise<RotationPolicy> = () => Promise.resolve(this.#options.policy);
  /** Whether a key is revoked (its kid entry), asked of each key written back after a loss (writeBackWithout); none: not asked. */
  #revokedForWriteBack: ((kid: string) => Promise<boolean>) | undefined;
  /** Whether a key is revoked, read where it costs no round trip (guardSigning); none: not checked. */
  #revoked: ((kid: string) => Promise<boolean>) | undefined;
  /** The reads of the ring that signers who met a revoked key wait for together (replacing). */
  #following: Promise<void> | undefined;
  /** A revoked current key whose replacing ring was waited for in vain (replacing): not waited for again. */
  #waitedOut: string | undefined;
  /**
   * Reads of the stored ring, numbered as they begin, and the number of the read whose ring is in
   * service: a read's ring is taken only if no read begun after it was taken first. The timer's look
   * and a signer's (ready, after a revocation) may run at once, and the one begun first may end last
   * (its ring opened, key by key, after the other's): taken last, it put an older ring back into
   * service, a key revoked since published again until the next look (twelfth fresh-eyes passes).
   */
  #reads = 0;
  #inService = 0;
  /**
   * The generation of the ring in service (ringGeneration): a stored ring of a lower one is older, a
   * store that went back in time (a Redis restarted on its last snapshot, a backup restored), never a
   * change (#cameBack). Before, a server refused a ring holding a key it had seen leave; one that had
   * not (started since) took the older ring in, then called the newer ring's keys come back when the
   * other wrote it back: it revoked the keys in service and the two wrote back over each other for
   * ever (review of the fifteenth passes, h6).
   */
  #generation: number;
  /** Ends again the keys a store that went back in time brought back (keysCameBack); none: nothing written. */
  #endAgain: ((kids: readonly string[]) => Promise<void>) | undefined;

  private constructor(options: KeyringServiceOptions, snapshot: RingSnapshot) {
    this.#options = options;
    if (options.policyNow) this.#policyNow = options.policyNow;
    this.#snapshot = snapshot;
    this.#generation = ringGeneration(snapshot.raw);
    this.#jwks = publish(snapshot.ring, options.policy);
    this.#verificationKeys = createLocalJWKSet(snapshot.ring.publicJwks());
  }

  /** Loads the ring, creating it (or importing it) when the store has none. */
  static async open(options: KeyringServiceOptions): Promise<KeyringService> {
    const { store, importFrom, policy, rsaBits, logger } = options;
    let snapshot = await readRing(store);
    if (!snapshot) {
      let generated: Keyring | undefined;
      snapshot = await updateRing(store, async (latest, now) => {
        generated = undefined;
        if (latest) return undefined; // another instance made it while we waited
        const imported = importFrom ? (await readRing(importFrom))?.ring : undefined;
        // Said with what to do next: the file, left, is imported again whenever the store holds no ring
        // (a Redis that lost everything), bringing back a key revoked since.
        if (imported) logger?.info({ from: importFrom!.description, to: store.description }, `importing the signing keys from ${importFrom!.description}: delete it once this server runs`);
        const ring = await apply(imported, plan(imported, now, policy), now, rsaBits);
        if (!imported) generated = ring;
        return ring;
      });
      // A first start says where its signing key went (keys/keyring.json without Redis): one line.
      if (generated?.current) logger?.info({ kid: generated.current.kid, store: store.description }, `generated a signing key (kid ${generated.current.kid}) into ${store.description}`);
    }
    const service = new KeyringService(options, snapshot!);
    await service.maintain();
    return service;
  }

  get ring(): Keyring {
    return this.#snapshot.ring;
  }

  get jwks(): PublishedJwks {
    return this.#jwks;
  }

  /** The public keys of the ring in service now: every published key (next, current, retired). */
  publicKeys(): JSONWebKeySet {
    return this.ring.publicJwks();
  }

  /**
   * The one verifier of what we signed, for everyone (the revocation feed, JWT introspection):
   * it looks a token's key up among the keys published now, reading the ring at call time.
   * Before, each provider instance and main.ts built their own from the ring of their time. The
   * sets are the same: a ring change publishes the new ring here at the moment it replaces the
   * provider, and a request still inside the replaced provider now verifies against the ring in
   * service, which differs from the old one only by keys added (a new next key, which signs
   * nothing yet) and keys removed because everything they signed has expired, or because they
   * were revoked (`latchkey keys revoke` lists their kids on the revocation list first, so their
   * tokens were refused either way).
   */
  verifier(): JWTVerifyGetKey {
    return (header, token) => this.#verificationKeys(header, token);
  }

  /** How many scheduled changes this instance has written (others' are picked up, not counted). */
  get changesMade(): number {
    return this.#changesMade;
  }

  /** Called with the new ring after every change (rotation here or elsewhere). */
  onChange(listener: (ring: Keyring) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Has ready() ask `revoked` whether the key that signs now is revoked (the revocation list's kid
   * entry, from the store's tracked cache: no round trip). Without it ready() asks nothing, and a
   * key revoked elsewhere signs here until the next refresh (keys.refreshInterval).
   */
  guardSigning(revoked: (kid: string) => Promise<boolean>): void {
    this.#revoked = revoked;
  }

  /**
   * Has the ring written back after a loss (#writtenBack) leave out the keys `revoked` names (the
   * revocation list's kid entries, read where they are: a round trip each on Redis Cluster, on that
   * rare path only).
   */
  writeBackWithout(revoked: (kid: string) => Promise<boolean>): void {
    this.#revokedForWriteBack = revoked;
  }

  /**
   * Has `endAgain` called with the keys an older stored ring holds that left the ring in service
   * since (the revocation list's kid entries written again: a store that went back in time lost
   * them with the ring), before the ring in service is written back over it (#cameBack).
   */
  keysCameBack(endAgain: (kids: readonly string[]) => Promise<void>): void {
    this.#endAgain = endAgain;
  }

  /**
   * Plans rotations and removals with `policy()` from now on: the configured policy with a retention
   * that covers the lifetimes other instances published (keyring/index.ts rotationPolicy).
   */
  retainFor(policy: () => Promise<RotationPolicy>): void {
    this.#policyNow = policy;
  }

  signsWith(kid: string): boolean {
    return kid === this.#snapshot.ring.current?.kid;
  }

  /**
   * Before anything is signed: when the current key is revoked (`latchkey keys revoke`, or
   * `keys rotate --revoke-current`, through another instance or the CLI: the kid entry is written
   * before the ring), the ring is read at once (one read for every signer waiting) and followed,
   * so that what is signed next is signed by the key that replaced it; never by the revoked one.
   * Between the kid entry and the ring (written a moment after), the ring is read again until it
   * comes, for up to 2 s (what a 503 asks a client to wait anyway), once per revoked key; then, or
   * when the store cannot be read, SigningKeyRevoked.
   */
  async ready(): Promise<void> {
    const revoked = this.#revoked;
    const kid = this.#snapshot.ring.current?.kid;
    if (!revoked || kid === undefined || !(await revoked(kid))) return;
    try {
      await (this.#following ??= this.#replacing(kid).finally(() => (this.#following = undefined)));
    } catch (error) {
      throw new SigningKeyRevoked(kid, error);
    }
    const now = this.#snapshot.ring.current?.kid;
    // The kid entry is written before the ring: between the two, nothing may sign.
    if (now === undefined || now === kid || (await revoked(now))) throw new SigningKeyRevoked(kid);
  }

  /**
   * Reads the ring until its current key is no longer `kid`, for up to REPLACEMENT_WAIT_MS: the CLI
   * writes the ring that replaces a revoked key a moment after its kid entry (a lock, a read, a new
   * key made), and a signer waits that moment out rather than answer 503 (the client would be told
   * to come back in 2 s).
   */
  async #replacing(kid: string): Promise<void> {
    // Waited out once already and no ring came (the CLI stopped between its two writes): one read
    // each, answered at once, until a ring comes. Each signer waiting 2 s again would pile them up.
    const deadline = this.#waitedOut === kid ? 0 : Date.now() + REPLACEMENT_WAIT_MS;
    for (;;) {
      await this.refresh();
      if (this.#snapshot.ring.current?.kid !== kid || this.#closed) return;
      if (Date.now() >= deadline) return void (this.#waitedOut = kid);
      await sleep(REPLACEMENT_POLL_MS);
    }
  }

  /**
   * `listener` runs when this instance writes its ring back into a store that lost it (#writtenBack):
   * the store lost everything, and what else the instance holds that a later start compares with
   * (the configuration's clients and APIs as recorded) is written back too. Run again at each look
   * until every listener succeeded (a blip then): each must write only what is absent.
   */
  afterLoss(listener: () => Promise<void>): void {
    this.#afterLoss.push(listener);
  }

  /** Starts following the store and running the schedule. */
  start(): void {
    if (this.#timer || this.#closed) return;
    const tick = () => {
      this.#running = this.#tick().finally(() => {
        this.#running = undefined;
        if (!this.#closed) this.#timer = setTimeout(tick, this.#options.refreshInterval * 1000).unref();
      });
    };
    this.#timer = setTimeout(tick, this.#options.refreshInterval * 1000).unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  /** Picks up the stored ring if it changed; true when it did. */
  async refresh(): Promise<boolean> {
    const read = ++this.#reads;
    const raw = await this.#options.store.readRaw();
    if (raw === undefined) {
      this.#missing = true; // the schedule writes back the ring in service (#writtenBack)
      return false;
    }
    this.#missing = false;
    if (raw === this.#snapshot.raw) {
      this.#inService = Math.max(this.#inService, read); // the ring in service is as new as this read
      return false;
    }
    const ring = await this.#options.store.parse(raw);
    if (read < this.#inService) return false; // a later read's ring is in service already (#adopt)
    if (this.#older(raw)) {
      await this.#cameBack(raw, ring);
      return false;
    }
    return this.#adopt({ raw, ring }, read);
  }

  /** Whether the stored ring `raw` is older than the ring in service (#generation). */
  #older(raw: string): boolean {
    const generation = ringGeneration(raw);
    return generation > 0 && generation < this.#generation;
  }

  /**
   * The store holds a ring older than the ring in service: it went back in time (a Redis without
   * appendonly killed and started again on its last snapshot, a backup restored), and with it the
   * revocation list's kid entries. Adopted, a revoked key was published and signed with again, and
   * what it signed before its revocation was valid again at introspection (fifteenth fresh-eyes
   * passes, endings). Not adopted: the keys it holds that the ring in service does not (they left it
   * since: revoked, or removed after their retention) have their kid entries written again
   * (endAgain); then the ring in service, less what the revocation list names (a `keys revoke` made
   * on the older ring), is written back over it with its own generation (compare-and-set on what was
   * read), so that a server holding a newer one still writes that back in turn, and every server
   * ends on the newest; the next look adopts what is there then.
   */
  async #cameBack(raw: string, ring: Keyring): Promise<void> {
    const { store, logger } = this.#options;
    const inService = this.#snapshot.ring;
    const kids = ring.keys.filter(({ kid }) => !inService.keys.some((key) => key.kid === kid)).map(({ kid }) => kid);
    if (kids.length) await this.#endAgain?.(kids);
    const generation = this.#generation;
    let read = 0;
    const written = await store.locked(async () => {
      read = ++this.#reads;
      return (await store.readRaw()) === raw ? store.write(await this.#withoutRevoked(inService), raw, generation) : undefined;
    });
    if (written === LOCKED || written === undefined) return;
    logger?.warn(
      { event: 'keys.came_back', keys: kids },
      `key ring: ${store.description} held an older key ring (generation ${ringGeneration(raw)}, this server's ${generation}${kids.length ? `, with keys that had left it: ${kids.join(', ')}` : ''}): it went back in time (Redis restarted on an older snapshot, a backup restored?); wrote back the ring this server signs with${kids.length ? ' and revoked them again' : ''}. Sign-outs and revocations made since that snapshot are undone: make them again`,
    );
    this.#adopt(written, read);
  }

  /** Does what the schedule asks for now, if anything (under the lock; another instance may do it). */
  async maintain(): Promise<boolean> {
    const { store, rsaBits } = this.#options;
    // Nothing due by this process's own settings, nothing due by the published ones (which only keep
    // retired keys longer): the published lifetimes are read only when something may be due.
    if (isEmpty(plan(this.ring, Date.now(), this.#options.policy)) && !store.needsRewrite(this.#snapshot.raw)) return false;
    const policy = await this.#policyNow();
    if (isEmpty(plan(this.ring, Date.now(), policy)) && !store.needsRewrite(this.#snapshot.raw)) return false;
    let read = 0;
    const outcome = await store.locked(async () => {
      read = ++this.#reads;
      const latest = await readRing(store);
      if (!latest || this.#older(latest.raw)) return undefined; // a store gone back in time: refresh writes back (#cameBack)
      const now = Date.now();
      const work = plan(latest.ring, now, policy);
      if (isEmpty(work) && !store.needsRewrite(latest.raw)) return latest;
      const ring = isEmpty(work) ? latest.ring : await apply(latest.ring, work, now, rsaBits);
      const written = await store.write(ring, latest.raw);
      if (written && !isEmpty(work)) this.#changesMade += 1;
      return written ?? latest;
    });
    return outcome !== LOCKED && outcome !== undefined && this.#adopt(outcome, read);
  }

  /** On-demand rotation from this instance (the CLI uses rotateRing directly). */
  async rotate(force = false): Promise<Keyring> {
    const { after } = await rotateRing(this.#options.store, await this.#policyNow(), this.#options.rsaBits, force);
    await this.refresh();
    return after;
  }

  async #tick() {
    try {
      await this.refresh();
      if (this.#missing) await this.#writtenBack();
      if (this.#afterLossOwed) await this.#afterLossDone();
      await this.maintain();
      if (this.#failing.size) this.#options.logger?.info('key ring: store reachable again');
      this.#failing.clear();
    } catch (error) {
      // Keep signing with what we have; say so once per reason, not once per tick. Once per outage
      // said only the first reason: a ring read half-written (not JSON), then whole but unusable (a kid
      // twice), never said the second, the one to fix (sixteenth passes, a rehearsal).
      const reason = (error as Error).message;
      if (!this.#failing.has(reason)) this.#options.logger?.error({ err: { message: reason } }, 'key ring: cannot refresh from the store');
      this.#failing.add(reason);
    }
  }

  /**
   * The store holds no ring while this instance signs with one: a Redis that lost everything
   * (restarted with nothing on disk, flushed, a replica promoted empty). Left so, the instance went
   * on signing with a key no operator could list, rotate or revoke (`keys revoke`: "no key ring
   * yet"), the schedule rotated nothing, and a server started meanwhile made a ring of its own,
   * which this one then adopted, dropping the key it had signed with since the loss (its tokens no
   * longer verified anywhere). Written back as it is in service, only while the store has none
   * (under the lock, and compare-and-set on its absence): what another instance wrote first is
   * adopted at the next refresh instead. Instances share one ring before a loss, so each holds the
   * same one; a key revoked before the loss left every ring in service then (within
   * keys.refreshInterval), and is not brought back, as keys/keyring.json imported at a start would;
   * one revoked within that moment is left out if the revocation list still names it (#withoutRevoked).
   */
  async #writtenBack(): Promise<void> {
    const { store, logger } = this.#options;
    let read = 0;
    const written = await store.locked(async () => {
      read = ++this.#reads;
      if ((await store.readRaw()) !== undefined) return undefined;
      // Its own generation: the other servers, holding the same ring, do not call it older (#cameBack).
      return store.write(await this.#withoutRevoked(this.#snapshot.ring), undefined, this.#generation || undefined);
    });
    if (written === LOCKED || written === undefined) return;
    this.#missing = false;
    this.#afterLossOwed = true;
    logger?.warn(
      { event: 'keys.written_back', keys: written.ring.keys.map(({ kid, state }) => `${kid}:${state}`) },
      `key ring: ${store.description} held none (it lost everything?); wrote back the ring this server signs with. Check \`latchkey keys list\` and revoke again what was revoked before the loss`,
    );
    this.#adopt(written, read);
  }

  /**
   * `ring` without the keys the revocation list names. The ring in service may hold a key revoked
   * since this instance last looked (within keys.refreshInterval); where the list outlived the ring
   * (a Redis Cluster shard lost alone, keys/keyring.json lost beside the embedded store), written back
   * as it was, the key was published and signed with again, and every signer asking its kid entry
   * (ready) refused for good (review of the fourteenth passes, h11). As `keys revoke` leaves it.
   */
  async #withoutRevoked(ring: Keyring): Promise<Keyring> {
    const revoked = this.#revokedForWriteBack;
    if (!revoked) return ring;
    const kids = (await Promise.all(ring.keys.map(async ({ kid }) => ((await revoked(kid)) ? [kid] : [])))).flat();
    return kids.length ? apply(ring, planRevocation(ring, kids), Date.now(), this.#options.rsaBits) : ring;
  }

  /** Runs the afterLoss listeners; one that fails (a store blip) leaves them owed to the next look. */
  async #afterLossDone(): Promise<void> {
    for (const listener of this.#afterLoss) await listener();
    this.#afterLossOwed = false;
  }

  /** Puts the ring of read number `read` into service, unless a read begun after it is in service already. */
  #adopt(snapshot: RingSnapshot, read: number): boolean {
    if (read < this.#inService) return false;
    this.#inService = read;
    if (snapshot.raw === this.#snapshot.raw) return false;
    const before = this.#snapshot.ring;
    this.#snapshot = snapshot;
    this.#generation = ringGeneration(snapshot.raw);
    this.#jwks = publish(snapshot.ring, this.#options.policy);
    this.#verificationKeys = createLocalJWKSet(snapshot.ring.publicJwks());
    if (before.current?.kid !== snapshot.ring.current?.kid || before.keys.length !== snapshot.ring.keys.length) {
      this.#options.logger?.info(
        { current: snapshot.ring.current?.kid, keys: snapshot.ring.keys.map(({ kid, state }) => `${kid}:${state}`) },
        'key ring changed',
      );
    }
    for (const listener of this.#listeners) {
      try {
        listener(snapshot.ring);
      } catch (error) {
        this.#options.logger?.error({ err: error }, 'key ring: a listener failed');
      }
    }
    return true;
  }
}

function publish(ring: Keyring, policy: RotationPolicy): PublishedJwks {
  const body = JSON.stringify(ring.publicJwks());
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 32)}"`;
  const maxAge = Math.floor(policy.lead / 2);
  return { body, etag, maxAge, cacheControl: `public, max-age=${maxAge}` };
}
