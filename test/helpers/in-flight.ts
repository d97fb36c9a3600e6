/**
 * Endings raced by a client_credentials request in flight (redteam-endings, races-eleventh), black
 * box: instance A behind the test relay, which holds the request once it has read its client and API
 * grants (at its DPoP proof's replay check); instance B, the same issuer and keys on Redis directly,
 * where the operator ends something through the admin API; and latchkey/resource-server following
 * the feed. Call `clientCredentialsInFlight()` inside a describe: its before/after hooks start and
 * stop them.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { dirname } from 'node:path';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { eventually } from './eventually.js';
import { freePort } from './redis.js';
import { startRelayedServer, type Held, type Relay, type RelayedServer } from './relay.js';
import { startServer, type TestServer } from './server.js';
import { API, basic, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS, type ClientCredentials } from './tokens.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';

/** The API's resource server (introspection, the feed) and the operator's admin client. */
export const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
export const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };

export type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/** Resolves once the epoch second after `second` has begun. */
export async function pastSecond(second: number): Promise<void> {
  while (Math.floor(Date.now() / 1000) <= second) await new Promise((done) => setTimeout(done, 50));
}

/** A DPoP proof made by hand (jose) with `key`, for a request to `htu`, bound to `token` if given. */
export async function proof(key: KeyPair, htm: string, htu: string, token?: string): Promise<string> {
  return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm, htu, ...(token ? { ath: createHash('sha256').update(token).digest('base64url') } : {}) })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey) })
    .sign(key.privateKey);
}

export interface InFlight {
  /** Instance A, behind the relay. */
  server: TestServer;
  relay: Relay;
  env: Record<string, string>;
  /** latchkey/resource-server for API, following the feed. */
  helper: ResourceServer;
  /** Instance B: the same issuer and keys, on Redis directly. */
  other: TestServer;
  /** An operator's call to the admin API at instance B. */
  admin(path: string, init: { method: string; body?: unknown }): Promise<Response>;
  /** A stored service with its own grant at `api` (API unless given), its token working everywhere. */
  service(api?: string): Promise<ClientCredentials>;
  /** client_credentials for `api` (API unless given) with a DPoP proof, held once it reaches the proof's replay check (it has read its client and grants). */
  tokenRequestHeld(client: ClientCredentials, api?: string): Promise<{ key: KeyPair; held: Held<Response> }>;
  /** `end` ends the client while its token request is held in flight, released a second later: what that request gets works nowhere. */
  endedInFlight(ending: string, end: (client: ClientCredentials) => Promise<void>): Promise<void>;
}

export function clientCredentialsInFlight(): InFlight {
  let relayed: RelayedServer | undefined;
  const flight = {} as InFlight;

  before(async () => {
    relayed = await startRelayedServer({ CLIENTS: JSON.stringify([machineClient(RS), machineClient(OPS)]), RESOURCE_SERVERS });
    const { relay, server, env } = relayed;
    Object.assign(flight, { relay, server, env });
    await grantFeed(server, RS.id);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    flight.helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret });
    const shared = { CLIENTS: env.CLIENTS!, RESOURCE_SERVERS, ISSUER: server.issuer };
    flight.other = await startServer({ dir: dirname(env.KEYS_DIR!), port: await freePort(), redisUrl: env.REDIS_URL!, env: shared });
  });
  after(async () => {
    flight.helper?.close();
    await flight.other?.stop();
    await relayed?.stop();
  });

  flight.admin = async (path, init) => {
    const token = await clientCredentialsToken(flight.other.url, OPS, `${flight.server.issuer}/admin`, 'admin');
    return fetch(`${flight.other.url}/admin${path}`, {
      method: init.method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  };

  flight.service = async (api = API) => {
    const client = { id: `svc-${randomUUID().slice(0, 8)}`, secret: `svc-secret-${randomUUID()}` };
    await flight.server.clients.add({ ...machineClient(client), token_endpoint_auth_method: 'client_secret_basic' });
    await flight.server.apis.grant(client.id, api, { scopes: ['read'] });
    return client;
  };

  flight.tokenRequestHeld = async (client, api = API) => {
    const key = await generateKeyPair('ES256');
    const dpop = await proof(key, 'POST', `${flight.server.issuer}/token`);
    const held = await flight.relay.hold(
      (chunk) => chunk.includes('dpop-proof:'),
      () =>
        fetch(`${flight.server.url}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client), dpop },
          body: new URLSearchParams({ grant_type: 'client_credentials', resource: api, scope: 'read' }),
        }),
    );
    return { key, held };
  };

  /** Whatever the held request got, once released: no access token, or one that works nowhere (introspection, the resource server with its proof). */
  async function assertNothingWorks({ key, held }: { key: KeyPair; held: Held<Response> }, ending: string) {
    const answered = await held.release();
    assert.notEqual(answered.status, 503, 'the held request timed out: nothing was tried');
    const { access_token: token } = (await answered.json()) as { access_token?: string };
    if (!token) return;
    assert.deepEqual(await introspect(flight.server.url, RS, token), { active: false }, `${ending}: active at introspection`);
    const url = `${API}/entries`;
    await eventually(async () => {
      const accepted = await flight.helper.verify(`DPoP ${token}`, { dpop: { proof: await proof(key, 'GET', url, token), method: 'GET', url } }).then(
        () => true,
        (error: unknown) => {
          assert.ok(error instanceof TokenRejected && /revoked/.test(error.message), String(error));
          return false;
        },
      );
      assert.equal(accepted, false, `${ending}: the resource server accepts the token the request in flight got (iat ${decodeJwt(token).iat})`);
    });
  }

  flight.endedInFlight = async (ending, end) => {
    const client = await flight.service();
    const held = await flight.tokenRequestHeld(client);
    await end(client);
    // The ending's marks are of this second or an earlier one; the request goes on in a later one.
    await pastSecond(Math.floor(Date.now() / 1000));
    await assertNothingWorks(held, ending);
  };

  return flight;
}
