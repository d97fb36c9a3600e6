/**
 * Red team, twenty-second endings pass (docs/security-passes.md, "Looked at in the twenty-second endings pass").
 *
 * A client narrowed (a redirect URI or a grant type taken away: a configured client edited and the
 * server restarted, or a Client ID Metadata Document changed) while a pushed request (PAR) or a
 * device flow of its was pending, then widened again within the request's lifetime: the request
 * from before was taken up again, a code to the redirect URI it named and a device's tokens. Used
 * while narrowed it was refused (current-registration.ts), but it was kept: a narrowing ended
 * nothing pending. Now a narrowing that refuses them (a redirect URI, a response type, a grant type
 * other than refresh_token taken away) ends the client's pending requests, as a removal does
 * (client-endings.ts clientEndings clientReplaced), whichever way the client changed.
 *
 * Held and pinned: `latchkey keys revoke` across a DPoP-bound refresh held by the test relay before
 * and after it signs; the authenticator app (account page, operator reset) or a passkey removed
 * while a step-up that needs it is pending; a document's key dropped between the authorization and
 * the code's redemption.
 */
import assert from 'node:assert/strict';
import { decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { frontChannel } from '../helpers/front-channel.js';
import { latchkey } from '../helpers/process.js';
import { scriptOn, startRelayedServer, type RelayedServer } from '../helpers/relay.js';
import { Secret, TOTP } from 'otpauth';
import { assertion, isSecondFactor, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';
import { acceptedBy, API, grantFeed, introspect, machineClient, RESOURCE_SERVERS, WEB, webClient } from '../helpers/tokens.js';
import { createResourceServer, type ResourceServer } from '../../src/resource-server/index.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { documentHost } from '../helpers/document-host.js';
import { startJwksHost, type JwksHost } from '../helpers/jwks-host.js';
import { serverRestarts } from '../helpers/restarts.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'twenty-second endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const OTHER_REDIRECT = 'https://app.example.test/other-callback';
const SIGNED_OUT = 'https://app.example.test/bye';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const webClientWith = (changes: Record<string, unknown> = {}) => webClient(WEB, [REDIRECT, OTHER_REDIRECT], { scope: 'openid offline_access', ...changes });

/** A request of `config`'s client pushed (PAR) for `redirectUri`: the URL that sends the person with it. */
async function push(config: oidc.Configuration, redirectUri: string): Promise<URL> {
  const verifier = oidc.randomPKCECodeVerifier();
  return oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: redirectUri, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
}

/** A device app that signs people in on a phone too (a private-use redirect URI): its grant types can be narrowed to the code flow. */
const TV = 'tv';
const tvClient = (grantTypes = [DEVICE_GRANT, 'authorization_code', 'refresh_token']) => ({
  client_id: TV,
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: grantTypes,
  response_types: ['code'],
  redirect_uris: ['com.example.tv:/callback'],
});

describe('e2e: red team, twenty-second endings pass: a configured client narrowed and widened again while a request of its is pending', function () {
  this.timeout(60_000);
  const restarts = serverRestarts();
  let server: TestServer | undefined;

  const start = async (...clients: Record<string, unknown>[]) => (server = await restarts.start({ clients }));
  const web = () => oidc.discovery(new URL(server!.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });

  /** A person who allowed the app (offline access), signed in in `agent`: a request of the app's is answered silently. */
  async function allowed(agent: Agent) {
    await server!.accounts.create('rhea', PASSWORD);
    const first = await startAuthorization(agent, await web(), REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    assert.ok(new URL((await signInSteps(agent, first.page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT })).url).searchParams.get('code'));
  }

  it('a redirect URI taken out and put back while a PAR request naming it is pending: its request_uri gives no code (a code silently before the fix)', async () => {
    await start(webClientWith());
    const agent = new Agent();
    await allowed(agent);
    let config = await web();
    // The ending is real: a request pushed now to the other redirect URI is answered with a code, silently.
    assert.ok(new URL((await agent.follow((await push(config, OTHER_REDIRECT)).href, {}, OTHER_REDIRECT)).url).searchParams.get('code'));
    const pending = await push(config, OTHER_REDIRECT);

    await start(webClientWith({ redirect_uris: [REDIRECT] }));
    await start(webClientWith());
    config = await web();
    const back = await agent.follow(pending.href, {}, OTHER_REDIRECT);
    const answered = isConsent(back) ? await agent.submit(back, '/confirm', {}, OTHER_REDIRECT) : back;
    assert.equal(new URL(answered.url).searchParams.get('code'), null, `a code from a request pushed before its redirect URI was taken out: ${answered.status} ${answered.url}`);
    // Its redirect URI unknown with the request gone, the error is shown on our page, not sent there.
    assert.equal(back.status, 400, `${back.status} ${back.url}`);
    assert.match(back.html, /invalid_request_uri/, 'the request_uri is gone');
    // A request pushed now goes on.
    assert.ok(new URL((await agent.follow((await push(config, OTHER_REDIRECT)).href, {}, OTHER_REDIRECT)).url).searchParams.get('code'));
  });

  it('the device grant taken away and given back while a device flow is pending: the user code from before is not taken and its poll gets no token (approved and tokens before the fix)', async () => {
    const tv = () => oidc.discovery(new URL(server!.issuer), TV, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    await start(webClientWith(), tvClient());
    await server!.accounts.create('rhea', PASSWORD);
    const device = await oidc.initiateDeviceAuthorization(await tv(), { scope: 'openid offline_access' });

    await start(webClientWith(), tvClient(['authorization_code', 'refresh_token']));
    await start(webClientWith(), tvClient());
    const config = await tv();
    const agent = new Agent();
    const entry = await agent.submit(await agent.follow(`${server!.issuer}/device`), '/device', { user_code: device.user_code });
    const approved = entry.html.includes('name="confirm"') ? await signInSteps(agent, await agent.submit(entry, '/device', { confirm: 'yes' }), { username: 'rhea', password: PASSWORD }) : entry;
    assert.doesNotMatch(approved.html, /Device connected/, 'a device flow begun before its grant was taken away, approved once it was given back');
    // Polled at once (openid-client's poll waits the interval first).
    const polled = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: device.device_code, client_id: TV }),
    });
    const body = (await polled.json()) as Record<string, unknown>;
    assert.equal(body.access_token, undefined, JSON.stringify(body));
    assert.equal(body.error, 'invalid_grant', JSON.stringify(body));
    // A device flow begun now is approved.
    const fresh = await oidc.initiateDeviceAuthorization(config, { scope: 'openid offline_access' });
    const again = await agent.submit(await agent.follow(`${server!.issuer}/device`), '/device', { user_code: fresh.user_code });
    const ok = await signInSteps(agent, await agent.submit(again, '/device', { confirm: 'yes' }), { username: 'rhea', password: PASSWORD });
    assert.match((isConsent(ok) ? await agent.submit(ok, '/confirm', {}) : ok).html, /Device connected/);
  });
});

