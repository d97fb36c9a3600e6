/**
 * A newcomer's first hour (fifteenth fresh-eyes passes, docs/security-passes.md): the slips a
 * developer makes following the README for the first time, each answered with what to do.
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { latchkey } from '../helpers/process.js';
import { sampleRp } from './cli-commands.js';
import { freePort } from '../helpers/redis.js';
import { testDir } from '../helpers/server.js';

describe('a newcomer\'s first hour (fifteenth passes)', function () {
  this.timeout(60_000);
  const dir = testDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('serve in production without ISSUER: one line asking for the public URL (it ran, naming http://localhost:<port> in every token); the CLI there still takes the announced issuer', async () => {
    const port = await freePort();
    const production = {
      NODE_ENV: 'production',
      PORT: String(port),
      METRICS_ENABLED: 'false',
      LOG_LEVEL: 'silent',
      // Never reached by serve: the refusals come first.
      REDIS_URL: 'redis://127.0.0.1:1',
      COOKIE_KEYS: 'a-production-cookie-key-that-is-long-enough-0123456789',
      KEYS_SECRETS: 'a-production-key-ring-secret-that-is-long-enough-012345',
      KEYS_DIR: join(dir, 'keys'),
      WORKERS: '1',
    };
    // Set, even to localhost (docker compose's default), it gets past the issuer to the next check
    // (a bad --workers, which fails before Redis is reached); the CLI is not the server: without
    // ISSUER it takes the one the servers on its store announce, and fails here on Redis alone.
    const [unset, localhost, cli] = await Promise.all([
      latchkey(production, ['serve']),
      latchkey({ ...production, ISSUER: `http://localhost:${port}` }, ['serve', '--workers', 'x']),
      latchkey(production, ['users', 'list']),
    ]);
    assert.equal(unset.status, 1, unset.stderr);
    assert.deepEqual(unset.stderr.trim().split('\n'), [
      `latchkey: refusing to start in production: issuer (ISSUER): not set, so every token and URL would name http://localhost:${port}, which only this machine reaches; set ISSUER to the public URL clients reach this server at (ISSUER=https://id.example.com behind TLS; ISSUER=http://localhost:${port} to serve this machine alone)`,
    ]);
    assert.equal(localhost.status, 1);
    assert.match(localhost.stderr, /^latchkey: --workers: expected a number/);
    assert.equal(cli.status, 1);
    assert.match(cli.stderr, /REDIS_URL: cannot reach Redis/);
    assert.doesNotMatch(cli.stderr, /issuer \(ISSUER\)/);
  });

  it('npm start beside a .env (the README\'s Docker lines, PORT=3001 when 3000 is taken): serve says which settings there it does not read, never their values', async () => {
    const here = join(dir, 'dotenv');
    mkdirSync(here, { recursive: true });
    writeFileSync(join(here, '.env'), 'COOKIE_KEYS=cookie-secret-of-48-characters-cookie-secret-of-48\nexport KEYS_SECRETS=keys-secret-of-48\nPORT=3001\nISSUER=http://localhost:3001\nREDIS_URL=redis://127.0.0.1:6379\nTTL_ACCESS_TOKEN=300\nCOMPOSE_PROJECT_NAME=mine\n');
    // Held, so that the start stops at the port check, right after its warnings.
    const holder = createServer();
    await new Promise<void>((done) => holder.listen(0, '127.0.0.1', done));
    const port = (holder.address() as { port: number }).port;
    try {
      const settings = {
        PORT: String(port), HOST: '127.0.0.1', METRICS_ENABLED: 'false', LOG_LEVEL: 'warn', LOG_FORMAT: 'json',
        EMBEDDED_FILE: join(here, 'store.json'), KEYS_DIR: join(here, 'keys'), ISSUER: `http://localhost:${port}`,
      };
      // Beside it, and (below) without one, where nothing is said.
      const [run, bare] = await Promise.all([latchkey(settings, ['serve'], undefined, here), latchkey(settings, ['serve'], undefined, dir)]);
      assert.equal(run.status, 1, run.stderr);
      assert.match(run.stderr, /PORT: port \d+ on 127\.0\.0\.1 is in use/);
      const warnings = run.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { event?: string; msg: string }).filter((entry) => entry.event === 'config.env_file_ignored');
      // PORT and ISSUER are in the environment too, which wins, as under docker compose; COMPOSE_PROJECT_NAME is compose's own.
      assert.deepEqual(warnings.map((entry) => entry.msg), [
        './.env sets REDIS_URL, COOKIE_KEYS, KEYS_SECRETS and TTL_ACCESS_TOKEN, which this server does not read: only docker compose reads .env, Latchkey reads the environment (the configuration files\' values apply instead); to use them here, export them in this shell first (set -a; . ./.env; set +a)',
      ]);
      assert.doesNotMatch(run.stdout + run.stderr, /secret-of-48/);
      // Without a .env, nothing is said.
      assert.equal(bare.status, 1, bare.stderr);
      assert.doesNotMatch(bare.stdout, /\.env/);
    } finally {
      holder.close();
    }
  });

  it('npm run sample-rp given a PORT, ISSUER or PUBLIC_URL that is no port or URL: one line naming it with an example (it said "options.port should be >= 0", "only requests to HTTPS are allowed", "Invalid URL")', async () => {
    const base = { CLIENT_ID: 'demo', CLIENT_SECRET: 'never-checked', ISSUER: 'http://localhost:1', PORT: String(await freePort()) };
    const cases: [Record<string, string>, RegExp][] = [
      [{ PORT: 'abc' }, /^PORT: expected the sample app's own port, a number such as 8080, got "abc"$/],
      [{ ISSUER: 'localhost:3000' }, /^ISSUER: expected an http:\/\/ or https:\/\/ URL such as http:\/\/localhost:3000 \(the issuer Latchkey logs at start, "latchkey is listening"\), got "localhost:3000"$/],
      [{ ISSUER: 'http//localhost:3000' }, /^ISSUER: expected an http:\/\/ or https:\/\/ URL .*, got "http\/\/localhost:3000"$/],
      [{ PUBLIC_URL: 'localhost:8080' }, /^PUBLIC_URL: expected an http:\/\/ or https:\/\/ URL such as http:\/\/localhost:\d+ \(the app's own origin, as its redirect URI starts\), got "localhost:8080"$/],
    ];
    const runs = await Promise.all(cases.map(([change]) => sampleRp({ ...base, ...change })));
    runs.forEach((run, i) => {
      assert.equal(run.status, 1, run.stderr);
      const lines = run.stderr.trim().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, cases[i]![1]);
    });
  });
});
