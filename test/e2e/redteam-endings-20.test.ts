/**
 * Red team, twentieth endings pass (docs/security-passes.md, "Looked at in the twentieth endings pass").
 *
 * A lifetime lowered in the configuration (`ttl.grant`, `ttl.refreshToken`, `ttl.interaction`) and
 * the server restarted ended nothing saved before: oidc-provider stamps a record's `exp` at its first save and
 * reads only that, so a grant given under the longer lifetime went on refreshing, its opaque tokens
 * stayed active, the app got codes silently from it, and the consent Latchkey remembers (kept with
 * the longer TTL) made fresh grants without asking. Now what is stored lives no longer than the
 * configuration says now (patches/lifetimes-as-configured.ts, consents.ts). Client ID Metadata
 * Documents switched off and restarted ended nothing (the clients were only unknown): a document
 * client's JWT was accepted at an API following the feed, and switched on again its refresh token
 * refreshed. A start with the feature off now removes each client a document named, as a document
 * gone is (registration/client-metadata-documents.ts documentsSwitchedOff). Held and pinned: a PAR
 * request_uri pushed before its configured client was narrowed or its API taken out, used after; a
 * configured client taken out while its consent page and device flow are pending.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { documentHost } from '../helpers/document-host.js';
import { serverRestarts } from '../helpers/restarts.js';
import type { TestServer } from '../helpers/server.js';
import { createResourceServer } from '../../src/resource-server/index.js';
import { acceptedBy, API, grantFeed, introspect, machineClient, RESOURCE_SERVERS, WEB, webClient } from '../helpers/tokens.js';

const PASSWORD = 'twentieth endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const WEB_CLIENT = webClient(WEB, [REDIRECT], { scope: 'openid offline_access' });

describe('e2e: red team, twentieth endings pass: some endings do not end', function () {
  this.timeout(60_000);
  const restarts = serverRestarts();
  let server: TestServer | undefined;

  /** (Re)starts the server on the same Redis with `env` on top. */
  async function start(env: Record<string, string> = {}): Promise<TestServer> {
    return (server = await restarts.start({ clients: [WEB_CLIENT], env }));
  }

  const web = () => oidc.discovery(new URL(server!.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });

  /** A sign-in at the web client in `agent`'s browser (the consent page as `consent` says): its tokens. */
  async function signIn(agent: Agent, consent: 'required' | 'if-shown' = 'if-shown') {
    const config = await web();
    const { page, verifier } = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    const done = await signInSteps(agent, page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT, consent });
    return oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
  }

  /** The answer to a refresh with `refreshToken`: its error code, or 'refreshed'. */
  async function refreshed(refreshToken: string): Promise<string> {
    try {
      await oidc.refreshTokenGrant(await web(), refreshToken);
      return 'refreshed';
    } catch (error) {
      return (error as { error?: string }).error ?? String(error);
    }
  }

  /** Waits until `seconds` whole seconds have passed since `since` (epoch ms), and one more. */
  const pastSince = async (since: number, seconds: number) => sleep(Math.max(0, since + (seconds + 1) * 1000 - Date.now()));

  it('ttl.grant and ttl.interaction lowered and the server restarted: a grant given before and older than the new lifetime ends (its refresh token, its opaque access token, the app’s silent codes), its remembered consent is asked again, and a sign-in under way older than the new ttl.interaction goes nowhere', async () => {
    const started = await start({ TTL_GRANT: '3600', TTL_REFRESH_TOKEN: '3600', TTL_INTERACTION: '3600' });
    await started.accounts.create('rhea', PASSWORD);
    const agent = new Agent();
    const tokens = await signIn(agent, 'required');
    assert.ok(tokens.refresh_token);
    // A sign-in under way in a third browser, its login page open.
    const pending = new Agent();
    const login = await startAuthorization(pending, await web(), REDIRECT, { scope: 'openid offline_access' });
    // Everything above was given by now (a sign-in takes seconds on a loaded machine: counted from before it, not all was older than 2 s).
    const given = Date.now();

    // The operator lowers ttl.grant (consents to be asked again within 2 s, say a week), and
    // ttl.interaction, and restarts.
    await start({ TTL_GRANT: '2', TTL_REFRESH_TOKEN: '2', TTL_INTERACTION: '2' });
    await pastSince(given, 2);
    // Before the fix: the sign-in begun under the longer ttl.interaction went on to a code.
    const resumed = await signInSteps(pending, login.page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT });
    assert.equal(new URL(resumed.url).searchParams.get('code'), null, `a sign-in older than ttl.interaction is now: ${resumed.url}`);
    assert.ok(resumed.status < 500, `a page, not ${resumed.status}`);
    // Before the fix: 'refreshed', a userinfo answer, a code, and no consent page, for an hour.
    assert.equal(await refreshed(tokens.refresh_token!), 'invalid_grant', 'the refresh token of a grant past the lifetime configured now');
    const userinfo = await fetch(`${server!.url}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(userinfo.status, 401, 'its opaque access token at userinfo');
    const config = await web();
    const silent = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'none' });
    assert.equal(new URL(silent.page.url).searchParams.get('code'), null, 'a silent code from the session’s grant');
    assert.equal(new URL(silent.page.url).searchParams.get('error'), 'consent_required');
    // Another browser: the consent remembered under the longer lifetime is asked again. (Its sign-in
    // under ttl.interaction as shipped: within 2 s of /auth, it could outlive its own interaction on a loaded machine.)
    await start({ TTL_GRANT: '2', TTL_REFRESH_TOKEN: '2' });
    const other = new Agent();
    const { page } = await startAuthorization(other, await web(), REDIRECT, { scope: 'openid offline_access' });
    const after = await signInSteps(other, page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT, consent: 'stop' });
    assert.ok(isConsent(after), `the consent page, not ${after.url}`);
  });

  it('ttl.refreshToken lowered and the server restarted: a refresh token issued before and older than the new lifetime is refused; the grant stays, so the person’s next sign-in is silent', async () => {
    const started = await start({ TTL_GRANT: '3600', TTL_REFRESH_TOKEN: '3600' });
    await started.accounts.create('rhea', PASSWORD);
    const agent = new Agent();
    const tokens = await signIn(agent, 'required');
    const issued = Date.now();

    await start({ TTL_GRANT: '3600', TTL_REFRESH_TOKEN: '2' });
    await pastSince(issued, 2);
    // Before the fix: 'refreshed', for an hour.
    assert.equal(await refreshed(tokens.refresh_token!), 'invalid_grant');
    // Held: the grant was not shortened, so the app gets a code silently still.
    const silent = await startAuthorization(agent, await web(), REDIRECT, { scope: 'openid offline_access', prompt: 'none' });
    assert.ok(new URL(silent.page.url).searchParams.get('code'), silent.page.url);
  });

  it('a PAR request_uri pushed before its configured client was narrowed, or its API taken out, and the server restarted, used after in the person’s signed-in browser: nothing the change took (held)', async () => {
    const api = { identifier: API, scopes: ['read', 'write'], format: 'jwt' };
    const wide = { ...WEB_CLIENT, scope: 'openid offline_access read write' };
    const narrow = { ...WEB_CLIENT, scope: 'openid offline_access read' };
    const restart = (client: object, apis: object[]) => start({ CLIENTS: JSON.stringify([client]), RESOURCE_SERVERS: JSON.stringify(apis) });
    const started = await restart(wide, [api]);
    await started.accounts.create('rhea', PASSWORD);
    const agent = new Agent();
    let config = await web();
    // The person allows read and write at the API first, so a later request is answered silently.
    const first = await startAuthorization(agent, config, REDIRECT, { scope: 'openid read write', resource: API });
    assert.ok(new URL((await signInSteps(agent, first.page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT })).url).searchParams.get('code'));
    const push = async (scope: string) => {
      const verifier = oidc.randomPKCECodeVerifier();
      const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: REDIRECT, scope, resource: API, code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      return { url, verifier };
    };

    // Narrowed: `write` taken from the client's scope.
    const beforeNarrowing = await push('openid read write');
    await restart(narrow, [api]);
    config = await web();
    const narrowed = await agent.follow(beforeNarrowing.url.href, {}, REDIRECT);
    const code = new URL(narrowed.url).searchParams.get('code');
    if (code) {
      const tokens = await oidc.authorizationCodeGrant(config, new URL(narrowed.url), { pkceCodeVerifier: beforeNarrowing.verifier, expectedState: oidc.skipStateCheck }, { resource: API });
      assert.ok(!String(decodeJwt(tokens.access_token).scope).split(' ').includes('write'), 'a scope taken from the client since the push');
    } else {
      assert.ok(new URL(narrowed.url).searchParams.get('error') ?? narrowed.status >= 400, narrowed.url);
    }

    // The API taken out.
    const beforeRemoval = await push('openid read');
    await restart(WEB_CLIENT, []);
    config = await web();
    const removed = await agent.follow(beforeRemoval.url.href, {}, REDIRECT);
    assert.equal(new URL(removed.url).searchParams.get('code'), null, `a code for an API taken out since the push: ${removed.url}`);
  });
  it('a configured client taken out and the server restarted while its device flow (user code not yet entered) and its consent page are pending: the user code, the poll and the consent give nothing (held)', async () => {
    const DEVICE = 'tv';
    const tvClient = { client_id: DEVICE, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] };
    const started = await start({ CLIENTS: JSON.stringify([WEB_CLIENT, tvClient]) });
    await started.accounts.create('rhea', PASSWORD);
    const tv = await oidc.discovery(new URL(server!.issuer), DEVICE, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid offline_access' });
    const agent = new Agent();
    const { page } = await startAuthorization(agent, await web(), REDIRECT, { scope: 'openid offline_access' });
    const consent = await signInSteps(agent, page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT, consent: 'stop' });
    assert.ok(isConsent(consent), consent.url);

    await start({ CLIENTS: JSON.stringify([]) });
    const confirmed = await agent.submit(consent, '/confirm', {}, REDIRECT);
    assert.equal(new URL(confirmed.url).searchParams.get('code'), null, `the consent page of a client taken out: ${confirmed.status} ${confirmed.url}`);
    const entry = await agent.submit(await agent.follow(`${server!.issuer}/device`), '/device', { user_code: device.user_code });
    const approved = entry.html.includes('name="confirm"') ? await signInSteps(agent, await agent.submit(entry, '/device', { confirm: 'yes' }), { username: 'rhea', password: PASSWORD }) : entry;
    assert.doesNotMatch(approved.html, /Device connected/, 'a device of a client taken out approved');
    const polled = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code, client_id: DEVICE }),
    });
    const body = (await polled.json()) as Record<string, unknown>;
    assert.equal(body.access_token, undefined, JSON.stringify(body));
    assert.ok(polled.status === 400 || polled.status === 401, `${polled.status} ${JSON.stringify(body)}`);
  });
});

describe('e2e: red team, twentieth endings pass: Client ID Metadata Documents switched off and on again', function () {
  this.timeout(60_000);
  const RS = { id: 'api', secret: 'api-resource-server-secret-with-entropy-012345' };
  const restarts = serverRestarts('describe');
  let server: TestServer | undefined;
  const host = documentHost('openid offline_access read');

  async function start(enabled: boolean): Promise<TestServer> {
    server = await restarts.start({
      clients: [machineClient(RS)],
      env: { RESOURCE_SERVERS, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_ENABLED: String(enabled), CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1', CLIENT_METADATA_DOCUMENTS_CACHE_MAX: '2' },
    });
    await grantFeed(server, RS.id);
    return server;
  }
  const acceptedNow = async (token: string) => {
    const helper = await createResourceServer({ issuer: server!.issuer, audience: API, clientId: RS.id, clientSecret: RS.secret, onError: () => {} });
    try {
      await helper.sync();
      return await acceptedBy(helper, token);
    } finally {
      helper.close();
    }
  };

  it('switched off and the server restarted: a document client’s JWT is refused at latchkey/resource-server; switched on again, its refresh token and its tokens from before stay dead, and the person is asked again', async () => {
    const started = await start(true);
    await started.accounts.create('noor', PASSWORD);
    const clientId = `${host.base}/agent.json`;
    const callback = `${host.base}/callback`;
    const config = await oidc.discovery(new URL(server!.issuer), clientId, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, config, callback, { scope: 'openid offline_access read', prompt: 'consent', resource: API });
    const done = await signInSteps(agent, page, { username: 'noor', password: PASSWORD, stopAt: callback, consent: 'required' });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, { resource: API });
    assert.equal(await acceptedNow(tokens.access_token), true);

    // The operator switches the feature off (only operator-approved apps may ask now) and restarts.
    await start(false);
    // Before the fix: accepted for its whole lifetime.
    assert.equal(await acceptedNow(tokens.access_token), false, 'a document client’s JWT with the feature switched off, at an API following the feed');

    // Switched on again: what was issued before does not come back.
    await start(true);
    const refresh = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: clientId, resource: API }),
    });
    // Before the fix: 200, new tokens.
    assert.equal(refresh.status, 400, `the refresh token from before: ${refresh.status}`);
    assert.equal((await introspect(server!.url, RS, tokens.access_token)).active, false, 'its JWT from before, at introspection');
    assert.equal(await acceptedNow(tokens.access_token), false);
    const again = await startAuthorization(agent, config, callback, { scope: 'openid offline_access read', resource: API });
    const asked = await signInSteps(agent, again.page, { username: 'noor', password: PASSWORD, stopAt: callback, consent: 'stop' });
    assert.ok(isConsent(asked), `the consent page, not ${asked.url}`);
  });
});
