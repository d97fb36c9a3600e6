/**
 * The CLI's compile cache (src/compile-cache.ts): each `latchkey` run keeps the V8 bytecode of the
 * modules it loads in a per-user directory, so the next run does not compile them again (about a
 * tenth of a one-shot command's CPU; the test suite runs the CLI some 400 times). Only speed: the
 * same output with the cache on, off, or unusable; never a directory someone else could write.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileCacheDir } from '../../src/compile-cache.js';
import { latchkey, type Run } from '../helpers/process.js';

/** Every file under `dir` (the cache keeps one directory per Node version). */
function entries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => statSync(join(dir, name)).isFile());
}

describe('CLI: its own compile cache, per user, safe or off', function () {
  this.timeout(30_000);
  let dir: string;
  /** `latchkey users list` on an embedded store of its own, with `env` (XDG_CACHE_HOME, …). */
  const usersList = (env: Record<string, string>) => latchkey({ EMBEDDED_FILE: join(dir, 'store.json'), KEYS_DIR: join(dir, 'keys'), ...env }, ['users', 'list']);
  /** What a run says, without the paths that differ from run to run. */
  const said = (run: Run) => ({ status: run.status, stdout: run.stdout, stderr: run.stderr.replaceAll(dir, 'DIR') });
  let withoutCache: ReturnType<typeof said>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-compile-cache-'));
    withoutCache = said(await usersList({ NODE_DISABLE_COMPILE_CACHE: '1', XDG_CACHE_HOME: join(dir, 'disabled') }));
    assert.equal(withoutCache.status, 0, withoutCache.stderr);
    assert.equal(existsSync(join(dir, 'disabled')), false, 'NODE_DISABLE_COMPILE_CACHE: no cache made');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a run keeps the bytecode in $XDG_CACHE_HOME/latchkey/compile-cache, made 0700, and the next run says the same', async () => {
    const cache = join(dir, 'xdg', 'latchkey', 'compile-cache');
    assert.deepEqual(said(await usersList({ XDG_CACHE_HOME: join(dir, 'xdg') })), withoutCache);
    assert.ok(entries(cache).length > 50, `bytecode kept: ${entries(cache).length} files`);
    assert.equal(statSync(cache).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'xdg', 'latchkey')).mode & 0o777, 0o700);
    assert.deepEqual(said(await usersList({ XDG_CACHE_HOME: join(dir, 'xdg') })), withoutCache, 'read from the cache');
  });

  it('without XDG_CACHE_HOME (or with a relative one, which XDG says to ignore): ~/.cache/latchkey/compile-cache', () => {
    assert.match(compileCacheDir({})!, /\/\.cache\/latchkey\/compile-cache$/);
    assert.equal(compileCacheDir({ XDG_CACHE_HOME: 'relative/cache' }), compileCacheDir({}));
    assert.equal(compileCacheDir({ XDG_CACHE_HOME: '/var/cache/me' }), '/var/cache/me/latchkey/compile-cache');
  });

  it('a cache that cannot be made (a file where the directory goes): the run is the same, without a cache', async () => {
    writeFileSync(join(dir, 'a-file'), '');
    assert.deepEqual(said(await usersList({ XDG_CACHE_HOME: join(dir, 'a-file') })), withoutCache);
  });

  it('a cache directory others can write, or a link, is not used (planted bytecode would run as this user)', async () => {
    const open = join(dir, 'open', 'latchkey', 'compile-cache');
    mkdirSync(open, { recursive: true });
    chmodSync(open, 0o777);
    const openParent = join(dir, 'open-parent', 'latchkey');
    mkdirSync(join(openParent, 'compile-cache'), { recursive: true, mode: 0o700 });
    chmodSync(openParent, 0o777);
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    mkdirSync(join(dir, 'linked', 'latchkey'), { recursive: true, mode: 0o700 });
    symlinkSync(elsewhere, join(dir, 'linked', 'latchkey', 'compile-cache'));
    for (const xdg of ['open', 'open-parent', 'linked']) {
      assert.deepEqual(said(await usersList({ XDG_CACHE_HOME: join(dir, xdg) })), withoutCache, xdg);
    }
    assert.deepEqual(entries(open), [], 'world-writable: not used');
    assert.deepEqual(entries(join(openParent, 'compile-cache')), [], 'its parent world-writable: not used');
    assert.deepEqual(entries(elsewhere), [], 'a link: not followed');
  });

  it("NODE_COMPILE_CACHE is Node's own: the CLI leaves it to Node and makes no cache of its own", async () => {
    assert.deepEqual(said(await usersList({ NODE_COMPILE_CACHE: join(dir, 'node-own'), XDG_CACHE_HOME: join(dir, 'unused') })), withoutCache);
    assert.ok(entries(join(dir, 'node-own')).length > 0);
    assert.equal(existsSync(join(dir, 'unused')), false);
  });
});
