/**
 * Review of the fifteenth passes' merged changes (h7, docs/security-passes.md "Looked at in the
 * fifteenth passes: review of the merged changes (h7)"): the `.env` warning read as docker compose
 * and dotenv read the file, and RFC 6749 §5.1's header pair on the answers the app makes itself at
 * the endpoints whose requests carry tokens and client credentials (revocation among them).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envFileWarning, publicSecretsWarning, loadConfig } from '../../src/config.js';
import { latchkey } from '../helpers/process.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('review of the merged changes, fifteenth passes (h7)', function () {
  this.timeout(60_000);

  describe('the .env warning names what docker compose would set, and only that', () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-dotenv-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const named = (text: string) => {
      writeFileSync(join(dir, '.env'), text);
      return /^\.\/\.env sets (.*), which this server/.exec(envFileWarning([], {}, dir) ?? '')?.[1];
    };

    it('a line inside a quoted value over several lines (a certificate, a JSON document) sets nothing; the setting after it does', () => {
      assert.equal(named('CERT="-----BEGIN CERTIFICATE-----\nPORT=3001\n-----END CERTIFICATE-----"\nISSUER=http://localhost:3001\n'), 'ISSUER');
      assert.equal(named("NOTE='first line\nREDIS_URL=redis://x\n'\r\nPORT=3001\r\n"), 'PORT');
      // An unclosed quote is the rest of its line (Node's --env-file, dotenv): the lines after it still count.
      assert.equal(named('TITLE="unclosed\nPORT=3001\n'), 'PORT');
    });

    it('a setting given an empty value (a template\'s REDIS_URL=, ISSUER="", PORT= # comment) is not named: exported, it sets nothing (PORT= would fail the start)', () => {
      assert.equal(named('REDIS_URL=\nISSUER=""\nPORT= # the default\nCOOKIE_KEYS=\'\'\n'), undefined);
      assert.equal(named('REDIS_URL=\nexport PORT=3001 # moved\n'), 'PORT');
      // What the advice would do: exporting an empty PORT refuses the start.
      assert.throws(() => loadConfig({ PORT: '' }), /port \(PORT\): expected a number, got ""/);
      writeFileSync(join(dir, '.env'), 'COOKIE_KEYS=\nKEYS_SECRETS=\n');
      assert.doesNotMatch(publicSecretsWarning(loadConfig({}), dir)?.message ?? '', /\.env/, 'nor by the INSECURE warning');
    });
  });

  it('serve in production without REDIS_URL nor ISSUER (a bare docker run of the image): one line naming both, not one refusal after the other', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-production-'));
    try {
      const run = await latchkey({
        NODE_ENV: 'production', PORT: '3999', METRICS_ENABLED: 'false', LOG_LEVEL: 'silent', KEYS_DIR: join(dir, 'keys'),
        COOKIE_KEYS: 'a-production-cookie-key-that-is-long-enough-0123456789', KEYS_SECRETS: 'a-production-key-ring-secret-that-is-long-enough-012345',
      }, ['serve'], undefined, dir);
      assert.equal(run.status, 1, run.stderr);
      const lines = run.stderr.trim().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, /^latchkey: refusing to start in production: redis\.url \(REDIS_URL\): required in production.*; issuer \(ISSUER\): not set, so every token and URL would name http:\/\/localhost:3999/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('Cache-Control: no-store with Pragma: no-cache on the app\'s own answers at revocation, token and introspection', () => {
    let redis: RedisServer;
    let server: TestServer;
    before(async () => {
      redis = await startRedisServer();
      server = await startServer({ redisUrl: redis.url, cheapHashing: true, env: { RATE_LIMIT_PER_IP: '2', REDIS_COMMAND_TIMEOUT: '300' } });
    });
    after(async () => {
      redis?.resume();
      await server?.stop();
      await redis?.stop();
    });

    it('the store away (503), a body too large (413) and the per-address limit (429), as the engine\'s own answers there do (RFC 6749 §5.1)', async () => {
      const paths = ['/token/revocation', '/token', '/token/introspection'];
      const post = (path: string, body = 'token=x') =>
        fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      const heads: [string, Response][] = [];
      redis.pause();
      try {
        for (const path of paths) heads.push([`${path} 503`, await post(path)]);
      } finally {
        redis.resume();
      }
      for (const path of paths) heads.push([`${path} 413`, await post(path, `token=${'a'.repeat(2_000_000)}`)]);
      for (const path of paths) {
        let answer = await post(path);
        for (let i = 0; i < 4 && answer.status !== 429; i += 1) answer = await post(path);
        heads.push([`${path} 429`, answer]);
      }
      assert.deepEqual(heads.map(([what, answer]) => `${what}: ${answer.status}`), heads.map(([what]) => `${what}: ${what.slice(-3)}`));
      for (const [what, answer] of heads) {
        assert.match(answer.headers.get('cache-control') ?? '', /\bno-store\b/, `${what}: Cache-Control`);
        assert.equal(answer.headers.get('pragma'), 'no-cache', `${what}: Pragma`);
      }
    });
  });
});
