/**
 * The limits each figure is held against, measured in the same run on the same machine: raw RS256
 * signing and verification with jose (worker threads, one per core), argon2id hashing at
 * Latchkey's parameters, and redis-benchmark's GET/SET against the Redis the bench uses.
 */
import { execFile, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { JWK } from 'jose';

export interface Rs256Limit {
  readonly threads: number;
  readonly signaturesPerSecond: number;
  /** CPU time of one signature, from a single thread (process CPU ÷ signatures). */
  readonly cpuMsPerSignature: number;
  readonly singleThreadSignaturesPerSecond: number;
  readonly verificationsPerSecond: number;
}

async function rs256Run(jwk: JWK, operation: 'sign' | 'verify', threads: number, seconds: number) {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = jwk;
  const workers = Array.from(
    { length: threads },
    () => new Worker(new URL('./rs256-worker.mjs', import.meta.url), { workerData: { jwk, publicJwk, seconds, operation } }),
  );
  const message = (worker: Worker) =>
    new Promise<{ count?: number }>((done, fail) => {
      worker.once('message', done);
      worker.once('error', fail);
    });
  await Promise.all(workers.map(message));
  const cpu = process.cpuUsage();
  const started = performance.now();
  const counts = workers.map(message);
  for (const worker of workers) worker.postMessage('go');
  const total = (await Promise.all(counts)).reduce((sum, { count = 0 }) => sum + count, 0);
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await Promise.all(workers.map((worker) => worker.terminate()));
  return { total, perSecond: total / elapsed, cpuMsPerOperation: (used.user + used.system) / 1000 / total };
}

export async function rs256Limit(jwk: JWK, threads: number, seconds: number): Promise<Rs256Limit> {
  const single = await rs256Run(jwk, 'sign', 1, seconds);
  const all = await rs256Run(jwk, 'sign', threads, seconds);
  const verify = await rs256Run(jwk, 'verify', threads, seconds);
  return {
    threads,
    signaturesPerSecond: Math.round(all.perSecond),
    cpuMsPerSignature: Math.round(single.cpuMsPerOperation * 1000) / 1000,
    singleThreadSignaturesPerSecond: Math.round(single.perSecond),
    verificationsPerSecond: Math.round(verify.perSecond),
  };
}

export interface Argon2Settings {
  readonly memoryCost: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

export interface Argon2Limit extends Argon2Settings {
  readonly concurrency: number;
  readonly hashesPerSecond: number;
  /** CPU time of one hash (the measuring process's CPU ÷ hashes). */
  readonly cpuMsPerHash?: number;
  /** The cores it ran on (taskset), when pinned. */
  readonly cpus?: string;
}

/** Hashes `concurrency` at a time for `seconds`; prints { count, seconds, cpuMs }. Run as a script of its own (`node -e`). */
function argon2Script(settings: Argon2Settings, concurrency: number, seconds: number): string {
  return `
    const argon2 = require(${JSON.stringify(createRequire(import.meta.url).resolve('argon2'))});
    const options = { raw: false, type: argon2.argon2id, ...${JSON.stringify(settings)} };
    const password = require('node:crypto').randomBytes(16).toString('hex');
    (async () => {
      await argon2.hash(password, options);
      const cpu = process.cpuUsage();
      const started = performance.now();
      const end = started + ${seconds * 1000};
      let count = 0;
      await Promise.all(Array.from({ length: ${concurrency} }, async () => {
        while (performance.now() < end) {
          await argon2.hash(password, options);
          count += 1;
        }
      }));
      const used = process.cpuUsage(cpu);
      process.stdout.write(JSON.stringify({ count, seconds: (performance.now() - started) / 1000, cpuMs: (used.user + used.system) / 1000 }));
    })();`;
}

/**
 * argon2id hashes per second with `concurrency` in flight (libuv's pool runs them on every core),
 * in a process of its own. With `cpus`, that process is pinned to those cores (taskset), as a
 * pinned server is: the rate of the cores the server has, not of whichever core was free.
 */
export async function argon2Limit(settings: Argon2Settings, concurrency: number, seconds: number, cpus?: string): Promise<Argon2Limit> {
  const script = argon2Script(settings, concurrency, seconds);
  const [command, args] = cpus ? ['taskset', ['-c', cpus, process.execPath, '-e', script]] : [process.execPath, ['-e', script]];
  const out = await new Promise<string>((done, fail) =>
    execFile(command, args, { encoding: 'utf8' }, (error, stdout) => (error ? fail(error) : done(stdout))),
  );
  const { count, seconds: elapsed, cpuMs } = JSON.parse(out) as { count: number; seconds: number; cpuMs: number };
  return {
    ...settings,
    concurrency,
    hashesPerSecond: Math.round((count / elapsed) * 10) / 10,
    cpuMsPerHash: Math.round((cpuMs / Math.max(1, count)) * 100) / 100,
    ...(cpus ? { cpus } : {}),
  };
}

export interface RedisLimit {
  readonly available: boolean;
  readonly note?: string;
  /** 50 connections, no pipelining. */
  readonly getPerSecond?: number;
  readonly setPerSecond?: number;
  /** One connection: one round trip after another. */
  readonly getPerSecondOneConnection?: number;
  readonly roundTripMs?: number;
}

function redisBenchmark(port: number, args: string[]): Promise<Map<string, { rps: number; p50: number }>> {
  return new Promise((done, fail) => {
    const child = spawn('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '--csv', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('error', fail);
    child.once('exit', (status) => {
      if (status !== 0) return fail(new Error(`redis-benchmark exited ${status}: ${err}`));
      const rows = new Map<string, { rps: number; p50: number }>();
      for (const line of out.split('\n')) {
        const cells = line.split(',').map((cell) => cell.replace(/"/g, ''));
        if (cells.length < 5 || cells[0] === 'test') continue;
        rows.set(cells[0]!, { rps: Number(cells[1]), p50: Number(cells[4]) });
      }
      done(rows);
    });
  });
}

export async function redisLimit(port: number, requests: number): Promise<RedisLimit> {
  try {
    const many = await redisBenchmark(port, ['-t', 'set,get', '-n', String(requests), '-c', '50']);
    const one = await redisBenchmark(port, ['-t', 'get', '-n', String(Math.ceil(requests / 4)), '-c', '1']);
    return {
      available: true,
      getPerSecond: Math.round(many.get('GET')?.rps ?? 0),
      setPerSecond: Math.round(many.get('SET')?.rps ?? 0),
      getPerSecondOneConnection: Math.round(one.get('GET')?.rps ?? 0),
      roundTripMs: one.get('GET')?.p50 ?? 0,
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return { available: false, note: "redis-benchmark is not installed (Debian: apt-get install redis-tools); Redis's own rate was not measured" };
    }
    return { available: false, note: `redis-benchmark failed: ${(error as Error).message}` };
  }
}
