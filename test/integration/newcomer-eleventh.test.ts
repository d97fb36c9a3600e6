/**
 * A newcomer's first hour, eleventh pass (docs/security-passes.md): what the CLI and the
 * configuration did with a command line or a setting a newcomer writes by habit.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { testDir, testEnv } from '../helpers/server.js';

const REDIRECT = 'http://localhost:8080/callback';

describe('a newcomer, eleventh pass', function () {
  // Each case is a Node process of its own: seconds apiece on a busy machine.
  this.timeout(120_000);
  const dir = testDir();
  let env: Record<string, string>;
  before(async () => {
    env = testEnv(dir, await freePort());
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The lines a run said on stderr, without the one naming the store. */
  const said = (stderr: string) => stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));

  it('clients add takes --scope repeated, as apis add, grant and revoke do: every scope is kept, not only the last', async () => {
    const run = await latchkey(env, ['clients', 'add', '--client-id', 'scoped', '--redirect-uri', REDIRECT, '--scope', 'openid', '--scope', 'email profile']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal((JSON.parse(run.stdout) as { scope: string }).scope, 'openid email profile');
  });

  it('an option that takes one value, given twice with different values, is refused in one line, nothing changed (the last one was taken silently)', async () => {
    const added = await latchkey(env, ['clients', 'add', '--client-id', 'twice', '--redirect-uri', REDIRECT]);
    assert.equal(added.status, 0, added.stderr);
    const cases: [string[], RegExp][] = [
      // `grants revoke --user alice --user bob` revoked bob's grants alone, and said nothing of alice.
      [['grants', 'revoke', '--user', 'alice', '--user', 'bob'], /^latchkey: --user given twice \("alice", then "bob"\): it takes one value; see latchkey grants revoke --help$/],
      [['clients', 'add', '--client-id', 'a', '--client-id', 'b', '--redirect-uri', REDIRECT], /^latchkey: --client-id given twice \("a", then "b"\): it takes one value; see latchkey clients add --help$/],
      // --require-mfa then --no-require-mfa: the last one won, and the client's people were not asked for a second factor.
      [['clients', 'update', 'twice', '--require-mfa', '--no-require-mfa'], /^latchkey: --require-mfa and --no-require-mfa both given: choose one; see latchkey clients update --help$/],
      [['upstreams', 'add', '--id', 'corp', '--issuer', 'https://corp.example.com', '--client-id', 'x', '--client-secret-stdin', '--scope', 'openid', '--scope', 'email'], /^latchkey: --scope given twice \("openid", then "email"\): it takes one value; several scopes go space-separated in one: --scope "openid email"; see latchkey upstreams add --help$/],
      [['apis', 'add', 'https://api.example.com', '--format', 'jwt', '--format', 'opaque'], /^latchkey: --format given twice \("jwt", then "opaque"\): it takes one value; see latchkey apis add --help$/],
    ];
    for (const [args, pattern] of cases) {
      const run = await latchkey(env, args, 'a-secret-of-the-upstream');
      assert.equal(run.status, 1, `${args.join(' ')}: ${run.stderr}`);
      const lines = said(run.stderr);
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, pattern);
    }
    const clients = JSON.parse((await latchkey(env, ['clients', 'list'])).stdout) as { client_id: string; require_mfa?: boolean }[];
    assert.deepEqual(clients.map((client) => client.client_id).sort(), ['scoped', 'twice']);
    assert.deepEqual((JSON.parse((await latchkey(env, ['apis', 'list'])).stdout) as { identifier: string }[]).filter((api) => api.identifier === 'https://api.example.com'), []);
    assert.deepEqual(JSON.parse((await latchkey(env, ['upstreams', 'list'])).stdout), []);
    // The same value twice, or a flag twice, says the same thing once: taken.
    const same = await latchkey(env, ['clients', 'update', 'twice', '--require-mfa', '--require-mfa']);
    assert.equal(same.status, 0, same.stderr);
  });

  it('clients add refuses a --public or --secret that --auth-method would drop (the client was made public, the secret left out)', async () => {
    const secret = 'a'.repeat(43);
    const cases: [string[], RegExp][] = [
      // Made a public client (auth method none): the operator asked for one that authenticates.
      [['--public', '--auth-method', 'client_secret_basic'], /^latchkey: --public and --auth-method client_secret_basic exclude each other: a public client has no secret \(its auth method is none\); see latchkey clients add --help$/],
      // The secret was dropped: a public client, or one that must sign its assertions, with no word of it.
      [['--secret', secret, '--auth-method', 'none'], /^latchkey: --secret and --auth-method none exclude each other: only client_secret_basic and client_secret_post use a secret; see latchkey clients add --help$/],
      [['--secret', secret, '--auth-method', 'private_key_jwt', '--jwks-uri', 'https://app.example.com/jwks'], /^latchkey: --secret and --auth-method private_key_jwt exclude each other: .*; see latchkey clients add --help$/],
    ];
    for (const [flags, pattern] of cases) {
      const run = await latchkey(env, ['clients', 'add', '--client-id', 'dropped', '--redirect-uri', REDIRECT, ...flags]);
      assert.equal(run.status, 1, `${flags.join(' ')}: ${run.stderr}`);
      assert.deepEqual(said(run.stderr).length, 1, run.stderr);
      assert.match(said(run.stderr)[0]!, pattern);
    }
    const clients = JSON.parse((await latchkey(env, ['clients', 'list'])).stdout) as { client_id: string }[];
    assert.ok(!clients.some((client) => client.client_id === 'dropped'), 'nothing was registered');
    // What agrees is taken: a public client's method is none.
    const agreed = await latchkey(env, ['clients', 'add', '--client-id', 'spa', '--redirect-uri', REDIRECT, '--public', '--auth-method', 'none']);
    assert.equal(agreed.status, 0, agreed.stderr);
  });

  it('users add --email-verified without --email is refused, not dropped (the person was made without it, exit 0)', async () => {
    const run = await latchkey(env, ['users', 'add', 'carol', '--password-stdin', '--email-verified'], 'a long passphrase');
    assert.equal(run.status, 1, run.stderr);
    assert.deepEqual(said(run.stderr), ['latchkey: --email-verified marks the --email given with it as verified: give --email too; see latchkey users add --help']);
    assert.deepEqual(JSON.parse((await latchkey(env, ['users', 'list'])).stdout), []);
  });

  it('a CONFIG_FILE that is a directory says so, naming CONFIG_FILE, not "EISDIR: illegal operation on a directory"', async () => {
    const run = await latchkey({ ...env, CONFIG_FILE: dir }, ['users', 'list']);
    assert.equal(run.status, 1);
    assert.deepEqual(said(run.stderr), [`latchkey: CONFIG_FILE: ${dir} is a directory; expected a YAML file of settings`]);
  });
});