describe('e2e: red team, twenty-second endings pass: a Client ID Metadata Document changed while a request of its is pending', function () {
  this.timeout(60_000);
  const host = documentHost('openid offline_access');
  let server: TestServer | undefined;
  let jwks: JwksHost | undefined;
  /** Until the server's cached copy of the document has expired (CLIENT_METADATA_DOCUMENTS_CACHE_MAX): its next use reads it again. */
  const cacheExpired = () => new Promise((resolve) => setTimeout(resolve, 2100));

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1', CLIENT_METADATA_DOCUMENTS_CACHE_MAX: '2' },
    });
  });
  after(async () => {
    jwks?.server.close();
    await server?.stop();
  });

  it('a redirect URI taken out of the document and put back while a PAR request naming it is pending: its request_uri gives no code (a code before the fix)', async () => {
    await server!.accounts.create('noor', PASSWORD);
    const [callback, other] = [`${host.base}/callback`, `${host.base}/other-callback`];
    const both = { redirect_uris: [callback, other] };
    host.change(both);
    const config = await oidc.discovery(new URL(server!.issuer), `${host.base}/agent.json`, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page } = await startAuthorization(agent, config, callback, { scope: 'openid offline_access' });
    assert.ok(new URL((await signInSteps(agent, page, { username: 'noor', password: PASSWORD, stopAt: callback, consent: 'required' })).url).searchParams.get('code'));
    // A loopback redirect URI of a public client asks for consent every time (loopback-public-clients.ts): allowed, a code.
    const answer = async (url: URL, redirectUri: string) => {
      const shown = await agent.follow(url.href, {}, redirectUri);
      return { shown, answered: isConsent(shown) ? await agent.submit(shown, '/confirm', {}, redirectUri) : shown };
    };
    // The ending is real: a request pushed now to the other redirect URI gets a code.
    assert.ok(new URL((await answer(await push(config, other), other)).answered.url).searchParams.get('code'));
    const pending = await push(config, other);

    // Narrowed, then widened again, each read by the server once the cached copy expired (a request of the client's).
    for (const members of [undefined, both]) {
      host.change(members);
      await cacheExpired();
      await push(config, callback);
    }
    const { shown, answered } = await answer(pending, other);
    assert.equal(new URL(answered.url).searchParams.get('code'), null, `a code from a request pushed before its redirect URI was taken out of the document: ${answered.status} ${answered.url}`);
    assert.equal(shown.status, 400, `${shown.status} ${shown.url}`);
    assert.match(shown.html, /invalid_request_uri/, 'the request_uri is gone');
  });

  it('its key dropped (private_key_jwt to none) between the authorization and the code’s redemption: the code is not redeemed with the client_id alone (held)', async () => {
    await server!.accounts.create('omar', PASSWORD);
    const callback = `${host.base}/callback`;
    const clientId = `${host.base}/agent.json`;
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    jwks = await startJwksHost();
    jwks.keys = [{ ...(await exportJWK(publicKey)), kid: 'agent-key', alg: 'ES256', use: 'sig' }];
    host.change({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: jwks.url });
    await cacheExpired();
    const keyed = await oidc.discovery(new URL(server!.issuer), clientId, { token_endpoint_auth_method: 'private_key_jwt' }, oidc.PrivateKeyJwt(privateKey), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const signIn = async () => {
      const { page, verifier } = await startAuthorization(agent, keyed, callback, { scope: 'openid offline_access' });
      const done = await signInSteps(agent, page, { username: 'omar', password: PASSWORD, stopAt: callback });
      assert.ok(new URL(done.url).searchParams.get('code'), done.url);
      return { callback: new URL(done.url), verifier };
    };
    // The ending is real: a code is redeemed with the key while the document names it.
    const control = await signIn();
    assert.ok((await oidc.authorizationCodeGrant(keyed, control.callback, { pkceCodeVerifier: control.verifier, expectedState: oidc.skipStateCheck })).refresh_token);
    const pending = await signIn();

    host.change(undefined);
    await cacheExpired();
    const bare = await oidc.discovery(new URL(server!.issuer), clientId, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    await assert.rejects(oidc.authorizationCodeGrant(bare, pending.callback, { pkceCodeVerifier: pending.verifier, expectedState: oidc.skipStateCheck }), (error: oidc.ResponseBodyError) => {
      assert.equal(error.error, 'invalid_grant', String(error));
      return true;
    });
  });
});

