/**
 * Refresh tokens end to end (seventeenth passes): a single-page app's refresh chain that began
 * unbound ends where its first token would have, also once a DPoP key is taken up at a refresh
 * (RFC 9700 §4.14.2, RFC 9449 §5). A thief holding a refresh token stolen from the browser can
 * present a proof of a key of their own: dpop-bound-refresh.ts binds the rotated token to it, and
 * a bound token took the whole `ttl.refreshToken` at each rotation, so the chain lived on, one
 * refresh at a time, until the grant ended. A chain bound from its first token (DPoP at the code
 * exchange) still takes the whole lifetime at each rotation.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'refresh tokens seventeenth password';
const SPA = { id: 'spa', redirect: 'https://spa.example.test/callback' };

describe('e2e: refresh tokens end to end (seventeenth passes)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let spa: oidc.Configuration;

  before(async () => {
    const clients = [
      { client_id: SPA.id, token_endpoint_auth_method: 'none', application_type: 'web', redirect_uris: [SPA.redirect], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' },
    ];
    // A grant outliving its refresh tokens, as in spa-refresh-chain-seventeenth; a reuse grace long
    // enough that nothing here leaves it.
    server = await startServer({ clients, env: { TTL_REFRESH_TOKEN: '600', TTL_GRANT: '6000', TTL_REFRESH_REUSE_GRACE: '30' } });
    await server.accounts.create('rosa', PASSWORD);
    spa = await oidc.discovery(new URL(server.issuer), SPA.id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => server?.stop());

  async function firstRefreshToken(dpop?: oidc.DPoPHandle): Promise<string> {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, spa, SPA.redirect, { scope: 'openid offline_access', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'rosa', password: PASSWORD, stopAt: SPA.redirect });
    const tokens = await oidc.authorizationCodeGrant(spa, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, undefined, dpop ? { DPoP: dpop } : undefined);
    assert.ok(tokens.refresh_token, 'a refresh token for offline_access');
    return tokens.refresh_token;
  }

  async function stored(value: string): Promise<{ exp: number; jkt?: string }> {
    const token = await server.provider.RefreshToken.find(value);
    assert.ok(token, 'the refresh token is stored');
    return { exp: token.exp!, jkt: (token as { jkt?: string }).jkt };
  }

  /** Rotates `value` a whole second after it was issued (a later exp would show). */
  async function rotated(value: string, dpop?: oidc.DPoPHandle): Promise<string> {
    await sleep(1_100);
    const tokens = await oidc.refreshTokenGrant(spa, value, undefined, dpop ? { DPoP: dpop } : undefined);
    assert.ok(tokens.refresh_token && tokens.refresh_token !== value, 'rotated');
    return tokens.refresh_token;
  }

  it('an unbound chain refreshed with a key of the thief’s: bound to it, and no later an end than its first token (before: the whole ttl.refreshToken again at each rotation)', async () => {
    const first = await firstRefreshToken();
    const { exp, jkt } = await stored(first);
    assert.equal(jkt, undefined, 'issued unbound');
    const thief = oidc.getDPoPHandle(spa, await generateKeyPair('ES256'));
    const second = await rotated(first, thief);
    assert.ok((await stored(second)).jkt, 'bound to the proof’s key');
    assert.equal((await stored(second)).exp, exp);
    const third = await rotated(second, thief);
    assert.equal((await stored(third)).exp, exp, 'the chain still ends with its first token');
    await rotated(third, thief); // and the token works
  });

  it('a sibling the thief gets within the reuse grace with a key of their own ends with the first token too (before: the whole ttl.refreshToken)', async () => {
    const first = await firstRefreshToken();
    const { exp } = await stored(first);
    await rotated(first); // the app's own refresh, without a proof
    const thief = oidc.getDPoPHandle(spa, await generateKeyPair('ES256'));
    const sibling = await rotated(first, thief);
    assert.ok((await stored(sibling)).jkt, 'bound to the thief’s key');
    assert.equal((await stored(sibling)).exp, exp);
    assert.equal((await stored(await rotated(sibling, thief))).exp, exp);
  });

  it('held: a chain bound from its code exchange takes the whole ttl.refreshToken at each rotation', async () => {
    const own = oidc.getDPoPHandle(spa, await generateKeyPair('ES256'));
    const first = await firstRefreshToken(own);
    assert.ok((await stored(first)).jkt, 'bound from the start');
    const second = await rotated(first, own);
    assert.ok((await stored(second)).exp > (await stored(first)).exp, 'a later exp');
  });
});
