/**
 * latchkey/resource-server at start, pointed at the wrong place or with the wrong secret: the error
 * says what it tried to reach and what came back, not undici's bare "fetch failed" or "HTTP 401".
 * The far side here is a plain HTTP server answering as a Latchkey would to these requests.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createResourceServer } from '../../src/resource-server/index.js';
import { freePort } from '../helpers/redis.js';

describe('latchkey/resource-server: start-up errors say where and why', () => {
  let server: Server;
  let issuer: string;

  before(async () => {
    server = createServer((req, res) => {
      const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.url === '/.well-known/openid-configuration') return send(200, { issuer, jwks_uri: `${issuer}/jwks`, token_endpoint: `${issuer}/token` });
      if (req.url === '/jwks') return send(200, { keys: [] });
      if (req.url === '/token') return send(401, { error: 'invalid_client', error_description: 'client authentication failed' });
      send(404, { error: 'invalid_request', error_description: 'unrecognized route or not allowed method' });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('nothing at the issuer: names the discovery URL and the connection error, at once with startTimeout 0, else once it waited, saying each try', async () => {
    const port = await freePort();
    const message = `discovery: cannot reach http://127.0.0.1:${port}/.well-known/openid-configuration (ECONNREFUSED)`;
    await assert.rejects(createResourceServer({ issuer: `http://127.0.0.1:${port}`, audience: 'https://api.example.com', clientId: 'api', clientSecret: 's', startTimeout: 0 }), { message });
    const tries: string[] = [];
    await assert.rejects(
      createResourceServer({ issuer: `http://127.0.0.1:${port}`, audience: 'https://api.example.com', clientId: 'api', clientSecret: 's', startTimeout: 2_500, onError: (error) => tries.push(error.message) }),
      { message },
    );
    assert.deepEqual(tries, [`${message}; trying again in 1 s`], 'it tried again once within 2.5 s (the next wait, 2 s, would pass it)');
  });

  it('an issuer with a trailing slash: refused at once, naming the issuer to use (thirteenth newcomer pass; it was the 404 at //.well-known)', async () => {
    await assert.rejects(
      createResourceServer({ issuer: `${issuer}/`, audience: 'https://api.example.com', clientId: 'api', clientSecret: 's' }),
      { name: 'TypeError', message: `latchkey/resource-server: issuer is Latchkey's issuer as its discovery document names it, an origin without a path or trailing slash: use ${issuer}, got "${issuer}/"` },
    );
  });

  it("a wrong client secret: the token endpoint's invalid_client, not a bare HTTP 401", async () => {
    await assert.rejects(
      createResourceServer({ issuer, audience: 'https://api.example.com', clientId: 'api', clientSecret: 'wrong' }),
      { message: `token for the revocation feed: HTTP 401 from ${issuer}/token (invalid_client: client authentication failed)` },
    );
  });
});
