/**
 * The servers under test, each in its own process so that its CPU time (from /proc) is its own and
 * not the load generator's: Latchkey (`node dist/cli.js serve`, or src/ through tsx for the smoke
 * run) on a real Redis, and a bare oidc-provider with its in-memory adapter (bare-provider.ts).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { ROOT } from '../../src/paths.js';
import { loadConfig } from '../../src/config.js';
import type { Agent, Page } from '../helpers/agent.js';
import { freePort, startRedisServer } from '../helpers/redis.js';
import { CLIENTS, RESOURCE_SERVERS, USER, WEB, type Target, type TargetKind } from './scenarios.js';

export type ServerBuild = 'dist' | 'src';

export interface ProcessTarget extends Target {
  readonly pid: number;
  /** Stops the process (SIGTERM) and waits for it; a --cpu-prof profile is written on the way out. */
  stop(): Promise<void>;
}

const CLK_TCK = 100; // USER_HZ: 100 on every Linux that Node supports

/** User + system CPU seconds of a process so far. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** VmHWM (peak resident set) and VmRSS of a process, MiB. */
export function processMemory(pid: number): { peakMiB: number; rssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { peakMiB: Math.round(kib('VmHWM') / 102.4) / 10, rssMiB: Math.round(kib('VmRSS') / 102.4) / 10 };
}

/** Busy CPU seconds of a /proc/stat line ("cpu" for all cores, "cpuN" for one). */
function busySeconds(line: string): number {
  const [, ...values] = line.trim().split(/\s+/).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = values;
  return (user + nice + system + irq + softirq + steal) / CLK_TCK;
}

/** Busy CPU seconds of the whole machine (all cores) so far, from /proc/stat. */
export function machineBusySeconds(): number {
  return busySeconds(readFileSync('/proc/stat', 'utf8').split('\n')[0]!);
}

/** Busy CPU seconds of each core so far (index: the core's number), whatever ran on it, from /proc/stat. */
export function coreBusySeconds(): number[] {
  const cores: number[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const core = /^cpu(\d+) /.exec(line);
    if (core) cores[Number(core[1])] = busySeconds(line);
  }
  return cores;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** `taskset` is there to pin servers to a core (util-linux). */
export function canPin(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pins a running process (all its threads) to `cpus` (taskset's list syntax, e.g. "1" or "0,1"). */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-apc', cpus, String(pid)], { stdio: 'ignore' });
}

/**
 * `cpus`: run the server pinned to these cores (taskset execs it, so the pid is the server's).
 * `NODE_ARGS` among the settings: node flags for its command line, space-separated, e.g.
 * `dist:NODE_ARGS=--min-semi-space-size=64` in the A/B tools (V8 flags Node refuses in NODE_OPTIONS).
 */
function spawnServer(args: string[], env: Record<string, string>, profileDir?: string, cpus?: string): { child: ChildProcess; stderr: () => string } {
  const argv = [...(env.NODE_ARGS ?? '').split(' ').filter(Boolean), ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), ...args];
  const child = spawn(cpus ? 'taskset' : process.execPath, cpus ? ['-c', cpus, process.execPath, ...argv] : argv, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_NO_WARNINGS: '1', ...env },
    // Request logs go to /dev/null: written (that cost is Latchkey's), not read. BENCH_SERVER_STDOUT
    // (among a build's settings): to that file instead, e.g. for V8's --trace-deopt (steady-probe.ts).
    stdio: ['ignore', env.BENCH_SERVER_STDOUT ? openSync(env.BENCH_SERVER_STDOUT, 'w') : 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-8000);
  });
  process.once('exit', () => child.kill('SIGKILL'));
  return { child, stderr: () => stderr };
}

