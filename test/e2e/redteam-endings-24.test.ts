/**
 * Red team, twenty-fourth endings pass (docs/security-passes.md, "Looked at in the twenty-fourth endings pass").
 *
 * A sign-in in progress (left at the login page or the consent page) while its client was narrowed
 * (a redirect URI or the code response type taken away, pushed requests required) or removed, then
 * widened or put back again before the person went on: the sign-in from before ended in a code.
 * Each check at the resume (patches/current-registration.ts) sees only the client as it is, and the
 * twenty-second pass's ending of pending requests (device codes, pushed requests) does not reach
 * sign-ins, which are not indexed per client. Now the narrowing records a cutoff per client
 * (client-endings.ts clientEndings, store/adapter.ts endPendingSignIns), and a sign-in whose interaction
 * began at or before it ends at its resume: invalid_request, sent to the redirect URI the client has
 * again. Performed with a configured client (CLIENTS) restarted on the same Redis, a client
 * registered and changed by itself (RFC 7591, RFC 7592) and a Client ID Metadata Document read
 * again, with openid-client and the test's browser agent.
 *
 * Held and pinned: a scope taken away and given back while a sign-in waits is not such a narrowing
 * (the sign-in goes on, as granting-attacks pins for pending requests), nor is another client
 * authentication method.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { Secret, TOTP } from 'otpauth';
import { documentHost } from '../helpers/document-host.js';
import { isSecondFactor } from '../helpers/soft-passkeys.js';
import { isConsent, isLogin, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { serverRestarts } from '../helpers/restarts.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { WEB, webClient } from '../helpers/tokens.js';

const PASSWORD = 'twenty-fourth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const OTHER_REDIRECT = 'https://app.example.test/other-callback';
const webClientWith = (changes: Record<string, unknown> = {}) => webClient(WEB, [REDIRECT, OTHER_REDIRECT], { scope: 'openid offline_access email', ...changes });

/** Where a sign-in ended: no code, and the client told invalid_request at `redirectUri` (registered again). */
function endedAt(page: Page, redirectUri: string): void {
  assert.ok(page.url.startsWith(redirectUri), `the client is told, at the redirect URI it has again: ${page.status} ${page.url}`);
  const answer = new URL(page.url);
  assert.equal(answer.searchParams.get('code'), null, `a code from a sign-in begun before its client was narrowed: ${page.url}`);
  assert.equal(answer.searchParams.get('error'), 'invalid_request', page.url);
}

/** The code an answer at the redirect URI carries. */
const codeOf = (page: Page) => new URL(page.url).searchParams.get('code');

