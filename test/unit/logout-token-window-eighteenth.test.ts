/**
 * Review of the eighteenth passes' DPoP replay fixes (docs/security-passes.md, h17): the other
 * one-time JWTs Latchkey takes, against how long it remembers them. An upstream's logout token
 * (Back-Channel Logout) is checked by jose, whose `maxTokenAge` reads whole seconds: taken while the
 * second of now is at most `iat` + 600 + the tolerance, so up to a second past it. Its jti must be
 * remembered (upstreams/logout-tokens.ts `spend`) until then, not a second less.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { UpstreamClients } from '../../src/upstreams/client.js';
import type { Upstream } from '../../src/upstreams/registry.js';
import { upstreamDiscovery } from '../helpers/fake-upstream.js';

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** upstreams/client.ts: LOGOUT_TOKEN_MAX_AGE and CLOCK_TOLERANCE. */
const MAX_AGE = 600;
const TOLERANCE = 30;

describe("an upstream's logout token remembered as long as it is taken, eighteenth passes (h17)", () => {
  let server: Server;
  let issuer: string;
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  let jwk: JWK;

  before(async () => {
    keys = await generateKeyPair('RS256');
    jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k', alg: 'RS256', use: 'sig' };
    server = createServer((req, res) => {
      const body = req.url === '/jwks' ? { keys: [jwk] } : upstreamDiscovery(issuer);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('keeps the jti of a logout token bounded by its age until after the last second it is taken', async () => {
    const clients = new UpstreamClients({ timeout: 2000, maxBytes: 65536, allowPrivateNetworks: true }, (id) => `http://localhost:3000/upstream/${id}/callback`);
    const upstream = { id: 'corp', issuer, clientId: 'latchkey', clientSecret: 's', scope: 'openid' } as unknown as Upstream;
    // Near the oldest jose takes (a few seconds of margin, so a turning second does not refuse it),
    // with an exp well after: its age bounds it, not its exp.
    const iat = Math.floor(Date.now() / 1000) - MAX_AGE - TOLERANCE + 5;
    const token = await new SignJWT({ jti: randomUUID(), sid: 'upstream-session', events: { [BACKCHANNEL_EVENT]: {} } })
      .setProtectedHeader({ alg: 'RS256', kid: 'k', typ: 'logout+jwt' })
      .setIssuer(issuer)
      .setAudience('latchkey')
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(keys.privateKey);
    const verified = await clients.verifyLogoutToken(upstream, token);
    // Taken while the second of now is at most iat + MAX_AGE + TOLERANCE: up to a second past it.
    assert.ok(verified.acceptedUntil >= iat + MAX_AGE + TOLERANCE + 1, `remembered until ${verified.acceptedUntil - iat} s after iat; taken until ${MAX_AGE + TOLERANCE + 1} s after`);
  });
});
