/**
 * A newcomer's first hour (fourteenth fresh-eyes passes, docs/security-passes.md): the slips a
 * developer makes following the README for the first time, each answered with what to do.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { latchkey, serveProcess } from '../helpers/process.js';
import { loadConfig, publicSecretsWarning } from '../../src/config.js';
import { createResourceServer } from '../../src/resource-server/index.js';
import { sampleRp } from './cli-commands.js';
import { freePort } from '../helpers/redis.js';
import { testDir } from '../helpers/server.js';

describe('a newcomer\'s first hour (fourteenth passes)', function () {
  this.timeout(60_000);
  const dir = testDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function env(name: string): Promise<Record<string, string>> {
    mkdirSync(join(dir, name), { recursive: true });
    return {
      PORT: String(await freePort()),
      METRICS_ENABLED: 'false',
      LOG_LEVEL: 'silent',
      EMBEDDED_FILE: join(dir, name, 'store.json'),
      KEYS_DIR: join(dir, name, 'keys'),
      KEYS_RSA_BITS: '2048',
    };
  }

  function assertOneLine(run: { status: number | null; stderr: string }, pattern: RegExp): void {
    assert.equal(run.status, 1, run.stderr);
    const lines = run.stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, pattern);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  }

  // Run as a user who may not write there (the checkout's data/ made by root, a service user given
  // EMBEDDED_FILE=/var/lib/latchkey/store.json before the directory exists): a stack trace from
  // mkdirSync at the first write. /sys refuses every new file, to root as well.
  const UNWRITABLE = `/sys/latchkey-newcomer-${process.pid}/store.json`;

  it('serve and the CLI with an EMBEDDED_FILE they cannot write: one line naming the setting, not a stack trace', async () => {
    const settings = { ...(await env('unwritable')), EMBEDDED_FILE: UNWRITABLE };
    const pattern = /^latchkey: embedded\.file \(EMBEDDED_FILE\): cannot write \/sys\/latchkey-newcomer-\d+\/store\.json \(E[A-Z]+[^)]*\); expected a path Latchkey can write/;
    assertOneLine(await latchkey(settings, ['serve']), pattern);
    assertOneLine(await latchkey(settings, ['users', 'add', 'alice', '--password-stdin'], 'a long passphrase'), pattern);
  });

  it('REDIS_URL written as host:port (as redis-cli takes it): one line with the URL to write, not a TypeError; credentials in it are not echoed', async () => {
    const settings = await env('redis-url');
    for (const args of [['serve'], ['users', 'list']]) {
      assertOneLine(
        await latchkey({ ...settings, REDIS_URL: '127.0.0.1:6379' }, args),
        /^latchkey: redis\.url \(REDIS_URL\): expected a redis:\/\/ or rediss:\/\/ URL .*such as redis:\/\/127\.0\.0\.1:6379, got "127\.0\.0\.1:6379"$/,
      );
    }
    const withPassword = await latchkey({ ...settings, REDIS_URL: 'default:s3cret-pw@redis.internal:6379' }, ['serve']);
    assertOneLine(withPassword, /^latchkey: redis\.url \(REDIS_URL\): expected a redis:\/\/ .*got "\*\*\*@redis\.internal:6379"$/);
    assert.doesNotMatch(withPassword.stderr, /s3cret-pw/);
  });

  it('a first start says nothing of access tokens "issued with a longer lifetime" (the revocation feed\'s own is fixed); a lifetime set lower is still said', async () => {
    const started = async (extra: Record<string, string>) => {
      const server = await serveProcess({ ...(await env('lifetimes')), LOG_LEVEL: 'info', LOG_FORMAT: 'json', ...extra });
      await server.stop();
      return server.stdout().split('\n').filter((line) => line.includes('"apis.lifetimes_bounded"'));
    };
    assert.deepEqual(await started({}), []);
    const lowered = await started({ TTL_CLIENT_CREDENTIALS: '300' });
    assert.equal(lowered.length, 1, lowered.join('\n'));
    assert.match(lowered[0]!, /"apis":\["http:\/\/localhost:\d+\/admin"\]/);
  });

  it('npm run sample-rp given an https ISSUER for Latchkey\'s own plain-http port says so and which ISSUER to set (it said only "fetch failed")', async () => {
    const plain = createServer((_, res) => res.end('{}'));
    await new Promise<void>((done) => plain.listen(0, '127.0.0.1', done));
    const { port } = plain.address() as AddressInfo;
    try {
      const run = await sampleRp({ ISSUER: `https://localhost:${port}`, CLIENT_SECRET: 'x', PORT: '0' });
      assert.equal(run.status, 1);
      assert.match(run.stderr.trim(), new RegExp(`^no TLS at https://localhost:${port} \\(\\w+\\): Latchkey itself speaks plain http .*such as http://localhost:${port}$`));
    } finally {
      plain.close();
    }
  });

  it('latchkey/resource-server given an https issuer for Latchkey\'s own plain-http port fails at once saying so (it waited startTimeout, a minute)', async () => {
    const plain = createServer((_, res) => res.end('{}'));
    await new Promise<void>((done) => plain.listen(0, '127.0.0.1', done));
    const { port } = plain.address() as AddressInfo;
    try {
      const started = performance.now();
      await assert.rejects(
        createResourceServer({ issuer: `https://localhost:${port}`, audience: 'https://api.example.com', clientId: 'api', clientSecret: 'x', startTimeout: 20_000 }),
        /cannot reach https:\/\/localhost:\d+\/\.well-known\/openid-configuration \(\w+: no TLS there; Latchkey itself speaks plain http/,
      );
      assert.ok(performance.now() - started < 5_000, 'failed at once');
    } finally {
      plain.close();
    }
  });

  it('the INSECURE warning on Redis says when ./.env holds the secrets it asks for: only docker compose reads .env (npm start does not)', () => {
    const here = join(dir, 'dotenv');
    mkdirSync(here, { recursive: true });
    const config = loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379/14' });
    assert.doesNotMatch(publicSecretsWarning(config, here)!.message, /\.env/);
    // As the README's Docker lines make it (the values are never said).
    writeFileSync(join(here, '.env'), 'COOKIE_KEYS=cookie-secret-of-48-characters-cookie-secret-of-48\nexport KEYS_SECRETS=keys-secret-of-48-characters-keys-secret-of-48-ch\nPORT=3001\n');
    const message = publicSecretsWarning(config, here)!.message;
    assert.match(message, /^INSECURE: .*; \.\/\.env sets COOKIE_KEYS and KEYS_SECRETS, but only docker compose reads \.env: .*set -a; \. \.\/\.env; set \+a/);
    assert.doesNotMatch(message, /secret-of-48/);
  });

  it('a running server whose store file can no longer be written answers 503, not 500, and keeps nothing of what failed', async () => {
    const settings: Record<string, string> = { ...(await env('later')), REGISTRATION_OPEN: 'true', LOG_LEVEL: 'error', LOG_FORMAT: 'json' };
    const server = await serveProcess(settings);
    try {
      const register = (name: string) =>
        fetch(`${server.url}/reg`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_name: name, redirect_uris: ['https://app.example.com/callback'] }),
        });
      const first = await register('first');
      assert.equal(first.status, 201, await first.clone().text());
      // The next write's temporary file (<file>.<pid>.tmp) cannot be made: a directory is in its way.
      const { pid } = JSON.parse(readFileSync(`${settings.EMBEDDED_FILE!}.server`, 'utf8')) as { pid: number };
      mkdirSync(`${settings.EMBEDDED_FILE!}.${pid}.tmp`);
      const refused = await register('second');
      assert.equal(refused.status, 503, await refused.clone().text());
      assert.ok(refused.headers.get('retry-after'));
      assert.equal(((await refused.json()) as { error: string }).error, 'temporarily_unavailable');
      // Not done: the client that was refused is not served from memory either.
      rmSync(`${settings.EMBEDDED_FILE!}.${pid}.tmp`, { recursive: true });
      const list = await latchkey(settings, ['clients', 'list']);
      assert.equal(list.status, 0, list.stderr);
      assert.match(list.stdout, /"first"/);
      assert.doesNotMatch(list.stdout, /"second"/);
      assert.match(server.stdout() + server.stderr(), /cannot write/);
    } finally {
      await server.stop();
    }
  });
});
