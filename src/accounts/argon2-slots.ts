/**
 * How many argon2id computations run at once. They run on libuv's thread pool (four threads by
 * default), whatever the cores: on a server with one core, four hashes at once take turns on it
 * and evict each other's 19 MiB from the caches (each costs about 15% more CPU than one at a
 * time), and they hold every pool thread that WebCrypto's signing and verification wait for too.
 * So they queue here, one per core the process may run on, in the order they came.
 */
import { availableParallelism } from 'node:os';

export class Argon2Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  /** Most computations seen running at once (for tests). */
  #peak = 0;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('argon2 slots: at least one');
    this.#free = size;
  }

  get peak(): number {
    return this.#peak;
  }

  /** Runs `work` when a slot is free; the slot is given back when it settles. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free -= 1;
    else await new Promise<void>((take) => this.#waiting.push(take));
    this.#peak = Math.max(this.#peak, this.size - this.#free);
    try {
      return await work();
    } finally {
      // The slot passes straight to the next in line, so none is counted free in between.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free += 1;
    }
  }
}

/** One queue per process: every Accounts instance's hashes share the cores. availableParallelism follows taskset and cgroup limits. */
export const processArgon2Slots = new Argon2Slots(availableParallelism());
