/**
 * The container, without a Docker engine (this machine has none): the Dockerfile and compose file
 * checked against hadolint-style rules, and the production bundle the image holds — compiled
 * dist/, views, config and production dependencies only — installed in a fresh directory and
 * started in production mode against Redis.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../../src/paths.js';
import { readAllDocs, readDoc } from '../helpers/docs.js';
import { eventually } from '../helpers/eventually.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
/** Instructions with their continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'))
  .map((line) => ({ op: line.split(/\s+/)[0]!.toUpperCase(), args: line.slice(line.indexOf(' ') + 1) }));
const stages = instructions.reduce<(typeof instructions)[]>((all, instruction) => {
  if (instruction.op === 'FROM') all.push([]);
  all.at(-1)?.push(instruction);
  return all;
}, []);
const runtime = stages.at(-1)!;

describe('Docker: the Dockerfile and compose file, statically', () => {
  it('is multi-stage, every base pinned to a Node 24 LTS tag (DL3006/DL3007)', () => {
    const bases = instructions.filter((i) => i.op === 'FROM').map((i) => i.args.split(/\s+/)[0]!);
    assert.ok(bases.length >= 2, 'a build stage and a runtime stage');
    for (const base of bases) assert.match(base, /^node:24-[\w.-]+$/, base);
  });

  it('runs as a non-root user in the runtime stage, with a HEALTHCHECK on /healthz', () => {
    const user = runtime.filter((i) => i.op === 'USER').at(-1);
    assert.ok(user && !/^(root|0)(:|$)/.test(user.args), 'USER is not root');
    const healthcheck = runtime.find((i) => i.op === 'HEALTHCHECK');
    assert.ok(healthcheck && healthcheck.args.includes('/healthz'));
  });

  it('follows the usual rules: COPY not ADD (DL3020), npm ci (DL3016), exec-form CMD (DL3025), absolute WORKDIR (DL3000), no recommends (DL3015)', () => {
    assert.equal(instructions.filter((i) => i.op === 'ADD').length, 0);
    for (const run of instructions.filter((i) => i.op === 'RUN')) {
      assert.doesNotMatch(run.args, /npm install(?!-)/, run.args);
      if (/apt-get install/.test(run.args)) assert.match(run.args, /--no-install-recommends/);
      assert.doesNotMatch(run.args, /sudo /, 'DL3004');
    }
    const cmd = runtime.filter((i) => i.op === 'CMD').at(-1)!;
    assert.ok(Array.isArray(JSON.parse(cmd.args)), 'CMD in JSON exec form');
    for (const workdir of instructions.filter((i) => i.op === 'WORKDIR')) assert.match(workdir.args, /^\//);
  });

  it('bakes in no secret and takes every setting from the environment', () => {
    for (const env of instructions.filter((i) => i.op === 'ENV' || i.op === 'ARG')) {
      assert.doesNotMatch(env.args, /COOKIE_KEYS|KEYS_SECRETS|PASSWORD|SECRET/i, env.args);
    }
    assert.ok(runtime.some((i) => i.op === 'ENV' && /NODE_ENV=production/.test(i.args)));
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const path of ['node_modules', 'keys/*', '.git', 'data', '.env']) assert.ok(ignored.includes(path), `.dockerignore: ${path}`);
  });

  it('the README and docs/ run it one way: secrets made once into .env, never a new KEYS_SECRETS per run', () => {
    const pages = readAllDocs();
    for (const { path, text } of pages) assert.doesNotMatch(text, /KEYS_SECRETS=\$\(openssl[^\n]*\n?[^\n]*docker compose up/, `${path}: a one-liner makes a new secret at each start`);
    const made = pages.flatMap(({ path, text }) => (text.match(/^printf .*KEYS_SECRETS=.*> \.env$/gm) ?? []).map(() => path));
    assert.deepEqual(made, ['README.md'], 'one .env recipe, in the quick start');
  });

  it('compose runs Latchkey with Redis (AOF on, a named volume) and requires the secrets', () => {
    const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { command?: string[]; volumes?: string[]; environment?: Record<string, string>; depends_on?: Record<string, unknown> }>;
      volumes: Record<string, unknown>;
    };
    const redis = compose.services.redis!;
    assert.deepEqual(redis.command?.slice(-2), ['--appendonly', 'yes']);
    const volume = redis.volumes![0]!.split(':')[0]!;
    assert.ok(volume in compose.volumes, 'a named volume');
    const latchkey = compose.services.latchkey!;
    assert.match(latchkey.environment!.REDIS_URL!, /^redis:\/\/redis:/);
    assert.match(latchkey.environment!.COOKIE_KEYS!, /:\?/, 'compose refuses to start without COOKIE_KEYS');
    assert.match(latchkey.environment!.KEYS_SECRETS!, /:\?/);
    assert.ok(latchkey.depends_on && 'redis' in latchkey.depends_on);
  });

  it("PORT in .env moves the published port, the container's own and the default issuer together (ninth newcomer pass: 3000 was fixed, taken or not)", () => {
    const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: { latchkey: { ports: string[]; environment: Record<string, string> } } };
    const latchkey = compose.services.latchkey;
    // Interpolated as compose does for ${VAR:-default} (nested too), with and without PORT in .env.
    const interpolate = (text: string, env: Record<string, string>): string => {
      let out = text;
      for (let inner = /\$\{([A-Z_]+):-([^${}]*)\}/; inner.test(out); ) out = out.replace(inner, (_, name: string, fallback: string) => env[name] || fallback);
      return out;
    };
    for (const [env, port] of [[{}, '3000'], [{ PORT: '3001' }, '3001']] as const) {
      assert.deepEqual(latchkey.ports.map((line) => interpolate(line, env)), [`${port}:${port}`], JSON.stringify(env));
      assert.equal(interpolate(latchkey.environment.PORT ?? '', env), port, 'the container listens where the port is published');
      assert.equal(interpolate(latchkey.environment.ISSUER ?? '', env), `http://localhost:${port}`, 'the default issuer follows');
    }
    assert.equal(interpolate(latchkey.environment.ISSUER!, { PORT: '3001', ISSUER: 'https://id.example.com' }), 'https://id.example.com');
    const readme = readDoc('README.md');
    assert.match(readme.slice(readme.indexOf('With Docker'), readme.indexOf('## Sign in with Latchkey')), /`PORT=3001` in `\.env`/, 'the README says how');
  });

  it('every setting docs/operating.md says to put in .env reaches the container (compose reads .env only to fill in its own file)', () => {
    const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: { latchkey: { environment: Record<string, string> } } };
    const operating = readDoc('docs/operating.md');
    const docker = operating.slice(operating.indexOf('**Docker.**'), operating.indexOf('## Incident runbook'));
    const named = [...docker.matchAll(/`([A-Z][A-Z0-9_]+)=[^`]*`/g)].map((match) => match[1]!);
    assert.ok(named.includes('PROXY'), 'docs/operating.md names the settings it means');
    for (const name of [...named, 'COOKIE_KEYS', 'KEYS_SECRETS']) {
      assert.match(compose.services.latchkey.environment[name] ?? '', new RegExp(`^\\$\\{${name}[:?}-]`), `${name} is passed from .env`);
    }
  });
});

describe('Docker: the production bundle the image holds', function () {
  this.timeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bundle-'));
  let redis: RedisServer;

  before(async () => {
    redis = await startRedisServer();
    // What the image copies: compiled dist/ (npm test builds it first), package files, config, views.
    for (const path of ['dist', 'views', 'config', 'package.json', 'package-lock.json']) cpSync(join(ROOT, path), join(dir, path), { recursive: true });
    const npm = (args: string[]) => spawnSync('npm', args, { cwd: dir, encoding: 'utf8' });
    const install = npm(['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline']);
    assert.equal(install.status, 0, install.stderr);
    // The image runs argon2's prebuilt binary on Node 24; the Node running this test may need its
    // own build of it (the package's install script), as `npm ci` would have made.
    const rebuild = npm(['rebuild', 'argon2']);
    assert.equal(rebuild.status, 0, rebuild.stderr);
  });
  after(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts in production mode with only production dependencies, answers, and stops on SIGTERM with exit 0', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['dist/cli.js', 'serve'], {
      cwd: dir,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        PORT: String(port),
        ISSUER: 'https://id.example.test',
        REDIS_URL: redis.url,
        COOKIE_KEYS: 'a-production-cookie-key-that-is-long-enough-0123456789',
        KEYS_SECRETS: 'a-production-key-ring-secret-that-is-long-enough-012345',
        KEYS_DIR: join(dir, 'keys'),
        METRICS_PORT: '0',
        WORKERS: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    try {
      await eventually(async () => {
        assert.equal(child.exitCode, null, `exited early: ${output}`);
        assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
      }, 200);
      const response = await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`);
      assert.equal(((await response.json()) as { issuer: string }).issuer, 'https://id.example.test');
      assert.match(response.headers.get('strict-transport-security') ?? '', /max-age=\d+/, 'HSTS with an https issuer');
      assert.ok(existsSync(join(dir, 'node_modules', 'oidc-provider')) && !existsSync(join(dir, 'node_modules', 'mocha')), 'production dependencies only');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, output);
  });
});
