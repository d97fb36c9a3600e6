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
 * there), so that operators reach it again and every instance shares one ring; and with it the
 * configuration's clients and APIs as recorded, which the next start compares with: without them, a
 * client removed from the configuration at that start kept the JWTs it got after the loss.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { createResourceServer } from '../../src/resource-server/index.js';
import { acceptedBy, API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const SECRET = 'a-keyring-secret-for-the-fourteenth-blips-pass-0123';
const CLIENTS = [machineClient(MACHINE), machineClient(RS)];
const ENV = { RESOURCE_SERVERS, KEYS_SECRETS: SECRET, KEYS_REFRESH_INTERVAL: '0.2' };

const kidOf = (jwt: string) => decodeProtectedHeader(jwt).kid!;
const jwksOf = async (server: TestServer) => (await (await fetch(`${server.url}/jwks`)).json()) as JSONWebKeySet;

describe('e2e: fourteenth blips pass: Redis restarted empty under a running server', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  const dirs: string[] = [];
  const servers: TestServer[] = [];

  const start = async (clients: Record<string, unknown>[] = CLIENTS, dir = testDir(), port?: number, env: Record<string, string> = ENV) => {
    dirs.push(dir);
    port ??= await freePort();
    const server = await startServer({ dir, port, redisUrl: redis.url, clients, env });
    servers.push(server);
    return { server, dir, port, env: testEnv(dir, port, { redisUrl: redis.url, clients, env }) };
  };

  beforeEach(async () => {
    redis = await startRedisServer();
  });
  afterEach(async () => {
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

  /** A token got after a loss, then a restart with `changed` configuration: whether an API following the feed still accepts it. */
  async function acceptedAfterRestart(clients: Record<string, unknown>[], env: Record<string, string>): Promise<boolean> {
    const { server: first, dir, port, env: cli } = await start();
    await redis.kill();
    await redis.restart();
    await eventually(async () => assert.equal((await fetch(`${first.url}/readyz`)).status, 200));
    await eventually(async () => {
      const run = await latchkey(cli, ['keys', 'list']);
      assert.notEqual(JSON.parse(run.stdout || '[]').length, 0, 'the ring written back');
    }, 15, 300);
    await grantFeed(first, RS.id); // the operator's grant went with the rest
    const token = await clientCredentialsToken(first.url, MACHINE, API);
    await first.stop();
    servers.splice(servers.indexOf(first), 1);

    const { server: second } = await start(clients, dir, port, env);
    const helper = await createResourceServer({ issuer: second.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    try {
      return await acceptedBy(helper, token);
    } finally {
      helper.close();
    }
  }

  it('a configured client removed at a restart after the loss: the JWTs it got after the loss end (the record the start compares with was written back)', async () => {
    // Before the fix: accepted, until it expired (the start found no record, so nothing changed).
    assert.equal(await acceptedAfterRestart([machineClient(RS)], ENV), false);
  });

  it("a configured operator grant taken out at a restart after the loss: the client's JWTs for that API got after the loss end", async () => {
    const narrowed = JSON.parse(RESOURCE_SERVERS) as { identifier: string; grants: { client_id: string }[] }[];
    for (const api of narrowed) if (api.identifier === API) api.grants = api.grants.filter(({ client_id }) => client_id !== MACHINE.id);
    assert.equal(await acceptedAfterRestart(CLIENTS, { ...ENV, RESOURCE_SERVERS: JSON.stringify(narrowed) }), false);
  });

  it('a key revoked on the store before anything stamped its epoch after the loss: a token revoked before the loss stays refused (the revocation stamps the epoch before it writes the lifetimes)', async () => {
    const { server, env } = await start();
    const revoked = await clientCredentialsToken(server.url, MACHINE, API);
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, revoked)).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the loss in a later second than the token
    await redis.kill();
    await redis.restart();
    await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
    let next = '';
    await eventually(async () => {
      const run = await latchkey(env, ['keys', 'list']);
      next = (JSON.parse(run.stdout || '[]') as { kid: string; state: string }[]).find(({ state }) => state === 'next')?.kid ?? '';
      assert.ok(next, 'the ring written back');
    }, 15, 300);
    // The operator revokes again what was revoked (the runbook), before any check or signature stamped the store.
    const revoke = await latchkey(env, ['keys', 'revoke', next]);
    assert.equal(revoke.status, 0, revoke.stderr);
    // Before the fix: active. The kid entry's lifetime was written first, and the store, holding
    // lifetimes, was taken for one an earlier release wrote: epoch 0, nothing refused by it.
    assert.equal((await introspect(server.url, RS, revoked)).active, false, 'a token revoked before the loss');
  });
});
