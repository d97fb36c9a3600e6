/**
 * Endings across machines whose clocks differ (endings pass of 2026-12-02). An ending is a cutoff,
 * "issued at or before this second", written by one process (an instance, the CLI on an operator's
 * machine) and compared with the `iat` another process stamped: at introspection and at every API
 * verifying JWTs locally (latchkey/resource-server, from the feed). On each process's own clock, a
 * CLI 30 s slow removing a client or disabling a person wrote a cutoff 30 s early, and an instance
 * 30 s fast stamped its tokens 30 s late: the JWTs issued in those 30 s before the ending kept
 * working at every API for their whole lifetime. Every process now stamps and cuts off on the
 * store's clock (src/clock.ts, followStoreClock).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import type { Clients } from '../../src/registration/clients.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, startServerProcess, type TestServer, type TestServerProcess } from '../helpers/server.js';
import { skewedClock } from '../helpers/skewed-clock.js';
import { API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS, type ClientCredentials } from '../helpers/tokens.js';

const PASSWORD = 'clock skew endings password';
const REDIRECT = 'https://web.example.test/callback';
const WEB = { id: 'web-skew', secret: 'web-skew-app-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
/** How far off the other machine's clock is. */
const SKEW_MS = 30_000;

describe('e2e: an ending written on a clock that differs from the issuer\'s still ends what was issued before it', function () {
  this.timeout(120_000);
  let server: TestServer;
  let clients: Clients;
  let helper: ResourceServer;
  let web: oidc.Configuration;
  /** Another instance on the same store, its machine's clock SKEW_MS ahead. */
  let fast: TestServerProcess;
  let fastUrl: string;

  before(async () => {
    server = await startServer({ ownRedis: true, clients: [machineClient(RS)], env: { RESOURCE_SERVERS } });
    await server.accounts.create('kim', PASSWORD);
    await grantFeed(server, RS.id);
    clients = server.clients;
    await clients.add({
      client_id: WEB.id,
      client_secret: WEB.secret,
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    });
    web = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100 });
    const port = await freePort();
    fast = await startServerProcess({
      dir: dirname(server.env.KEYS_DIR!),
      port,
      redisUrl: server.env.REDIS_URL!,
      env: { ISSUER: server.issuer, CLIENTS: server.env.CLIENTS!, RESOURCE_SERVERS, ...skewedClock(SKEW_MS) },
    });
    fastUrl = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    helper?.close();
    await fast?.stop();
    await server?.stop();
  });

  /** A stored service with its own API grant. */
  async function service(): Promise<ClientCredentials> {
    const client = { id: `svc-${randomUUID().slice(0, 8)}`, secret: `svc-secret-${randomUUID()}` };
    await clients.add({ ...machineClient(client), token_endpoint_auth_method: 'client_secret_basic' });
    await server.apis.grant(client.id, API, { scopes: ['read'] });
    return client;
  }

  /** Kim's JWT access token for the API, by the code flow (openid-client builds the request). */
  async function personToken(): Promise<string> {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, web, REDIRECT, { scope: 'openid read', resource: API });
    const back = await signInSteps(agent, page, { username: 'kim', password: PASSWORD, stopAt: REDIRECT });
    const code = new URL(back.url).searchParams.get('code');
    assert.ok(code, `expected a code, got ${back.url}`);
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${WEB.id}:${WEB.secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: API }),
    });
    const body = (await response.json()) as { access_token?: string };
    assert.ok(body.access_token, JSON.stringify(body));
    return body.access_token;
  }

  /** The token works at introspection and at the API, issued before the ending. */
  async function assertWorks(token: string) {
    assert.equal((await introspect(server.url, RS, token)).active, true);
    await helper.verify(`Bearer ${token}`);
  }

  /** After the ending: inactive at introspection, refused (revoked) by the API verifying it locally. */
  async function assertEnded(token: string, ending: string) {
    assert.equal((await introspect(server.url, RS, token)).active, false, `${ending}: active at introspection`);
    await eventually(async () => {
      const accepted = await helper.verify(`Bearer ${token}`).then(
        () => true,
        (error: unknown) => {
          assert.ok(error instanceof TokenRejected && /revoked/.test(error.message), String(error));
          return false;
        },
      );
      assert.equal(accepted, false, `${ending}: the API accepts a token issued before it (iat ${decodeJwt(token).iat}, now ${Math.floor(Date.now() / 1000)})`);
    });
  }

  it('the CLI on a machine whose clock is 30 s slow removes a client: the client\'s token from just before is refused at the API', async () => {
    const client = await service();
    const token = await clientCredentialsToken(server.url, client);
    await assertWorks(token);
    const removed = await latchkey({ ...server.env, ...skewedClock(-SKEW_MS) }, ['clients', 'remove', client.id]);
    assert.equal(removed.status, 0, removed.stderr);
    await assertEnded(token, 'client removed');
  });

  it('the CLI on a machine whose clock is 30 s slow disables a person: their token from just before is refused at the API and at introspection', async () => {
    const token = await personToken();
    await assertWorks(token);
    const disabled = await latchkey({ ...server.env, ...skewedClock(-SKEW_MS) }, ['users', 'disable', 'kim']);
    assert.equal(disabled.status, 0, disabled.stderr);
    await assertEnded(token, 'person disabled');
    const enabled = await latchkey(server.env, ['users', 'enable', 'kim']);
    assert.equal(enabled.status, 0, enabled.stderr);
  });

  it('an instance whose machine\'s clock is 30 s fast issues a token; the client is removed at another instance: the token is refused at the API', async () => {
    const client = await service();
    const token = await clientCredentialsToken(fastUrl, client);
    await assertWorks(token);
    await clients.remove(client.id);
    await assertEnded(token, 'client removed');
  });
});
