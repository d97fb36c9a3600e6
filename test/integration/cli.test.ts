/**
 * The latchkey CLI, run as a separate process against the same store as a running server.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';

async function clientCredentials(server: TestServer, id: string, secret: string) {
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
  });
  return response.status;
}

for (const mode of ['redis', 'embedded'] as const) {
  describe(`latchkey CLI (${mode} store)`, function () {
    this.timeout(60_000);
    let redis: RedisServer | undefined;
    let server: TestServer;
    let env: Record<string, string>;
    const dir = testDir();

    before(async () => {
      if (mode === 'redis') redis = await startRedisServer();
      const port = await freePort();
      const options = redis ? { redisUrl: redis.url, dir, port } : { dir, port };
      env = testEnv(dir, port, options);
      server = await startServer(options);
    });
    after(async () => {
      await server?.stop();
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('clients add prints the client with a generated 256-bit secret, and the running server accepts it', async () => {
      const run = await latchkey(env, ['clients', 'add', '--client-id', 'batch', '--grant-type', 'client_credentials']);
      assert.equal(run.status, 0, run.stderr);
      const client = JSON.parse(run.stdout) as { client_id: string; client_secret: string };
      assert.equal(client.client_id, 'batch');
      assert.ok(Buffer.from(client.client_secret, 'base64url').length >= 32, 'at least 256 bits');
      await eventually(async () => assert.equal(await clientCredentials(server, 'batch', client.client_secret), 200, 'no restart needed'));
      assert.equal(await clientCredentials(server, 'batch', 'wrong'), 401);
    });

    it('clients add for a web app and a public app; list hides secrets; duplicates and bad metadata are refused', async () => {
      const web = await latchkey(env, ['clients', 'add', '--client-id', 'web', '--redirect-uri', 'https://app.example/cb', '--name', 'Web App']);
      assert.equal(web.status, 0, web.stderr);
      const spa = await latchkey(env, ['clients', 'add', '--client-id', 'spa', '--public', '--redirect-uri', 'http://localhost:5173/cb']);
      assert.equal(spa.status, 0, spa.stderr);
      assert.equal((JSON.parse(spa.stdout) as { token_endpoint_auth_method: string }).token_endpoint_auth_method, 'none');
      assert.equal((JSON.parse(spa.stdout) as { client_secret?: string }).client_secret, undefined);

      const list = await latchkey(env, ['clients', 'list']);
      assert.equal(list.status, 0, list.stderr);
      const clients = JSON.parse(list.stdout) as { client_id: string; client_secret?: string }[];
      assert.deepEqual(clients.map((c) => c.client_id).sort(), ['batch', 'spa', 'web']);
      assert.ok(clients.every((c) => c.client_secret === undefined));

      const again = await latchkey(env, ['clients', 'add', '--client-id', 'web', '--redirect-uri', 'https://app.example/cb']);
      assert.equal(again.status, 1);
      assert.match(again.stderr, /^latchkey: a client "web" exists already$/m);

      const bad = await latchkey(env, ['clients', 'add', '--client-id', 'bad', '--redirect-uri', 'https://app.example/cb#fragment']);
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /^latchkey: invalid_(redirect_uri|client_metadata): .*fragment/m);
    });

    it('clients remove deletes a client and the running server stops accepting it', async () => {
      const run = await latchkey(env, ['clients', 'remove', 'batch']);
      assert.equal(run.status, 0, run.stderr);
      await eventually(async () => assert.equal(await clientCredentials(server, 'batch', 'irrelevant'), 401));
      assert.equal((await latchkey(env, ['clients', 'remove', 'web'])).status, 0);
      const list = JSON.parse((await latchkey(env, ['clients', 'list'])).stdout) as { client_id: string }[];
      assert.ok(!list.some((c) => c.client_id === 'web'));
      const missing = await latchkey(env, ['clients', 'remove', 'web']);
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /no client "web"/);
    });

    it('users add (password from stdin), list, duplicate refused, disable/enable, passwd, remove', async () => {
      const add = await latchkey(env, ['users', 'add', 'Bob', '--password-stdin', '--email', 'bob@example.test', '--name', 'Bob'], 'a long enough password\n');
      assert.equal(add.status, 0, add.stderr);
      const bob = JSON.parse(add.stdout) as { sub: string; username: string };
      assert.equal(bob.username, 'Bob');
      assert.ok(!bob.sub.toLowerCase().includes('bob'), 'sub is opaque, not the username');
      await eventually(async () => assert.ok(await server.accounts.verify('bob', 'a long enough password'), 'case-insensitive, newline stripped'));

      const duplicate = await latchkey(env, ['users', 'add', 'BOB', '--password-stdin'], 'another password\n');
      assert.equal(duplicate.status, 1);
      assert.match(duplicate.stderr, /taken/);

      assert.equal((await latchkey(env, ['users', 'disable', 'bob'])).status, 0);
      await eventually(async () => assert.equal(await server.accounts.verify('bob', 'a long enough password'), undefined));
      assert.equal((await latchkey(env, ['users', 'enable', 'bob'])).status, 0);
      assert.equal((await latchkey(env, ['users', 'passwd', 'bob', '--password-stdin'], 'a brand new password\n')).status, 0);
      await eventually(async () => assert.ok(await server.accounts.verify('bob', 'a brand new password')));

      const list = JSON.parse((await latchkey(env, ['users', 'list'])).stdout) as { username: string; disabled: boolean }[];
      assert.deepEqual(list.map((u) => [u.username, u.disabled]), [['Bob', false]]);
      assert.equal((await latchkey(env, ['users', 'remove', 'bob'])).status, 0);
      await eventually(async () => assert.equal(await server.accounts.findByUsername('bob'), undefined));
    });

    it('keys list shows the current key and the next one, made at first start', async () => {
      const run = await latchkey(env, ['keys', 'list']);
      assert.equal(run.status, 0, run.stderr);
      const keys = JSON.parse(run.stdout) as { kid: string; state: string; usableFrom?: string; rotatesAt?: string }[];
      assert.deepEqual(keys.map((k) => k.state), ['current', 'next']);
      assert.ok(keys[1]!.usableFrom && keys[1]!.rotatesAt, 'the next key says when it may sign and when the schedule promotes it');
      if (mode === 'embedded') assert.equal(statSync(join(dir, 'keys', 'keyring.json')).mode & 0o777, 0o600);
      else assert.ok(!existsSync(join(dir, 'keys', 'keyring.json')), 'with Redis the ring lives in Redis, not in keys/');
    });

    it('keys rotate waits for the publish lead unless --now; the running server signs with the new key without a restart', async () => {
      const before = JSON.parse((await latchkey(env, ['keys', 'list'])).stdout) as { kid: string; state: string }[];
      const early = await latchkey(env, ['keys', 'rotate']);
      assert.equal(early.status, 1);
      assert.match(early.stderr, /^latchkey: the next key .* may sign from .*keys\.publishLead.*--now/);
      assert.equal(early.stderr.trim().split('\n').length, 1);

      const rotated = await latchkey(env, ['keys', 'rotate', '--now']);
      assert.equal(rotated.status, 0, rotated.stderr);
      const result = JSON.parse(rotated.stdout) as { current: string; retired: string; next: string };
      assert.equal(result.current, before[1]!.kid, 'the next key became current');
      assert.equal(result.retired, before[0]!.kid);
      const after = JSON.parse((await latchkey(env, ['keys', 'list'])).stdout) as { kid: string; state: string }[];
      assert.deepEqual(after.map((k) => [k.state, k.kid]), [['current', result.current], ['next', result.next], ['retired', result.retired]]);

      await eventually(async () => {
        const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string }[] };
        assert.deepEqual(new Set(jwks.keys.map((k) => k.kid)), new Set([result.current, result.next, result.retired]));
        assert.equal(server.keys.ring.current?.kid, result.current);
      });
    });

    it('grants revoke needs exactly one of --user and --client, and a known user', async () => {
      const neither = await latchkey(env, ['grants', 'revoke']);
      assert.equal(neither.status, 1);
      assert.match(neither.stderr, /^latchkey: give exactly one of --user or --client$/m);
      const unknown = await latchkey(env, ['grants', 'revoke', '--user', 'nobody']);
      assert.equal(unknown.status, 1);
      assert.match(unknown.stderr, /no user "nobody"/);
      const client = await latchkey(env, ['grants', 'revoke', '--client', 'spa']);
      assert.equal(client.status, 0, client.stderr);
      assert.deepEqual(JSON.parse(client.stdout), { client_id: 'spa', revoked: 0 });
    });
  });
}
