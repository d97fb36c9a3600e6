/**
 * A fresh attacker's pass at "endings that do not end", black box: each test performs one attack
 * with real clients (openid-client) against a running Latchkey; those that succeeded before their
 * fix say so in docs/security.md.
 */
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { startJwksHost, type JwksHost } from '../helpers/jwks-host.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** A client's own JWKS host, which says its keys may be cached for a day (a static file behind a CDN). */
const cachedForADay = () => startJwksHost({ 'cache-control': 'public, max-age=86400', expires: new Date(Date.now() + 86_400_000).toUTCString() });

/** clientJwks.maxAge, seconds: short, so that the test waits for it rather than the default minute. */
const MAX_AGE = 2;

describe('e2e: red team, endings that do not end', function () {
  this.timeout(120_000);

  describe("a client's private_key_jwt key removed from its jwks_uri", () => {
    let rotating: JwksHost;
    let takenDown: JwksHost;
    let server: TestServer;
    const keyed = (clientId: string, jwksUri: string) =>
      ({ client_id: clientId, token_endpoint_auth_method: 'private_key_jwt', jwks_uri: jwksUri, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });

    before(async () => {
      rotating = await cachedForADay();
      takenDown = await cachedForADay();
      server = await startServer({ env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_JWKS_MAX_AGE: String(MAX_AGE) }, clients: [keyed('rotating', rotating.url), keyed('taken-down', takenDown.url)] });
    });
    after(async () => {
      await server?.stop();
      rotating?.server.close();
      takenDown?.server.close();
    });

    const as = async (clientId: string, key: oidc.CryptoKey, kid: string) =>
      oidc.discovery(new URL(server.issuer), clientId, undefined, oidc.PrivateKeyJwt({ key, kid }), { execute: [oidc.allowInsecureRequests] });
    /** Client authentication alone: introspection of a token the client does not hold answers inactive once it authenticated. */
    const authenticates = async (config: oidc.Configuration) => {
      try {
        return (await oidc.tokenIntrospection(config, 'not-a-token')).active === false;
      } catch (error) {
        if (error instanceof oidc.ResponseBodyError && error.error === 'invalid_client') return false;
        throw error;
      }
    };

    it('(a leaked key) stops authenticating within clientJwks.maxAge, whatever caching its JWKS host asked for: rotated out, or its JWKS taken down', async () => {
      const leaked = await generateKeyPair('RS256');
      const next = await generateKeyPair('RS256');
      const published = { ...(await exportJWK(leaked.publicKey)), kid: 'leaked', alg: 'RS256', use: 'sig' };
      rotating.keys = [published];
      takenDown.keys = [published];
      const thief = await as('rotating', leaked.privateKey, 'leaked');
      const otherThief = await as('taken-down', leaked.privateKey, 'leaked');
      assert.equal(await authenticates(thief), true, 'the key authenticates while it is published');
      assert.equal(await authenticates(otherThief), true, 'the key authenticates while it is published');

      // One client publishes its next key alone; the other takes its JWKS down (404) until it has a new key.
      rotating.keys = [{ ...(await exportJWK(next.publicKey)), kid: 'next', alg: 'RS256', use: 'sig' }];
      takenDown.keys = undefined;
      // A JWKS is trusted for at most clientJwks.maxAge after it was read, not for the day its host allows.
      await new Promise((done) => setTimeout(done, MAX_AGE * 1000 + 100));
      assert.equal(await authenticates(thief), false, 'the leaked key, no longer published, still authenticates the client');
      assert.equal(await authenticates(await as('rotating', next.privateKey, 'next')), true, 'the key the client publishes now authenticates');
      // A JWKS that could not be read leaves no key of before to verify with, on the request that read it or after.
      assert.equal(await authenticates(otherThief), false, 'the leaked key authenticates though the JWKS was taken down');
      assert.equal(await authenticates(otherThief), false, 'the leaked key authenticates again once the failed read made its old keys fresh');
    });
  });
});
