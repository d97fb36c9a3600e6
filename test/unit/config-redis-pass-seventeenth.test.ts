/**
 * A configuration file's Redis password in parts under a name the secret test did not know
 * (`redis: {pass: …}`, `auth_pass`, node_redis's name, `requirepass`, Redis's own, `pwd`) was echoed
 * back in the refusal ("redis.pass: unknown setting, got \"hunter2\""), to the terminal and the log,
 * though the seventeenth passes' Redis-in-parts answer names REDIS_PASS among the parts that are the
 * password (docs/security-passes.md, "Looked at in the seventeenth passes: review of 2abc715c..4b787388").
 */
import assert from 'node:assert/strict';
import { refusedConfigFile } from '../helpers/config-files.js';

describe('a configuration file giving a Redis password under another name (seventeenth passes, review)', () => {
  const refused = refusedConfigFile();

  it('does not echo the value of pass, Pass, auth_pass, requirepass, pwd or auth', () => {
    for (const name of ['pass', 'Pass', 'auth_pass', 'requirepass', 'pwd', 'auth', 'redis_pass']) {
      const said = refused(`redis:\n  ${name}: hunter2\n`);
      assert.ok(said.startsWith(`redis.${name}: unknown setting`), said);
      assert.ok(!said.includes('hunter2'), `${name}: ${said}`);
    }
    assert.ok(!refused('redis_pass: hunter2\n').includes('hunter2'));
  });

  it('still echoes what holds no secret', () => {
    assert.match(refused('redis:\n  host: cache.internal\n'), /got "cache\.internal"/);
    assert.match(refused('redis:\n  port: 6380\n'), /got 6380/);
  });
});
