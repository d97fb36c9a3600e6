/**
 * Red team, seventh endings pass (docs/security-passes.md, "Looked at in the seventh endings pass").
 *
 * A Redis that loses everything (restarted with nothing on disk, as this suite's Redis keeps
 * nothing; flushed; a replica promoted empty) loses the revocation list with it, while the servers
 * keep running with their signing keys and their configuration's clients and APIs: a token revoked
 * before worked again, at introspection and at every API that began to follow the revocation feed
 * afterwards, for as long as it lived. The store now keeps the second its memory begins (its epoch)
 * and every token issued before it is refused, at introspection, at the feed and, through the
 * feed's `epoch`, at `latchkey/resource-server`.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { startStandInIssuer, type StandInIssuer } from '../helpers/stand-in-issuer.js';
import { acceptedBy, API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';

const MACHINE = { id: 'machine', secret: 'machine-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const CLIENTS = JSON.stringify([machineClient(MACHINE), machineClient(RS)]);


const iatOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { iat: number }).iat;

describe('e2e: red team, seventh endings pass', function () {
  this.timeout(120_000);

  describe('a Redis that lost everything', () => {
    let redis: RedisServer;
    let server: TestServer;
    const helpers: ResourceServer[] = [];

    before(async () => {
      redis = await startRedisServer();
      server = await startServer({ redisUrl: redis.url, dir: testDir(), env: { CLIENTS, RESOURCE_SERVERS } });
      await grantFeed(server, RS.id);
    });
    after(async () => {
      for (const helper of helpers) helper.close();
      await server?.stop();
      await redis?.stop();
    });

    const follow = async () => {
      const helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
      helpers.push(helper);
      return helper;
    };

    it('a token revoked before Redis restarted with nothing on disk stays refused, at introspection, at an API that follows the feed from after it and one that followed it through; a token issued after is valid', async () => {
      const through = await follow();
      const revoked = await clientCredentialsToken(server.url, MACHINE, API);
      const unrevoked = await clientCredentialsToken(server.url, MACHINE, API);
      assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, revoked)).status, 200);
      assert.equal((await introspect(server.url, RS, revoked)).active, false);
      await through.sync();
      assert.equal(await acceptedBy(through, revoked), false);
      assert.equal(await acceptedBy(through, unrevoked), true);

      // Redis crashes in a later second than the tokens were issued in (the stamp takes the second
      // before its own for the store's beginning: docs/security.md) and comes back empty; the server
      // reconnects by itself.
      const raw = new Redis(redis.url);
      const issuedAt = Math.max(iatOf(revoked), iatOf(unrevoked));
      await eventually(async () => assert.ok(Number((await raw.time())[0]) > issuedAt), 30);
      raw.disconnect();
      await redis.kill();
      await redis.restart();
      await eventually(async () => assert.equal((await fetch(`${server.url}/readyz`)).status, 200));
      await grantFeed(server, RS.id); // the operator's grant went with the rest

      // Before the fix: active (the jti entry was gone), and accepted by an API started now.
      assert.equal((await introspect(server.url, RS, revoked)).active, false, 'a token revoked before the store lost its revocation list');
      assert.equal((await introspect(server.url, RS, unrevoked)).active, false, 'what was issued before the loss can no longer be told from what was revoked');
      const fresh = await clientCredentialsToken(server.url, MACHINE, API);
      assert.equal((await introspect(server.url, RS, fresh)).active, true, 'a token issued after the loss');

      const after = await follow();
      assert.equal(await acceptedBy(after, revoked), false, 'an API that began to follow the feed after the loss');
      assert.equal(await acceptedBy(after, unrevoked), false);
      assert.equal(await acceptedBy(after, fresh), true);

      await through.sync();
      assert.equal(await acceptedBy(through, revoked), false);
      assert.equal(await acceptedBy(through, unrevoked), false, 'an API that followed the feed through the loss');
      assert.equal(await acceptedBy(through, fresh), true);
    });
  });

  it('a token revoked before the embedded store restarted stays refused: its revocation entries live in memory only, its clients and keys on disk', async () => {
    const dir = testDir();
    let server = await startServer({ dir, env: { CLIENTS, RESOURCE_SERVERS } });
    let token: string;
    try {
      token = await clientCredentialsToken(server.url, MACHINE, API);
      assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200);
      assert.equal((await introspect(server.url, RS, token)).active, false);
    } finally {
      await server.stop();
    }
    // Restarted in a later second than the token's (the embedded store runs on this machine's clock).
    await eventually(async () => assert.ok(Math.floor(Date.now() / 1000) > iatOf(token)), 30);
    server = await startServer({ dir, port: Number(new URL(server.url).port), env: { CLIENTS, RESOURCE_SERVERS } }); // the same issuer
    try {
      assert.equal((await introspect(server.url, RS, token)).active, false, 'revoked before the restart');
      assert.equal((await introspect(server.url, RS, await clientCredentialsToken(server.url, MACHINE, API))).active, true, 'issued after it');
    } finally {
      await server.stop();
    }
  });

  describe('latchkey/resource-server reads the feed again from its start when its epoch changes', () => {
    // A Latchkey (and its store) as the helper sees it, over plain HTTP: after its store began
    // again on another host, the new feed's lines sort before the cursor the helper holds.
    let standIn: StandInIssuer;
    const KID = 'k1';
    let feed = { epoch: 1_000, lines: [] as { id: string; entry: Record<string, unknown> }[] };
    // As a Redis stream: the lines after the cursor, by id.
    const order = (id: string) => id.split('-').map(Number) as [number, number];
    const later = (id: string, after: string) => order(id)[0] > order(after)[0] || (order(id)[0] === order(after)[0] && order(id)[1] > order(after)[1]);

    before(async () => {
      standIn = await startStandInIssuer(KID, (after) => {
        const lines = feed.lines.filter(({ id }) => after === null || later(id, after));
        return { entries: lines.map(({ entry }) => entry), cursor: lines.at(-1)?.id ?? after, more: false, epoch: feed.epoch };
      });
    });
    after(() => standIn?.close());

    const token = (jti: string) =>
      new SignJWT({ sub: 'app', client_id: 'app', scope: 'read', jti })
        .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: KID })
        .setIssuer(standIn.issuer)
        .setAudience(API)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(standIn.privateKey);

    it('a revocation on the new feed, whose line sorts before the old cursor, is seen', async () => {
      const now = Math.floor(Date.now() / 1000);
      feed.lines.push({ id: '2000000000000-0', entry: { type: 'jti', jti: 'old', exp: now + 300 } });
      const helper = await createResourceServer({ issuer: standIn.issuer, audience: API, clientId: 'api', clientSecret: 'secret', onError: () => {} });
      try {
        const jti = randomUUID();
        const jwt = await token(jti);
        assert.equal(await acceptedBy(helper, jwt), true);
        // The store began again (epoch 1 000 → 1 001 s after it, still before the token's iat): its
        // first line's id is before the cursor the helper holds (2000000000000-0).
        feed = { epoch: 1_001, lines: [{ id: '1900000000000-0', entry: { type: 'jti', jti, exp: now + 300 } }] };
        await helper.sync();
        assert.equal(await acceptedBy(helper, jwt), false, 'the revocation written after the store began again');
      } finally {
        helper.close();
      }
    });
  });
});
