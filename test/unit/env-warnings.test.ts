/**
 * A misspelt setting in the environment (REDIS_ULR) is no setting, and was ignored without a word:
 * a newcomer's server then ran on the embedded store with nothing saying why. The server and the
 * CLI now say one line on stderr for each variable that looks like a misspelt setting, naming the
 * closest one, and never fail for it nor mention the shell's, npm's or CI's own variables.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { envWarnings, settings, envName } from '../../src/config.js';
import { latchkey } from '../helpers/process.js';
import { startServerProcess, testDir } from '../helpers/server.js';

/** What a shell, npm, a CI runner and a container set, and what the examples of the README and docs/ export: none is a misspelt setting. */
const UNRELATED = [
  'PATH', 'HOME', 'USER', 'USERNAME', 'SHELL', 'TERM', 'PWD', 'OLDPWD', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'HOSTNAME', 'HOSTTYPE', 'LOGNAME',
  'SHLVL', 'MAIL', 'EDITOR', 'PAGER', 'DISPLAY', 'COLORTERM', 'DEBUG', 'CI', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'no_proxy',
  'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'NODE_NO_WARNINGS', 'NODE_COMPILE_CACHE', 'npm_config_cache', 'npm_lifecycle_event', 'npm_package_name',
  'INIT_CWD', 'GITHUB_ACTIONS', 'GIT_AUTHOR_NAME', 'SSH_AUTH_SOCK', 'XDG_RUNTIME_DIR', 'JAVA_HOME', 'GOPATH', 'PYTHONPATH', 'LS_COLORS',
  'KUBERNETES_SERVICE_HOST', 'DOCKER_HOST', 'SUDO_USER', 'MOTD_SHOWN', 'PS1', '_',
  'CLIENT_SECRET', 'CLIENT_ID', 'PUBLIC_URL', 'API_CLIENT_SECRET', 'DEMO_SECRET', 'OPS_SECRET', 'BILLING_SECRET', 'TOKEN', 'TOKENS', 'DEVICE', 'APP',
  'REDIS_SERVER_BIN', 'REDIS_CLI_BIN', 'CHROMIUM_PATH', 'CONFIG_FILE', 'NODE_ENV',
];

const env = (names: readonly string[]) => Object.fromEntries(names.map((name) => [name, 'x']));

describe('environment variables that look like a misspelt setting', () => {
  it('each gets one line naming the closest setting: a letter or two off, swapped letters, another case, LATCHKEY_…, a group\'s prefix', () => {
    assert.deepEqual(
      envWarnings(env(['REDIS_ULR', 'PROT', 'ISUER', 'redis_url', 'LATCHKEY_PORT', 'TTL_ACCES_TOKEN', 'KEYS_SECRET', 'COOKIE_KEY', 'LOGLEVEL', 'CONFIG_FIEL', 'REDIS_PASSWORD'])),
      [
        'CONFIG_FIEL is not a Latchkey setting; did you mean CONFIG_FILE?',
        'COOKIE_KEY is not a Latchkey setting; did you mean COOKIE_KEYS?',
        'ISUER is not a Latchkey setting; did you mean ISSUER?',
        'KEYS_SECRET is not a Latchkey setting; did you mean KEYS_SECRETS?',
        'LATCHKEY_PORT is not a Latchkey setting; did you mean PORT?',
        'LOGLEVEL is not a Latchkey setting; did you mean LOG_LEVEL?',
        'PROT is not a Latchkey setting; did you mean PORT?',
        'REDIS_PASSWORD is not a Latchkey setting; did you mean REDIS_URL (redis://user:password@host:port)?',
        'REDIS_ULR is not a Latchkey setting; did you mean REDIS_URL?',
        'TTL_ACCES_TOKEN is not a Latchkey setting; did you mean TTL_ACCESS_TOKEN?',
        'redis_url is not a Latchkey setting; did you mean REDIS_URL?',
      ],
    );
    // A setting's name cut short, or another word after the only setting of its first word (newcomer pass: KEYS_ROTATION named KEYS_RSA_BITS, CONFIG_PATH nothing).
    assert.deepEqual(envWarnings(env(['KEYS_ROTATION', 'CONFIG_PATH'])), [
      'CONFIG_PATH is not a Latchkey setting; did you mean CONFIG_FILE?',
      'KEYS_ROTATION is not a Latchkey setting; did you mean KEYS_ROTATION_INTERVAL?',
    ]);
    // An unknown name under a group of settings names one of that group.
    const [line] = envWarnings(env(['RATE_LIMIT_PER_USER']));
    assert.match(line!, /^RATE_LIMIT_PER_USER is not a Latchkey setting; did you mean RATE_LIMIT_PER_[A-Z_]+\?$/);
  });

  it('NODE_ENV=prod, Production or PROD: not production, which alone refuses unsafe settings; said with what was meant', () => {
    for (const value of ['prod', 'Production', 'PROD', 'prd', 'producton']) {
      assert.deepEqual(envWarnings({ NODE_ENV: value }), [`NODE_ENV=${value} is not production (only NODE_ENV=production refuses unsafe settings, and there is no config/${value}.yaml); did you mean NODE_ENV=production?`]);
    }
    for (const value of ['production', 'development', 'test', 'staging']) assert.deepEqual(envWarnings({ NODE_ENV: value }), [], value);
  });

  it('says nothing of the settings themselves, nor of the shell\'s, npm\'s, CI\'s and the walkthrough\'s own variables, nor of this process\'s environment', () => {
    assert.deepEqual(envWarnings(env(settings().map(({ path }) => envName(path)))), []);
    assert.deepEqual(envWarnings(env(UNRELATED)), []);
    assert.deepEqual(envWarnings(process.env), []);
  });

  it('the CLI says it on stderr and does its work (exit 0, its JSON on stdout untouched)', async function () {
    this.timeout(20_000);
    const dir = testDir();
    try {
      const run = await latchkey({ EMBEDDED_FILE: `${dir}/store.json`, KEYS_DIR: `${dir}/keys`, REDIS_ULR: 'redis://127.0.0.1:6379', HOME: '/root' }, ['users', 'list']);
      assert.equal(run.status, 0, run.stderr);
      assert.deepEqual(JSON.parse(run.stdout), []);
      const lines = run.stderr.trim().split('\n');
      assert.equal(lines[0], 'latchkey: REDIS_ULR is not a Latchkey setting; did you mean REDIS_URL?');
      assert.equal(lines.filter((line) => line.includes('not a Latchkey setting')).length, 1, run.stderr);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`latchkey serve` says it once, however many workers, and starts', async function () {
    this.timeout(60_000);
    const server = await startServerProcess({ ownRedis: true, env: { WORKERS: '2', LOG_LEVL: 'debug' } });
    try {
      assert.equal((await fetch(`${server.issuer}/.well-known/openid-configuration`)).status, 200);
      const warned = server.logs.filter((line) => line.includes('not a Latchkey setting'));
      assert.deepEqual(warned, ['latchkey: LOG_LEVL is not a Latchkey setting; did you mean LOG_LEVEL?']);
    } finally {
      await server.stop();
    }
  });
});
