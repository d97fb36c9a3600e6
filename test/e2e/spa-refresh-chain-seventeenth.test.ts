/**
 * A single-page app's refresh chain ends where its first refresh token would have (seventeenth
 * passes, new kinds of clients). RFC 9700 §4.14.2 asks a public client's refresh tokens to be
 * sender-constrained or rotated; a rotation that gives each new token the whole `ttl.refreshToken`
 * lets a token stolen from the browser be kept alive by its thief, one refresh at a time, until the
 * grant ends. oidc-provider's default lifetime keeps an unbound public web client's rotated token
 * within its predecessor's remaining time; Latchkey's configured number had lost that rule.
 * Confidential clients (and DPoP-bound or native ones, as the engine's default) keep the whole lifetime;
 * every chain ends with its grant (`ttl.grant`).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'spa refresh chain test password';
const SPA = { id: 'spa', redirect: 'https://spa.example.test/callback' };
const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789', redirect: 'https://web.example.test/callback' };

describe('e2e: a single-page app’s rotated refresh token lives no longer than the one it replaced', function () {
  this.timeout(60_000);
  let server: TestServer;
  let spa: oidc.Configuration;
  let web: oidc.Configuration;

  before(async () => {
    const clients = [
      { client_id: SPA.id, token_endpoint_auth_method: 'none', application_type: 'web', redirect_uris: [SPA.redirect], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' },
      { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [WEB.redirect], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' },
    ];
    // A grant outliving its refresh tokens (as an operator keeping consents longer sets it): with
    // the defaults' equal lifetimes, every token's exp stops at the grant's and the chain at its end.
    server = await startServer({ clients, env: { TTL_REFRESH_TOKEN: '600', TTL_GRANT: '6000' } });
    await server.accounts.create('rosa', PASSWORD);
    const options = { execute: [oidc.allowInsecureRequests] };
    spa = await oidc.discovery(new URL(server.issuer), SPA.id, { token_endpoint_auth_method: 'none' }, oidc.None(), options);
    web = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), options);
  });
  after(() => server?.stop());

  async function firstRefreshToken(config: oidc.Configuration, redirect: string): Promise<string> {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, redirect, { scope: 'openid offline_access', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'rosa', password: PASSWORD, stopAt: redirect });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    assert.ok(tokens.refresh_token, 'a refresh token for offline_access');
    return tokens.refresh_token;
  }

  /** The stored token's exp, whole seconds. */
  async function expOf(value: string): Promise<number> {
    const token = await server.provider.RefreshToken.find(value);
    assert.ok(token, 'the refresh token is stored');
    return token.exp!;
  }

  /** Rotates `value` a whole second after it was issued (a later exp would show); returns the new token. */
  async function rotated(config: oidc.Configuration, value: string): Promise<string> {
    await sleep(1_100);
    const tokens = await oidc.refreshTokenGrant(config, value);
    assert.ok(tokens.refresh_token && tokens.refresh_token !== value, 'rotated');
    return tokens.refresh_token;
  }

  it('an unbound public web client’s: the same exp along the chain, and the new token still works', async () => {
    const first = await firstRefreshToken(spa, SPA.redirect);
    const second = await rotated(spa, first);
    assert.equal(await expOf(second), await expOf(first));
    const third = await rotated(spa, second);
    assert.equal(await expOf(third), await expOf(first));
  });

  it('a confidential client’s: each rotation takes the whole ttl.refreshToken again', async () => {
    const first = await firstRefreshToken(web, WEB.redirect);
    const second = await rotated(web, first);
    assert.ok((await expOf(second)) > (await expOf(first)), 'a later exp');
  });
});
