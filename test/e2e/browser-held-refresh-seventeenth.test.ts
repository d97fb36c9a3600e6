/**
 * A refresh chain a page began keeps its first token's end, whatever the client calls itself
 * (seventeenth passes, h18's Left). The rule that an unbound single-page app's rotated refresh token
 * keeps its predecessor's remaining time (RFC 9700 §4.14.2, provider.ts `ttl.RefreshToken`) read the
 * client's `application_type`: a browser app registered as `native` with an https redirect URI (the
 * token endpoint answers its pages by CORS, the origins of its redirect URIs) took the whole
 * `ttl.refreshToken` at each rotation, so a thief refreshing a token stolen from its page kept the
 * chain alive until the grant ended. A chain whose first token was asked for by a page (the browser
 * sends `Origin`) is now marked and keeps its end; a native app's own (no `Origin`) keeps the whole
 * lifetime at each rotation.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'browser held refresh test password';
const APP = { id: 'wrapped', origin: 'https://spa.example.test', redirect: 'https://spa.example.test/callback' };

describe('e2e: a refresh chain a page began keeps its first token’s end, a client registered native included', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    const clients = [
      { client_id: APP.id, application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [APP.redirect], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' },
    ];
    // A grant outliving its refresh tokens: with the defaults' equal lifetimes every chain stops at the grant's end.
    server = await startServer({ clients, env: { TTL_REFRESH_TOKEN: '600', TTL_GRANT: '6000' } });
    await server.accounts.create('noor', PASSWORD);
    app = await oidc.discovery(new URL(server.issuer), APP.id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(() => server?.stop());

  async function token(params: Record<string, string>, origin?: string): Promise<{ refresh_token?: string; error?: string }> {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(origin ? { origin } : {}) },
      body: new URLSearchParams({ client_id: APP.id, ...params }),
    });
    const body = (await response.json()) as { refresh_token?: string; error?: string };
    assert.equal(response.status, 200, JSON.stringify(body));
    return body;
  }

  /** The first refresh token of a sign-in, its code redeemed with `origin` (a page's request) or without (an app's). */
  async function firstRefreshToken(origin?: string): Promise<string> {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, app, APP.redirect, { scope: 'openid offline_access', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'noor', password: PASSWORD, stopAt: APP.redirect });
    const code = new URL(done.url).searchParams.get('code');
    assert.ok(code, `a code: ${done.url}`);
    const tokens = await token({ grant_type: 'authorization_code', code, redirect_uri: APP.redirect, code_verifier: verifier }, origin);
    assert.ok(tokens.refresh_token, 'a refresh token for offline_access');
    return tokens.refresh_token;
  }

  async function expOf(value: string): Promise<number> {
    const stored = await server.provider.RefreshToken.find(value);
    assert.ok(stored, 'the refresh token is stored');
    return stored.exp!;
  }

  /** Rotates `value` a whole second after it was issued, as a thief would, from a server (no Origin). */
  async function rotated(value: string): Promise<string> {
    await sleep(1_100);
    const tokens = await token({ grant_type: 'refresh_token', refresh_token: value });
    assert.ok(tokens.refresh_token && tokens.refresh_token !== value, 'rotated');
    return tokens.refresh_token;
  }

  it('a chain a page began (Origin at the code exchange): the same exp along it, refreshed from anywhere', async () => {
    const first = await firstRefreshToken(APP.origin);
    const second = await rotated(first);
    const third = await rotated(second);
    assert.equal(await expOf(second), await expOf(first));
    assert.equal(await expOf(third), await expOf(first));
  });

  it('a native app’s own chain (no Origin): each rotation takes the whole ttl.refreshToken again', async () => {
    const first = await firstRefreshToken();
    const second = await rotated(first);
    assert.ok((await expOf(second)) > (await expOf(first)), 'a later exp');
  });
});
