/**
 * What `serve` warns about at start, for a configuration that runs but will not do what its operator
 * expects: an issuer on an IP address, where browsers refuse every passkey (WebAuthn's relying-party
 * ID must be a domain) and the page can only say "The passkey was not created"; a loopback issuer on
 * another port than the server's, where every redirect leads nowhere.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createLogger } from '../../src/ops/logger.js';
import { freePort } from '../helpers/redis.js';
import { startServer, testDir } from '../helpers/server.js';

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
});
