/**
 * latchkey/resource-server's freshness is that of what it read, not of when the answer reached it
 * (ninth fresh-eyes passes of 2026-12-06, endings; docs/security-passes.md). The helper promises to
 * refuse every token once it has not reached the feed for `maxStaleness`: a revocation is honoured
 * within that, or the API fails closed. It dated its knowledge by the moment a poll's answer
 * arrived, so an answer held on the way (a slow or buffering proxy, a congested link, the API's own
 * event loop stalled) counted as fresh although it said what the feed held when Latchkey read it,
 * before the revocation: with the feed out of reach afterwards (Latchkey restarting, the link cut),
 * the revoked token was accepted for up to `maxStaleness` more, past the promised bound.
 */
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';
import { acceptedBy, API, clientCredentialsToken, grantFeed, introspect, machineClient, RESOURCE_SERVERS, tokenEndpoint } from '../helpers/tokens.js';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';

const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
const MACHINE = { id: 'machine', secret: 'machine-client-secret-with-plenty-of-entropy-0123' };
const MAX_STALENESS = 2_000;
/** How long the feed's answer is held on its way to the helper: longer than maxStaleness. */
const HELD = 2_500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('e2e: latchkey/resource-server dates what it knows by when Latchkey read the feed, not by when the answer arrived', function () {
  this.timeout(60_000);
  let server: TestServer;
  let helper: ResourceServer | undefined;
  const realFetch = globalThis.fetch;
  /** What the wrapper does with the helper's feed requests: pass them, hold their answers, or fail them (out of reach). */
  let feed: 'pass' | 'hold' | 'down' = 'pass';
  let held: { release: () => void } | undefined;
  /** Milliseconds the helper's JWKS requests are held on their way (0: passed at once). */
  let jwksHeld = 0;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { RESOURCE_SERVERS }, clients: [machineClient(RS), machineClient(MACHINE)] });
    await grantFeed(server, RS.id);
    globalThis.fetch = async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : input);
      if (url.pathname.endsWith('/jwks') && jwksHeld) {
        const response = await realFetch(input, init);
        await sleep(jwksHeld);
        return response;
      }
      if (url.pathname !== '/revocations' || feed === 'pass') return realFetch(input, init);
      if (feed === 'down') throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
      // Latchkey reads the feed and answers now; the answer reaches the helper once released.
      const response = await realFetch(input, init);
      const body = await response.arrayBuffer();
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      held = { release };
      await released;
      return new Response(body, { status: response.status, headers: response.headers });
    };
  });
  after(async () => {
    globalThis.fetch = realFetch;
    helper?.close();
    await server?.stop();
  });

  it('a token revoked while the poll that read the feed before the revocation was held on its way is refused once maxStaleness has passed since that read, though the feed is out of reach afterwards', async () => {
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100, maxStaleness: MAX_STALENESS, onError: () => {} });
    const token = await clientCredentialsToken(server.url, MACHINE);
    assert.equal(await acceptedBy(helper, token), true, 'the fresh token is accepted');

    // The next poll reads the feed (nothing revoked yet), and its answer is held on the way.
    feed = 'hold';
    while (!held) await sleep(20);
    const readAt = Date.now();
    // The app revokes its token (RFC 7009): at once inactive at Latchkey.
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200);
    assert.equal((await introspect(server.url, RS, token)).active, false, 'inactive at introspection');
    // Latchkey goes out of reach; the held answer (from before the revocation) arrives after maxStaleness.
    feed = 'down';
    const before = helper.lastSync;
    await sleep(HELD);
    held.release();
    while (helper.lastSync === before) await sleep(10);
    assert.ok(Date.now() - readAt > MAX_STALENESS, 'checked more than maxStaleness after the feed was read');

    // What the helper knows is as old as Latchkey's read of the feed: older than maxStaleness.
    await assert.rejects(
      helper.verify(`Bearer ${token}`),
      (error: Error) => error instanceof TokenRejected && /revocation status unknown/.test(error.message),
      'the revoked token was accepted: the helper took an answer read before the revocation, held on its way, as fresh',
    );
  });
  it('a token revoked while the feed is out of reach is refused once maxStaleness has passed, though its check began just inside maxStaleness and waited for the JWKS', async () => {
    helper?.close();
    feed = 'pass';
    jwksHeld = 0;
    // A helper that has verified nothing yet: its first token fetches the JWKS (as a key it has not seen would).
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100, maxStaleness: MAX_STALENESS, onError: () => {} });
    const token = await clientCredentialsToken(server.url, MACHINE);
    // Latchkey goes out of reach for the helper; then the app revokes its token.
    feed = 'down';
    const lastSync = helper.lastSync!;
    assert.equal((await tokenEndpoint(server.url, '/token/revocation', MACHINE, token)).status, 200);
    assert.equal((await introspect(server.url, RS, token)).active, false, 'inactive at introspection');
    // The token comes in just inside maxStaleness; the JWKS answers slowly (one second).
    const until = lastSync + MAX_STALENESS - 500;
    if (Date.now() < until) await sleep(until - Date.now());
    jwksHeld = 1_000;
    const verdict = helper.verify(`Bearer ${token}`).then(
      () => 'accepted',
      (error: Error) => error.message,
    );
    const outcome = await verdict;
    assert.ok(Date.now() - lastSync > MAX_STALENESS, 'decided more than maxStaleness after the last sync');
    assert.match(outcome, /revocation status unknown/, 'the revoked token was accepted: the freshness was judged before the wait for the JWKS');
  });
});
