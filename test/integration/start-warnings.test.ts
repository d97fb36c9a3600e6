/**
 * What `serve` warns about at start, for a configuration that runs but will not do what its operator
 * expects: an issuer on an IP address, where browsers refuse every passkey (WebAuthn's relying-party
 * ID must be a domain) and the page can only say "The passkey was not created"; a loopback issuer on
 * another port than the server's, where every redirect leads nowhere; a plain http issuer on a
 * public host outside production, which refuses it. And what a first start says it made: the
 * signing key it generated into keys/. And how it says it: readable lines at a terminal, JSON to a pipe.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createLogger } from '../../src/ops/logger.js';
import { CLI } from '../helpers/process.js';
import { freePort, startRedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv } from '../helpers/server.js';

describe('serve: warnings at start', function () {
  this.timeout(30_000);
  const dir = testDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function warningsWith(issuer: (port: number) => string, env: Record<string, string> = {}): Promise<string[]> {
    const lines: string[] = [];
    const port = await freePort();
    const server = await startServer({
      dir,
      port,
      env: { ISSUER: issuer(port), LOG_LEVEL: 'info', ...env },
      logger: createLogger('info', { write: (line: string) => void lines.push(line) }),
    });
    await server.stop();
    return lines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((entry) => entry.level === 40).map((entry) => entry.msg);
  }

  it('an issuer on an IP address: passkeys cannot work there, and the log says so once, with a host name to use', async () => {
    const ip = await warningsWith((port) => `http://127.0.0.1:${port}`);
    const passkeys = ip.filter((msg) => msg.includes('passkeys'));
    assert.equal(passkeys.length, 1, ip.join('\n'));
    assert.match(passkeys[0]!, /^issuer \(ISSUER\): 127\.0\.0\.1 is an IP address, for which browsers refuse passkeys \(WebAuthn needs a host name\); use a name, e\.g\. http:\/\/localhost:\d+ locally$/);
    const named = await warningsWith((port) => `http://localhost:${port}`);
    assert.ok(!named.some((msg) => msg.includes('passkeys')), named.join('\n'));
  });

  it('a plain http issuer on a host other than localhost (no NODE_ENV=production, which refuses it): says so once, with the https issuer to set', async () => {
    const plain = await warningsWith(() => 'http://id.example.com', { PROXY: 'true' });
    const clear = plain.filter((msg) => msg.includes('plain http'));
    assert.deepEqual(clear, ['issuer (ISSUER): http://id.example.com is plain http on a host other than localhost: cookies, codes and tokens cross the network unencrypted, and browsers refuse passkeys there; serve it behind TLS and set ISSUER=https://id.example.com (NODE_ENV=production refuses http)'], plain.join('\n'));
    for (const local of [(port: number) => `http://localhost:${port}`, (port: number) => `http://app.localhost:${port}`, () => 'https://id.example.com']) {
      const quiet = await warningsWith(local, { PROXY: 'true' });
      assert.ok(!quiet.some((msg) => msg.includes('plain http')), quiet.join('\n'));
    }
  });

  it('a localhost issuer on another port than PORT, without a proxy: says the two disagree', async () => {
    const elsewhere = await warningsWith(() => 'http://localhost:3000');
    const mismatch = elsewhere.filter((msg) => msg.includes('names port'));
    assert.equal(mismatch.length, 1, elsewhere.join('\n'));
    assert.match(mismatch[0]!, /^issuer \(ISSUER\): http:\/\/localhost:3000 names port 3000 but this server listens on \d+ \(PORT\): .*unset ISSUER \(it follows PORT\) or make them agree$/);
    const proxied = await warningsWith(() => 'http://localhost:3000', { PROXY: 'true' });
    assert.ok(!proxied.some((msg) => msg.includes('names port')), 'behind a proxy the ports may differ');
    const agreeing = await warningsWith((port) => `http://localhost:${port}`);
    assert.ok(!agreeing.some((msg) => msg.includes('names port')), agreeing.join('\n'));
  });

  it('an https localhost issuer on the server\'s own port, without a proxy: says nothing there speaks TLS (newcomer pass: clients failed with "fetch failed")', async () => {
    const https = await warningsWith((port) => `https://localhost:${port}`);
    const tls = https.filter((msg) => msg.includes('plain http on port'));
    assert.equal(tls.length, 1, https.join('\n'));
    assert.match(tls[0]!, /^issuer \(ISSUER\): https:\/\/localhost:(\d+) is https, but this server serves plain http on port \1 .*use http:\/\/localhost:\1 locally, or put a TLS proxy on another port and set PROXY=true$/);
    for (const [issuer, env] of [[(port: number) => `http://localhost:${port}`, {}], [(port: number) => `https://localhost:${port}`, { PROXY: 'true' }]] as const) {
      const quiet = await warningsWith(issuer, env);
      assert.ok(!quiet.some((msg) => msg.includes('plain http on port')), quiet.join('\n'));
    }
  });

  it('a first start says in one line that it generated a signing key into keys/, and which; a later start, with the key there, does not; a start on Redis imports it, saying to delete the file', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'latchkey-test-'));
    const redis = await startRedisServer();
    try {
      const starts: string[][] = [];
      const secrets = { COOKIE_KEYS: 'c'.repeat(48), KEYS_SECRETS: 'k'.repeat(48) };
      for (const env of [{}, {}, { REDIS_URL: redis.url, ...secrets }]) {
        const lines: string[] = [];
        const server = await startServer({
          dir: fresh,
          port: await freePort(),
          env: { LOG_LEVEL: 'info', ...env },
          logger: createLogger('info', { write: (line: string) => void lines.push(line) }),
        });
        await server.stop();
        starts.push(lines.map((line) => (JSON.parse(line) as { msg: string }).msg).filter((msg) => msg.includes('signing key')));
      }
      const [first, second, onRedis] = starts;
      const file = join(fresh, 'keys', 'keyring.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      assert.equal(first!.length, 1, first!.join('\n'));
      assert.match(first![0]!, new RegExp(`^generated a signing key \\(kid [\\w-]{43}\\) into ${file}$`));
      assert.deepEqual(second, [], 'the key was there: nothing generated');
      assert.deepEqual(onRedis, [`importing the signing keys from ${join(fresh, 'keys', 'keyring.json')}: delete it once this server runs`]);
    } finally {
      await redis.stop();
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  it('`latchkey serve` at a terminal (a pseudo-terminal through script(1)) logs readable lines, the listening one naming the issuer; LOG_FORMAT=json keeps JSON there', async () => {
    /** What `serve` writes at a terminal until it listens (then it is stopped). */
    const startAtTerminal = async (extra: Record<string, string>) => {
      const port = await freePort();
      const env = { ...testEnv(dir, port), LOG_LEVEL: 'info', NO_COLOR: '1', ...extra };
      return new Promise<string>((done, fail) => {
        const child = spawn('script', ['-qec', `${process.execPath} ${CLI} serve`, '/dev/null'], { env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
        let out = '';
        const timer = setTimeout(() => process.kill(-child.pid!, 'SIGTERM'), 20_000);
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('latchkey is listening')) process.kill(-child.pid!, 'SIGTERM');
        });
        child.on('error', fail);
        child.on('close', () => {
          clearTimeout(timer);
          done(out);
        });
      });
    };
    const readable = (await startAtTerminal({})).split(/\r?\n/).find((line) => line.includes('latchkey is listening'));
    assert.match(readable ?? '', /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: latchkey is listening \{"port":\d+,"issuer":"http:\/\/localhost:\d+"/);
    const json = (await startAtTerminal({ LOG_FORMAT: 'json' })).split(/\r?\n/).find((line) => line.includes('latchkey is listening'));
    assert.match(json ?? '', /^\{"level":30,.*"msg":"latchkey is listening"\}$/);
  });
});
