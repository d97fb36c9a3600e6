/**
 * The eighteenth passes at what the resource servers accept (docs/security-passes.md, "more than
 * was granted, at the resource servers' side (h10)"): how long Latchkey's own endpoints (the token
 * endpoint, userinfo, PAR) remember a DPoP proof they took (patches/dpop-proofs-once.ts), against
 * how long the engine would take it. Without a nonce the engine takes a proof while the whole
 * second is within five minutes of its `iat` (so up to a second past `iat` plus five minutes); with
 * one of its nonces, whatever the `iat`, while the nonce is good (at most five minutes on). A
 * redis-server of the test's own, its keys' TTLs read.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, basic, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
/** The engine's DPoP window (oidc-provider's CHALLENGE_OK_WINDOW), seconds. */
const WINDOW = 300;

describe("e2e: how long Latchkey's endpoints remember a DPoP proof, eighteenth passes", function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let raw: Redis;
  let server: TestServer;
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;

  before(async () => {
    keys = await generateKeyPair('ES256');
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    server = await startServer({ redisUrl: redis.url, env: { RESOURCE_SERVERS }, clients: [machineClient(MACHINE)] });
  });
  after(async () => {
    raw?.disconnect();
    await server?.stop();
    await redis?.stop();
  });

  async function proof(iat: number, nonce?: string): Promise<string> {
    const jwk = await exportJWK(keys.publicKey);
    return new SignJWT({ jti: randomUUID(), htm: 'POST', htu: `${server.issuer}/token`, ...(nonce && { nonce }) })
      .setIssuedAt(iat)
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(keys.privateKey);
  }
  const tokenRequest = (dpop: string) =>
    fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE), dpop },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }),
    });
  /** The proof marks in the store, each with when it expires (epoch ms). */
  async function marks(): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    for (const key of await raw.keys('*dpop-proof:*')) found.set(key, Date.now() + (await raw.pttl(key)));
    return found;
  }
  /** The mark the request left (the one not there before). */
  async function markOf(request: () => Promise<Response>): Promise<number> {
    const before = await marks();
    const response = await request();
    assert.equal(response.status, 200, await response.text());
    const added = [...(await marks())].filter(([key]) => !before.has(key));
    assert.equal(added.length, 1, 'one proof mark');
    return added[0]![1];
  }

  it('keeps a proof without a nonce until after the last second the engine takes it (its iat plus the window, and that second)', async () => {
    const iat = Math.floor(Date.now() / 1000);
    const expires = await markOf(async () => tokenRequest(await proof(iat)));
    assert.ok(expires >= (iat + WINDOW + 1) * 1000, `the mark goes ${(iat + WINDOW + 1) * 1000 - expires} ms before the proof stops being taken: a replay then is accepted`);
  });

  it("keeps a proof with a nonce no longer than the nonce is good, whatever its iat (one dated years ahead left a mark for years)", async () => {
    const first = await tokenRequest(await proof(Math.floor(Date.now() / 1000)));
    const nonce = first.headers.get('dpop-nonce');
    assert.ok(nonce, 'the engine names a nonce');
    const yearsAhead = Math.floor(Date.now() / 1000) + 10 * 365 * 86_400;
    const sent = Date.now();
    const expires = await markOf(async () => tokenRequest(await proof(yearsAhead, nonce)));
    assert.ok(expires <= sent + (WINDOW + 2) * 1000, `the mark lasts ${Math.round((expires - sent) / 1000)} s`);
  });
});
