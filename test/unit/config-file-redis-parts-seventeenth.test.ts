/**
 * A configuration file that gives Redis in parts, as other programs take it (`redis: {host, port,
 * password}`), was told that `host` "is the environment variable of host" (the top-level setting's
 * HOST, read into a lower-case word under a group); the parts are now said to go in redis.url, and a
 * lower-case word under a group is no env var (docs/security-passes.md, "Looked at in the
 * seventeenth passes: the newcomer's first hour").
 */
import assert from 'node:assert/strict';
import { refusedConfigFile } from '../helpers/config-files.js';

describe('a configuration file giving Redis in parts (seventeenth passes)', () => {
  const refused = refusedConfigFile();
  const INTO_URL = "Redis's host, port, user, password and database are all in redis.url (redis://user:password@host:port/db), which a file nests under its group: redis: {url: …}";

  it('redis.host, redis.port and redis.password are told that redis.url holds them, a password not echoed', () => {
    assert.equal(refused('redis:\n  host: cache.internal\n'), `redis.host: unknown setting, got "cache.internal"; ${INTO_URL}`);
    assert.equal(refused('redis:\n  port: 6380\n'), `redis.port: unknown setting, got 6380; ${INTO_URL}`);
    assert.equal(refused('redis:\n  password: hunter2\n'), `redis.password: unknown setting; ${INTO_URL}`);
  });

  it('a lower-case word under another group is not taken for a top-level setting\'s env var', () => {
    assert.equal(refused('ttl:\n  port: 5\n'), 'ttl.port: unknown setting, got 5');
    // Env vars written in a file are still said as such.
    assert.match(refused('SHUTDOWN_TIMEOUT: 5\n'), /that is the environment variable of shutdownTimeout/);
  });
});
