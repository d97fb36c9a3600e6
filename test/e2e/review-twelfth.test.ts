/**
 * The review of the twelfth fresh-eyes passes' changes (2026-12-07), black box: what a change made
 * that day opened, each found with a test here before it was fixed.
 */
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startSelfUpstreamServer, startServer, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { adminJson, clientCredentialsToken, machineClient } from '../helpers/tokens.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { clientNarrowedAt } from '../../src/store/adapter.js';

const PASSWORD = 'review of the twelfth passes test password';
const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'review-twelfth-client-secret-with-plenty-of-entropy-0123';

describe('e2e: review of the twelfth passes: an upstream link the person removed', function () {
  this.timeout(120_000);
  let server: TestServer;
  let links: UpstreamLinks;

  before(async () => {
    // The server is its own upstream provider ("self"), where it is the client "latchkey".
    server = await startSelfUpstreamServer({ secret: SECRET, redirect: REDIRECT, ownRedis: true, cheapHashing: true });
    links = new UpstreamLinks(server.kv, server.accounts);
  });
  after(async () => {
    await server?.stop();
  });

  /** `username` (a person at the upstream) signs in to the app through the upstream in a new browser: that browser, where it ended. */
  async function throughUpstream(username: string): Promise<{ agent: Agent; page: Page }> {
    const agent = new Agent();
    const upstreamBrowser = new Agent();
    const login = await agent.follow(`${server.url}/auth?client_id=app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, {}, REDIRECT);
    const back = `${server.issuer}/upstream/self/callback`;
    const toUpstream = await agent.submit(login, '/upstream/self', {}, `${server.issuer}/auth`);
    const answer = await signInSteps(upstreamBrowser, await upstreamBrowser.follow(toUpstream.url, {}, back), { username, password: PASSWORD, stopAt: back });
    assert.ok(answer.url.startsWith(back), `the upstream answers: ${answer.status} ${answer.url}`);
    const page = await signInSteps(agent, await agent.follow(answer.url, {}, REDIRECT), { username: '', password: '', stopAt: REDIRECT });
    assert.ok(page.url.startsWith(REDIRECT), `signed in: ${page.status} ${page.url}`);
    return { agent, page };
  }

  it('a link the person removed on the account page is not made again by the next sign-in through it: that sign-in does not reach their account (before the fix: the account made for the identity was linked again)', async () => {
    const { sub: upstreamSub } = await server.accounts.create('renata', PASSWORD);
    const { agent } = await throughUpstream('renata');
    const made = (await links.find('self', upstreamSub))!;
    assert.ok(made, 'the first sign-in made an account and linked it');
    const account = (await server.accounts.find(made.sub))!;
    // A way of its own to sign in (an operator's), so that the link is not the last and may go.
    await server.accounts.setPassword(account.username, 'a password of the account made through the upstream');
    let page = await agent.follow(`${server.issuer}/account`);
    if (isConsent(page)) page = await agent.submit(page, '/confirm', {});
    assert.equal(new URL(page.url).pathname, '/account', `the account page: ${page.status} ${page.url}`);
    const removed = await agent.submit(page, '/account/links/remove', {});
    assert.match(new URL(removed.url).search, /^\?done=links\.removed\./, `removed: ${removed.status} ${removed.url}`);
    assert.equal(await links.find('self', upstreamSub), undefined, 'the link is gone');

    // The identity at the upstream (its person, or whoever holds it now) signs in through it again.
    await throughUpstream('renata');
    const now = await links.find('self', upstreamSub);
    assert.ok(now, 'that sign-in starts afresh, with an account of its own');
    assert.notEqual(now.sub, account.sub, 'not the account the link was removed from');
    assert.deepEqual(await links.list(account.sub), [], 'that account has no link to the upstream again');
  });

  it('a link removed twice (from the account the first sign-in made, then from the one the next made) leaves the next sign-in through it an account of its own, not a failure (second review: both of the names an account made for the identity takes were taken)', async () => {
    const { sub: upstreamSub } = await server.accounts.create('rosalind', PASSWORD);
    const removeLink = async (agent: Agent) => {
      const made = (await links.find('self', upstreamSub))!;
      await server.accounts.setPassword((await server.accounts.find(made.sub))!.username, 'a password of the account made through the upstream');
      let page = await agent.follow(`${server.issuer}/account`);
      if (isConsent(page)) page = await agent.submit(page, '/confirm', {});
      const removed = await agent.submit(page, '/account/links/remove', {});
      assert.match(new URL(removed.url).search, /^\?done=links\.removed\./, `removed: ${removed.status} ${removed.url}`);
      return made.sub;
    };
    const first = await removeLink((await throughUpstream('rosalind')).agent);
    const second = await removeLink((await throughUpstream('rosalind')).agent);
    await throughUpstream('rosalind');
    const third = (await links.find('self', upstreamSub))?.sub;
    assert.ok(third, 'the third sign-in has an account');
    assert.ok(third !== first && third !== second, 'of its own');
  });
});

describe('e2e: review of the twelfth passes: a code across its client narrowed and widened again, with codes outliving sign-ins', function () {
  this.timeout(90_000);
  const OPS = { id: 'ops', secret: 'ops-client-secret-with-plenty-of-entropy-0123456789' };
  const SPA = 'spa';
  const LEGACY = 'https://spa.review.example.test/legacy-callback';
  const CALLBACK = 'https://spa.review.example.test/callback';
  const spa = (redirectUris: string[]) => ({ client_id: SPA, token_endpoint_auth_method: 'none', redirect_uris: redirectUris, grant_types: ['authorization_code'], response_types: ['code'], scope: 'openid' });
  let server: TestServer;

  before(async () => {
    // A sign-in in progress lives 5 s, a code 120 s: the operator may well set codes to outlive sign-ins.
    server = await startServer({ ownRedis: true, cheapHashing: true, clients: [machineClient(OPS)], env: { TTL_INTERACTION: '5', TTL_AUTHORIZATION_CODE: '120' } });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.accounts.create('rhea', PASSWORD);
  });
  after(async () => {
    await server?.stop();
  });

  async function operator(method: 'POST' | 'PUT', metadata: Record<string, unknown>) {
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const { status, body } = await adminJson(server.url, token, method, method === 'POST' ? '/clients' : `/clients/${SPA}`, metadata);
    assert.equal(status, method === 'POST' ? 201 : 200, JSON.stringify(body));
  }

  it('a code issued before its redirect URI was taken out and put back gets no tokens after the sign-ins’ cutoff would have lapsed (before the fix: the cutoff was kept ttl.interaction, not as long as a code lives)', async () => {
    await operator('POST', spa([LEGACY, CALLBACK]));
    const config = await oidc.discovery(new URL(server.issuer), SPA, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, LEGACY, { scope: 'openid' });
    const back = await signInSteps(agent, page, { username: 'rhea', password: PASSWORD, stopAt: LEGACY });
    const code = new URL(back.url).searchParams.get('code');
    assert.ok(code, `a code: ${back.status} ${back.url}`);

    await operator('PUT', spa([CALLBACK]));
    await operator('PUT', spa([LEGACY, CALLBACK]));
    // Past the lifetime of every sign-in begun before the narrowing (ttl.interaction and the clock
    // tolerance), the code still alive: whatever the store keeps of the cutoff for sign-ins is gone by now.
    await delay((5 + 15 + 2) * 1000);
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: SPA, code, redirect_uri: LEGACY, code_verifier: verifier }),
    });
    const body = (await response.json()) as { error?: string };
    assert.equal(response.status, 400, `the code from before the narrowing got tokens: ${JSON.stringify(body)}`);
    assert.equal(body.error, 'invalid_grant', JSON.stringify(body));
    assert.ok((await clientNarrowedAt(server.kv, SPA)) !== undefined, 'the cutoff is kept while a code issued before it lives');
  });
});
