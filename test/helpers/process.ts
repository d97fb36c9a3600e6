/**
 * The latchkey CLI as a separate process (the built `dist/cli.js`, as `npx latchkey` runs it):
 * one-shot commands, and `serve` as a second server process next to an in-process one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from '../../src/paths.js';
import { eventually } from './eventually.js';

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export const CLI = join(ROOT, 'dist', 'cli.js');

/**
 * Node's on-disk bytecode cache for the suite's CLI runs (each loads the whole app, and compiles it
 * again without one: 10-13% of a one-shot command's CPU): a directory of this test process's own,
 * made 0700 by mkdtemp (a fixed name in the shared temporary directory could be made first by
 * another user, who would then plant the bytecode the tests run), shared by the runs it starts.
 */
let compileCache: string | undefined;
function compileCacheDir(): string {
  compileCache ??= mkdtempSync(join(tmpdir(), 'latchkey-test-compile-cache-'));
  return compileCache;
}
// Never throwing: a child still writing there must not keep the exit handlers after this one (which
// stop the served children) from running.
process.once('exit', () => {
  try {
    if (compileCache) rmSync(compileCache, { recursive: true, force: true, maxRetries: 2 });
  } catch {
    // Left in the temporary directory.
  }
});

/** The built CLI must be there (`npm test` builds it first; after editing src/, run npm run build). */
function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run npm run build');
}
let checked = false;

function start(env: Record<string, string>, args: string[], cwd?: string): ChildProcess {
  if (!checked) {
    assertBuilt();
    checked = true;
  }
  return spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, NODE_NO_WARNINGS: '1', NODE_COMPILE_CACHE: compileCacheDir(), ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
}

/** `cwd`: where it runs (the checkout, where mocha runs, by default). */
export function latchkey(env: Record<string, string>, args: string[], stdin?: string, cwd?: string): Promise<Run> {
  return new Promise((done, fail) => {
    const child = start(env, args, cwd);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (status) => done({ status, stdout, stderr }));
    // A command that exits without reading its input (--help, a refusal) closes the pipe first on a
    // busy machine: the write's EPIPE is no result of the command's, whose status and output say it.
    child.stdin!.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') fail(error);
    });
    child.stdin!.end(stdin ?? '');
  });
}

/**
 * A command whose stdout and stderr are one file, as a container's log or a service manager's
 * journal shows them (or a terminal `2>&1 | less`): what it wrote, in the order the writes were made.
 */
export function latchkeyOneStream(env: Record<string, string>, args: string[]): Promise<{ status: number | null; output: string }> {
  const file = join(mkdtempSync(join(tmpdir(), 'latchkey-output-')), 'output');
  const fd = openSync(file, 'w');
  if (!checked) {
    assertBuilt();
    checked = true;
  }
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, NODE_NO_WARNINGS: '1', ...env },
    stdio: ['ignore', fd, fd],
  });
  return new Promise((done, fail) => {
    child.on('error', fail);
    child.on('close', (status) => {
      closeSync(fd);
      const output = readFileSync(file, 'utf8');
      rmSync(dirname(file), { recursive: true, force: true });
      done({ status, output });
    });
  });
}

export interface ServerProcess {
  readonly url: string;
  /** Everything it wrote to stdout so far (JSON log lines). */
  stdout(): string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
}

/** `latchkey serve [args]` in its own process, ready when /healthz answers. */
export async function serveProcess(env: Record<string, string>, args: string[] = []): Promise<ServerProcess> {
  const child = start(env, ['serve', ...args]);
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stdin!.end();
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  process.once('exit', () => child.kill('SIGKILL'));
  const url = `http://127.0.0.1:${env.PORT}`;
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`latchkey serve exited: ${stderr}`);
      const response = await fetch(`${url}/healthz`);
      if (!response.ok) throw new Error(`healthz ${response.status}`);
    }, 300);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
