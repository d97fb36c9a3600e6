/**
 * The fourteenth fresh-eyes passes (2026-12-07), Redis blips and restarts (docs/security-passes.md,
 * "Looked at in the fourteenth fresh-eyes passes of 2026-12-07: Redis blips and restarts"): a Redis
 * that comes back empty (restarted with nothing on disk) under a running server.
 *
 * The running server kept signing with the key ring it held in memory, which the store no longer
 * held: `latchkey keys list` showed no key, `keys revoke` of the key that signs said there was no
 * key ring yet, the schedule rotated nothing, and a server started after the loss made a ring of its
 * own, which the first then adopted, dropping the key it had signed with since the loss. A server
 * that finds the store without a ring now writes back the one it signs with (only while none is
 * there), so that operators reach it again and every instance shares one ring.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { API, clientCredentialsToken, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const SECRET = 'a-keyring-secret-for-the-fourteenth-blips-pass-0123';
const CLIENTS = [machineClient(MACHINE)];
const ENV = { RESOURCE_SERVERS, KEYS_SECRETS: SECRET, KEYS_REFRESH_INTERVAL: '0.2' };

const kidOf = (jwt: string) => decodeProtectedHeader(jwt).kid!;
const jwksOf = async (server: TestServer) => (await (await fetch(`${server.url}/jwks`)).json()) as JSONWebKeySet;

describe('e2e: fourteenth blips pass: Redis restarted empty under a running server', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  const dirs: string[] = [];
  const servers: TestServer[] = [];

  const start = async () => {
    const dir = testDir();
    dirs.push(dir);
    const port = await freePort();
    const server = await startServer({ dir, port, redisUrl: redis.url, clients: CLIENTS, env: ENV });
    servers.push(server);
    return { server, env: testEnv(dir, port, { redisUrl: redis.url, clients: CLIENTS, env: ENV }) };
  };

  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    for (const server of servers.splice(0)) await server.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    await redis?.stop();
  });

  it('the key ring a running server signs with is written back to the store: listed, revocable and shared by a server started after the loss', async () => {
    const { server: first, env } = await start();
    const signing = kidOf(await clientCredentialsToken(first.url, MACHINE, API));

    await redis.kill();
    await redis.restart(); // nothing on disk: empty
    await eventually(async () => assert.equal((await fetch(`${first.url}/readyz`)).status, 200));

    // Before the fix: `[]` for ever (until a restart), while the server went on signing with the key.
    await eventually(async () => {
      const run = await latchkey(env, ['keys', 'list']);
      assert.equal(run.status, 0, run.stderr);
      const kids = (JSON.parse(run.stdout) as { kid: string; state: string }[]).map(({ kid, state }) => `${kid}:${state}`);
      assert.ok(kids.includes(`${signing}:current`), `keys list after the loss: ${kids.join(' ')}`);
    }, 15, 300);

    // A server started after the loss shares the ring: what either signs, the other's JWKS verifies.
    const { server: second } = await start();
    const fromFirst = await clientCredentialsToken(first.url, MACHINE, API);
    const fromSecond = await clientCredentialsToken(second.url, MACHINE, API);
    assert.equal(kidOf(fromFirst), signing);
    assert.equal(kidOf(fromSecond), signing, 'the second server signs with the ring written back, not one of its own');
    await jwtVerify(fromFirst, createLocalJWKSet(await jwksOf(second)));
    await new Promise((resolve) => setTimeout(resolve, 600)); // a few refreshes of the first
    await jwtVerify(fromSecond, createLocalJWKSet(await jwksOf(first)));
    assert.ok((await jwksOf(first)).keys.some(({ kid }) => kid === signing), 'the first still publishes the key it signed with since the loss');

    // The operator reaches the key again: revoked, it signs no more anywhere.
    const revoke = await latchkey(env, ['keys', 'revoke', signing]);
    assert.equal(revoke.status, 0, revoke.stderr);
    for (const server of [first, second]) {
      await eventually(async () => assert.ok(!(await jwksOf(server)).keys.some(({ kid }) => kid === signing), 'revoked: gone from the JWKS'));
      assert.notEqual(kidOf(await clientCredentialsToken(server.url, MACHINE, API)), signing);
    }
  });
});
