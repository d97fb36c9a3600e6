/**
 * An app's RFC 7009 revocation of a person's access token ends its grant (patches/grant-before-token.ts,
 * and jwt-access-tokens.ts for a JWT), as a refresh token's does; operators see each such ending as a
 * `grant.revoked` event, its log line and `latchkey_provider_events_total`, once (seventh passes of
 * 2026-12-06, client libraries: a single-page app revoking its tokens at sign-out ended its grant
 * without a word in the log).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { API, RESOURCE_SERVERS } from '../helpers/tokens.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'grant-revoked-events-secret-with-plenty-of-entropy-01';
const PASSWORD = 'grant revoked events password';
const SERIES = 'latchkey_provider_events_total{event="grant.revoked"}';

describe('e2e: an app revoking a person’s token (RFC 7009) is a grant.revoked event, once', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer;
  let config: oidc.Configuration;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({
      redisUrl: redis.url,
      env: { RESOURCE_SERVERS },
      clients: [{ client_id: 'web', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access read' }],
    });
    await server.accounts.create('ivy', PASSWORD);
    config = await oidc.discovery(new URL(server.issuer), 'web', SECRET, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  const revokedCount = async () => {
    const lines = (await (await fetch(server.metricsUrl!)).text()).split('\n');
    return Number(lines.find((line) => line.startsWith(`${SERIES} `))?.split(' ')[1] ?? 0);
  };

  async function tokens(resource?: string) {
    const agent = new Agent();
    const extra: Record<string, string> = resource ? { resource, scope: 'openid offline_access read' } : { scope: 'openid offline_access' };
    const start = await startAuthorization(agent, config, REDIRECT, { prompt: 'consent', ...extra });
    const page = await signInSteps(agent, start.page, { username: 'ivy', password: PASSWORD, stopAt: REDIRECT });
    return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: start.verifier }, resource ? { resource } : undefined);
  }

  for (const [what, resource, revoked] of [
    ['an opaque access token', undefined, 'access_token'],
    ['a JWT access token (for an API)', API, 'access_token'],
    ['a refresh token', undefined, 'refresh_token'],
  ] as const) {
    it(`${what}: its grant ends, and grant.revoked is counted once`, async () => {
      const issued = await tokens(resource);
      if (resource) assert.equal(issued.access_token.split('.').length, 3, 'a JWT');
      const before = await revokedCount();
      await oidc.tokenRevocation(config, revoked === 'access_token' ? issued.access_token : issued.refresh_token!);
      await assert.rejects(oidc.refreshTokenGrant(config, issued.refresh_token!, resource ? { resource } : undefined), (error: oidc.ResponseBodyError) => error.error === 'invalid_grant');
      assert.equal((await revokedCount()) - before, 1);
    });
  }
});
