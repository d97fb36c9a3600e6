/**
 * A red team's pass at endings that do not end, black box: what a request in flight at an ending
 * gets. Instance A reaches Redis through a relay that holds a client_credentials request after it
 * read its client (at its DPoP proof's replay check), while the operator, straight on Redis (the
 * CLI, or the admin API of instance B), ends the client: removed, its secret rotated without grace
 * (it leaked), or client_credentials taken from it. The token the request then gets is checked
 * where an API looks: introspection and latchkey/resource-server (the feed).
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { startRelayedServer, type Held, type Relay, type RelayedServer } from '../helpers/relay.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';
import { API, basic, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS, type ClientCredentials } from '../helpers/tokens.js';
import type { Clients } from '../../src/registration/clients.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';

const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
const PASSWORD = 'red team endings test password';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/** Resolves once the epoch second after `second` has begun. */
async function pastSecond(second: number): Promise<void> {
  while (Math.floor(Date.now() / 1000) <= second) await new Promise((done) => setTimeout(done, 50));
}

describe('e2e: red team, endings that do not end (requests in flight)', function () {
  this.timeout(120_000);
  let relayed: RelayedServer;
  let relay: Relay;
  let server: TestServer;
  let env: Record<string, string>;
  let clients: Clients;
  let helper: ResourceServer;
  /** Instance B: the same issuer and keys, on Redis directly. */
  let other: TestServer;

  before(async () => {
    relayed = await startRelayedServer({ CLIENTS: JSON.stringify([machineClient(RS), machineClient(OPS)]), RESOURCE_SERVERS });
    ({ relay, server, env } = relayed);
    await grantFeed(server, RS.id);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    clients = server.clients;
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret });
    const shared = { CLIENTS: env.CLIENTS!, RESOURCE_SERVERS, ISSUER: server.issuer };
    other = await startServer({ dir: dirname(env.KEYS_DIR!), port: await freePort(), redisUrl: env.REDIS_URL!, env: shared });
  });
  after(async () => {
    helper?.close();
    await other?.stop();
    await relayed?.stop();
  });

  /** An operator's call to the admin API at instance B. */
  async function admin(path: string, init: { method: string; body?: unknown }): Promise<Response> {
    const token = await clientCredentialsToken(other.url, OPS, `${server.issuer}/admin`, 'admin');
    return fetch(`${other.url}/admin${path}`, {
      method: init.method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  }

  /** A stored service with its own API grant, its token working everywhere. */
  async function service(): Promise<ClientCredentials> {
    const client = { id: `svc-${randomUUID().slice(0, 8)}`, secret: `svc-secret-${randomUUID()}` };
    await clients.add({ ...machineClient(client), token_endpoint_auth_method: 'client_secret_basic' });
    await server.apis.grant(client.id, API, { scopes: ['read'] });
    return client;
  }

  /** A DPoP proof made by hand (jose) with `key`, for a request to `htu`, bound to `token` if given. */
  async function proof(key: KeyPair, htm: string, htu: string, token?: string): Promise<string> {
    return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm, htu, ...(token ? { ath: createHash('sha256').update(token).digest('base64url') } : {}) })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey) })
      .sign(key.privateKey);
  }

  /** client_credentials with a DPoP proof, held once it reaches the proof's replay check (it has read its client). */
  async function tokenRequestHeld(client: ClientCredentials): Promise<{ key: KeyPair; held: Held<Response> }> {
    const key = await generateKeyPair('ES256');
    const dpop = await proof(key, 'POST', `${server.issuer}/token`);
    const held = await relay.hold(
      (chunk) => chunk.includes('dpop-proof:'),
      () =>
        fetch(`${server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client), dpop },
          body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
        }),
    );
    return { key, held };
  }

  /** Whatever the held request got, once released: no access token, or one that works nowhere (introspection, the resource server with its proof). */
  async function assertNothingWorks({ key, held }: { key: KeyPair; held: Held<Response> }, ending: string) {
    const answered = await held.release();
    assert.notEqual(answered.status, 503, 'the held request timed out: nothing was tried');
    const { access_token: token } = (await answered.json()) as { access_token?: string };
    if (!token) return;
    assert.deepEqual(await introspect(server.url, RS, token), { active: false }, `${ending}: active at introspection`);
    const url = `${API}/entries`;
    await eventually(async () => {
      const accepted = await helper.verify(`DPoP ${token}`, { dpop: { proof: await proof(key, 'GET', url, token), method: 'GET', url } }).then(
        () => true,
        (error: unknown) => {
          assert.ok(error instanceof TokenRejected && /revoked/.test(error.message), String(error));
          return false;
        },
      );
      assert.equal(accepted, false, `${ending}: the resource server accepts the token the request in flight got (iat ${decodeJwt(token).iat})`);
    });
  }

  /** `end` ends the client while its token request is held in flight, released a second later: what that request gets works nowhere. */
  async function endedInFlight(ending: string, end: (client: ClientCredentials) => Promise<void>) {
    const client = await service();
    const held = await tokenRequestHeld(client);
    await end(client);
    // The ending's marks are of this second or an earlier one; the request goes on in a later one.
    await pastSecond(Math.floor(Date.now() / 1000));
    await assertNothingWorks(held, ending);
  }

  it('a client removed (latchkey clients remove) while its client_credentials request is in flight: the token that request gets is refused at the resource server', () =>
    endedInFlight('client removed', async (client) => {
      const removed = await latchkey(env, ['clients', 'remove', client.id]);
      assert.equal(removed.status, 0, removed.stderr);
    }));

  it('a secret rotated without grace (it leaked: admin API at another instance) while a request with it is in flight: the token that request gets is refused at the resource server', () =>
    endedInFlight('secret rotated without grace', async (client) => {
      const rotated = await admin(`/clients/${client.id}/secret`, { method: 'POST', body: { previous_secret_valid_for: 0 } });
      assert.equal(rotated.status, 200, await rotated.text());
    }));

  it('a client no longer allowed client_credentials (admin API at another instance) while its request is in flight: the token that request gets is refused at the resource server', () =>
    endedInFlight('client_credentials taken away', async (client) => {
      const body = { ...machineClient(client), grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['https://svc.example.test/callback'] };
      const updated = await admin(`/clients/${client.id}`, { method: 'PUT', body });
      assert.equal(updated.status, 200, await updated.text());
    }));

  it("a pushed request (PAR) and a sign-in begun before an operator removed the redirect URI they name (admin API at another instance) send no code there once used (held)", async () => {
    const [kept, removed] = ['https://web.example.test/kept', 'https://web.example.test/removed'];
    const web = { id: `web-${randomUUID().slice(0, 8)}`, secret: `web-secret-${randomUUID()}` };
    const metadata = { client_id: web.id, client_secret: web.secret, redirect_uris: [kept, removed], grant_types: ['authorization_code'], response_types: ['code'] };
    await clients.add(metadata);
    await server.accounts.create(`alice-${web.id}`, PASSWORD);
    const app = await oidc.discovery(new URL(server.issuer), web.id, web.secret, oidc.ClientSecretBasic(web.secret), { execute: [oidc.allowInsecureRequests] });
    const params = async () => ({ redirect_uri: removed, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
    const pushed = await oidc.buildAuthorizationUrlWithPAR(app, await params());
    const agent = new Agent();
    const signIn = await agent.follow(oidc.buildAuthorizationUrl(app, await params()).href, {}, removed);
    const updated = await admin(`/clients/${web.id}`, { method: 'PUT', body: { ...metadata, redirect_uris: [kept] } });
    assert.equal(updated.status, 200, await updated.text());

    const resumed = await signInSteps(agent, signIn, { username: `alice-${web.id}`, password: PASSWORD, stopAt: removed });
    assert.ok(!resumed.url.startsWith(removed), `the sign-in begun before sent its code to the removed redirect URI: ${resumed.url}`);
    assert.ok(resumed.status < 500, `never a 5xx (${resumed.status})`);
    // Ended with the narrowing (redteam-endings-22), the request_uri is unknown: the error goes to the client's one redirect URI left, never the removed one.
    const used = await agent.follow(pushed.href, {}, 'https://web.example.test/');
    assert.ok(!used.url.startsWith(removed), `the pushed request sent a code to the removed redirect URI: ${used.url}`);
    assert.ok(used.status < 500, `never a 5xx (${used.status})`);
  });
});
