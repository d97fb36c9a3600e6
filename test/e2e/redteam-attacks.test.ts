/**
 * A fresh attacker's pass at "endings that do not end", black box: each test performs one attack
 * with real clients (openid-client) against a running Latchkey; those that succeeded before their
 * fix say so in docs/security.md.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { startServer, type TestServer } from '../helpers/server.js';

/** A client's own JWKS host, which says its keys may be cached for a day (a static file behind a CDN). */
async function startJwksHost(): Promise<{ url: string; keys: JWK[]; fetches: number; server: Server }> {
  const host = { url: '', keys: [] as JWK[], fetches: 0, server: undefined as unknown as Server };
  host.server = createServer((_req, res) => {
    host.fetches += 1;
    const expires = new Date(Date.now() + 86_400_000).toUTCString();
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=86400', expires }).end(JSON.stringify({ keys: host.keys }));
  });
  await new Promise<void>((done) => host.server.listen(0, '127.0.0.1', done));
  host.url = `http://127.0.0.1:${(host.server.address() as AddressInfo).port}/jwks`;
  return host;
}

describe('e2e: red team, endings that do not end', function () {
  this.timeout(120_000);

  describe("a client's private_key_jwt key removed from its jwks_uri", () => {
    let host: Awaited<ReturnType<typeof startJwksHost>>;
    let server: TestServer;

    before(async () => {
      host = await startJwksHost();
      server = await startServer({
        env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
        clients: [{ client_id: 'keyed', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: host.url, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }],
      });
    });
    after(async () => {
      await server?.stop();
      host?.server.close();
    });

    const as = async (key: oidc.CryptoKey, kid: string) =>
      oidc.discovery(new URL(server.issuer), 'keyed', undefined, oidc.PrivateKeyJwt({ key, kid }), { execute: [oidc.allowInsecureRequests] });
    /** Client authentication alone: introspection of a token the client does not hold answers inactive once it authenticated. */
    const authenticates = async (config: oidc.Configuration) => {
      try {
        return (await oidc.tokenIntrospection(config, 'not-a-token')).active === false;
      } catch (error) {
        if (error instanceof oidc.ResponseBodyError && error.error === 'invalid_client') return false;
        throw error;
      }
    };

    it('(a leaked key, rotated out by the client) stops authenticating within a minute, whatever caching its JWKS host asked for', async () => {
      const leaked = await generateKeyPair('RS256');
      const next = await generateKeyPair('RS256');
      host.keys = [{ ...(await exportJWK(leaked.publicKey)), kid: 'leaked', alg: 'RS256', use: 'sig' }];
      const thief = await as(leaked.privateKey, 'leaked');
      assert.equal(await authenticates(thief), true, 'the key authenticates while it is published');
      assert.equal(host.fetches, 1);

      // The client learns its key leaked and publishes its next key alone.
      host.keys = [{ ...(await exportJWK(next.publicKey)), kid: 'next', alg: 'RS256', use: 'sig' }];
      // A JWKS is trusted for at most a minute after it was read (oidc-provider's own least), not for the day its host allows.
      await new Promise((done) => setTimeout(done, 61_000));
      assert.equal(await authenticates(thief), false, 'the leaked key, no longer published, still authenticates the client');
      assert.equal(await authenticates(await as(next.privateKey, 'next')), true, 'the key the client publishes now authenticates');
    });
  });
});
