/**
 * Review of the sixteenth passes' merged changes (h12): docs/security-passes.md, "Looked at in the
 * sixteenth passes: review of the merged changes (h12)".
 *
 * The CLI's compile cache (src/compile-cache.ts) checked its own two directories (latchkey/ and
 * compile-cache/: this user's, written by nobody else, no link) but not the directories above
 * them. Whoever may write the cache's base ($XDG_CACHE_HOME, ~/.cache) may rename latchkey/ away
 * and put a directory of theirs in its place between the check and Node's reads, which go by path
 * for every module a run loads: performed as root with a base of nobody's and nobody swapping the
 * two with renameat2(RENAME_EXCHANGE) in a loop, root's runs read and wrote 253 bytecode files in
 * nobody's directory (`sudo -E latchkey …` keeps an operator's HOME and XDG_CACHE_HOME). The cache
 * is now used only when every directory above it is this user's or root's and writable by no one
 * else (a sticky one, like /tmp, lets nobody rename another's entry).
 *
 * A CONFIG_FILE written as a .env was said to be refused "never [printing] a value", but only when
 * YAML read it as one string: a value with ": " on any line (`TITLE=Latchkey: sign in`) made it no
 * YAML at all, and the error quoted its first line, `("COOKIE_KEYS=<the secret>")`; a single line
 * `KEYS_SECRETS=abc: def` was a mapping, refused as the unknown setting "KEYS_SECRETS=abc". Both
 * are the .env refusal now, and a YAML error never quotes a NAME=value line.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { safeCacheAncestry } from '../../src/compile-cache.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { latchkey } from '../helpers/process.js';

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((name) => statSync(join(dir, name)).isFile());
}

describe('review of the sixteenth passes (h12): the compile cache under a directory others can write', function () {
  this.timeout(30_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-review-h12-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const usersList = (xdg: string) => latchkey({ EMBEDDED_FILE: join(dir, 'store.json'), KEYS_DIR: join(dir, 'keys'), XDG_CACHE_HOME: xdg }, ['users', 'list']);

  it('a base ($XDG_CACHE_HOME) others can write is not used: they could swap latchkey/ for theirs after the check', async () => {
    const base = join(dir, 'open-base');
    mkdirSync(base);
    chmodSync(base, 0o777);
    const run = await usersList(base);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(files(base), [], 'no bytecode kept (nor read) under a directory others can write');
  });

  it('a base of another user is not used (root run with an operator\'s HOME or XDG_CACHE_HOME: sudo -E)', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const base = join(dir, 'someone-elses');
    mkdirSync(base, { mode: 0o755 });
    chownSync(base, 65534, 65534);
    const run = await usersList(base);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(files(base), []);
  });

  it('the checks of the directories above: ours or root\'s, written by no one else, or sticky', () => {
    const sticky = join(dir, 'sticky');
    mkdirSync(join(sticky, 'inner'), { recursive: true });
    chmodSync(sticky, 0o1777);
    assert.equal(safeCacheAncestry(join(sticky, 'inner')), true, 'a sticky directory (as /tmp) lets nobody rename our entry');
    const open = join(dir, 'open');
    mkdirSync(join(open, 'inner'), { recursive: true });
    chmodSync(open, 0o777);
    assert.equal(safeCacheAncestry(join(open, 'inner')), false);
    const groupOpen = join(dir, 'group-open');
    mkdirSync(join(groupOpen, 'inner'), { recursive: true });
    chmodSync(groupOpen, 0o775);
    assert.equal(safeCacheAncestry(join(groupOpen, 'inner')), false);
    assert.equal(safeCacheAncestry(dir), true, 'a directory of ours in the temporary directory');
  });

  it('a usable base still gets its cache (the fix leaves the common case alone)', async () => {
    const base = join(dir, 'mine');
    mkdirSync(base, { mode: 0o700 });
    const run = await usersList(base);
    assert.equal(run.status, 0, run.stderr);
    assert.ok(files(join(base, 'latchkey', 'compile-cache')).length > 50);
  });
});

describe('review of the sixteenth passes (h12): a CONFIG_FILE written as a .env never prints a value', function () {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-review-h12-env-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const SECRET = 'a-cookie-secret-nobody-may-read';
  const refusal = (text: string) => {
    const file = join(dir, '.env');
    writeFileSync(file, text);
    try {
      loadConfig({ CONFIG_FILE: file });
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error.message.replace(file, 'FILE');
    }
    assert.fail('loaded');
  };
  const DOT_ENV = 'FILE: expected a mapping of settings (as config/default.yaml writes them), not NAME=value lines as in a .env, which are environment variables: export them, or write each as YAML';

  it('a .env with ": " in a later value (no YAML at all) is refused as a .env, its first line not quoted', () => {
    const said = refusal(`COOKIE_KEYS=${SECRET}\nTITLE=Latchkey: sign in\n`);
    assert.doesNotMatch(said, new RegExp(SECRET));
    assert.equal(said, `${DOT_ENV}: COOKIE_KEYS is written cookie: {keys: …}`);
    assert.doesNotMatch(refusal(`# settings\nexport KEYS_SECRETS=${SECRET}\nREDIS_URL=redis://:pw@redis: 6379\n`), new RegExp(`${SECRET}|pw@`));
  });

  it('a one-line .env whose value has ": " (YAML reads a mapping) is refused as a .env, not as the unknown setting "NAME=value"', () => {
    const said = refusal('KEYS_SECRETS=abc-secret: def\n');
    assert.doesNotMatch(said, /abc-secret|: def/);
    assert.equal(said, `${DOT_ENV}: KEYS_SECRETS is written keys: {secrets: …}`);
  });

  it('a YAML error never quotes a NAME=value line (a .env line pasted into a YAML file); other lines as before', () => {
    const said = refusal(`port: 3001\nCOOKIE_KEYS=${SECRET}\n  bad: [\n`);
    assert.doesNotMatch(said, new RegExp(SECRET));
    assert.match(said, /^FILE: not valid YAML: /);
    assert.match(refusal('port: 3001: x\n'), /^FILE: not valid YAML: .*\("port: 3001: x"\)$/);
  });
});
