/**
 * OAuth 2.0 Form Post Response Mode, as the OpenID Foundation's Form Post plan plays it, but in a
 * real browser: the response is an HTML form that the browser submits by itself (§2), under the
 * strict Content-Security-Policy of Latchkey's pages, whose script-src admits the engine's inline
 * auto-submit by its hash. The client's redirect URI is intercepted in Chromium, so the test sees
 * exactly what the browser posted.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page as BrowserPage } from 'playwright-core';
import { launchChromium, watchCsp } from '../helpers/browser.js';
import { ALICE, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'form-post-client-secret-with-plenty-of-entropy-0123';
const REDIRECT = 'https://web.example.test/callback';

interface Posted {
  readonly method: string;
  readonly contentType: string;
  readonly params: URLSearchParams;
}

describe('OAuth 2.0 Form Post Response Mode (in a browser)', function () {
  this.timeout(60_000);
  let op: Op;
  let browser: Browser;

  before(async () => {
    op = await startOp({ people: [ALICE], clients: [webClient('web', SECRET)] });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await op?.stop();
  });

  /** A fresh browser whose requests to the client's redirect URI are caught and answered here. */
  async function person(): Promise<{ context: BrowserContext; page: BrowserPage; posted: Promise<Posted>; violations: string[] }> {
    const context = await browser.newContext();
    let arrived: (posted: Posted) => void = () => {};
    const posted = new Promise<Posted>((done) => (arrived = done));
    await context.route(`${REDIRECT}**`, async (route) => {
      const request = route.request();
      arrived({ method: request.method(), contentType: (await request.allHeaders())['content-type'] ?? '', params: new URLSearchParams(request.postData() ?? new URL(request.url()).search) });
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'the client got it' });
    });
    const violations: string[] = [];
    const page = watchCsp(await context.newPage(), violations);
    return { context, page, posted, violations };
  }

  async function authorizationUrl(params: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = new URL(op.metadata.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: 'web',
      response_type: 'code',
      response_mode: 'form_post',
      scope: 'openid',
      redirect_uri: REDIRECT,
      state: 'form-post-state',
      nonce: 'form-post-nonce',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...params,
    }).toString();
    return { url: url.href, verifier };
  }

  it('after sign-in and consent the browser posts code, state and iss to the redirect URI by itself, form-encoded, and the code is good (Form Post Response Mode §2, RFC 9207 §2)', async () => {
    const { context, page, posted, violations } = await person();
    try {
      const { url, verifier } = await authorizationUrl();
      await page.goto(url);
      await page.fill('input[name="username"]', ALICE.username);
      await page.fill('input[name="password"]', ALICE.password);
      await page.click('button:has-text("Sign in")');
      await page.waitForSelector('text=Allow access?');
      await page.click('button:has-text("Allow")');
      const answer = await posted;
      assert.equal(answer.method, 'POST');
      assert.match(answer.contentType, /^application\/x-www-form-urlencoded/);
      assert.ok(answer.params.get('code'));
      assert.equal(answer.params.get('state'), 'form-post-state');
      assert.equal(answer.params.get('iss'), op.issuer);
      assert.deepEqual(violations, [], 'the auto-submit ran under the CSP');
      const token = await fetch(op.metadata.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: answer.params.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier }),
      });
      assert.equal(token.status, 200);
    } finally {
      await context.close();
    }
  });

  it('an error goes the same way: prompt=none without a session posts error=login_required with state and iss, and no code (Form Post Response Mode §2, Core §3.1.2.6)', async () => {
    const { context, page, posted, violations } = await person();
    try {
      await page.goto((await authorizationUrl({ prompt: 'none' })).url);
      const answer = await posted;
      assert.equal(answer.method, 'POST');
      assert.equal(answer.params.get('error'), 'login_required');
      assert.equal(answer.params.get('state'), 'form-post-state');
      assert.equal(answer.params.get('iss'), op.issuer);
      assert.equal(answer.params.get('code'), null);
      assert.deepEqual(violations, []);
    } finally {
      await context.close();
    }
  });
});
