/**
 * Review of the seventeenth passes (docs/security-passes.md, "Looked at in the seventeenth passes:
 * review of 2b2d1a1d..2abc715c"): a client's redirect URIs on this machine, as the consent prompt
 * reads them. A public client's request to a redirect URI on the person's own machine asks the person
 * every time (patches/loopback-public-clients.ts), for every host a browser sends to this machine
 * (http/this-machine.ts onThisMachine: the hosts file's `localhost6`, `ip6-localhost`, ... too).
 * The endings (client-endings.ts gainsRedirectServer) read "loopback" more narrowly (localhost,
 * 127/8, [::1]), so, with `https://localhost6:8443/callback`:
 * - a public client that added it ended every person's consent and tokens, though no code goes
 *   there without the person asked (an ending too many);
 * - a public client that had it, made confidential with a key of a leaked registration access
 *   token's holder, kept the consents given for its site, and got codes silently (`prompt=none`) at
 *   that port of the person's machine, which the holder's key redeems: what the seventeenth passes
 *   (h1) closed for `127.0.0.1`, open through another spelling of the same machine.
 */
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { selfRegistered } from '../helpers/registration.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'seventeenth review loopback passphrase';
const HOME = 'https://app.loopback-review.example.test/callback';
/** A redirect URI on this machine, under a hosts-file name (a program serving TLS on the port takes what is sent there). */
const HOSTS_FILE = 'https://localhost6:8443/callback';
const PUBLIC = { redirect_uris: [HOME], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' };

interface Registration {
  client_id: string;
  registration_client_uri: string;
  registration_access_token: string;
}

describe('e2e: seventeenth passes reviewed, a redirect URI on this machine under any of its names (client endings)', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true, env: { REGISTRATION_OPEN: 'true' } });
    await server.accounts.create('noor', PASSWORD);
  });
  after(async () => {
    await server?.stop();
  });

  /** A public client registered with `own`, allowed by the person (a refresh token), and its RFC 7592 update with the registration access token alone. */
  async function allowedPublicClient(own: Record<string, unknown>) {
    const { registration, update } = await selfRegistered(server, own);
    const config = await oidc.discovery(new URL(server.issuer), registration.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const browser = new Agent();
    const started = await startAuthorization(browser, config, HOME, { scope: 'openid offline_access' });
    const back = await signInSteps(browser, started.page, { username: 'noor', password: PASSWORD, consent: 'required', stopAt: HOME });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: started.verifier });
    assert.ok(tokens.refresh_token, 'offline access, as allowed');
    return { clientId: registration.client_id, update, browser, refreshToken: tokens.refresh_token };
  }

  /** A confidential client registered with `own`, allowed by the person (a refresh token); its update, and the token endpoint's status for that refresh token. */
  async function allowedConfidentialClient(own: Record<string, unknown>, redirectUri: string) {
    const created = await fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(own) });
    assert.equal(created.status, 201, await created.clone().text());
    const registration = (await created.json()) as Registration & { client_secret: string };
    const update = async (metadata: Record<string, unknown>) => {
      const answer = await fetch(registration.registration_client_uri, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${registration.registration_access_token}` },
        body: JSON.stringify({ ...own, client_id: registration.client_id, client_secret: registration.client_secret, ...metadata }),
      });
      assert.equal(answer.status, 200, await answer.clone().text());
      // The registration access token is rotated at each update (RFC 7592 section 3).
      registration.registration_access_token = ((await answer.json()) as Registration).registration_access_token;
    };
    const config = await oidc.discovery(new URL(server.issuer), registration.client_id, registration.client_secret, oidc.ClientSecretBasic(registration.client_secret), { execute: [oidc.allowInsecureRequests] });
    const browser = new Agent();
    const started = await startAuthorization(browser, config, redirectUri, { scope: 'openid offline_access' });
    const back = await signInSteps(browser, started.page, { username: 'noor', password: PASSWORD, consent: 'required', stopAt: redirectUri });
    let refreshToken = (await oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: started.verifier })).refresh_token!;
    assert.ok(refreshToken, 'offline access, as allowed');
    const refreshes = async () => {
      try {
        refreshToken = (await oidc.refreshTokenGrant(config, refreshToken)).refresh_token ?? refreshToken;
        return true;
      } catch {
        return false;
      }
    };
    return { update, refreshes };
  }

  it("held: a native client adding loopback ports, and a confidential web client's change that leaves its loopback ports as they were (another field, another spelling of the host, another order), end nothing; a native client made web with the loopback URI it had ends what it held", async () => {
    const native = await allowedConfidentialClient({ application_type: 'native', redirect_uris: ['http://127.0.0.1/callback'], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' }, 'http://127.0.0.1/callback');
    await native.update({ redirect_uris: ['http://127.0.0.1/callback', 'http://localhost:5000/callback', 'https://localhost6:8443/callback'] });
    assert.equal(await native.refreshes(), true, 'a native client asks at each request: nothing ended');
    await native.update({ application_type: 'web', redirect_uris: ['http://127.0.0.1/callback'] });
    assert.equal(await native.refreshes(), false, 'made web, no longer asked at its loopback: ended');

    const web = await allowedConfidentialClient({ redirect_uris: [HOME, 'http://127.0.0.1:3000/callback'], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access' }, HOME);
    await web.update({ client_name: 'Renamed' });
    assert.equal(await web.refreshes(), true, 'another field: nothing ended');
    await web.update({ client_name: 'Renamed', redirect_uris: ['http://localhost:3000/callback', HOME] });
    assert.equal(await web.refreshes(), true, 'the same port spelt otherwise, in another order: nothing ended');
  });

  /** The token endpoint's status for `refreshToken` of the public client `clientId`. */
  const refreshed = async (clientId: string, refreshToken: string) =>
    (await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId }) })).status;

  it("a public client adding a redirect URI on this machine under a hosts-file name, where every request asks the person, ends nobody's consent or tokens", async () => {
    const app = await allowedPublicClient(PUBLIC);
    await app.update({ redirect_uris: [HOME, HOSTS_FILE] });
    assert.equal(await refreshed(app.clientId, app.refreshToken), 200, 'the refresh token of before still works');
  });

  it('a public client that had such a redirect URI, made confidential (a key of the registration access token holder), gets no silent code there from the consents given before, and its tokens of before end', async () => {
    const own = { ...PUBLIC, redirect_uris: [HOME, HOSTS_FILE] };
    const app = await allowedPublicClient(own);
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    await app.update({ token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'holder', alg: 'ES256', use: 'sig' }] } });
    const holder = await oidc.discovery(new URL(server.issuer), app.clientId, { token_endpoint_auth_method: 'private_key_jwt' }, oidc.PrivateKeyJwt({ key: privateKey, kid: 'holder' }), { execute: [oidc.allowInsecureRequests] });
    const silent = await startAuthorization(app.browser, holder, HOSTS_FILE, { prompt: 'none' });
    assert.ok(silent.page.url.startsWith(HOSTS_FILE), silent.page.url);
    assert.equal(new URL(silent.page.url).searchParams.get('code'), null, `no silent code at the person's machine: ${silent.page.url}`);
    assert.notEqual(await refreshed(app.clientId, app.refreshToken), 200, 'the refresh token of before is refused');
  });
});