async function ready(child: ChildProcess, url: string, stderr: () => string): Promise<void> {
  // BENCH_READY_SECONDS: longer on a machine so busy that a start takes more than 30 s.
  const seconds = Number(process.env.BENCH_READY_SECONDS ?? 30);
  const deadline = Date.now() + seconds * 1000;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}): ${stderr()}`);
    try {
      const answer = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (answer.ok) return;
      last = `HTTP ${answer.status}`;
    } catch (error) {
      // Not listening yet (ECONNREFUSED), or listening and not answering (a timeout).
      const cause = (error as { cause?: { code?: string } }).cause;
      last = cause?.code ?? (error as Error).name;
    }
    await sleep(100);
  }
  // The server's stdout (its log) is not kept, so say what can still be read about the process.
  const state = startState(child.pid!);
  child.kill('SIGKILL');
  throw new Error(`no answer from ${url} within ${seconds} s (last attempt: ${last}; ${state}): ${stderr() || 'nothing on stderr'}`);
}

/** The CPU a starting server and its workers used so far, from /proc: busy starting, or stuck idle. */
function startState(pid: number): string {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    const workers = children.map((worker) => `${processCpuSeconds(Number(worker)).toFixed(2)}`);
    return `CPU so far ${processCpuSeconds(pid).toFixed(2)} s${workers.length ? `, its ${workers.length} child process(es) ${workers.join(', ')} s` : ''}`;
  } catch {
    return 'its CPU not readable';
  }
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(15_000).then(() => child.kill('SIGKILL'))]);
    await exited;
  };
}

/** The `latchkey` command line for a build: compiled, or the sources through tsx. */
function command(build: ServerBuild): string[] {
  return build === 'dist' ? [join(ROOT, 'dist', 'cli.js')] : ['--import', 'tsx', join(ROOT, 'src', 'cli.ts')];
}

export interface LatchkeyOptions {
  readonly redisUrl: string;
  readonly build: ServerBuild;
  readonly logLevel: string;
  /** Keys directory of an earlier start (the same signing key across restarts). */
  readonly dir?: string;
  readonly profileDir?: string;
  /** Settings over the bench's. */
  readonly env?: Record<string, string>;
  /** The default configuration: rate limits on, with the shipped allowances. */
  readonly defaults?: boolean;
  /** Worker processes (`serve --workers N`); 1 unless given. */
  readonly workers?: number;
  /** Pin the server to these cores. */
  readonly cpus?: string;
}

/**
 * What the default configuration adds to the bench's: the rate limits, on and counting in Redis
 * with the shipped allowances (config/default.yaml; the bench configuration turns them off), except
 * dynamic registration's 30 a minute, which the bench's own set-up would exceed. The request log at
 * info and the metrics are on in both.
 */
const SHIPPED = loadConfig({}).rateLimit;
export const DEFAULT_LIMITS = {
  RATE_LIMIT_PER_IP: String(SHIPPED.perIp),
  RATE_LIMIT_PER_CLIENT: String(SHIPPED.perClient),
  RATE_LIMIT_REGISTRATION_PER_IP: '1000000000',
  RATE_LIMIT_METADATA_PER_IP: String(SHIPPED.metadataPerIp),
};

export const LIMITS_OFF: Record<string, string> = Object.fromEntries(Object.keys(DEFAULT_LIMITS).map((key) => [key, '0']));

/**
 * A build spec of the A/B tools, `<dir>[:KEY=value,...]`: a build in the package root and its
 * settings over the others (`off` stands for every rate limit at 0, LIMITS_OFF, as in redis-ab.ts).
 */
export function buildSpec(spec: string): { dir: string; settings: Record<string, string> } {
  const [dir = 'dist', list = ''] = spec.split(':');
  const settings: Record<string, string> = {};
  for (const pair of list ? list.split(',') : []) {
    if (pair === 'off') Object.assign(settings, LIMITS_OFF);
    else settings[pair.slice(0, pair.indexOf('='))] = pair.slice(pair.indexOf('=') + 1);
  }
  return { dir, settings };
}

/**
 * For the side-by-side tools (cpu-ab.ts, login-ab.ts): this process and a Redis of its own on core
 * 1, and a Latchkey prepared on it by one start of dist/ (the key ring and the bench's person),
 * whose settings every build then serves with (startPinnedBuild). `close` stops the Redis.
 */
export async function prepareSideBySide(): Promise<{ prepared: LatchkeyTarget; close(): Promise<void> }> {
  pin(process.pid, '1');
  const redis = await startRedisServer();
  const { RedisInspector } = await import('./redis-probe.js');
  const inspector = new RedisInspector(redis.url);
  pin(Number((await inspector.info('server')).process_id), '1');
  const prepared = await startLatchkey({ redisUrl: redis.url, build: 'dist', logLevel: 'info' });
  await addUser(prepared, 'dist');
  await prepared.stop();
  return {
    prepared,
    async close() {
      await inspector.close();
      await redis.stop();
    },
  };
}

/**
 * For the side-by-side tools (cpu-ab.ts, login-ab.ts): `dir`, a build in the package root (dist,
 * dist-before, ...), serving pinned to core 0 with `prepared`'s settings (its key ring and person),
 * `extra` over them.
 */
export async function startPinnedBuild(prepared: LatchkeyTarget, dir: string, extra: Record<string, string> = {}): Promise<LatchkeyTarget> {
  const port = await freePort();
  const env = { ...prepared.env, ...extra, PORT: String(port), ISSUER: `http://localhost:${port}` };
  const { child, stderr } = spawnServer([join(ROOT, dir, 'cli.js'), 'serve'], env, undefined, '0');
  const url = `http://127.0.0.1:${port}`;
  await ready(child, `${url}/healthz`, stderr);
  return { ...prepared, url, issuer: env.ISSUER, pid: child.pid!, env, stop: stopper(child) };
}

export interface LatchkeyTarget extends ProcessTarget {
  readonly dir: string;
  readonly env: Record<string, string>;
  /**
   * A private RS256 key of the size Latchkey signs with, for the raw-signing limit and the bare
   * provider. (Latchkey's own key is sealed in Redis; any key of the same size costs the same.)
   */
  signingKey(): Promise<JWK>;
}

