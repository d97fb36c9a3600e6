/**
 * The seventeenth passes at "more than was granted" (docs/security-passes.md, "Looked at in the
 * seventeenth passes: more than was granted (h1)"), black box. Found and fixed: a client that
 * authenticates and was not asked the person's consent at each request (a confidential web client)
 * given a loopback redirect URI it did not have, with its registration access token alone (a leaked
 * one), kept the consents people gave it for its site: with a key of the token holder's (the same
 * token registers one), every person who had allowed the app sent a code silently (`prompt=none`)
 * to a port of their own machine, where any program listening takes it, redeemable with that key.
 * The eighth fresh-eyes pass had left a loopback redirect URI out of "a new site" as "the person's
 * own device": true for a public or native client, which is asked for consent at every loopback
 * request (patches/loopback-public-clients.ts, the engine's native check), not for this one.
 */
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { selfRegistered, type Registered } from '../helpers/registration.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'seventeenth passes granting passphrase';
const HOME = 'https://app.seventeenth.example.test/callback';
/** A loopback redirect URI: where a program on the person's machine listens (a web client's is matched exactly). */
const LISTENER = 'http://127.0.0.1:49152/callback';

describe('e2e: seventeenth passes, more than was granted (a loopback redirect URI added to a client that is not asked each time)', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true, env: { REGISTRATION_OPEN: 'true' } });
    await server.accounts.create('lou', PASSWORD, { email: 'lou@seventeenth.example', email_verified: true });
  });
  after(async () => {
    await server?.stop();
  });

  /** A client registered with `own` (RFC 7591), and its RFC 7592 update with the registration access token alone. */
  const registered = (own: Record<string, unknown>) => selfRegistered<Registered & { client_secret?: string }>(server, own);

  /** A key of the token holder's, as client metadata (private_key_jwt), and the holder's openid-client configuration for `clientId`. */
  async function holderKey(clientId: string) {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const metadata = { token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'holder', alg: 'ES256', use: 'sig' }] } };
    const config = await oidc.discovery(new URL(server.issuer), clientId, { token_endpoint_auth_method: 'private_key_jwt' }, oidc.PrivateKeyJwt({ key: privateKey, kid: 'holder' }), { execute: [oidc.allowInsecureRequests] });
    return { metadata, config };
  }

  it("a confidential web client's registration access token alone (leaked) gives it the holder's key and a loopback redirect URI: no code at the person's machine from the consents given before, silently or after the password in another browser; nor for a public client turned confidential with the loopback URI it had", async () => {
    const own = { client_name: 'Loopback newcomer', redirect_uris: [HOME], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email offline_access' };
    const { registration, update } = await registered(own);
    const secret = registration.client_secret!;
    const app = await oidc.discovery(new URL(server.issuer), registration.client_id, secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    const browser = new Agent();
    const started = await startAuthorization(browser, app, HOME, { scope: 'openid email offline_access' });
    const back = await signInSteps(browser, started.page, { username: 'lou', password: PASSWORD, consent: 'required', stopAt: HOME });
    const tokens = await oidc.authorizationCodeGrant(app, new URL(back.url), { pkceCodeVerifier: started.verifier, idTokenExpected: true });
    assert.ok(tokens.refresh_token, 'offline access, as allowed');

    // A path on its own site: the consent is the app's, not one URI's (as before).
    const holder = await holderKey(registration.client_id);
    await update(holder.metadata);
    await update({ ...holder.metadata, redirect_uris: [HOME, `${HOME}/again`] });
    const samesite = await startAuthorization(browser, holder.config, `${HOME}/again`, { scope: 'openid email', prompt: 'none' });
    assert.ok(new URL(samesite.page.url).searchParams.get('code'), `a silent code at its own site: ${samesite.page.url}`);

    // The holder's loopback redirect URI: a program listening on the person's machine would take the code.
    await update({ ...holder.metadata, redirect_uris: [HOME, `${HOME}/again`, LISTENER] });
    const silent = await startAuthorization(browser, holder.config, LISTENER, { scope: 'openid email', prompt: 'none' });
    assert.ok(silent.page.url.startsWith(LISTENER), `${silent.page.status} ${silent.page.url} ${silent.page.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`);
    assert.equal(new URL(silent.page.url).searchParams.get('code'), null, `no silent code at the person's loopback from the consent given before: ${silent.page.url}`);
    assert.equal(new URL(silent.page.url).searchParams.get('error'), 'consent_required');
    const elsewhere = new Agent();
    const fresh = await startAuthorization(elsewhere, holder.config, LISTENER, { scope: 'openid email' });
    const page = await signInSteps(elsewhere, fresh.page, { username: 'lou', password: PASSWORD, consent: 'stop', stopAt: LISTENER });
    assert.ok(isConsent(page), `after the password, a consent page (not a code): ${page.status} ${page.url}`);
    // And what it held on people's behalf ends with those consents, as for a new site.
    const refreshed = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${registration.client_id}:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }),
    });
    assert.notEqual(refreshed.status, 200, 'the refresh token of before is refused');

    // A public web client is asked at each loopback request; made confidential (a key of the
    // holder's) with the loopback URI it had, it would no longer be: the same ending.
    const publicOwn = { client_name: 'Loopback keeper', redirect_uris: [HOME, LISTENER], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], scope: 'openid email' };
    const kept = await registered(publicOwn);
    const publicApp = await oidc.discovery(new URL(server.issuer), kept.registration.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const asked = await startAuthorization(browser, publicApp, HOME, { scope: 'openid email' });
    const allowed = await signInSteps(browser, asked.page, { username: 'lou', password: PASSWORD, consent: 'required', stopAt: HOME });
    assert.ok(new URL(allowed.url).searchParams.get('code'), allowed.url);
    const publicSilent = await startAuthorization(browser, publicApp, LISTENER, { scope: 'openid email', prompt: 'none' });
    assert.equal(new URL(publicSilent.page.url).searchParams.get('code'), null, `a public client is asked at its loopback: ${publicSilent.page.url}`);
    const keyed = await holderKey(kept.registration.client_id);
    await kept.update(keyed.metadata);
    const turned = await startAuthorization(browser, keyed.config, LISTENER, { scope: 'openid email', prompt: 'none' });
    assert.ok(turned.page.url.startsWith(LISTENER), turned.page.url);
    assert.equal(new URL(turned.page.url).searchParams.get('code'), null, `no silent code at the loopback once it authenticates: ${turned.page.url}`);
  });
});