describe('e2e: red team, twenty-second endings pass: latchkey keys revoke across a DPoP-bound refresh held at its Redis traffic', function () {
  this.timeout(60_000);
  const SPA = 'spa';
  const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
  let relayed: RelayedServer;
  let helper: ResourceServer;
  let config: oidc.Configuration;

  before(async () => {
    relayed = await startRelayedServer({
      RESOURCE_SERVERS,
      CLIENTS: JSON.stringify([
        { client_id: SPA, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], post_logout_redirect_uris: [SIGNED_OUT], grant_types: ['authorization_code', 'refresh_token'], dpop_bound_access_tokens: true },
        machineClient(RS),
      ]),
    });
    await grantFeed(relayed.server, RS.id);
    await relayed.server.accounts.create('ines', PASSWORD);
    config = await oidc.discovery(new URL(relayed.server.issuer), SPA, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    helper = await createResourceServer({ issuer: relayed.server.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, pollInterval: 100 });
  });
  after(async () => {
    helper?.close();
    await relayed?.stop();
  });

  /** Where each refresh is held: before it signs (its proof's replay check, a mark), or after (the rotated token's consumption, with its writes). */
  const HOLDS = {
    'before it signs (the proof’s replay check)': (chunk: string) => chunk.includes('dpop-proof:'),
    'after it signed (its writes)': scriptOn('oidc:RefreshToken:'),
  };

  for (const [where, matches] of Object.entries(HOLDS)) {
    it(`a refresh held ${where} across the signing key revoked: nothing it answers is accepted under the revoked key, and the grant goes on under the next (held)`, async () => {
      const { server, relay, env } = relayed;
      const dpop = oidc.getDPoPHandle(config, await generateKeyPair('ES256', { extractable: true }));
      const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'ines', password: PASSWORD, params: { scope: 'openid offline_access read', resource: API, prompt: 'consent' } });
      const first = await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier }, { resource: API }, { DPoP: dpop });
      assert.equal(first.token_type.toLowerCase(), 'dpop');
      const revoked = decodeProtectedHeader(first.access_token).kid!;

      const held = await relay.hold(matches, () => oidc.refreshTokenGrant(config, first.refresh_token!, { resource: API }, { DPoP: dpop }));
      // A kid may start with "-": after "--" (the CLI takes it as an option otherwise).
      const run = await latchkey(env, ['keys', 'revoke', '--', revoked]);
      assert.equal(run.status, 0, run.stderr);
      const refreshed = await held.release();

      for (const value of [first.access_token, refreshed.access_token]) {
        const kid = decodeProtectedHeader(value).kid;
        if (where.startsWith('before')) assert.ok(value === first.access_token || kid !== revoked, 'signed by the revoked key after its revocation was read');
        if (kid !== revoked) continue;
        assert.equal((await introspect(server.url, RS, value)).active, false, 'a token the revoked key signed is active at introspection');
        await eventually(async () => assert.equal(await acceptedBy(helper, value), false, 'latchkey/resource-server accepts a token the revoked key signed'));
      }
      if (decodeProtectedHeader(refreshed.id_token!).kid === revoked) {
        const hinted = await fetch(`${server.url}/session/end?${new URLSearchParams({ id_token_hint: refreshed.id_token!, post_logout_redirect_uri: SIGNED_OUT })}`);
        assert.equal(hinted.status, 400, 'an ID token the revoked key signed is taken as id_token_hint');
      }
      // The grant goes on (a key revocation ends what the key signed, not the grant): the rotated token, with its key's proof, refreshes under the next key.
      const next = await oidc.refreshTokenGrant(config, refreshed.refresh_token!, { resource: API }, { DPoP: dpop });
      assert.notEqual(decodeProtectedHeader(next.access_token).kid, revoked);
      assert.equal((await introspect(server.url, RS, next.access_token)).active, true);
    });
  }
});

