/**
 * The red team's eighteenth pass at "Latchkey hands out more than was granted" (2026-12-04), black
 * box (docs/security-passes.md, "Looked at in the eighteenth granting pass"): what the person is shown
 * against what the tokens carry when an app asks for consent again (prompt=consent) with nothing
 * new (found: the claims it asked for by name again were given, unlisted), and when the app adds the
 * refresh_token grant to itself while its consent page is open, or an operator makes its API again
 * with more scopes (held).
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent, postToAccount } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'red team granted eighteen passphrase';
const REDIRECT = 'https://again.example.test/callback';
const STOCK = 'https://stock.example.test';
/** Claims asked for by name, of the email and profile scopes (which the request does not ask for). */
const CLAIMS = JSON.stringify({ userinfo: { name: null }, id_token: { email: { essential: true } } });

describe('e2e: red team, eighteenth pass, what a consent page asked again shows against what the tokens carry', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { REGISTRATION_OPEN: 'true' } });
  });
  after(async () => {
    await server?.stop();
  });

  it('prompt=consent with nothing new lists everything confirming gives: the claims asked by name again, offline access and the API; the account page lists them all, and withdrawing ends them', async () => {
    await server.apis.add({ identifier: STOCK, scopes: ['stock:read'] });
    const metadata = { client_id: 'again', client_name: 'Again', client_secret: 'again-client-secret-with-plenty-of-entropy-0123456789', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access email profile stock:read' };
    await server.clients.add(metadata);
    const config = await oidc.discovery(new URL(server.issuer), 'again', metadata.client_secret, oidc.ClientSecretBasic(metadata.client_secret), { execute: [oidc.allowInsecureRequests] });
    await server.accounts.create('ada', PASSWORD, { email: 'ada@example.test', email_verified: true, name: 'Ada Example' });
    const request = { scope: 'openid offline_access stock:read', resource: STOCK, claims: CLAIMS };

    // The first consent lists the claims by name with the rest, and the person allows it.
    const agent = new Agent();
    const first = await signInSteps(agent, (await startAuthorization(agent, config, REDIRECT, request)).page, { username: 'ada', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(first), `the consent page: ${first.status} ${first.url}`);
    assert.match(first.html, /See these details about you: (email, name|name, email)<\/li>/);
    assert.ok((await agent.submit(first, '/confirm', {}, REDIRECT)).url.startsWith(REDIRECT));

    // The app asks again with nothing new: the page lists what confirming gives it again, all of it.
    const again = await startAuthorization(agent, config, REDIRECT, { ...request, prompt: 'consent' });
    assert.ok(isConsent(again.page), `a consent page: ${again.page.status} ${again.page.url}`);
    assert.match(again.page.html, /Keep access while you are not using it/);
    assert.match(again.page.html, /Act on https:\/\/stock\.example\.test with: stock:read/);
    assert.match(again.page.html, /See these details about you: (email, name|name, email)<\/li>/, 'the claims confirming gives are listed');

    // What confirming gives: the claims by name (and nothing the page did not list).
    const back = await agent.submit(again.page, '/confirm', {}, REDIRECT);
    assert.ok(back.url.startsWith(REDIRECT), back.url);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: again.verifier, idTokenExpected: true }, { resource: STOCK });
    assert.equal(decodeJwt(tokens.id_token!).email, 'ada@example.test');
    assert.ok(tokens.refresh_token, 'offline access, as listed');
    assert.equal(tokens.scope?.split(' ').filter((scope) => scope === 'stock:read').length, 1);

    // The account page lists all the app holds, and withdrawing there ends all of it.
    const account = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'ada', password: PASSWORD, consent: 'stop' });
    assert.equal(account.url, `${server.issuer}/account`, `${account.status} ${account.url}`);
    const held = account.html.match(/<strong><bdi>Again<\/bdi><\/strong>(?:\s*<span class="hint">.*?<\/span>)?\s*<p class="hint">([^<]*)</)?.[1] ?? '';
    for (const words of [/keep access while you are away/, /act on https:\/\/stock\.example\.test with: stock:read/, /see these details about you: (email, name|name, email)/]) {
      assert.match(held, words, `the account page: ${held}`);
    }
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, { resource: STOCK });
    const withdrawn = await postToAccount(agent, account, '/apps/withdraw', { client: 'again' });
    assert.match(withdrawn.url, /done=apps\.withdrawn/, withdrawn.url);
    await assert.rejects(oidc.refreshTokenGrant(config, refreshed.refresh_token ?? tokens.refresh_token!, { resource: STOCK }), (error: oidc.ResponseBodyError) => error.error === 'invalid_grant');
    const silent = new URL((await startAuthorization(agent, config, REDIRECT, { ...request, prompt: 'none' })).page.url);
    assert.equal(silent.searchParams.get('error'), 'consent_required', silent.href);
  });

  it('held: an app that adds the refresh_token grant to itself (RFC 7592) while its consent page is open gets no offline access the page did not list', async () => {
    const own = { client_name: 'Keeper', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], scope: 'openid offline_access' };
    const created = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(own) });
    assert.equal(created.status, 201, await created.clone().text());
    const app = (await created.json()) as { client_id: string; registration_client_uri: string; registration_access_token: string };
    const config = await oidc.discovery(new URL(server.issuer), app.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    await server.accounts.create('kit', PASSWORD, { email: 'kit@example.test' });

    const agent = new Agent();
    const started = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const shown = await signInSteps(agent, started.page, { username: 'kit', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(shown), `the consent page: ${shown.status} ${shown.url}`);
    assert.doesNotMatch(shown.html, /offline access/, 'without the refresh_token grant the page lists no offline access');

    const widened = await fetch(app.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${app.registration_access_token}` },
      body: JSON.stringify({ ...own, client_id: app.client_id, grant_types: ['authorization_code', 'refresh_token'] }),
    });
    assert.equal(widened.status, 200, await widened.clone().text());

    const back = await agent.submit(shown, '/confirm', {}, REDIRECT);
    assert.ok(back.url.startsWith(REDIRECT), back.url);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: started.verifier, idTokenExpected: true });
    assert.equal(tokens.refresh_token, undefined, 'no refresh token');
    assert.deepEqual(tokens.scope?.split(' '), ['openid']);
    // Nor is offline access remembered: asked for silently now that the app may have it, the code
    // comes without it (prompt=none drops offline_access, and nothing was consented to).
    const silent = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'none' });
    const later = await oidc.authorizationCodeGrant(config, new URL(silent.page.url), { pkceCodeVerifier: silent.verifier, idTokenExpected: true });
    assert.equal(later.refresh_token, undefined, 'no refresh token from a silent request');
  });

  it('held: an API an operator makes again with more scopes while the consent page is open gets the app nothing from that page (refused since the eleventh endings pass: it was the removed API\'s); the new one is asked for whole on a page of its own', async () => {
    const LEDGER = 'https://ledger.example.test';
    await server.apis.add({ identifier: LEDGER, scopes: ['ledger:read'] });
    const metadata = { client_id: 'ledgerly', client_name: 'Ledgerly', client_secret: 'ledgerly-client-secret-with-plenty-of-entropy-0123456789', redirect_uris: [REDIRECT], grant_types: ['authorization_code'] };
    await server.clients.add(metadata);
    const config = await oidc.discovery(new URL(server.issuer), 'ledgerly', metadata.client_secret, oidc.ClientSecretBasic(metadata.client_secret), { execute: [oidc.allowInsecureRequests] });
    await server.accounts.create('lee', PASSWORD, { email: 'lee@example.test' });

    const agent = new Agent();
    const started = await startAuthorization(agent, config, REDIRECT, { scope: 'openid ledger:read ledger:write', resource: LEDGER });
    const shown = await signInSteps(agent, started.page, { username: 'lee', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(shown), `the consent page: ${shown.status} ${shown.url}`);
    assert.match(shown.html, /Act on https:\/\/ledger\.example\.test with: ledger:read<\/li>/);

    // While the page is open, the operator makes the API again with a second scope.
    await server.apis.remove(LEDGER);
    await server.apis.add({ identifier: LEDGER, scopes: ['ledger:read', 'ledger:write'] });

    const next = await agent.submit(shown, '/confirm', {}, REDIRECT);
    assert.equal(next.status, 400, `the removed API's page gives nothing: ${next.status} ${next.url}`);
    assert.ok(!next.url.startsWith(REDIRECT), next.url);
    // Asked again, the person is shown the new API's scopes, both: nothing was remembered from the old page.
    const again = await startAuthorization(agent, config, REDIRECT, { scope: 'openid ledger:read ledger:write', resource: LEDGER });
    assert.ok(isConsent(again.page), `a page for the API made again: ${again.page.status} ${again.page.url}`);
    assert.match(again.page.html, /Act on https:\/\/ledger\.example\.test with: [^<]*ledger:read/);
    assert.match(again.page.html, /Act on https:\/\/ledger\.example\.test with: [^<]*ledger:write/);
    const declined = new URL((await agent.submit(again.page, '/abort', {}, REDIRECT)).url);
    assert.equal(declined.searchParams.get('error'), 'access_denied');
    assert.equal(declined.searchParams.get('code'), null);
  });
});
