/**
 * Review of the eighteenth passes (docs/security-passes.md, h17), h10's item left: an API's
 * latchkey/resource-server takes a token until its `exp` plus the API's `clockTolerance` (allowed
 * up to MAX_CLOCK_TOLERANCE), while Latchkey kept a revocation on its feed only to `exp` plus its
 * own 15 s, and wrote none for a token revoked later than that. An API with a tolerance of 60 s,
 * running or started after the revocation, took the revoked token. A token of one second's life,
 * waited out past Latchkey's tolerance, then revoked by its client; a helper started afterwards.
 */
import assert from 'node:assert/strict';
import { createResourceServer, TokenRejected } from '../../src/resource-server/index.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { basic, grantFeed, machineClient } from '../helpers/tokens.js';

const SHORT_API = 'https://short-lived.example.test';
const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const RS = { id: 'short-api', secret: 'short-api-client-secret-with-plenty-of-entropy-0123' };
/** Latchkey's own clock tolerance (lifetimes.ts CLOCK_TOLERANCE), seconds. */
const LATCHKEY_TOLERANCE = 15;

describe('e2e: a token revoked after Latchkey stopped taking it, at an API of a larger clockTolerance, eighteenth passes (h17)', function () {
  this.timeout(40_000);
  let redis: RedisServer;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    const apis = JSON.stringify([{ identifier: SHORT_API, scopes: ['read'], format: 'jwt', accessTokenTTL: 1, grants: [{ client_id: MACHINE.id, scopes: ['read'] }] }]);
    server = await startServer({ redisUrl: redis.url, env: { RESOURCE_SERVERS: apis }, clients: [machineClient(MACHINE), machineClient(RS)] });
    await grantFeed(server, RS.id);
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  it('refuses it at a helper of clockTolerance 60 started after the revocation', async () => {
    const answer = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE) },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: SHORT_API, scope: 'read' }),
    });
    assert.equal(answer.status, 200, await answer.clone().text());
    const { access_token: token } = (await answer.json()) as { access_token: string };
    const { exp } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number };
    // Past what Latchkey itself takes (exp + 15 s), well inside what the API takes (exp + 60 s).
    const wait = (exp + LATCHKEY_TOLERANCE + 2) * 1000 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const revoked = await fetch(`${server.url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE) },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    });
    assert.equal(revoked.status, 200);
    const helper = await createResourceServer({ issuer: server.issuer, audience: SHORT_API, clientId: RS.id, clientSecret: RS.secret, clockTolerance: 60 });
    try {
      await assert.rejects(helper.verify(`Bearer ${token}`), (error: Error) => error instanceof TokenRejected && /revoked/.test(error.message));
    } finally {
      helper.close();
    }
  });
});