/** One set per bench run: a Latchkey restarted on the same Redis must open the key ring it sealed. */
const RUN_SECRETS = { cookie: randomBytes(32).toString('base64url'), keyRing: randomBytes(32).toString('base64url') };

export async function startLatchkey(options: LatchkeyOptions): Promise<LatchkeyTarget> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'latchkey-bench-'));
  const port = await freePort();
  const env = {
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://localhost:${port}`,
    KEYS_DIR: join(dir, 'keys'),
    REDIS_URL: options.redisUrl,
    COOKIE_KEYS: RUN_SECRETS.cookie,
    LOG_LEVEL: options.logLevel,
    CLIENTS: JSON.stringify(CLIENTS),
    RESOURCE_SERVERS: JSON.stringify(RESOURCE_SERVERS),
    // The bench signs in thousands of times from one address; nothing here is a brute-force attack.
    ACCOUNTS_THROTTLE_MAX_FAILURES: '1000000',
    ACCOUNTS_THROTTLE_MAX_FAILURES_PER_IP: '1000000',
    // One client from one address at thousands of requests a second: the limits would measure themselves.
    RATE_LIMIT_PER_IP: '0',
    RATE_LIMIT_PER_CLIENT: '0',
    RATE_LIMIT_REGISTRATION_PER_IP: '0',
    RATE_LIMIT_METADATA_PER_IP: '0',
    // One process, like the bare provider it is compared with; scale-out is `serve --workers N`.
    WORKERS: String(options.workers ?? 1),
    METRICS_PORT: '0',
    KEYS_SECRETS: RUN_SECRETS.keyRing,
    ...(options.defaults ? DEFAULT_LIMITS : {}),
    ...options.env,
  };
  const { child, stderr } = spawnServer([...command(options.build), 'serve'], env, options.profileDir, options.cpus);
  const url = `http://127.0.0.1:${port}`;
  await ready(child, `${url}/healthz`, stderr);
  return {
    kind: options.defaults ? 'defaults' : 'latchkey',
    url,
    issuer: env.ISSUER,
    pid: child.pid!,
    dir,
    env,
    signIn: latchkeySignIn,
    async signingKey() {
      const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
      return { ...(await exportJWK(privateKey)), kid: 'bench', alg: 'RS256', use: 'sig' };
    },
    stop: stopper(child),
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Creates the bench's person with `latchkey users add` (the CLI on the same store). */
export async function addUser(target: LatchkeyTarget, build: ServerBuild): Promise<void> {
  const child = spawn(process.execPath, [...command(build), 'users', 'add', USER.username, '--password-stdin', '--name', 'Alice'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', NODE_NO_WARNINGS: '1', ...target.env },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin!.end(USER.password);
  const status = await new Promise<number | null>((done) => child.once('exit', done));
  if (status !== 0 && !/exists/i.test(stderr)) throw new Error(`latchkey users add failed (${status}): ${stderr}`);
}

async function latchkeySignIn(agent: Agent, start: Page): Promise<Page> {
  let page = start;
  for (let i = 0; i < 3 && page.url.includes('/interaction/'); i += 1) {
    if (page.html.includes('name="password"')) {
      page = await agent.submit(page, '/login', { username: USER.username, password: USER.password }, WEB.redirect);
    } else if (page.html.includes('/confirm')) {
      page = await agent.submit(page, '/confirm', {}, WEB.redirect);
    } else {
      break;
    }
  }
  return page;
}

/** oidc-provider's development interactions: any login, then "Continue" on the consent page. */
/** Signs in on the bare provider's own interaction pages (and consents). */
export async function bareSignIn(agent: Agent, start: Page): Promise<Page> {
  let page = start;
  for (let i = 0; i < 3 && page.url.includes('/interaction/'); i += 1) {
    const fields: Record<string, string> = page.html.includes('name="login"') ? { login: USER.username, password: USER.password } : {};
    page = await agent.submit(page, '/interaction/', fields, WEB.redirect);
  }
  return page;
}

export async function startBare(options: { signingKey: JWK; profileDir?: string; cpus?: string; env?: Record<string, string> }): Promise<ProcessTarget> {
  const port = await freePort();
  const env = {
    ...options.env,
    NODE_ENV: 'production',
    PORT: String(port),
    ISSUER: `http://localhost:${port}`,
    JWKS: JSON.stringify({ keys: [options.signingKey] }),
    CLIENTS: JSON.stringify(CLIENTS),
    RESOURCE_SERVERS: JSON.stringify(RESOURCE_SERVERS),
  };
  const { child, stderr } = spawnServer(['--import', 'tsx', join(ROOT, 'test', 'bench', 'bare-provider.ts')], env, options.profileDir, options.cpus);
  const url = `http://127.0.0.1:${port}`;
  await ready(child, `${url}/.well-known/openid-configuration`, stderr);
  return { kind: 'bare' satisfies TargetKind, url, issuer: env.ISSUER, pid: child.pid!, signIn: bareSignIn, stop: stopper(child) };
}
