import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMap, isPair, isScalar, parseDocument, type Pair } from 'yaml';
import { ConfigError, envName, loadConfig, settings } from '../../src/config.js';
import { ROOT } from '../../src/paths.js';
import { refusedConfigFile } from '../helpers/config-files.js';
import { latchkey } from '../helpers/process.js';

const SAFE_KEYS = 'a-production-cookie-key-of-enough-length-1,another-production-cookie-key-xyz-2';
const SAFE_SECRET = 'a-production-keyring-secret-of-enough-length';

function expectConfigError(env: NodeJS.ProcessEnv, pattern: RegExp) {
  assert.throws(() => loadConfig(env), (error: Error) => {
    assert.ok(error instanceof ConfigError, String(error));
    assert.match(error.message, pattern);
    assert.ok(!error.message.includes('\n'), 'one line');
    return true;
  });
}

describe('configuration', () => {
  it('loads the defaults; the issuer follows the port when unset', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.issuer, 'http://localhost:3000');
    assert.equal(config.redis.url, '');
    assert.equal(config.production, false);
    assert.equal(loadConfig({ PORT: '4100' }).issuer, 'http://localhost:4100');
    assert.equal(loadConfig({ LOG_LEVEL: 'INFO' }).log.level, 'info', 'a level in any case, as other tools spell it');
    assert.equal(config.log.format, 'auto');
    assert.equal(loadConfig({ LOG_FORMAT: 'JSON' }).log.format, 'json');
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.ttl));
  });

  it('env vars override files, converted by the type of the setting', () => {
    const config = loadConfig({
      PORT: '8080',
      ISSUER: 'https://id.example.com',
      REDIS_URL: 'rediss://user:pw@redis.example.com:6380',
      COOKIE_KEYS: 'one-key, two-key',
      TTL_ACCESS_TOKEN: '300',
      PROXY: 'true',
      RESOURCE_SERVERS: '[{"identifier":"https://api.example.com","scopes":["read"]}]',
    });
    assert.equal(config.port, 8080);
    assert.equal(config.issuer, 'https://id.example.com');
    assert.equal(config.redis.url, 'rediss://user:pw@redis.example.com:6380');
    assert.deepEqual(config.cookie.keys, ['one-key', 'two-key']);
    assert.equal(config.ttl.accessToken, 300);
    assert.equal(config.proxy, true);
    assert.deepEqual(config.resourceServers, [{ identifier: 'https://api.example.com', scopes: ['read'], format: 'jwt' }]);
  });

  it('NODE_ENV selects an overlay file and CONFIG_FILE adds one; env still wins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-config-'));
    try {
      const file = join(dir, 'extra.yaml');
      writeFileSync(file, 'port: 5000\nttl:\n  idToken: 120\n');
      const config = loadConfig({ CONFIG_FILE: file, TTL_ID_TOKEN: '90' });
      assert.equal(config.port, 5000);
      assert.equal(config.ttl.idToken, 90);
      assert.equal(config.ttl.accessToken, 900, 'untouched siblings keep their defaults');
      expectConfigError({ CONFIG_FILE: join(dir, 'missing.yaml') }, /CONFIG_FILE: .* does not exist/);
      writeFileSync(file, 'ttl:\n  acessToken: 5\n');
      expectConfigError({ CONFIG_FILE: file }, /^ttl\.acessToken: unknown setting/);
      // A file that is not YAML names the line, not a sentence ending in a colon before an excerpt cut off.
      for (const [text, expected] of [
        ['port: 3001\n  redis: [\n', 'not valid YAML: Nested mappings are not allowed in compact mappings at line 1, column 7 ("port: 3001")'],
        ['redis:\n\turl: redis://127.0.0.1:6379\n', 'not valid YAML: Tabs are not allowed as indentation at line 2, column 1 ("url: redis://127.0.0.1:6379")'],
        ['redis:\n  url: x\n mode: sentinel\n', 'not valid YAML: All mapping items must start at the same column at line 3, column 1 ("mode: sentinel")'],
      ]) {
        writeFileSync(file, text!);
        assert.throws(() => loadConfig({ CONFIG_FILE: file }), { name: 'ConfigError', message: `${file}: ${expected}` });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const refused = refusedConfigFile();

  it('a setting written in a file as the README names it, dotted (redis.url:) or as its env var (KEYS_SECRETS:), is told how a file nests it, and its value is not echoed if it may be a secret (tenth newcomer pass)', () => {
    // The README's own name for it was "unknown setting", with no word of what was meant.
    assert.equal(refused('ttl.accessToken: 60\n'), 'ttl.accessToken: unknown setting, got 60; a file nests a setting under its group: ttl: {accessToken: …}');
    assert.equal(refused('redis.url: redis://u:pw@127.0.0.1:6379\n'), 'redis.url: unknown setting, got "redis://***@127.0.0.1:6379"; a file nests a setting under its group: redis: {url: …}');
    assert.equal(refused('accounts.argon2.memoryCost: 65536\n'), 'accounts.argon2.memoryCost: unknown setting, got 65536; a file nests a setting under its group: accounts: {argon2: {memoryCost: …}}');
    assert.equal(refused('accounts:\n  argon2.memoryCost: 65536\n'), 'accounts.argon2.memoryCost: unknown setting, got 65536; a file nests a setting under its group: accounts: {argon2: {memoryCost: …}}');
    assert.equal(refused('TTL_ACCESS_TOKEN: 60\n'), 'TTL_ACCESS_TOKEN: unknown setting, got 60; that is the environment variable of ttl.accessToken, which a file nests under its group: ttl: {accessToken: …}');
    assert.equal(refused('SHUTDOWN_TIMEOUT: 5\n'), 'SHUTDOWN_TIMEOUT: unknown setting, got 5; that is the environment variable of shutdownTimeout, which a file writes as shutdownTimeout: …');
    // A secret under its env var's name, or a name near it, was written back on the terminal and into the log.
    assert.equal(refused('KEYS_SECRETS: my-very-own-secret-keep-it-private\n'), 'KEYS_SECRETS: unknown setting; that is the environment variable of keys.secrets, which a file nests under its group: keys: {secrets: …}');
    assert.equal(refused('COOKIE_KEYS: my-very-own-cookie-key-keep-it-private\n'), 'COOKIE_KEYS: unknown setting; that is the environment variable of cookie.keys, which a file nests under its group: cookie: {keys: …}');
    for (const text of ['keys_secret: hunter2hunter2\n', 'keys:\n  sekrets: hunter2hunter2\n', 'redis_password: hunter2hunter2\n', 'admin_token: hunter2hunter2\n']) {
      assert.doesNotMatch(refused(text), /hunter2/, text);
    }
    // A name that is neither keeps its own message.
    assert.equal(refused('ttl:\n  acessToken: 5\n'), 'ttl.acessToken: unknown setting, got 5; did you mean ttl.accessToken (TTL_ACCESS_TOKEN)?');
    assert.equal(refused('PORT: 7000\n'), 'PORT: unknown setting, got 7000; did you mean port (PORT)?');
  });

  it('the shipped rate limits are flood guards that one busy client or a load test from one address never meets', () => {
    // One process serves about 6,000 token or introspection requests a second on one core: a
    // shipped allowance below that would turn a resource server introspecting every call, or a
    // load test, into 429s. Guessing has its own pauses; registration keeps its low limit.
    const { rateLimit } = loadConfig({});
    const perSecond = (points: number) => points / rateLimit.window;
    assert.ok(perSecond(rateLimit.perIp) >= 10_000, `perIp: ${rateLimit.perIp}`);
    assert.ok(perSecond(rateLimit.perClient) >= 10_000, `perClient: ${rateLimit.perClient}`);
    assert.ok(perSecond(rateLimit.metadataPerIp) >= 50_000, `metadataPerIp: ${rateLimit.metadataPerIp}`);
    assert.equal(rateLimit.registrationPerIp, 30);
  });

  it('names the setting and its env var when a value is invalid', () => {
    expectConfigError({ TTL_ACCESS_TOKEN: 'soon' }, /^ttl\.accessToken \(TTL_ACCESS_TOKEN\): /);
    expectConfigError({ PORT: '70000' }, /^port \(PORT\): /);
    expectConfigError({ ISSUER: 'id.example.com' }, /^issuer \(ISSUER\): /);
    expectConfigError({ ISSUER: 'https://id.example.com/' }, /^issuer \(ISSUER\): must not end with a slash/);
    // One spelling of the issuer everywhere: discovery's `issuer` and every token's `iss` are the
    // configured string, every endpoint URL is built from its origin (app.ts serveAsIssuer).
    expectConfigError({ ISSUER: 'http://LocalHost:3000' }, /^issuer \(ISSUER\): must be written as the URL parser writes its origin.*; use http:\/\/localhost:3000, got "http:\/\/LocalHost:3000"$/);
    expectConfigError({ ISSUER: 'https://id.example.com:443' }, /^issuer \(ISSUER\): must be written as .*; use https:\/\/id\.example\.com, got/);
    expectConfigError({ ISSUER: 'https://bücher.example' }, /^issuer \(ISSUER\): must be written as .*; use https:\/\/xn--bcher-kva\.example, got/);
    assert.equal(loadConfig({ ISSUER: 'https://id.example.com:8443' }).issuer, 'https://id.example.com:8443');
    expectConfigError({ REDIS_URL: 'http://redis' }, /^redis\.url \(REDIS_URL\): /);
    // ioredis reads the path as a database number: anything else was SELECT NaN and a crash with Redis's reply.
    expectConfigError({ REDIS_URL: 'redis://:pw@127.0.0.1:6379/lk' }, /^redis\.url \(REDIS_URL\): its path is a database number, as in redis:\/\/127\.0\.0\.1:6379\/0 \(or none\), got "redis:\/\/\*\*\*@127\.0\.0\.1:6379\/lk"$/);
    for (const url of ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379/', 'rediss://u:p@redis.example.com:6380/2']) assert.equal(loadConfig({ REDIS_URL: url }).redis.url, url);
    expectConfigError({ PROXY: 'maybe' }, /^proxy \(PROXY\): /);
    expectConfigError({ TTL_AUTHORIZATION_CODE: '3600' }, /^ttl\.authorizationCode .*10 minutes/);
    // An initial access token must end by itself (fourth endings audit): at most 30 days.
    expectConfigError({ REGISTRATION_INITIAL_ACCESS_TOKEN_TTL: '315360000' }, /^registration\.initialAccessTokenTTL .*at most 30 days/);
    expectConfigError({ ACCOUNTS_ARGON2_MEMORY_COST: '4096' }, /^accounts\.argon2\.memoryCost .*OWASP/);
    expectConfigError({ RESOURCE_SERVERS: '[{' }, /^resourceServers \(RESOURCE_SERVERS\): not valid JSON/);
    expectConfigError({ RESOURCE_SERVERS: '[{"identifier":"api"}]' }, /^resourceServers\.0\.identifier/);
    expectConfigError({ REDIS_MODE: 'cluster' }, /^redis\.clusterNodes \(REDIS_CLUSTER_NODES\): required/);
    expectConfigError({ TTL_GRANT: '60' }, /^ttl\.grant .*refreshToken/);
    expectConfigError({ KEYS_PUBLISH_LEAD: '3', KEYS_REFRESH_INTERVAL: '2' }, /^keys\.publishLead \(KEYS_PUBLISH_LEAD\): must be at least twice keys\.refreshInterval/);
    expectConfigError({ KEYS_ROTATION_INTERVAL: '-1' }, /^keys\.rotationInterval \(KEYS_ROTATION_INTERVAL\): /);
    expectConfigError({ KEYS_SECRETS: '' }, /^keys\.secrets \(KEYS_SECRETS\): /);
  });

  it('production refuses to start without Redis, with a public http issuer, or with the default cookie keys', () => {
    const good = {
      NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:6379', ISSUER: 'https://id.example.com', COOKIE_KEYS: SAFE_KEYS, KEYS_SECRETS: SAFE_SECRET,
    };
    assert.equal(loadConfig(good).production, true);
    expectConfigError({ ...good, REDIS_URL: '' }, /refusing to start in production: redis\.url \(REDIS_URL\): required/);
    expectConfigError({ ...good, ISSUER: 'http://id.example.com' }, /issuer \(ISSUER\): must be https/);
    expectConfigError({ ...good, COOKIE_KEYS: '' }, /cookie\.keys/);
    expectConfigError({ ...good, COOKIE_KEYS: undefined }, /cookie\.keys \(COOKIE_KEYS\): the default key is public/);
    expectConfigError({ ...good, COOKIE_KEYS: 'short' }, /at least 32 characters/);
    assert.equal(loadConfig({ ...good, ISSUER: 'http://localhost:3000' }).production, true, 'localhost may be http');
  });

  it('production refusals say what to do, once per setting: the https issuer to set, how to make a secret', () => {
    const good = {
      NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:6379', ISSUER: 'https://id.example.com', COOKIE_KEYS: SAFE_KEYS, KEYS_SECRETS: SAFE_SECRET,
    };
    expectConfigError({ ...good, ISSUER: 'http://id.example.com:8080' }, /^refusing to start in production: issuer \(ISSUER\): must be https in production \(http is allowed only for localhost\); serve it behind TLS and set ISSUER=https:\/\/id\.example\.com:8080$/);
    expectConfigError({ ...good, REDIS_URL: '' }, /required in production \(the embedded store is for development only\); set REDIS_URL=redis:\/\/host:6379$/);
    // A newcomer's first production start: every default at once, each setting named once, each with how to make a secret.
    const all = (() => {
      try {
        loadConfig({ NODE_ENV: 'production' });
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })();
    assert.equal(all.match(/cookie\.keys \(COOKIE_KEYS\)/g)?.length, 1, all);
    assert.equal(all.match(/openssl rand -base64 48/g)?.length, 2, all);
  });

  it('production refuses a missing, default or short secret for the signing keys kept in Redis', () => {
    const good = {
      NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:6379', ISSUER: 'https://id.example.com', COOKIE_KEYS: SAFE_KEYS, KEYS_SECRETS: SAFE_SECRET,
    };
    expectConfigError({ ...good, KEYS_SECRETS: undefined }, /keys\.secrets \(KEYS_SECRETS\): the default secret is public/);
    expectConfigError({ ...good, KEYS_SECRETS: '' }, /^keys\.secrets \(KEYS_SECRETS\): /);
    expectConfigError({ ...good, KEYS_SECRETS: `${SAFE_SECRET},short` }, /keys\.secrets \(KEYS_SECRETS\): each secret must be at least 32 characters/);
    assert.deepEqual(loadConfig({ ...good, KEYS_SECRETS: `${SAFE_SECRET}, ${SAFE_SECRET}-old` }).keys.secrets, [SAFE_SECRET, `${SAFE_SECRET}-old`]);
  });

  it("every setting's env var is the one the README's configuration reference names", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const unnamed = settings().map(({ path }) => envName(path)).filter((name) => !readme.includes(`| \`${name}\` |`));
    assert.deepEqual(unnamed, []);
    assert.equal(envName(['registration', 'initialAccessTokenTTL']), 'REGISTRATION_INITIAL_ACCESS_TOKEN_TTL');
  });

  it('every setting in config/default.yaml has a comment and a distinct env var', () => {
    const document = parseDocument(readFileSync(join(ROOT, 'config', 'default.yaml'), 'utf8'));
    const undocumented: string[] = [];
    const walk = (node: unknown, path: string[]) => {
      if (!isMap(node)) return;
      node.items.forEach((pair: Pair, index: number) => {
        if (!isPair(pair) || !isScalar(pair.key)) return;
        const here = [...path, String(pair.key.value)];
        // A comment before a key is stored on the key, or on the map for its first item.
        const comment = pair.key.commentBefore ?? (index === 0 ? node.commentBefore : undefined);
        if (!isMap(pair.value) && !comment) undocumented.push(here.join('.'));
        walk(pair.value, here);
      });
    };
    walk(document.contents, []);
    assert.deepEqual(undocumented, []);
    const names = settings().map(({ path }) => envName(path));
    assert.equal(new Set(names).size, names.length);
    for (const expected of ['PORT', 'ISSUER', 'REDIS_URL', 'COOKIE_KEYS', 'TTL_ACCESS_TOKEN', 'TTL_REFRESH_TOKEN']) {
      assert.ok(names.includes(expected), expected);
    }
  });

  it('the CLI exits non-zero with one line naming the bad setting', async function () {
    this.timeout(20_000);
    const result = await latchkey({ TTL_ACCESS_TOKEN: 'ten' }, ['keys', 'list']);
    assert.equal(result.status, 1);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, /^latchkey: ttl\.accessToken \(TTL_ACCESS_TOKEN\): /);
  });
});
