/**
 * What `serve` warns about at start, for a configuration that runs but will not do what its operator
 * expects: an issuer on an IP address, where browsers refuse every passkey (WebAuthn's relying-party
 * ID must be a domain) and the page can only say "The passkey was not created".
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

  async function warningsWith(issuer: (port: number) => string): Promise<string[]> {
    const lines: string[] = [];
    const port = await freePort();
    const server = await startServer({
      dir,
      port,
      env: { ISSUER: issuer(port), LOG_LEVEL: 'info' },
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
});
