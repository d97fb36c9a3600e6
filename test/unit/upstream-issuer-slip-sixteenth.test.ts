/**
 * An upstream added with an issuer its discovery document does not name (`--issuer
 * http://localhost:3100` for a second Latchkey whose ISSUER is `http://127.0.0.1:3100`, as
 * docs/upstream-providers.md runs one) never works; the person's page says the provider is not
 * answering, and the log's cause said only openid-client's "discovered metadata issuer does not
 * match the expected issuer". It now names both issuers and the mend (docs/security-passes.md,
 * "Looked at in the sixteenth passes: the developer and the operator (h14)").
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UpstreamClients, UpstreamUnavailable } from '../../src/upstreams/client.js';
import type { Upstream } from '../../src/upstreams/registry.js';
import { upstreamDiscovery } from '../helpers/fake-upstream.js';

describe('an upstream whose discovery names another issuer (sixteenth passes, h14)', () => {
  let server: Server;
  let port: number;

  before(async () => {
    // It calls itself 127.0.0.1; the operator wrote localhost.
    server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(upstreamDiscovery(`http://127.0.0.1:${port}`))));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('is unavailable with a cause naming the issuer written, the one the upstream names, and how to mend it', async () => {
    const clients = new UpstreamClients({ timeout: 2000, maxBytes: 65536, allowPrivateNetworks: true }, (id) => `http://localhost:3000/upstream/${id}/callback`);
    const upstream = { id: 'corp', issuer: `http://localhost:${port}`, clientId: 'latchkey', clientSecret: 's', scope: 'openid' } as unknown as Upstream;
    const error = await clients.start(upstream).then(
      () => assert.fail('started'),
      (error: unknown) => error,
    );
    assert.ok(error instanceof UpstreamUnavailable, String(error));
    const cause = error.cause as Error;
    assert.equal(
      cause.message,
      `the upstream at http://localhost:${port} names itself "http://127.0.0.1:${port}" in its discovery document, not http://localhost:${port}: an upstream's --issuer is exactly its issuer (remove this upstream and add it again with --issuer http://127.0.0.1:${port}, if that is the provider meant)`,
    );
  });
});
