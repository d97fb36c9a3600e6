/**
 * `latchkey serve` as one process, or as a primary with N workers sharing the port
 * (node:cluster). Workers hold no state of their own (everything is in Redis), so any worker can
 * answer any request and a worker that dies is replaced. SIGTERM/SIGINT stop gracefully: stop
 * accepting, let requests in flight finish (shutdownTimeout), close Redis, exit 0.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Config } from '../config.js';
import type { Running } from '../main.js';
import { usesRedis } from '../store/index.js';
import type { Logger } from './logger.js';
import { serveMetrics } from './metrics.js';

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

export async function runServer(config: Config, logger: Logger, serve: () => Promise<Running>): Promise<void> {
  const count = workerCount(config);
  if (config.workers > 1 && count === 1) logger.warn({ workers: config.workers }, 'the embedded store serves from one process: workers ignored');

  if (count === 1 || cluster.isWorker) {
    const running = await serve();
    onSignals(logger, () => running.close());
    return;
  }

  // The primary: forks, replaces workers that die, serves their metrics, and stops them on a signal.
  let stopping = false;
  const fork = () => cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code, signal }, 'worker died: starting another');
    fork();
  });
  for (let n = 0; n < count; n += 1) fork();
  logger.info({ workers: count }, 'latchkey primary started its workers');
  const metrics = config.metrics.enabled ? await serveMetrics(config.metrics.host, config.metrics.port, logger, true) : undefined;

  onSignals(logger, async () => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((worker) => worker !== undefined);
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((done) => {
            worker.once('exit', () => done());
            worker.kill('SIGTERM');
          }),
      ),
    );
    await metrics?.close();
  });
}