describe('e2e: red team, twenty-fourth endings pass: a configured client narrowed and widened again while a sign-in of its is in progress', function () {
  this.timeout(60_000);
  const restarts = serverRestarts();
  let server: TestServer | undefined;

  const start = async (...clients: Record<string, unknown>[]) => (server = await restarts.start({ clients }));
  const web = () => oidc.discovery(new URL(server!.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
  const person = { username: 'rhea', password: PASSWORD };

  /** A sign-in for `redirectUri` left at the login page. */
  async function atLogin(redirectUri: string, params: Record<string, string> = {}) {
    const agent = new Agent();
    const { page } = await startAuthorization(agent, await web(), redirectUri, params);
    assert.ok(isLogin(page), `${page.status} ${page.url}`);
    return { agent, page };
  }

  it('a redirect URI taken out and put back while a sign-in for it waits at the login page: the person signs in and allows, and the app gets no code (a code before the fix)', async () => {
    await start(webClientWith());
    await server!.accounts.create(person.username, PASSWORD);
    const pending = await atLogin(OTHER_REDIRECT);

    await start(webClientWith({ redirect_uris: [REDIRECT] }));
    await start(webClientWith());
    endedAt(await signInSteps(pending.agent, pending.page, { ...person, stopAt: OTHER_REDIRECT }), OTHER_REDIRECT);
    // The ending is of the sign-in begun before: one begun now goes on to a code for that redirect URI.
    const fresh = await atLogin(OTHER_REDIRECT);
    assert.ok(codeOf(await signInSteps(fresh.agent, fresh.page, { ...person, stopAt: OTHER_REDIRECT })));
  });

  it('the code response type taken away and given back while a sign-in waits at the consent page: allowed, no code (a code before the fix)', async () => {
    await start(webClientWith());
    await server!.accounts.create(person.username, PASSWORD);
    const pending = await atLogin(REDIRECT);
    const consent = await signInSteps(pending.agent, pending.page, { ...person, consent: 'stop' });
    assert.ok(isConsent(consent), `${consent.status} ${consent.url}`);

    await start(webClientWith({ response_types: [] }));
    await start(webClientWith());
    endedAt(await pending.agent.submit(consent, '/confirm', {}, REDIRECT), REDIRECT);
  });

  it('pushed requests required and then not while a front-channel sign-in waits at the login page: no code (a code before the fix)', async () => {
    await start(webClientWith());
    await server!.accounts.create(person.username, PASSWORD);
    const pending = await atLogin(REDIRECT);

    await start(webClientWith({ require_pushed_authorization_requests: true }));
    await start(webClientWith());
    endedAt(await signInSteps(pending.agent, pending.page, { ...person, stopAt: REDIRECT }), REDIRECT);
  });

  it('the client taken out of the configuration and put back while a sign-in of its waits at the login page: no code (a code before the fix)', async () => {
    await start(webClientWith());
    await server!.accounts.create(person.username, PASSWORD);
    const pending = await atLogin(REDIRECT);

    await start();
    await start(webClientWith());
    endedAt(await signInSteps(pending.agent, pending.page, { ...person, stopAt: REDIRECT }), REDIRECT);
  });

  it('a scope taken away and given back, and another authentication method, while sign-ins wait: not narrowings, each goes on to a code (held)', async () => {
    await start(webClientWith());
    await server!.accounts.create(person.username, PASSWORD);
    const asking = await atLogin(REDIRECT, { scope: 'openid email' });
    const other = await atLogin(REDIRECT);

    await start(webClientWith({ scope: 'openid offline_access' }));
    await start(webClientWith());
    assert.ok(codeOf(await signInSteps(asking.agent, asking.page, { ...person, stopAt: REDIRECT })), 'a sign-in across a scope taken away and given back goes on');
    await start(webClientWith({ token_endpoint_auth_method: 'client_secret_post' }));
    assert.ok(codeOf(await signInSteps(other.agent, other.page, { ...person, stopAt: REDIRECT })), 'a sign-in across another authentication method goes on');
  });
});

describe('e2e: red team, twenty-fourth endings pass: a client that registered itself narrowed and widened again (RFC 7592) while a sign-in of its is in progress', function () {
  this.timeout(30_000);
  let server: TestServer | undefined;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { REGISTRATION_OPEN: 'true' } });
    await server.accounts.create('noor', PASSWORD);
  });
  after(async () => {
    await server?.stop();
  });

  const metadata = { redirect_uris: [REDIRECT, OTHER_REDIRECT], token_endpoint_auth_method: 'none' };

  /** A public client registered (RFC 7591), and what takes its other redirect URI out and puts it back (RFC 7592, the token rotated at each update). */
  async function registered() {
    const created = await fetch(`${server!.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
    assert.equal(created.status, 201, await created.clone().text());
    const client = (await created.json()) as { client_id: string; registration_client_uri: string; registration_access_token: string };
    const config = await oidc.discovery(new URL(server!.issuer), client.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    let token = client.registration_access_token;
    const outAndBack = async () => {
      for (const redirectUris of [[REDIRECT], [REDIRECT, OTHER_REDIRECT]]) {
        const updated = await fetch(client.registration_client_uri, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ ...metadata, redirect_uris: redirectUris, client_id: client.client_id }),
        });
        assert.equal(updated.status, 200, await updated.clone().text());
        token = ((await updated.json()) as { registration_access_token?: string }).registration_access_token ?? token;
      }
    };
    return { config, outAndBack };
  }

  it('a client removed and made again with its id, a sign-in begun at once (the same second as the removal) goes on to a code: the removal ends only sign-ins begun before it, and the client is made again a second past it (registration/clients.ts afterPredecessor; ended without that wait) (held)', async () => {
    const client = { client_id: 'remade', client_secret: 'remade-client-secret-with-plenty-of-entropy-0123', redirect_uris: [REDIRECT], grant_types: ['authorization_code'], scope: 'openid' };
    await server!.clients.add(client);
    // Just past a second's start, so that the removal, the client made again and the sign-in's start share it.
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 20));
    await server!.clients.remove(client.client_id);
    await server!.clients.add(client);
    const config = await oidc.discovery(new URL(server!.issuer), client.client_id, client.client_secret, oidc.ClientSecretBasic(client.client_secret), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page } = await startAuthorization(agent, config, REDIRECT);
    const answer = await signInSteps(agent, page, { username: 'noor', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(codeOf(answer), `a sign-in begun after the client was made again: ${answer.status} ${answer.url}`);
  });

  it('a redirect URI taken out and put back by the app itself while a sign-in for it waits at the consent page: allowed, no code (a code before the fix)', async () => {
    const { config, outAndBack } = await registered();
    const agent = new Agent();
    const { page } = await startAuthorization(agent, config, OTHER_REDIRECT);
    const consent = await signInSteps(agent, page, { username: 'noor', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(consent), `${consent.status} ${consent.url}`);

    await outAndBack();
    endedAt(await agent.submit(consent, '/confirm', {}, OTHER_REDIRECT), OTHER_REDIRECT);
    // One begun now goes on.
    const fresh = await startAuthorization(agent, config, OTHER_REDIRECT);
    assert.ok(codeOf(await signInSteps(agent, fresh.page, { username: 'noor', password: PASSWORD, stopAt: OTHER_REDIRECT })));
  });

  it('the same while a sign-in for it waits at the second-factor page: the code entered, no code (a code before the fix)', async () => {
    const { sub } = await server!.accounts.create('ines', PASSWORD);
    const { secret } = await server!.secondFactors.totp.begin(sub, 'ines', 'test-session');
    const totp = (step: number) => TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + step * 30_000 });
    assert.equal(await server!.secondFactors.totp.confirm(sub, totp(-1), 'test-session'), true);
    const { config, outAndBack } = await registered();
    const agent = new Agent();
    const { page } = await startAuthorization(agent, config, OTHER_REDIRECT, { acr_values: 'mfa' });
    const second = await signInSteps(agent, page, { username: 'ines', password: PASSWORD, consent: 'stop', stopAt: OTHER_REDIRECT });
    assert.ok(isSecondFactor(second), `expected the second-factor page, got ${second.status} ${second.url}`);

    await outAndBack();
    const answered = await agent.submit(second, '/second-factor', { method: 'totp', code: totp(0) }, OTHER_REDIRECT);
    endedAt(isConsent(answered) ? await agent.submit(answered, '/confirm', {}, OTHER_REDIRECT) : answered, OTHER_REDIRECT);
  });
});

describe('e2e: red team, twenty-fourth endings pass: a Client ID Metadata Document narrowed and widened again while a sign-in of its is in progress', function () {
  this.timeout(30_000);
  const host = documentHost('openid offline_access');
  let server: TestServer | undefined;
  /** Until the server's cached copy of the document has expired (CLIENT_METADATA_DOCUMENTS_CACHE_MAX): its next use reads it again. */
  const cacheExpired = () => new Promise((resolve) => setTimeout(resolve, 2100));

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1', CLIENT_METADATA_DOCUMENTS_CACHE_MAX: '2' },
    });
  });
  after(async () => {
    await server?.stop();
  });

  it('a redirect URI taken out of the document and put back, each read by the server, while a sign-in for it waits at the login page: no code (a code before the fix)', async () => {
    await server!.accounts.create('omar', PASSWORD);
    const [callback, other] = [`${host.base}/callback`, `${host.base}/other-callback`];
    const both = { redirect_uris: [callback, other] };
    host.change(both);
    const config = await oidc.discovery(new URL(server!.issuer), `${host.base}/agent.json`, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page } = await startAuthorization(agent, config, other);
    assert.ok(isLogin(page), `${page.status} ${page.url}`);

    // Narrowed, then widened again, each read by the server once the cached copy expired (a request of the client's).
    for (const members of [undefined, both]) {
      host.change(members);
      await cacheExpired();
      await startAuthorization(new Agent(), config, callback);
    }
    endedAt(await signInSteps(agent, page, { username: 'omar', password: PASSWORD, stopAt: other }), other);
    // One begun now goes on.
    const fresh = await startAuthorization(agent, config, other);
    assert.ok(codeOf(await signInSteps(agent, fresh.page, { username: 'omar', password: PASSWORD, stopAt: other })));
  });
});
