/**
 * Review of the merged revocation-feed retention change (docs/security-passes.md, h21), against a
 * running Latchkey: its revocation endpoint now writes a client's own JWT access token, expired at
 * Latchkey but still within the feed's retention, to the feed. Its jti's mark (what makes a second
 * revocation a no-op) was kept only a second then, so the client revoking the same expired token
 * again each second appended a line every API reads each time. Also held here: another client's
 * revocation of that token writes nothing, and every answer is the 200 an unknown token gets (RFC 7009 §2.2).
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { basic, machineClient } from '../helpers/tokens.js';

const SHORT_API = 'https://short-lived.example.test';
const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const OTHER = { id: 'other', secret: 'other-client-secret-with-plenty-of-entropy-0123456' };
/** Latchkey's own clock tolerance (lifetimes.ts CLOCK_TOLERANCE), seconds. */
const LATCHKEY_TOLERANCE = 15;

describe('e2e: revoking a client\'s own expired JWT again writes no second feed line, eighteenth passes (h21)', function () {
  this.timeout(40_000);
  let redis: RedisServer;
  let raw: Redis;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    raw = new Redis(redis.url);
    const apis = JSON.stringify([{ identifier: SHORT_API, scopes: ['read'], format: 'jwt', accessTokenTTL: 1, grants: [{ client_id: MACHINE.id, scopes: ['read'] }] }]);
    server = await startServer({ redisUrl: redis.url, env: { RESOURCE_SERVERS: apis }, clients: [machineClient(MACHINE), machineClient(OTHER)] });
  });
  after(async () => {
    raw?.disconnect();
    await server?.stop();
    await redis?.stop();
  });

  /** The feed's lines naming this jti, read straight from Redis (the stream, whatever its prefix). */
  const feedLines = async (jti: string) => {
    const [key] = await raw.keys('*revoked:{rv}:feed');
    if (!key) return 0;
    const lines = (await raw.xrange(key, '-', '+')) as [string, string[]][];
    return lines.filter(([, fields]) => fields.includes(jti)).length;
  };
  const revoke = (who: { id: string; secret: string }, token: string) =>
    fetch(`${server.url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(who) },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
    });

  it('one line however often its client revokes it; none for another client; the answer an unknown token gets each time', async () => {
    const answer = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(MACHINE) },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: SHORT_API, scope: 'read' }),
    });
    assert.equal(answer.status, 200, await answer.clone().text());
    const { access_token: token } = (await answer.json()) as { access_token: string };
    const { exp, jti } = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number; jti: string };
    // Past what Latchkey itself takes (exp + 15 s), inside the feed's retention (exp + 300 s).
    const wait = (exp + LATCHKEY_TOLERANCE + 2) * 1000 - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));

    // What an unknown token gets: every answer below is the same, telling a client nothing.
    const unknown = await revoke(MACHINE, 'not-a-token-latchkey-issued');
    assert.equal(unknown.status, 200);
    const answered = await unknown.text();
    const byOther = await revoke(OTHER, token);
    assert.equal(byOther.status, 200);
    assert.equal(await byOther.text(), answered);
    assert.equal(await feedLines(jti), 0, 'another client\'s revocation writes nothing');

    for (let round = 0; round < 3; round++) {
      if (round) await new Promise((resolve) => setTimeout(resolve, 1_600));
      const mine = await revoke(MACHINE, token);
      assert.equal(mine.status, 200);
      assert.equal(await mine.text(), answered);
    }
    assert.equal(await feedLines(jti), 1, 'one line for the token');
  });
});
