/**
 * The eighth fresh-eyes pass of 2026-12-06 (docs/security-passes.md, "more than was granted, and
 * endings, through changes to a client's registration"), black box: a public client that registered
 * itself (RFC 7591, open registration) and changes its own registration (RFC 7592) after people
 * allowed it. Found: a redirect URI on another site, added with the registration access token (a
 * leaked one, say), got that site a code for everyone who had allowed the app, silently; a
 * confidential client's alike, once the same token had given it a key of the holder's.
 * Held and pinned by the ninth fresh-eyes pass ("more than was granted, ninth pass"): the same
 * ending for a site added under another spelling of its address.
 */
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { selfRegistered, type Registered } from '../helpers/registration.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'eighth fresh eyes registration passphrase';
const HOME = 'https://mover.example.test/callback';
const HOME_AGAIN = 'https://mover.example.test/other-callback';
const ELSEWHERE = 'https://elsewhere.example.test/callback';

interface Registration {
  client_id: string;
  registration_client_uri: string;
  registration_access_token: string;
}

describe('e2e: eighth fresh-eyes pass, a client that changes its own registration (RFC 7592)', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { REGISTRATION_OPEN: 'true' } });
  });
  after(async () => {
    await server?.stop();
  });

  it("a public client that adds a redirect URI on another site gets no code there from the consents given before: each person is asked again, on a page naming that site (a path on its own site stays allowed)", async () => {
    const own = { client_name: 'Mover', redirect_uris: [HOME], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email offline_access' };
    const registered = await selfRegistered(server, own);
    const config = await oidc.discovery(new URL(server.issuer), registered.registration.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const update = (redirectUris: string[]) => registered.update({ redirect_uris: redirectUris });
    await server.accounts.create('mo', PASSWORD, { email: 'mo@example.test', email_verified: true });

    // The person allows the app, which sends people back to mover.example.test.
    const agent = new Agent();
    const started = await startAuthorization(agent, config, HOME, { scope: 'openid email offline_access' });
    assert.match(started.page.html, /mover\.example\.test/, 'the login page names where the app sends people back');
    const back = await signInSteps(agent, started.page, { username: 'mo', password: PASSWORD, consent: 'required', stopAt: HOME });
    assert.ok(back.url.startsWith(HOME), back.url);
    const tokens = await oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: started.verifier, idTokenExpected: true });
    assert.ok(tokens.refresh_token, 'offline access, as allowed');

    // Another path on its own site: the consent is the app's, not one URI's.
    await update([HOME, HOME_AGAIN]);
    const samesite = await startAuthorization(agent, config, HOME_AGAIN, { scope: 'openid email', prompt: 'none' });
    assert.ok(new URL(samesite.page.url).searchParams.get('code'), `a silent code at its own site: ${samesite.page.url}`);

    // A redirect URI on another site, added with the registration access token alone.
    await update([HOME, HOME_AGAIN, ELSEWHERE]);
    const silent = await startAuthorization(agent, config, ELSEWHERE, { scope: 'openid email', prompt: 'none' });
    const answer = new URL(silent.page.url);
    assert.ok(silent.page.url.startsWith(ELSEWHERE), silent.page.url);
    assert.equal(answer.searchParams.get('code'), null, `no code for elsewhere.example.test from the consent given before: ${silent.page.url}`);
    assert.equal(answer.searchParams.get('error'), 'consent_required');

    // Without prompt=none the person is asked, on a page that names the new site.
    const asked = await startAuthorization(agent, config, ELSEWHERE, { scope: 'openid email' });
    const page = await signInSteps(agent, asked.page, { username: 'mo', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(page), `a consent page: ${page.status} ${page.url}`);
    assert.match(page.html, /Sends you back to <strong><bdi>elsewhere\.example\.test<\/bdi><\/strong>/);

    // And what the app held from before ends with those consents, as for a client made public.
    await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!), (error: oidc.ResponseBodyError) => error.error === 'invalid_grant');
  });

  it("a confidential client's registration access token alone (leaked) gives its key to the holder and adds the holder's site: no code there from the consents given before, silently or after the password in another browser", async () => {
    const own = { client_name: 'Keeper of secrets', redirect_uris: [HOME], grant_types: ['authorization_code'], scope: 'openid email' };
    const { registration, update } = await selfRegistered<Registered & { client_secret: string }>(server, own);
    const secret = registration.client_secret;
    const config = await oidc.discovery(new URL(server.issuer), registration.client_id, secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    await server.accounts.create('cy', PASSWORD, { email: 'cy@example.test', email_verified: true });
    const agent = new Agent();
    const started = await startAuthorization(agent, config, HOME, { scope: 'openid email' });
    const back = await signInSteps(agent, started.page, { username: 'cy', password: PASSWORD, consent: 'required', stopAt: HOME });
    assert.ok(new URL(back.url).searchParams.get('code'), back.url);

    // The holder of the token: a key of its own (one update), then its own site (another).
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const keyed = { token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'holder', alg: 'ES256', use: 'sig' }] } };
    await update(keyed);
    await update({ ...keyed, redirect_uris: [HOME, ELSEWHERE] });
    const holder = await oidc.discovery(new URL(server.issuer), registration.client_id, { token_endpoint_auth_method: 'private_key_jwt' }, oidc.PrivateKeyJwt({ key: privateKey, kid: 'holder' }), { execute: [oidc.allowInsecureRequests] });

    const silent = await startAuthorization(agent, holder, ELSEWHERE, { scope: 'openid email', prompt: 'none' });
    assert.ok(silent.page.url.startsWith(ELSEWHERE), silent.page.url);
    assert.equal(new URL(silent.page.url).searchParams.get('code'), null, `no silent code at the holder's site: ${silent.page.url}`);
    const elsewhere = new Agent();
    const fresh = await startAuthorization(elsewhere, holder, ELSEWHERE, { scope: 'openid email' });
    const page = await signInSteps(elsewhere, fresh.page, { username: 'cy', password: PASSWORD, consent: 'stop', stopAt: ELSEWHERE });
    assert.ok(isConsent(page), `after the password, a consent page (not a code): ${page.status} ${page.url}`);
    assert.match(page.html, /Sends you back to <strong><bdi>elsewhere\.example\.test<\/bdi><\/strong>/);
  });

  it('held (ninth fresh-eyes pass): a redirect URI added in another spelling of an address (upper case, the default port written out) is the site it reaches; another port on its own host is another site; its own host spelt otherwise stays its own; one with no "//" after the scheme is refused', async () => {
    await server.accounts.create('sy', PASSWORD, { email: 'sy@example.test', email_verified: true });
    // One browser signed in once: each app's first request asks only for consent.
    const agent = new Agent();
    await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'sy', password: PASSWORD, login: 'required', consent: 'stop' });
    const spellings: Record<string, { uri: string; reaches: string; asked: boolean }> = {
      'upper case': { uri: 'HTTPS://ELSEWHERE.example.test/callback', reaches: ELSEWHERE, asked: true },
      'default port': { uri: 'https://elsewhere.example.test:443/callback', reaches: ELSEWHERE, asked: true },
      'another port': { uri: 'https://mover.example.test:8443/callback', reaches: 'https://mover.example.test:8443/callback', asked: true },
      'its own host': { uri: 'HTTPS://Mover.Example.Test:443/other-callback', reaches: HOME_AGAIN, asked: false },
    };
    // No "//": a path to RFC 3986, a host to the URL parser; the update is refused whatever it names.
    for (const uri of ['https:elsewhere.example.test/callback', 'https:/elsewhere.example.test/callback', 'https:mover.example.test/other-callback']) {
      const own = { client_name: 'Speller', redirect_uris: [HOME], token_endpoint_auth_method: 'none', scope: 'openid email' };
      const registration = (await (await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(own) })).json()) as Registration;
      const updated = await fetch(registration.registration_client_uri, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${registration.registration_access_token}` },
        body: JSON.stringify({ ...own, client_id: registration.client_id, redirect_uris: [HOME, uri] }),
      });
      assert.equal(updated.status, 400, uri);
      assert.equal(((await updated.json()) as { error: string }).error, 'invalid_redirect_uri', uri);
    }
    for (const [name, { uri, reaches, asked }] of Object.entries(spellings)) {
      const own = { client_name: 'Speller', redirect_uris: [HOME], token_endpoint_auth_method: 'none', scope: 'openid email' };
      const created = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(own) });
      assert.equal(created.status, 201, await created.clone().text());
      const registration = (await created.json()) as Registration;
      const config = await oidc.discovery(new URL(server.issuer), registration.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
      const allowed = await startAuthorization(agent, config, HOME, { scope: 'openid email' });
      const back = await signInSteps(agent, allowed.page, { username: 'sy', password: PASSWORD, consent: 'required', stopAt: HOME });
      assert.ok(new URL(back.url).searchParams.get('code'), `${name}: ${back.url}`);
      const updated = await fetch(registration.registration_client_uri, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${registration.registration_access_token}` },
        body: JSON.stringify({ ...own, client_id: registration.client_id, redirect_uris: [HOME, uri] }),
      });
      assert.equal(updated.status, 200, `${name}: ${await updated.clone().text()}`);
      // The app's silent request names the URI as it registered it; the browser is sent where it leads.
      const silent = oidc.buildAuthorizationUrl(config, { redirect_uri: uri, scope: 'openid email', prompt: 'none', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      const response = await agent.request(silent.href);
      assert.equal(response.status, 303, `${name}: ${response.status}`);
      const answer = new URL(response.headers.get('location')!);
      assert.equal(`${answer.origin}${answer.pathname}`, reaches, `${name}: where the browser is sent`);
      if (asked) assert.equal(answer.searchParams.get('error'), 'consent_required', `${name}: no code from the consent given before: ${answer.href}`);
      else assert.ok(answer.searchParams.get('code'), `${name}: a silent code at its own site: ${answer.href}`);
    }
  });
});
