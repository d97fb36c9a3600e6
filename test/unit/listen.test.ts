/**
 * A busy port is said in one line that names the setting and gives a value to try, so that a
 * newcomer whose port 3000 is taken by something else sees how to start on another one
 * (`PORT=3001 npm start`) rather than only that the start failed.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../../src/config.js';
import { listen } from '../../src/ops/listen.js';

const close = (server: Server) => new Promise<void>((done) => server.close(() => done()));

describe('listening on a busy port', () => {
  it('fails with a ConfigError naming the setting with a value to try instead', async () => {
    const taken = createServer();
    await new Promise<void>((done) => taken.listen(0, '127.0.0.1', done));
    const { port } = taken.address() as AddressInfo;
    const second = createServer();
    try {
      await assert.rejects(listen(second, { port, host: '127.0.0.1', names: { port: 'PORT', host: 'HOST' } }), (error: Error) => {
        assert.ok(error instanceof ConfigError, String(error));
        assert.equal(
          error.message,
          `PORT: port ${port} on 127.0.0.1 is in use by another process; expected a free port, e.g. PORT=${port + 1} (or stop the other process)`,
        );
        return true;
      });
    } finally {
      if (second.listening) await close(second);
      await close(taken);
    }
  });
});
