/**
 * offline_access without prompt=consent (OIDC Core §11): the first time, the consent page asks
 * and says what offline access means; once the person has consented for that client, a later
 * sign-in (new session, remembered consent) gets a refresh token without the page. A client
 * that never got offline-access consent does not. The same holds for a request pushed first (PAR,
 * RFC 9126), as openid-client's buildAuthorizationUrlWithPAR sends it. A public client (a
 * single-page app) driven by openid-client, the person by a cookie-keeping agent.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';

const REDIRECT = 'https://spa.example.test/callback';
const PASSWORD = 'correct horse battery staple';
const spa = (id: string) => ({ client_id: id, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] });

describe('e2e: offline_access with remembered consent needs no prompt=consent', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let server: TestServer;
  const configs: Record<string, oidc.Configuration> = {};

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({ redisUrl: redis.url, env: { CLIENTS: JSON.stringify([spa('spa'), spa('other'), spa('marker')]) } });
    await server.accounts.create('alice', PASSWORD);
    for (const id of ['spa', 'other', 'marker']) {
      configs[id] = await oidc.discovery(new URL(server.issuer), id, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    }
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  /** Starts an authorization request (pushed first with `pushed`) and signs in if asked; stops at the consent page or the callback. */
  async function authorize(agent: Agent, clientId: string, params: Record<string, string>, pushed = false) {
    const verifier = oidc.randomPKCECodeVerifier();
    const request = {
      redirect_uri: REDIRECT,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...params,
    };
    const url = pushed ? await oidc.buildAuthorizationUrlWithPAR(configs[clientId]!, request) : oidc.buildAuthorizationUrl(configs[clientId]!, request);
    const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'alice', password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    return { page, verifier, clientId };
  }
  const isConsent = (page: Page) => page.html.includes('/confirm');
  async function redeem({ page, verifier, clientId }: { page: Page; verifier: string; clientId: string }) {
    assert.ok(page.url.startsWith(REDIRECT), `expected the callback, got ${page.url}`);
    return oidc.authorizationCodeGrant(configs[clientId]!, new URL(page.url), { pkceCodeVerifier: verifier });
  }

  it('first time: the consent page asks and explains offline access; Allow → a refresh token', async () => {
    const agent = new Agent();
    const flow = await authorize(agent, 'spa', { scope: 'openid offline_access' });
    assert.ok(isConsent(flow.page), 'consent is asked the first time');
    assert.match(flow.page.html, /offline access/);
    assert.match(flow.page.html, /after you close it or sign out/);
    const allowed = { ...flow, page: await agent.submit(flow.page, '/confirm', {}, REDIRECT) };
    const tokens = await redeem(allowed);
    assert.ok(tokens.refresh_token, 'a refresh token after consent');
    assert.match(tokens.scope ?? '', /offline_access/);
  });

  it('second sign-in (new session, remembered consent), no prompt=consent: no consent page, a refresh token that works', async () => {
    const flow = await authorize(new Agent(), 'spa', { scope: 'openid offline_access' });
    assert.ok(!isConsent(flow.page), 'no consent page with remembered consent');
    const tokens = await redeem(flow);
    assert.ok(tokens.refresh_token, 'a refresh token without prompt=consent');
    const refreshed = await oidc.refreshTokenGrant(configs.spa!, tokens.refresh_token!);
    assert.ok(refreshed.access_token);
  });

  it('pushed (PAR), remembered consent, no prompt=consent: no consent page, a refresh token (the pushed scope keeps offline_access)', async () => {
    const flow = await authorize(new Agent(), 'spa', { scope: 'openid offline_access' }, true);
    assert.ok(!isConsent(flow.page), 'no consent page with remembered consent');
    const tokens = await redeem(flow);
    assert.ok(tokens.refresh_token, 'a refresh token for a pushed request without prompt=consent');
    assert.match(tokens.scope ?? '', /offline_access/);
  });

  it('pushed with prompt=consent and a marker of its own: the marker is dropped, the consent page shows', async () => {
    const flow = await authorize(new Agent(), 'spa', { scope: 'openid offline_access', prompt: 'consent', latchkey_consent_if_needed: '1' }, true);
    assert.ok(isConsent(flow.page), 'the pushed prompt=consent forces the page');
  });

  it('explicit prompt=consent still shows the consent page, even with remembered consent', async () => {
    const flow = await authorize(new Agent(), 'spa', { scope: 'openid offline_access', prompt: 'consent' });
    assert.ok(isConsent(flow.page));
  });

  it('a client that never got offline-access consent gets no refresh token silently', async () => {
    const agent = new Agent();
    // Consent for openid only; then the same session asks for offline_access.
    const first = await authorize(agent, 'other', { scope: 'openid' });
    assert.ok(isConsent(first.page));
    const plain = await redeem({ ...first, page: await agent.submit(first.page, '/confirm', {}, REDIRECT) });
    assert.equal(plain.refresh_token, undefined);

    const asked = await authorize(agent, 'other', { scope: 'openid offline_access' });
    assert.ok(isConsent(asked.page), 'offline access is asked for, not granted silently');
    assert.match(asked.page.html, /offline access/);

    const pushed = await authorize(agent, 'other', { scope: 'openid offline_access' }, true);
    assert.ok(isConsent(pushed.page), 'a pushed request asks for offline access too');
    assert.match(pushed.page.html, /offline access/);

    const silent = await authorize(agent, 'other', { scope: 'openid offline_access', prompt: 'none' });
    const tokens = await redeem(silent);
    assert.equal(tokens.refresh_token, undefined, 'prompt=none never yields offline access without consent');
  });

  it('a marker sent by the client itself is dropped: its prompt=consent still forces the page', async () => {
    const agent = new Agent();
    const flow = await authorize(agent, 'marker', { scope: 'openid offline_access', prompt: 'consent', latchkey_consent_if_needed: '1' });
    assert.ok(isConsent(flow.page), 'consent is asked');
  });
});
