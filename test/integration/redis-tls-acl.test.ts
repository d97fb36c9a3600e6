/**
 * REDIS_URL with TLS (rediss://) and an ACL user: a redis-server that only speaks TLS, with the
 * default user off, reached by the CLI (trusting a test CA through NODE_EXTRA_CA_CERTS).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { testDir, testEnv } from '../helpers/server.js';

function openssl(dir: string, args: string[]) {
  const run = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
}

describe('Redis over TLS with an ACL user', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-tls-'));
  const home = testDir();
  let redis: ChildProcess;
  let port: number;

  before(async () => {
    openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=latchkey test CA']);
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.ext']);
    port = await freePort();
    redis = spawn('redis-server', [
      '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--tls-cert-file', 'server.crt', '--tls-key-file', 'server.key', '--tls-ca-cert-file', 'ca.crt', '--tls-auth-clients', 'no',
      '--user', 'default', 'off', '--user', 'latchkey', 'on', '>a-redis-password', '~*', '&*', '+@all',
    ], { cwd: dir, stdio: 'ignore' });
    await eventually(async () => {
      const ping = spawnSync('redis-cli', ['--tls', '--cacert', join(dir, 'ca.crt'), '-p', String(port), '--user', 'latchkey', '--pass', 'a-redis-password', '--no-auth-warning', 'PING'], { encoding: 'utf8' });
      assert.match(ping.stdout, /PONG/);
    }, 50);
  });
  after(() => {
    redis?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  });

  const env = (url: string) => ({ ...testEnv(home, 0, { redisUrl: url }), NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt') });

  it('works with rediss:// and the ACL user from the URL', async () => {
    const url = `rediss://latchkey:a-redis-password@127.0.0.1:${port}`;
    const add = await latchkey(env(url), ['users', 'add', 'tls-user', '--password-stdin'], 'a password over TLS');
    assert.equal(add.status, 0, add.stderr);
    const list = await latchkey(env(url), ['users', 'list']);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /"username": "tls-user"/);
    // It says which store it acted on, without the password in the URL.
    assert.equal(list.stderr.trim(), `latchkey: acting on Redis rediss://latchkey:***@127.0.0.1:${port}, key prefix lk: (issuer http://localhost:0)`);
  });

  it('a wrong password or plain redis:// to a TLS port fails with one clear line, not a hang', async () => {
    for (const url of [`rediss://latchkey:wrong@127.0.0.1:${port}`, `redis://latchkey:a-redis-password@127.0.0.1:${port}`]) {
      const run = await latchkey({ ...env(url), REDIS_COMMAND_TIMEOUT: '500' }, ['users', 'list']);
      assert.equal(run.status, 1, url);
      assert.match(run.stderr, /^latchkey: /m);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    }
  });
});
