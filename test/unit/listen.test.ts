/**
 * A busy port is said in one line that names the setting and gives a value to try, so that a
 * newcomer whose port 3000 is taken by something else sees how to start on another one
 * (`PORT=3001 npm start`) rather than only that the start failed: a port free now, and not one
 * the same start needs besides.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../../src/config.js';
import { listen } from '../../src/ops/listen.js';

const close = (server: Server) => new Promise<void>((done) => server.close(() => done()));

/** A server listening on 127.0.0.1 at `port` (0: any), or undefined when that port is taken. */
async function hold(port = 0): Promise<Server | undefined> {
  const server = createServer();
  return new Promise((done) => {
    server.once('error', () => done(undefined));
    server.listen(port, '127.0.0.1', () => done(server));
  });
}

/** Two neighbouring ports held at once (port, port + 1). */
async function heldPair(): Promise<[Server, Server]> {
  for (;;) {
    const first = (await hold())!;
    const second = await hold((first.address() as AddressInfo).port + 1);
    if (second) return [first, second];
    await close(first);
  }
}

/** The port a busy-port refusal suggests, listened on by the refusal's own words. */
async function suggested(port: number, others?: number[]): Promise<number> {
  const second = createServer();
  const error = await listen(second, { port, host: '127.0.0.1', names: { port: 'PORT', host: 'HOST' }, ...(others && { others }) }).then(
    () => assert.fail('listened on a busy port'),
    (refusal: Error) => refusal,
  );
  const value = /e\.g\. PORT=(\d+) /.exec(error.message)?.[1];
  assert.ok(value, error.message);
  return Number(value);
}

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

  it('suggests a port that is free now, and none the same start listens on besides (METRICS_PORT for PORT): not merely the next one up', async () => {
    const [taken, next] = await heldPair();
    const port = (taken.address() as AddressInfo).port;
    try {
      const instead = await suggested(port);
      assert.notEqual(instead, port + 1, 'the next port is taken too');
      const free = await hold(instead);
      assert.ok(free, `PORT=${instead} is free`);
      await close(free);
      // The next one free, but it is this start's metrics port.
      await close(next);
      const besides = await suggested(port, [port + 1]);
      assert.notEqual(besides, port + 1, 'not the metrics port of the same start');
      const alsoFree = await hold(besides);
      assert.ok(alsoFree, `PORT=${besides} is free`);
      await close(alsoFree);
    } finally {
      if (next.listening) await close(next);
      await close(taken);
    }
  });
});

