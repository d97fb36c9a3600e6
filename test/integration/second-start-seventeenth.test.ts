/**
 * A second server started from the directory of a running one on the embedded store, given its own
 * PORT and METRICS_PORT, was told only of EMBEDDED_FILE, and once given another store file was
 * refused again, for the key ring it still shared (KEYS_DIR): the README's "Port 3000 taken?" says
 * the start names every setting taken at once. The EMBEDDED_FILE refusal now names KEYS_DIR too
 * when that server's key ring is the one this start would open (docs/security-passes.md, "Looked at
 * in the seventeenth passes: the newcomer's first hour"). In process, as serve asks (store/control.ts).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { servedElsewhere } from '../../src/store/control.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('a second start beside a running embedded server (seventeenth passes)', function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  it("the store file's refusal names KEYS_DIR as well when the key ring is that server's, and not when this start has its own", async () => {
    const same = await servedElsewhere(loadConfig({ ...server.env, PORT: '0' }));
    assert.match(
      String(same?.message),
      new RegExp(`^EMBEDDED_FILE: .*store\\.json is already served by another latchkey process; the embedded store is one process's store \\(stop that one, give this one its own with EMBEDDED_FILE=data/other\\.json and KEYS_DIR=keys/other \\(.*keyring\\.json is that server's key ring\\), or set REDIS_URL\\)$`),
    );
    const ownRing = await servedElsewhere(loadConfig({ ...server.env, PORT: '0', KEYS_DIR: join(server.env.KEYS_DIR!, '..', 'other-keys') }));
    assert.match(String(ownRing?.message), /give this one its own with EMBEDDED_FILE=data\/other\.json, or set REDIS_URL\)$/);
  });
});
