/**
 * Resource servers, keys and the revocation feed, as an attacker: eleventh fresh-eyes passes of
 * 2026-12-07 (docs/security-passes.md).
 *
 * A feed cursor is the id of the last line read, and ids come from the store's clock (Redis's `XADD
 * *`, the embedded store's likewise). A store whose ids went back (its stream expired after a quiet
 * spell and was made again on a Redis whose host clock had stepped back, or one restored from a
 * backup onto such a host) writes new lines behind the cursor every follower holds: `after` read
 * nothing past it, so every revocation written until the clock caught up (an hour stepped back: an
 * hour of them) reached no resource server, while the helper, polling fine, counted itself fresh
 * and accepted the revoked tokens. The cursor ahead of the log's last line is told apart: the feed
 * reads from the log's start (entries are idempotent to a follower).
 */
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startServer, type TestServer } from '../helpers/server.js';
import { acceptedBy, API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';
import { createResourceServer, RotatingNonces, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';

const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const HOUR_MS = 3_600_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const jtiOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string }).jti;

for (const store of ['Redis', 'the embedded store'] as const) {
  describe(`e2e: the revocation feed when the store's ids went back behind a follower's cursor (${store})`, function () {
    this.timeout(60_000);
    let server: TestServer;
    let helper: ResourceServer | undefined;
    const realFetch = globalThis.fetch;
    /** While set, the feed's answers to the helper carry a cursor this far ahead (ms): as if the store's clock had since stepped back that much. */
    let cursorAhead = 0;

    before(async () => {
      server = await startServer({ ownRedis: store === 'Redis', env: { RESOURCE_SERVERS }, clients: [machineClient(RS), machineClient(MACHINE)] });
      await grantFeed(server, RS.id);
    });
    afterEach(() => {
      globalThis.fetch = realFetch;
      helper?.close();
      helper = undefined;
      cursorAhead = 0;
    });
    after(async () => {
      await server?.stop();
    });

    async function readFeed(after?: string): Promise<{ entries: { type: string; jti?: string }[]; cursor: string | null }> {
      const token = await clientCredentialsToken(server.url, RS, `${server.issuer}/revocations`, 'revocations');
      const url = new URL(`${server.url}/revocations`);
      if (after) url.searchParams.set('after', after);
      const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.status, 200);
      return (await response.json()) as { entries: { type: string; jti?: string }[]; cursor: string | null };
    }

    it('a line written behind a cursor the feed gave (its ids went back) is still read with that cursor', async () => {
      // Something on the feed, so that it has a last line.
      const first = await clientCredentialsToken(server.url, MACHINE);
      assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, first)).status, 200);
      const { cursor } = await readFeed();
      assert.ok(cursor, 'the feed has a cursor');
      // The cursor a follower holds once the store's clock went back an hour: an hour ahead of its lines.
      const [ms] = cursor.split('-');
      const ahead = `${Number(ms) + HOUR_MS}-0`;
      const token = await clientCredentialsToken(server.url, MACHINE);
      assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200);
      const page = await readFeed(ahead);
      assert.ok(
        page.entries.some((entry) => entry.type === 'jti' && entry.jti === jtiOf(token)),
        'the revocation written behind the cursor was not read: every follower holding it misses it until the clock catches up',
      );
      assert.ok(page.cursor && page.cursor !== ahead, "the cursor given back is the log's own");
    });

    it('latchkey/resource-server refuses a token revoked after the store\'s ids went back behind its cursor', async () => {
      globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
        const response = await realFetch(input, init);
        const url = new URL(input instanceof Request ? input.url : input);
        if (url.pathname !== '/revocations' || !cursorAhead || response.status !== 200) return response;
        const body = (await response.json()) as { cursor: string | null };
        if (body.cursor) body.cursor = `${Number(body.cursor.split('-')[0]) + cursorAhead}-0`;
        return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
      };
      // The helper follows the feed; the store's clock then steps back an hour (the cursor it holds is an hour ahead).
      cursorAhead = HOUR_MS;
      helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100, onError: () => {} });
      cursorAhead = 0;
      const token = await clientCredentialsToken(server.url, MACHINE);
      assert.equal(await acceptedBy(helper, token), true, 'the fresh token is accepted');
      assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200);
      assert.equal((await introspect(server.url, RS, token)).active, false, 'inactive at introspection');
      // Polls that begin after the revocation (the helper's sync waits for any in flight).
      await helper.sync();
      await helper.sync();
      assert.equal(await acceptedBy(helper, token), false, 'the revoked token was accepted: its revocation sorted behind the helper\'s cursor');
    });

    it('held: a token signed by an attacker\'s key that names it in jwk, jku or x5u, under our kid or its own, is refused', async () => {
      helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
      const genuine = await clientCredentialsToken(server.url, MACHINE);
      const claims = JSON.parse(Buffer.from(genuine.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
      const ourKid = (JSON.parse(Buffer.from(genuine.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
      const { privateKey, publicKey } = await generateKeyPair('RS256');
      const jwk = await exportJWK(publicKey);
      for (const kid of [ourKid, 'attacker']) {
        for (const extra of [{ jwk }, { jku: 'https://attacker.example/jwks' }, { x5u: 'https://attacker.example/cert' }]) {
          const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid, ...extra }).sign(privateKey);
          assert.equal(await acceptedBy(helper, forged), false, `accepted with kid ${kid} and ${Object.keys(extra)[0]}`);
        }
      }
    });
  });
}

