/**
 * `latchkey serve` as one process, or as a primary with N workers sharing the port
 * (node:cluster). Workers hold no state of their own (everything is in Redis), so any worker can
 * answer any request and a worker that dies is replaced. SIGTERM/SIGINT stop gracefully: stop
 * accepting, let requests in flight finish (shutdownTimeout), close Redis, exit 0.
 *
 * Start-up is the same with one process or many: a process (or any worker) that cannot start
 * (Redis unreachable, a wrong KEYS_SECRETS, a busy port) ends `latchkey serve` with its one-line
 * reason and a non-zero exit. Only a worker that dies after it started is replaced, with backoff.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { publicSecretsWarning, type Config } from './config.js';
import type { Running } from './main.js';
import { usesRedis } from './store/index.js';
import type { Logger } from './ops/logger.js';
import { serveMetrics } from './ops/metrics.js';

/** Why `latchkey serve` could not start, in one line (a worker's reason, passed to the primary). */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** What a worker tells the primary: it serves, or why it could not start. */
type WorkerNews = { latchkey: 'ready' } | { latchkey: 'startup-failed'; reason: string };

/** Restart backoff for a worker that died after it started: 1 s, doubling, at most 30 s. */
const BACKOFF_MS = { first: 1_000, max: 30_000 };
/** A worker that served this long before dying resets the backoff. */
const STABLE_MS = 60_000;

/** How many workers the configuration asks for (0: one per core with Redis). */
export function workerCount(config: Config): number {
  if (!usesRedis(config)) return 1; // the embedded store lives in one process
  return config.workers || availableParallelism();
}

/** Stops `stop` once on SIGTERM or SIGINT, then exits 0 (or 1 if stopping failed). */
function onSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => handle('SIGTERM'));
  process.once('SIGINT', () => handle('SIGINT'));
}

/**
 * Runs the server. `describe` turns a start-up failure into its one-line reason. Resolves once
 * serving (all workers started); rejects with a StartupError when it cannot start.
 */
export async function runServer(
  config: Config,
  logger: Logger,
  serve: () => Promise<Running>,
  describe: (error: unknown) => string,
): Promise<void> {
  const count = workerCount(config);
  if (config.workers > 1 && count === 1) logger.warn({ workers: config.workers }, 'the embedded store serves from one process: workers ignored');

  if (cluster.isWorker) {
    let running: Running;
    try {
      running = await serve();
    } catch (error) {
      // The primary says why and exits; this worker only reports.
      const news: WorkerNews = { latchkey: 'startup-failed', reason: describe(error) };
      process.send!(news, () => process.exit(1));
      return;
    }
    process.send!({ latchkey: 'ready' } satisfies WorkerNews);
    onSignals(logger, () => running.close());
    return;
  }
  if (count === 1) {
    const running = await serve().catch((error: unknown) => {
      throw new StartupError(describe(error));
    });
    onSignals(logger, () => running.close());
    return;
  }
  await runPrimary(config, logger, count);
}

async function runPrimary(config: Config, logger: Logger, count: number): Promise<void> {
  let stopping = false;
  let backoff = BACKOFF_MS.first;
  const started = new WeakMap<Worker, number>();
  let failed: (error: Error) => void = () => {};
  let starting = count;
  let allReady: () => void = () => {};
  const ready = new Promise<void>((done, fail) => {
    allReady = done;
    failed = fail;
  });

  const stopWorkers = () =>
    Promise.all(
      Object.values(cluster.workers ?? {})
        .filter((worker) => worker !== undefined && !worker.isDead())
        .map((worker) => new Promise<void>((done) => {
          worker!.once('exit', () => done());
          worker!.kill('SIGTERM');
        })),
    );

  const fork = () => {
    const worker = cluster.fork();
    let reason: string | undefined;
    worker.on('message', (news: WorkerNews) => {
      if (news?.latchkey === 'ready') {
        started.set(worker, Date.now());
        if (starting > 0 && (starting -= 1) === 0) allReady();
      } else if (news?.latchkey === 'startup-failed') {
        reason = news.reason;
      }
    });
    worker.once('exit', (code, signal) => {
      if (stopping) return;
      const since = started.get(worker);
      if (since === undefined && starting > 0) {
        // One of the first workers died before serving: another try would die the same way (the
        // bug this prevents: a tight restart loop that never exits). Stop everything and say why.
        stopping = true;
        void stopWorkers().then(() => failed(new StartupError(reason ?? `a worker exited during start-up (exit code ${code ?? signal})`)));
        return;
      }
      if (since !== undefined && Date.now() - since >= STABLE_MS) backoff = BACKOFF_MS.first;
      // `workerPid` and `exitCode`: the logger's own `pid` is the primary's, and `code` is redacted.
      logger.error({ workerPid: worker.process.pid, exitCode: code, signal, reason, restartInMs: backoff }, 'worker died: starting another');
      setTimeout(() => {
        if (!stopping) fork();
      }, backoff);
      backoff = Math.min(backoff * 2, BACKOFF_MS.max);
    });
  };

  // Workers are on Redis (the embedded store runs one process); they leave this warning to the primary.
  const insecure = publicSecretsWarning(config);
  if (insecure) logger.warn({ settings: insecure.settings }, insecure.message);
  const metrics = config.metrics.enabled ? await serveMetrics(config.metrics.host, config.metrics.port, logger, 'workers', config.metrics.hosts) : undefined;
  onSignals(logger, async () => {
    stopping = true;
    await stopWorkers();
    await metrics?.close();
  });
  for (let n = 0; n < count; n += 1) fork();
  try {
    await ready;
  } catch (error) {
    await metrics?.close();
    throw error;
  }
  logger.info({ workers: count }, 'latchkey primary started its workers');
}
