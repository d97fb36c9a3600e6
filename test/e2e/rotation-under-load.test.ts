/**
 * Rotation under load, seen from resource servers that use jose's createRemoteJWKSet (a verifier
 * we did not write). Two instances share one Redis and rotate on a fast schedule; workers keep
 * minting tokens at both and verifying each at once against both instances' JWKS. The verifiers
 * cache the JWKS exactly as long as our Cache-Control allows and never refetch on an unknown kid,
 * so a key that signed before every instance had published it for max-age would fail them. They
 * must see zero failures across two rotations, and every token minted along the way must still
 * verify at the end. (jose's default cache is 10 minutes: fine with the default one-day lead, too
 * long for the 3-second lead used here — which is why the verifiers take our max-age.)
 */
import assert from 'node:assert/strict';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const ROTATIONS = 2;
const WORKERS = 4;
/** A bound on the run, not a timing assertion: the test fails on count, never on time. */
const MAX_TOKENS = 40_000;

describe('e2e: key rotation under load (jose createRemoteJWKSet)', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  const servers: TestServer[] = [];

  before(async () => {
    redis = await startRedisServer();
    const env = {
      CLIENTS: JSON.stringify([machineClient(MACHINE)]),
      RESOURCE_SERVERS,
      KEYS_ROTATION_INTERVAL: '3',
      KEYS_PUBLISH_LEAD: '3',
      KEYS_REFRESH_INTERVAL: '0.2',
      // Thousands of tokens a second from one address: the rate limits are not what this measures.
      RATE_LIMIT_PER_IP: '0',
      RATE_LIMIT_PER_CLIENT: '0',
    };
    servers.push(await startServer({ redisUrl: redis.url, env }), await startServer({ redisUrl: redis.url, env }));
  });
  after(async () => {
    for (const server of servers) await server.stop();
    await redis?.stop();
  });

  it(`verifies every freshly issued token while the keys rotate ${ROTATIONS} times: zero failures`, async () => {
    const [a, b] = servers as [TestServer, TestServer];
    const cacheControl = (await fetch(`${a.url}/jwks`)).headers.get('cache-control') ?? '';
    const maxAge = Number(/max-age=(\d+)/.exec(cacheControl)?.[1]);
    assert.equal(maxAge, 1, 'half the 3 s publish lead, rounded down');

    // Strict: refreshes only when its cache is older than max-age, never because of an unknown kid.
    const verifiers: JWTVerifyGetKey[] = [a, b].map((server) =>
      createRemoteJWKSet(new URL(`${server.url}/jwks`), { cacheMaxAge: maxAge * 1000, cooldownDuration: Infinity }),
    );

    const failures: string[] = [];
    const signers = new Set<string>();
    const minted: string[] = [];
    let count = 0;
    const done = () => signers.size > ROTATIONS || count >= MAX_TOKENS;

    await Promise.all(
      Array.from({ length: WORKERS }, async (_, worker) => {
        for (let i = 0; !done(); i += 1) {
          count += 1;
          const issuer = (worker + i) % 2 === 0 ? a : b;
          const token = await clientCredentialsToken(issuer.url, MACHINE);
          minted.push(token);
          signers.add(String(decodeProtectedHeader(token).kid));
          for (const [index, keys] of verifiers.entries()) {
            try {
              const { payload } = await jwtVerify(token, keys, { issuer: issuer.issuer, audience: API, typ: 'at+jwt', algorithms: ['RS256'] });
              assert.equal(payload.client_id, MACHINE.id);
            } catch (error) {
              failures.push(`verifier ${index}, kid ${decodeProtectedHeader(token).kid}: ${(error as Error).message}`);
            }
          }
        }
      }),
    );

    assert.deepEqual(failures, [], `${failures.length} of ${count * verifiers.length} verifications failed`);
    assert.ok(signers.size > ROTATIONS, `tokens were signed by ${signers.size} keys (${count} tokens): the keys did not rotate ${ROTATIONS} times`);

    // Retired keys stay published: everything minted during the run verifies against today's JWKS.
    const latest = createRemoteJWKSet(new URL(`${a.url}/jwks`));
    for (const token of minted) await jwtVerify(token, latest, { audience: API, typ: 'at+jwt' });
    console.log(`      ${count} tokens, ${count * verifiers.length} verifications, ${signers.size} signing keys, 0 failures`);
  });
});