/**
 * The helper measured how long it had not reached the feed on the wall clock (Date.now): a clock
 * stepped back after a poll (an NTP step, a VM resumed, an operator's correction) made its last
 * sync lie in the future, so it counted itself fresh for the whole step plus maxStaleness, with the
 * feed out of reach: it accepted tokens revoked meanwhile, breaking the fail-closed promise. It
 * measures that time on the monotonic clock now.
 */
describe('e2e: latchkey/resource-server fails closed after maxStaleness though the wall clock stepped back', function () {
  this.timeout(60_000);
  let server: TestServer;
  let helper: ResourceServer | undefined;
  const realFetch = globalThis.fetch;
  const realNow = Date.now;

  before(async () => {
    server = await startServer({ env: { RESOURCE_SERVERS }, clients: [machineClient(RS), machineClient(MACHINE)] });
    await grantFeed(server, RS.id);
  });
  afterEach(() => {
    Date.now = realNow;
  });
  after(async () => {
    globalThis.fetch = realFetch;
    helper?.close();
    await server?.stop();
  });

  it('a token revoked while the feed is out of reach is refused once maxStaleness has passed, though the clock stepped back an hour since the last poll', async () => {
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100, maxStaleness: 1_000, onError: () => {} });
    const token = await clientCredentialsToken(server.url, MACHINE);
    assert.equal(await acceptedBy(helper, token), true, 'the fresh token is accepted');
    // The feed goes out of reach for the helper; the app revokes its token; the clock steps back an hour.
    globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
      if (new URL(input instanceof Request ? input.url : input).pathname === '/revocations') throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
      return realFetch(input, init);
    };
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200);
    Date.now = () => realNow() - HOUR_MS;
    await sleep(1_500);
    await assert.rejects(
      helper.verify(`Bearer ${token}`),
      (error: Error) => error instanceof TokenRejected && /revocation status unknown/.test(error.message),
      'the revoked token was accepted: the helper counted itself fresh on a clock that stepped back',
    );
  });

  it('RotatingNonces (DPoP nonces) still rotate though the clock stepped back an hour', async () => {
    Date.now = realNow;
    const nonces = new RotatingNonces(0.2);
    const first = nonces.issue();
    Date.now = () => realNow() - HOUR_MS;
    try {
      // Two rotations' worth: the first nonce is neither current nor previous any more.
      await sleep(250);
      nonces.issue();
      await sleep(250);
      assert.equal(nonces.check(first), false, 'a nonce outlived two rotations: they were timed on a clock that stepped back');
    } finally {
      Date.now = realNow;
    }
  });
});
