/**
 * Throwaway real Redis servers for tests: a single redis-server (optionally with AOF, and able to
 * be killed and restarted on the same port), or an N-master Redis Cluster. Loopback only, each in
 * its own temp dir; every process is killed when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { freeClusterPort, freePort } from './ports.js';

/** Where most tests take it from, with the Redis they start. */
export { freePort };

const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI_BIN ?? 'redis-cli';
const READY_TIMEOUT_MS = 10_000;

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Sends one inline command over raw TCP and returns the reply text (or throws). */
function command(port: number, line: string): Promise<string> {
  return new Promise((done, fail) => {
    const socket = new Socket();
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      fail(new Error('timeout'));
    }, 1000);
    socket.once('error', (error) => {
      clearTimeout(timer);
      fail(error);
    });
    socket.connect(port, '127.0.0.1', () => socket.write(`${line}\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      // A bulk string ($n\r\n...\r\n) or a simple line.
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if (!bulk ? reply.endsWith('\r\n') : reply.length >= bulk[0].length + Number(bulk[1]) + 2) {
        clearTimeout(timer);
        socket.end();
        done(reply);
      }
    });
  });
}

async function waitFor(check: () => Promise<boolean>, what: string, log: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(50);
  }
  let tail: string;
  try {
    tail = readFileSync(log, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    tail = '(no log)';
  }
  throw new Error(`redis: ${what} within ${READY_TIMEOUT_MS} ms; log tail:\n${tail}`);
}

function launch(args: string[]): ChildProcess {
  const child = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once('exit', () => done()));
}

export interface RedisServer {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  /** SIGTERM, wait for exit, remove its directory. */
  stop(): Promise<void>;
  /** SIGKILL (a crash); the port and directory stay for restart(). */
  kill(): Promise<void>;
  /** Starts again on the same port and directory (AOF data survives when appendonly). */
  restart(): Promise<void>;
  /**
   * SIGSTOP: the server answers nothing, but its connections stay up and the kernel still
   * accepts new ones into its backlog (a hung server, or one behind a stalled network).
   */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export async function startRedisServer(options: { appendonly?: boolean } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-redis-'));
  const port = await freePort();
  const log = join(dir, 'redis.log');
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--logfile', log, '--save', '',
    '--appendonly', options.appendonly ? 'yes' : 'no', '--appendfsync', 'always',
  ];
  let child: ChildProcess;
  const start = async () => {
    child = launch(args);
    await waitFor(async () => (await command(port, 'PING')).startsWith('+PONG'), `no PONG on port ${port}`, log);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGTERM');
      await exited(child);
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      child.kill('SIGKILL');
      await exited(child);
    },
    restart: start,
    pause() {
      child.kill('SIGSTOP');
    },
    resume() {
      child.kill('SIGCONT');
    },
  };
}

export interface RedisCluster {
  /** The masters. */
  readonly nodes: { host: string; port: number }[];
  /** SIGSTOP the master on `port` (as RedisServer's pause). */
  pause(port: number): void;
  /** SIGCONT after pause(port). */
  resume(port: number): void;
  stop(): Promise<void>;
}

export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const started: { port: number; dir: string; child: ChildProcess; log: string }[] = [];
  const stop = async () => {
    for (const node of started) node.child.kill('SIGTERM');
    await Promise.all(started.map((node) => exited(node.child)));
    for (const node of started) rmSync(node.dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i += 1) {
      const dir = mkdtempSync(join(tmpdir(), 'latchkey-cluster-'));
      const port = await freeClusterPort();
      const log = join(dir, 'redis.log');
      const child = launch([
        '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--logfile', log, '--save', '',
        '--appendonly', 'no', '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
        '--cluster-node-timeout', '2000',
      ]);
      started.push({ port, dir, child, log });
      await waitFor(async () => (await command(port, 'PING')).startsWith('+PONG'), `no PONG on port ${port}`, log);
    }
    const create = spawn(
      REDIS_CLI,
      ['--cluster', 'create', ...started.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    create.stdout!.on('data', (chunk) => (output += chunk));
    create.stderr!.on('data', (chunk) => (output += chunk));
    const status = await new Promise<number | null>((done) => create.once('exit', done));
    if (status !== 0) throw new Error(`redis-cli --cluster create failed (${status}):\n${output}`);
    for (const node of started) {
      await waitFor(
        async () => {
          const info = await command(node.port, 'CLUSTER INFO');
          return info.includes('cluster_state:ok') && info.includes('cluster_slots_assigned:16384');
        },
        `cluster not ok on port ${node.port}`,
        node.log,
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const signal = (port: number, name: NodeJS.Signals) => started.find((node) => node.port === port)!.child.kill(name);
  return {
    nodes: started.map(({ port }) => ({ host: '127.0.0.1', port })),
    pause: (port) => signal(port, 'SIGSTOP'),
    resume: (port) => signal(port, 'SIGCONT'),
    stop,
  };
}

export interface RedisSentinelGroup {
  /** host:port of each sentinel. */
  readonly sentinels: string[];
  readonly masterName: string;
  /** Port of the master at start (the replica is promoted when it dies). */
  readonly masterPort: number;
  /** SIGKILL the current master. */
  killMaster(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * One master, one replica and three sentinels (quorum 2), quick to notice a dead master
 * (down-after 1 s) so a failover test takes seconds.
 */
export async function startRedisSentinel(masterName = 'mymaster'): Promise<RedisSentinelGroup> {
  const started: { dir: string; child: ChildProcess; port: number }[] = [];
  const stop = async () => {
    for (const node of started) node.child.kill('SIGTERM');
    await Promise.all(started.map((node) => exited(node.child)));
    for (const node of started) rmSync(node.dir, { recursive: true, force: true });
  };
  const node = async (extra: string[], what: string, ready: (port: number) => Promise<boolean>) => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-sentinel-'));
    const port = await freePort();
    const log = join(dir, 'redis.log');
    const child = launch(['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--logfile', log, '--save', '', ...extra]);
    started.push({ dir, child, port });
    await waitFor(() => ready(port), `${what} not ready on port ${port}`, log);
    return { dir, port };
  };
  const pong = async (port: number) => (await command(port, 'PING')).startsWith('+PONG');
  try {
    const master = await node(['--appendonly', 'no'], 'master', pong);
    await node(['--appendonly', 'no', '--replicaof', '127.0.0.1', String(master.port)], 'replica', async (port) =>
      (await command(port, 'INFO replication')).includes('master_link_status:up'),
    );
    const sentinels: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const dir = mkdtempSync(join(tmpdir(), 'latchkey-sentinel-'));
      const port = await freePort();
      const conf = join(dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `logfile ${join(dir, 'sentinel.log')}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${masterName} 1000`,
          `sentinel failover-timeout ${masterName} 5000`,
          `sentinel parallel-syncs ${masterName} 1`,
        ].join('\n') + '\n',
      );
      const child = launch([conf, '--sentinel']);
      started.push({ dir, child, port });
      await waitFor(async () => (await command(port, 'PING')).startsWith('+PONG'), `sentinel not ready on ${port}`, join(dir, 'sentinel.log'));
      sentinels.push(`127.0.0.1:${port}`);
    }
    return {
      sentinels,
      masterName,
      masterPort: master.port,
      async killMaster() {
        const current = started.find((n) => n.port === master.port)!;
        current.child.kill('SIGKILL');
        await exited(current.child);
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A MONITOR connection beside `redis`. ioredis turns a connection to monitoring a microtask after
 * MONITOR's +OK, so a command Redis ran in between, read in the same chunk, comes as a reply with no
 * command waiting: a "Command queue state error" ('error' event; ioredis's own monitor() rejects with
 * it, or throws it if it comes later). That line is of a command run before this resolves, never one
 * of what the caller then watches, so that error alone is let pass.
 */
export function monitorOf(redis: Redis): Promise<Redis> {
  const monitor = redis.duplicate({ monitor: true, lazyConnect: false });
  return new Promise((resolve, reject) => {
    monitor.on('error', (error: Error) => {
      if (!error.message.startsWith('Command queue state error')) reject(error);
    });
    monitor.once('monitoring', () => resolve(monitor));
  });
}

/**
 * ACL key patterns (`ACL SETUSER … resetkeys …`) for every key but those that start with `spelled`:
 * a store that refuses one kind of record, as a failing store or master does at that read.
 */
export const keysBut = (spelled: string) => [...spelled].map((char, at) => `~${spelled.slice(0, at)}[^${char}]*`);

/** cluster-key-slot's CRC16 slot of `key` (hash tags included), as Redis Cluster computes it. */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(key)) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
