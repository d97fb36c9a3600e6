/**
 * Node's on-disk compile cache for the CLI (V8 bytecode of the modules a run loads),
 * so that each `latchkey` run does not compile the same ~400 modules again. It changes nothing a
 * command does, only its speed: 5–10% of a one-shot command's CPU (docs/performance.md,
 * "CI time").
 *
 * Safe: the cache is per user, in `$XDG_CACHE_HOME/latchkey/compile-cache` (else
 * `~/.cache/latchkey/compile-cache`), made 0700, and used only when it is a directory of this
 * user's that nobody else can write (bytecode planted there would run as this user), below
 * directories nobody else can change either: Node reads each module's entry by path, so whoever may
 * rename an entry of any directory above could swap latchkey/ for a directory of theirs after the
 * check (a root run with an operator's HOME, `sudo -E`: sixteenth passes' review, h12); never under
 * the shared temporary directory. Harmless: any failure (no home, a read-only disk, a directory of
 * someone else's) leaves the cache off, silently. NODE_COMPILE_CACHE (Node enables it itself) and
 * NODE_DISABLE_COMPILE_CACHE are honoured.
 */
import { lstatSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, parse } from 'node:path';

/** The cache's directory for this user's environment, or undefined when there is no sure place. */
export function compileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const xdg = env.XDG_CACHE_HOME;
  // XDG: a relative path is invalid and is ignored.
  const base = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  return isAbsolute(base) ? join(base, 'latchkey', 'compile-cache') : undefined;
}

/** True when `dir` is a real directory (not a link) of this user, writable by no one else. */
export function safeCacheDir(dir: string): boolean {
  const stats = lstatSync(dir);
  const uid = process.getuid?.();
  return stats.isDirectory() && (uid === undefined || stats.uid === uid) && (stats.mode & 0o022) === 0;
}

/**
 * True when nobody but this user and root can change which directory `dir` names: every directory
 * from the root down to it (links resolved) is this user's or root's, and writable by no one else,
 * or sticky (as /tmp: nobody may rename another's entry there).
 */
export function safeCacheAncestry(dir: string): boolean {
  const uid = process.getuid?.();
  if (uid === undefined) return true;
  let path = realpathSync(dir);
  for (;;) {
    const stats = statSync(path);
    if (!stats.isDirectory() || (stats.uid !== uid && stats.uid !== 0)) return false;
    if ((stats.mode & 0o022) !== 0 && (stats.mode & 0o1000) === 0) return false;
    if (path === parse(path).root) return true;
    path = dirname(path);
  }
}

/** Turns the cache on for the modules this process loads from now on (a no-op when it cannot be safe). */
export function enableLatchkeyCompileCache(env: NodeJS.ProcessEnv = process.env): void {
  if (env.NODE_COMPILE_CACHE || env.NODE_DISABLE_COMPILE_CACHE) return;
  try {
    const dir = compileCacheDir(env);
    if (!dir) return;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // What is above latchkey/, links resolved (and the cache named through them: a link's directory
    // could point it elsewhere): whoever can rename latchkey/ there could swap a directory of theirs in.
    const base = realpathSync(dirname(dirname(dir)));
    if (!safeCacheAncestry(base)) return;
    const cache = join(base, 'latchkey', 'compile-cache');
    // Its parent too (latchkey/): whoever can write there could put a directory of theirs in its place.
    if (safeCacheDir(dirname(cache)) && safeCacheDir(cache)) enableCompileCache(cache);
  } catch {
    // No cache: the run is as without one.
  }
}