describe('e2e: red team, twenty-second endings pass: a second factor removed while a step-up that needs it is pending', function () {
  this.timeout(60_000);
  let server: TestServer | undefined;
  let config: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, clients: [webClientWith()] });
    config = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  /** Each removal of the person's authenticator app (`code`: a code of it not used yet, for signing in to the account page). */
  const REMOVALS = {
    'on the account page': async (person: string, code: string) => {
      const own = new Agent();
      const second = await signInSteps(own, await own.follow(`${server!.issuer}/account`), { username: person, password: PASSWORD, login: 'required', consent: 'stop' });
      const account = await own.submit(second, '/second-factor', { method: 'totp', code });
      assert.equal(new URL(account.url).pathname, '/account', `expected the account page, got ${account.status} ${account.url}`);
      assert.match((await own.submit(account, '/account/authenticator/remove', {})).url, /done=authenticator\.removed/);
    },
    'by an operator (latchkey users mfa reset)': async (person: string) => {
      const run = await latchkey(server!.env, ['users', 'mfa', 'reset', person]);
      assert.equal(run.status, 0, run.stderr);
    },
  };

  for (const [removal, remove] of Object.entries(REMOVALS)) {
    for (const when of ['before its code is entered', 'between its code and the resume'] as const) {
      it(`the authenticator app removed ${removal} while a step-up (acr_values=mfa) is pending, ${when}: no code, no session at mfa (held)`, async () => {
        const person = `kai-${removal.length}-${when.length}`;
        const { sub } = await server!.accounts.create(person, PASSWORD);
        // Signed in to the app with the password alone, then the person set up an authenticator app.
        const browser = new Agent();
        const first = await startAuthorization(browser, config, REDIRECT, { scope: 'openid' });
        assert.ok(new URL((await signInSteps(browser, first.page, { username: person, password: PASSWORD, stopAt: REDIRECT })).url).searchParams.get('code'));
        const { secret } = await server!.secondFactors.totp.begin(sub, person, 'test-session');
        const code = (step: number) => TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + step * 30_000 });
        assert.equal(await server!.secondFactors.totp.confirm(sub, code(-1), 'test-session'), true);

        // The app asks for a stronger sign-in: the password again, then the second-factor page.
        const { page, verifier } = await startAuthorization(browser, config, REDIRECT, { scope: 'openid', acr_values: 'mfa' });
        const second = await signInSteps(browser, page, { username: person, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
        assert.ok(isSecondFactor(second), `expected the second-factor page, got ${second.status} ${second.url}`);
        let answered;
        if (when === 'before its code is entered') {
          await remove(person, code(0));
          answered = await browser.submit(second, '/second-factor', { method: 'totp', code: code(1) }, REDIRECT);
        } else {
          // The code taken, the browser stops before the resume (`/auth/<uid>`), which it follows after the removal.
          const resume = await browser.submit(second, '/second-factor', { method: 'totp', code: code(0) }, `${server!.issuer}/auth/`);
          assert.ok(resume.url.startsWith(`${server!.issuer}/auth/`), `the code was taken: ${resume.status} ${resume.url}`);
          await remove(person, code(1));
          answered = await browser.follow(resume.url, {}, REDIRECT);
        }
        const got = answered.url.startsWith(REDIRECT) ? new URL(answered.url).searchParams.get('code') : null;
        if (got) {
          const tokens = await oidc.authorizationCodeGrant(config, new URL(answered.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
          assert.fail(`a code of the step-up with the removed app, its ID token's amr ${JSON.stringify(tokens.claims()?.amr)}`);
        }
        const silent = await startAuthorization(browser, config, REDIRECT, { scope: 'openid', acr_values: 'mfa', prompt: 'none' });
        assert.equal(new URL(silent.page.url).searchParams.get('code'), null, `a silent code at mfa after the removal: ${silent.page.url}`);
      });
    }
  }

  for (const when of ['before its assertion is sent', 'between its assertion and the resume'] as const) {
    it(`a passkey removed on the account page while a step-up that needs it (acr_values=phr) is pending, ${when}: no code, no session at phr (held)`, async () => {
      const person = `kai-passkey-${when.length}`;
      const { sub } = await server!.accounts.create(person, PASSWORD);
      const origin = new URL(server!.issuer).origin;
      // Signed in to the app with the password alone; then two passkeys were registered, one of them since lost.
      const browser = new Agent();
      const first = await startAuthorization(browser, config, REDIRECT, { scope: 'openid' });
      assert.ok(new URL((await signInSteps(browser, first.page, { username: person, password: PASSWORD, stopAt: REDIRECT })).url).searchParams.get('code'));
      const [lost, kept] = [softPasskey(), softPasskey()];
      await registerSoftPasskeys(server!, sub, lost, kept);
      const removeLost = async () => {
        const own = new Agent();
        const login = await own.follow(`${server!.issuer}/account`);
        const account = await own.submit(login, '/passkey', { credential: assertion(kept, origin, passkeyChallenge(login), sub, 1) });
        assert.equal(account.url, `${server!.issuer}/account`, `expected the account page, got ${account.url}`);
        assert.match((await own.submit(account, '/account/passkeys/remove', { id: lost.id })).url, /done=passkeys\.removed/);
      };

      const { page, verifier } = await startAuthorization(browser, config, REDIRECT, { scope: 'openid', acr_values: 'phr' });
      const second = await signInSteps(browser, page, { username: person, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
      // The second-factor page, offering the passkey alone (phr: no codes).
      assert.match(second.html, /Use your passkey/, `expected the second-factor page, got ${second.status} ${second.url}`);
      const credential = assertion(lost, origin, passkeyChallenge(second), sub, 1);
      let answered;
      if (when === 'before its assertion is sent') {
        await removeLost();
        answered = await browser.submit(second, '/passkey', { credential }, REDIRECT);
      } else {
        const resume = await browser.submit(second, '/passkey', { credential }, `${server!.issuer}/auth/`);
        assert.ok(resume.url.startsWith(`${server!.issuer}/auth/`), `the passkey was taken: ${resume.status} ${resume.url}`);
        await removeLost();
        answered = await browser.follow(resume.url, {}, REDIRECT);
      }
      const got = answered.url.startsWith(REDIRECT) ? new URL(answered.url).searchParams.get('code') : null;
      if (got) {
        const tokens = await oidc.authorizationCodeGrant(config, new URL(answered.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
        assert.fail(`a code of the step-up with the removed passkey, its ID token's acr ${String(tokens.claims()?.acr)}`);
      }
      const silent = await startAuthorization(browser, config, REDIRECT, { scope: 'openid', acr_values: 'phr', prompt: 'none' });
      assert.equal(new URL(silent.page.url).searchParams.get('code'), null, `a silent code at phr after the removal: ${silent.page.url}`);
    });
  }
});
