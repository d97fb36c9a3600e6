/**
 * A bad setting is one line that names the setting (and its env var), what was given, and what is
 * expected — never a library's message about NaN, "Invalid URL" or a received type, and never a
 * secret.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';

function message(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    assert.ok(!error.message.includes('\n'), 'one line');
    return error.message;
  }
  assert.fail('loadConfig accepted it');
}

describe('configuration errors say the setting, the value given and what is expected', () => {
  it('PORT=abc: a number is expected, not "received NaN"', () => {
    assert.equal(message({ PORT: 'abc' }), 'port (PORT): expected a number, got "abc"');
    assert.equal(message({ PORT: '70000' }), 'port (PORT): expected at most 65535, got 70000');
    assert.equal(message({ METRICS_PORT: '' }), 'metrics.port (METRICS_PORT): expected a number, got ""');
  });

  it('REDIS_URL=http://…: a redis:// URL is expected, not "Invalid URL"; the password is not repeated', () => {
    const text = message({ REDIS_URL: 'http://user:hunter2-secret@redis.example:6379' });
    assert.match(text, /^redis\.url \(REDIS_URL\): expected a redis:\/\/ or rediss:\/\/ URL .*, got "http:\/\/\*\*\*@redis\.example:6379"$/);
    assert.ok(!text.includes('hunter2'));
  });

  it('RESOURCE_SERVERS that is not JSON: a JSON array of objects is expected, not "expected object, received string"', () => {
    assert.match(message({ RESOURCE_SERVERS: 'https://api.example.com' }), /^resourceServers \(RESOURCE_SERVERS\): expected a JSON array of objects/);
    assert.match(message({ CLIENTS: 'web' }), /^clients \(CLIENTS\): expected a JSON array of objects/);
    // An object inside names the list's env var, not a made-up one.
    assert.match(message({ RESOURCE_SERVERS: '[{"scopes":[]}]' }), /^resourceServers\.0\.identifier \(RESOURCE_SERVERS\): /);
  });

  it('a value of the wrong type says what is expected in words, not "expected boolean, received string"; a missing one is required', () => {
    assert.equal(message({ PROXY: 'maybe' }), 'proxy (PROXY): expected true or false, got "maybe"');
    assert.equal(message({ ACCOUNTS_MFA_REQUIRED: 'sometimes' }), 'accounts.mfa.required (ACCOUNTS_MFA_REQUIRED): expected true or false, got "sometimes"');
    assert.equal(message({ RESOURCE_SERVERS: '[{"scopes":[]}]' }), 'resourceServers.0.identifier (RESOURCE_SERVERS): required');
    assert.equal(message({ RESOURCE_SERVERS: '[{"identifier":"https://api.example.com","scopes":"read"}]' }), 'resourceServers.0.scopes (RESOURCE_SERVERS): expected a list, got "read"');
  });

  it('an API whose scope is named like an OpenID Connect scope or a privileged API\'s is refused in one line that names it (it would mean two things)', () => {
    for (const reserved of ['email', 'openid', 'offline_access', 'admin:read']) {
      const text = message({ RESOURCE_SERVERS: JSON.stringify([{ identifier: 'https://api.example.com', scopes: ['read', reserved] }]) });
      assert.match(text, new RegExp(`^resourceServers\\.0\\.scopes\\.1 \\(RESOURCE_SERVERS\\): "${reserved}" is reserved .*"ledger:${reserved}"`), text);
    }
  });

  it('enumerations say the choices and the value; secrets are never echoed', () => {
    assert.equal(message({ LOG_LEVEL: 'loud' }), 'log.level (LOG_LEVEL): expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent", got "loud"');
    assert.equal(message({ LOG_FORMAT: 'xml' }), 'log.format (LOG_FORMAT): expected one of "auto"|"json"|"pretty", got "xml"');
    const clients = message({ CLIENTS: '[{"client_id":"","client_secret":"do-not-print-me"}]' });
    assert.match(clients, /^clients\.0\.client_id \(CLIENTS\): /);
    assert.ok(!clients.includes('do-not-print-me'));
  });

  it('ISSUER without a scheme says an http(s) URL is expected, not "Invalid URL"', () => {
    assert.equal(message({ ISSUER: 'localhost:3000' }), 'issuer (ISSUER): expected an http:// or https:// URL such as https://id.example.com, got "localhost:3000"');
    assert.match(message({ ISSUER: 'id.example.com' }), /^issuer \(ISSUER\): expected an http:\/\/ or https:\/\/ URL/);
  });

  it('ISSUER with a path is refused: discovery and the endpoints are at the root, where <issuer>/.well-known/… would not find them', () => {
    assert.match(message({ ISSUER: 'https://example.com/id' }), /^issuer \(ISSUER\): must be an origin without a path, such as https:\/\/id\.example\.com: .*, got "https:\/\/example\.com\/id"$/);
    assert.equal(loadConfig({ ISSUER: 'https://id.example.com:8443' }).issuer, 'https://id.example.com:8443', 'a port is fine');
  });

  it('ISSUER with a trailing slash or a path says which issuer to use: its origin', () => {
    assert.equal(message({ ISSUER: 'http://localhost:3000/' }), 'issuer (ISSUER): must not end with a slash; use http://localhost:3000, got "http://localhost:3000/"');
    assert.match(message({ ISSUER: 'https://example.com/id' }), /; use https:\/\/example\.com, got "https:\/\/example\.com\/id"$/);
  });

  it('bounds in words, not "expected number to be <=65535" or "expected array to have >=1 items"; our own reasons kept', () => {
    assert.equal(message({ WORKERS: '-1' }), 'workers (WORKERS): expected at least 0, got -1');
    assert.equal(message({ KEYS_REFRESH_INTERVAL: '0' }), 'keys.refreshInterval (KEYS_REFRESH_INTERVAL): expected more than 0, got 0');
    assert.equal(message({ COOKIE_KEYS: '' }), 'cookie.keys (COOKIE_KEYS): expected at least one value');
    assert.equal(message({ HOST: '' }), 'host (HOST): must not be empty, got ""');
    assert.equal(message({ ACCOUNTS_ARGON2_MEMORY_COST: '100' }), 'accounts.argon2.memoryCost (ACCOUNTS_ARGON2_MEMORY_COST): OWASP minimum for argon2id is 19456 KiB, got 100');
    assert.equal(message({ CLIENT_JWKS_MAX_AGE: '61' }), "clientJwks.maxAge (CLIENT_JWKS_MAX_AGE): at most 60: a client's keys are read again within a minute, got 61");
    assert.equal(message({ CLIENT_JWKS_MAX_AGE: '0' }), 'clientJwks.maxAge (CLIENT_JWKS_MAX_AGE): expected at least 1, got 0');
  });

  it('a whole number, a multiple, a URL: in words, not "expected int", "Invalid number:" or "Invalid URL"', () => {
    assert.equal(message({ WORKERS: '1.5' }), 'workers (WORKERS): expected a whole number, got 1.5');
    assert.equal(message({ KEYS_RSA_BITS: '3000' }), 'keys.rsaBits (KEYS_RSA_BITS): must be a multiple of 1024, got 3000');
    assert.equal(message({ RESOURCE_SERVERS: '[{"identifier":"api"}]' }), 'resourceServers.0.identifier (RESOURCE_SERVERS): expected a URL such as https://api.example.com, got "api"');
  });

  it('cacheMin above cacheMax names the setting and the one it must not exceed, without dumping the section', () => {
    assert.equal(message({ CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '100000' }), 'clientMetadataDocuments.cacheMin (CLIENT_METADATA_DOCUMENTS_CACHE_MIN): must not exceed clientMetadataDocuments.cacheMax (CLIENT_METADATA_DOCUMENTS_CACHE_MAX), got 100000');
  });

  it('a misspelt key in a configuration file names the setting it was probably meant to be', () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-config-'));
    try {
      const file = join(dir, 'typo.yaml');
      writeFileSync(file, 'ttl:\n  acessToken: 5\n');
      // The value, then the setting meant with its env var (TTL_ACESS_TOKEN would be read by nothing).
      assert.equal(message({ CONFIG_FILE: file }), 'ttl.acessToken: unknown setting, got 5; did you mean ttl.accessToken (TTL_ACCESS_TOKEN)?');
      writeFileSync(file, 'redis:\n  URL: redis://127.0.0.1:6379\n');
      assert.equal(message({ CONFIG_FILE: file }), 'redis.URL: unknown setting, got "redis://127.0.0.1:6379"; did you mean redis.url (REDIS_URL)?');
      writeFileSync(file, 'nothingLikeIt: 1\n');
      assert.equal(message({ CONFIG_FILE: file }), 'nothingLikeIt: unknown setting, got 1');
      // A misspelt secret is not echoed either.
      writeFileSync(file, 'keys:\n  Secrets: [a-secret-nobody-should-see]\nredis:\n  url: ""\n');
      assert.equal(message({ CONFIG_FILE: file }), 'keys.Secrets: unknown setting; did you mean keys.secrets (KEYS_SECRETS)?');
      writeFileSync(file, 'redis:\n  URL: redis://user:hunter2@127.0.0.1:6379\n');
      assert.equal(message({ CONFIG_FILE: file }), 'redis.URL: unknown setting, got "redis://***@127.0.0.1:6379"; did you mean redis.url (REDIS_URL)?');
      // A password in the query, where ioredis takes it (h8, 2026-12-07).
      writeFileSync(file, 'redis:\n  URL: redis://127.0.0.1:6379/0?password=hunter2&db=1\n');
      assert.equal(message({ CONFIG_FILE: file }), 'redis.URL: unknown setting, got "redis://127.0.0.1:6379/0?password=***&db=1"; did you mean redis.url (REDIS_URL)?');
      // A password holding an @ unescaped, which the URL parser takes (the last @ ends it): all of it hidden (h8, 2026-12-07).
      writeFileSync(file, 'redis:\n  URL: redis://user:hunter2@with-at@127.0.0.1:6379\n');
      assert.equal(message({ CONFIG_FILE: file }), 'redis.URL: unknown setting, got "redis://***@127.0.0.1:6379"; did you mean redis.url (REDIS_URL)?');
      // Nor inside a misspelt group, nor under a key a letter away from a secret's; a group has no env var to name.
      writeFileSync(file, 'Redis:\n  url: redis://user:hunter2@127.0.0.1:6379\n');
      assert.equal(message({ CONFIG_FILE: file }), 'Redis: unknown setting; did you mean redis?');
      writeFileSync(file, 'Keys:\n  secrets: [a-secret-nobody-should-see]\n');
      assert.equal(message({ CONFIG_FILE: file }), 'Keys: unknown setting; did you mean keys?');
      writeFileSync(file, 'keys:\n  secret: a-secret-nobody-should-see\n');
      assert.equal(message({ CONFIG_FILE: file }), 'keys.secret: unknown setting; did you mean keys.secrets (KEYS_SECRETS)?');
      // A group given a value names its settings, not an env var no one reads (REDIS).
      writeFileSync(file, 'redis: redis://user:hunter2@127.0.0.1:6379\n');
      assert.equal(message({ CONFIG_FILE: file }), 'redis: a group of settings (redis.url, redis.mode, …), expected a mapping of them, got "redis://***@127.0.0.1:6379"');
      writeFileSync(file, 'cookie: a-secret-nobody-should-see\n');
      assert.equal(message({ CONFIG_FILE: file }), 'cookie: a group of settings (cookie.keys, …), expected a mapping of them');
      writeFileSync(file, 'redis:\n  uri: redis://user:hunter2@127.0.0.1:6379\n');
      assert.equal(message({ CONFIG_FILE: file }), 'redis.uri: unknown setting, got "redis://***@127.0.0.1:6379"; did you mean redis.url (REDIS_URL)?');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
