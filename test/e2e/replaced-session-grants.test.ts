/**
 * A grant that a session stops naming for an app ends as a sign-out would end it (seventh fresh-eyes
 * passes, races; src/provider/patches/replaced-session-grants.ts). Two tabs of one browser (Chromium,
 * whose cookies are scoped by path as the sign-ins' are) at one app's consent page, both opened
 * before the person allowed either: each Allow makes a grant of its own and the second replaces the
 * first in the session. The first grant's JWT access token lived on, active at introspection and
 * taken by latchkey/resource-server following the revocation feed, after the person signed out
 * everywhere: the sign-out revoked only the grant the session named.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext } from 'playwright-core';
import { launchChromium } from '../helpers/browser.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { acceptedBy, API, grantFeed, introspect, machineClient, RESOURCE_SERVERS } from '../helpers/tokens.js';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';

const PASSWORD = 'replaced session grants passphrase';
const REDIRECT = 'https://app.example.test/callback';
const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };

describe('e2e (Chromium): a grant a session stops naming for an app (two tabs at its consent page) ends as a sign-out ends it', function () {
  this.timeout(90_000);
  let server: TestServer;
  let browser: Browser;
  let app: oidc.Configuration;
  let helper: ResourceServer;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { RESOURCE_SERVERS },
      clients: [machineClient(RS), { client_id: WEB.id, client_secret: WEB.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access read' }],
    });
    await server.accounts.create('tess', PASSWORD);
    await server.accounts.create('owen', PASSWORD);
    await grantFeed(server, RS.id);
    helper = await createResourceServer({ issuer: server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    app = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
    browser = await launchChromium();
  });
  after(async () => {
    helper?.close();
    await browser?.close();
    await server?.stop();
  });

  /** A browser whose requests back at the app are answered there and remembered. */
  async function person(): Promise<{ context: BrowserContext; answers: string[] }> {
    const context = await browser.newContext();
    const answers: string[] = [];
    context.on('request', (request) => {
      if (request.url().startsWith(REDIRECT)) answers.push(request.url());
    });
    await context.route(/^https:\/\/app\.example\.test\//, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<main><h1>back at the app</h1></main>' }));
    return { context, answers };
  }

  /** The app's request (`state` tells the tabs apart) opened in a new tab; the tab and its PKCE verifier. */
  async function open(context: BrowserContext, scope: string, state: string) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(app, { redirect_uri: REDIRECT, scope, state, resource: API, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    const tab = await context.newPage();
    await tab.goto(url.href);
    await tab.waitForSelector('main h1');
    return { tab, verifier, state };
  }

  /** `tab`'s Allow, and its code redeemed (for the API) once the app got it. */
  async function allowed(answers: string[], { tab, verifier, state }: Awaited<ReturnType<typeof open>>) {
    await tab.click('button:has-text("Allow")');
    const ours = (url: string) => new URL(url).searchParams.get('state') === state;
    const deadline = Date.now() + 20_000;
    while (!answers.some(ours) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const answer = answers.find(ours);
    assert.ok(answer && /[?&]code=/.test(answer), `tab ${state} was sent back with a code: ${answer}`);
    return oidc.authorizationCodeGrant(app, new URL(answer), { pkceCodeVerifier: verifier, expectedState: state }, { resource: API });
  }

  const works = async (token: string) => {
    await helper.sync();
    return { introspection: (await introspect(server.url, RS, token)).active === true, api: await acceptedBy(helper, token) };
  };

  for (const scope of ['openid read', 'openid offline_access read']) {
    it(`${scope}: the first tab's JWT access token, its grant replaced in the session by the second tab's, is refused after "Sign out everywhere" (at introspection and by an API following the feed), as the second tab's is`, async () => {
      const username = scope.includes('offline') ? 'owen' : 'tess';
      const { context, answers } = await person();
      const first = await open(context, scope, 'first');
      await first.tab.fill('input[name="username"]', username);
      await first.tab.fill('input[name="password"]', PASSWORD);
      await first.tab.click('button:has-text("Sign in")');
      await first.tab.waitForSelector('button:has-text("Allow")');
      // Signed in: the second tab goes straight to the consent page, the session naming no grant for the app yet.
      const second = await open(context, scope, 'second');
      assert.equal(await second.tab.locator('button:has-text("Allow")').count(), 1, 'the second tab is at the consent page');

      const one = await allowed(answers, first);
      const two = await allowed(answers, second);
      assert.notEqual(decodeJwt(one.access_token).gid, decodeJwt(two.access_token).gid, 'each Allow made a grant of its own');

      const signOut = await context.newPage();
      await signOut.goto(`${server.issuer}/session/end`);
      await signOut.click('button:has-text("Sign out everywhere")');
      await signOut.waitForURL(/\/session\/end\/success/);

      assert.deepEqual(await works(two.access_token), { introspection: false, api: false }, "the second tab's token ended with the sign-out");
      assert.deepEqual(await works(one.access_token), { introspection: false, api: false }, "the first tab's token outlived the sign-out");
      await context.close();
    });
  }
});
