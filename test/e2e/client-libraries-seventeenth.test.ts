/**
 * The seventeenth pass at unmodified third-party client libraries (docs/security-passes.md,
 * "Looked at in the seventeenth passes: unmodified third-party client libraries (h5)").
 *
 * oidc-client-ts renews silently in a hidden iframe (`prompt=none`) when it holds no refresh token,
 * as @axa-fr/oidc-client's and keycloak-js's silent sign-ins do. In Chromium, such a frame in a page
 * of another site than Latchkey's (the app at `https://app.example`, Latchkey at
 * `https://login.example.org`; here `http://127.0.0.1:<port>` against `http://localhost:<port>`) never
 * carries Latchkey's session cookie, which is `SameSite=Lax`: the browser sends it to a frame only from
 * a page of the same site. The app was told `login_required` "End-User authentication is required",
 * the words a signed-out person's request gets, though the person was signed in at that browser a
 * moment before; nothing said the renewal can never work from there. Chromium marks such a request
 * `Sec-Fetch-Dest: iframe` and `Sec-Fetch-Site: cross-site`, which is what these requests send.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'correct horse battery staple';
const REDIRECT = 'https://app.example/silent-renew';
const CLIENT = { client_id: 'app', client_secret: 'app-secret-0123456789abcdef0123456789abcdef0123', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], redirect_uris: [REDIRECT] };

/** What Chromium sends for a frame's navigation, by where the page holding the frame is. */
const frameOf = (site: 'cross-site' | 'same-site') => ({ 'sec-fetch-dest': 'iframe', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': site });

describe('e2e: unmodified client libraries (seventeenth pass)', function () {
  this.timeout(30_000);
  let server: TestServer;
  let config: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true, clients: [CLIENT] });
    await server.accounts.create('alice', PASSWORD);
    config = await oidc.discovery(new URL(server.issuer), CLIENT.client_id, CLIENT.client_secret, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  /** An authorization request of the app with prompt=none, its state, and its verifier. */
  const silentRequest = async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: REDIRECT, scope: 'openid', prompt: 'none', state, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    return { url: url.href, state, verifier };
  };

  /** Where a request lands (the app's redirect URI, unvisited), and what openid-client makes of it. */
  const told = async (landed: string, state: string, verifier: string) => {
    try {
      await oidc.authorizationCodeGrant(config, new URL(landed), { pkceCodeVerifier: verifier, expectedState: state });
      return { code: true } as const;
    } catch (error) {
      assert.ok(error instanceof oidc.AuthorizationResponseError, String(error));
      return { error: error.error, description: error.error_description ?? '' };
    }
  };

  it("a silent request from a frame of another site, which never carries the session cookie (SameSite=Lax), is told so in login_required's description, and how to renew instead; a same-site frame's keeps the engine's words and its code", async () => {
    const agent = new Agent();
    // The person signs in at the app first-party, in the top window, and allows it.
    const first = await silentRequest();
    const page = await signInSteps(agent, await agent.follow(first.url.replace('prompt=none', 'prompt=consent'), {}, REDIRECT), { username: 'alice', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(page.url.startsWith(`${REDIRECT}?code=`), page.url);

    // The app's page on another site: its frame's request carries no cookie of Latchkey's.
    const crossSite = await silentRequest();
    const answer = await fetch(crossSite.url, { headers: frameOf('cross-site'), redirect: 'manual' });
    assert.equal(answer.status, 303);
    const crossSiteTold = await told(answer.headers.get('location')!, crossSite.state, crossSite.verifier);
    assert.equal(crossSiteTold.error, 'login_required', 'still the error OIDC Core section 3.1.2.6 names');
    assert.match(crossSiteTold.description ?? '', /frame of a page on another site/);
    assert.match(crossSiteTold.description ?? '', /SameSite=Lax/);
    assert.match(crossSiteTold.description ?? '', /refresh token \(offline_access\)/);

    // Not from a frame, or from a frame of the same site, without a session: the engine's words.
    for (const headers of [{}, frameOf('same-site'), { 'sec-fetch-dest': 'document', 'sec-fetch-site': 'cross-site' }]) {
      const request = await silentRequest();
      const signedOut = await fetch(request.url, { headers, redirect: 'manual' });
      assert.deepEqual(await told(signedOut.headers.get('location')!, request.state, request.verifier), { error: 'login_required', description: 'End-User authentication is required' }, JSON.stringify(headers));
    }

    // A frame of the same site carries the cookie: the renewal gets its code, as before.
    const sameSite = await silentRequest();
    const renewed = await agent.follow(sameSite.url, { headers: frameOf('same-site') }, REDIRECT);
    assert.ok(renewed.url.startsWith(`${REDIRECT}?code=`), renewed.url);
  });
});
