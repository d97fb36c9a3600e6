/**
 * Red team, twenty-first endings pass (docs/security-passes.md, "Looked at in the twenty-first endings pass").
 *
 * A configured client (`CLIENTS`) taken out and the server restarted while a pushed authorization
 * request (PAR) or a device flow of its was pending, then put back (the same entry) and restarted
 * within the request's lifetime: the `request_uri` got the person a consent page and a code, and the
 * user code from before was approved and its device got tokens. A stored client's deletion ended
 * its pending requests (the adapter); a removal the store does not see as a deletion ran only the
 * clientRemoved hook, which did not. The hook now ends them too (client-endings.ts clientEndings), on
 * every path: a configured client taken out, a Client ID Metadata Document gone or switched off.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { latchkey } from '../helpers/process.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { documentHost } from '../helpers/document-host.js';
import { serverRestarts } from '../helpers/restarts.js';
import type { TestServer } from '../helpers/server.js';
import { WEB, webClient } from '../helpers/tokens.js';

const PASSWORD = 'twenty-first endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const WEB_CLIENT = webClient(WEB, [REDIRECT], { scope: 'openid offline_access' });

describe('e2e: red team, twenty-first endings pass: some endings do not end', function () {
  this.timeout(60_000);
  const restarts = serverRestarts();
  let server: TestServer | undefined;

  /** (Re)starts the server on the same Redis with `clients` configured. */
  async function start(clients: Record<string, unknown>[]): Promise<TestServer> {
    return (server = await restarts.start({ clients }));
  }

  const web = () => oidc.discovery(new URL(server!.issuer), WEB.id, WEB.secret, oidc.ClientSecretBasic(WEB.secret), { execute: [oidc.allowInsecureRequests] });

  it('a configured client taken out and the server restarted while a PAR request of its is pending: its request_uri gives no code, with the client still out or put back since (a code once put back before the fix)', async () => {
    const started = await start([WEB_CLIENT]);
    await started.accounts.create('rhea', PASSWORD);
    const agent = new Agent();
    let config = await web();
    // The person allows the app first, so a later request of its is answered silently.
    const first = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access', prompt: 'consent' });
    assert.ok(new URL((await signInSteps(agent, first.page, { username: 'rhea', password: PASSWORD, stopAt: REDIRECT })).url).searchParams.get('code'));
    const push = async () => {
      const verifier = oidc.randomPKCECodeVerifier();
      const url = await oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: REDIRECT, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      return { url, verifier };
    };
    // The ending is real: a request pushed now, with the client as it is, gets a code silently.
    const control = await push();
    assert.ok(new URL((await agent.follow(control.url.href, {}, REDIRECT)).url).searchParams.get('code'), 'a pushed request answered silently');

    // Taken out, used while out.
    const whileOut = await push();
    const whenPutBack = await push();
    await start([]);
    const out = await agent.follow(whileOut.url.href, {}, REDIRECT);
    assert.equal(new URL(out.url).searchParams.get('code'), null, `a code for a client taken out: ${out.status} ${out.url}`);

    // Put back (the same entry) and restarted: the request pushed before it was taken out is gone.
    await start([WEB_CLIENT]);
    config = await web();
    // (Before the fix: the consent page, the consent taken out with the client, and a code on confirming.)
    const back = await agent.follow(whenPutBack.url.href, {}, REDIRECT);
    const answered = isConsent(back) ? await agent.submit(back, '/confirm', {}, REDIRECT) : back;
    assert.equal(new URL(answered.url).searchParams.get('code'), null, `a code from a request pushed before the client was taken out: ${answered.status} ${answered.url}`);
    assert.equal(new URL(back.url).searchParams.get('error'), 'invalid_request_uri', `the request_uri is gone: ${back.status} ${back.url}`);
  });

  it('a device approval across the person disabled between the user code entry and the consent: no device connected, its poll gets no token (held)', async () => {
    const DEVICE = 'tv';
    const tvClient = { client_id: DEVICE, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] };
    const started = await start([WEB_CLIENT, tvClient]);
    await started.accounts.create('rhea', PASSWORD);
    const tv = await oidc.discovery(new URL(server!.issuer), DEVICE, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid offline_access' });
    const agent = new Agent();
    const entry = await agent.submit(await agent.follow(`${server!.issuer}/device`), '/device', { user_code: device.user_code });
    const consent = await signInSteps(agent, await agent.submit(entry, '/device', { confirm: 'yes' }), { username: 'rhea', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(consent), `the consent page, not ${consent.status} ${consent.url}`);

    const run = await latchkey(server!.env, ['users', 'disable', 'rhea']);
    assert.equal(run.status, 0, run.stderr);
    const confirmed = await agent.submit(consent, '/confirm', {});
    assert.doesNotMatch(confirmed.html, /Device connected/, 'a device approved by a person disabled');
    assert.ok(confirmed.status < 500, `${confirmed.status} ${confirmed.url}`);
    const polled = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code, client_id: DEVICE }),
    });
    const body = (await polled.json()) as Record<string, unknown>;
    assert.equal(body.access_token, undefined, JSON.stringify(body));
  });

  it('a configured client taken out and the server restarted while its device flow is pending, then put back: the user code from before is not taken and its poll gets no token (approved and a token before the fix)', async () => {
    const DEVICE = 'tv';
    const tvClient = { client_id: DEVICE, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] };
    const started = await start([WEB_CLIENT, tvClient]);
    await started.accounts.create('rhea', PASSWORD);
    const tv = () => oidc.discovery(new URL(server!.issuer), DEVICE, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const device = await oidc.initiateDeviceAuthorization(await tv(), { scope: 'openid offline_access' });

    await start([WEB_CLIENT]);
    await start([WEB_CLIENT, tvClient]);
    const agent = new Agent();
    const entry = await agent.submit(await agent.follow(`${server!.issuer}/device`), '/device', { user_code: device.user_code });
    const approved = entry.html.includes('name="confirm"') ? await signInSteps(agent, await agent.submit(entry, '/device', { confirm: 'yes' }), { username: 'rhea', password: PASSWORD }) : entry;
    const finished = isConsent(approved) ? await agent.submit(approved, '/confirm', {}) : approved;
    assert.doesNotMatch(finished.html, /Device connected/, 'a device flow begun before the client was taken out, approved once it was put back');
    const polled = await fetch(`${server!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code, client_id: DEVICE }),
    });
    const body = (await polled.json()) as Record<string, unknown>;
    assert.equal(body.access_token, undefined, JSON.stringify(body));
    assert.equal(body.error, 'invalid_grant', JSON.stringify(body));
    // The ending is real: a device flow begun now is approved.
    const fresh = await oidc.initiateDeviceAuthorization(await tv(), { scope: 'openid offline_access' });
    const again = await agent.submit(await agent.follow(`${server!.issuer}/device`), '/device', { user_code: fresh.user_code });
    const ok = await signInSteps(agent, await agent.submit(again, '/device', { confirm: 'yes' }), { username: 'rhea', password: PASSWORD });
    const done = isConsent(ok) ? await agent.submit(ok, '/confirm', {}) : ok;
    assert.match(done.html, /Device connected/, `${done.status} ${done.url}`);
  });
});

describe('e2e: red team, twenty-first endings pass: a Client ID Metadata Document client’s pending requests', function () {
  this.timeout(60_000);
  const restarts = serverRestarts('describe');
  let server: TestServer | undefined;
  const host = documentHost('openid offline_access');

  async function start(enabled: boolean): Promise<TestServer> {
    server = await restarts.start({
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_ENABLED: String(enabled), CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1', CLIENT_METADATA_DOCUMENTS_CACHE_MAX: '2' },
    });
    return server;
  }

  it('documents switched off and the server restarted while a PAR request of a document client is pending, then switched on again: its request_uri gives no code', async () => {
    const started = await start(true);
    await started.accounts.create('noor', PASSWORD);
    const clientId = `${host.base}/agent.json`;
    const callback = `${host.base}/callback`;
    const config = await oidc.discovery(new URL(server!.issuer), clientId, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const agent = new Agent();
    const { page } = await startAuthorization(agent, config, callback, { scope: 'openid offline_access', prompt: 'consent' });
    assert.ok(new URL((await signInSteps(agent, page, { username: 'noor', password: PASSWORD, stopAt: callback, consent: 'required' })).url).searchParams.get('code'));
    const push = async () => {
      const verifier = oidc.randomPKCECodeVerifier();
      return oidc.buildAuthorizationUrlWithPAR(config, { redirect_uri: callback, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    };
    const pending = await push();

    await start(false);
    await start(true);
    const back = await agent.follow(pending.href, {}, callback);
    const answered = isConsent(back) ? await agent.submit(back, '/confirm', {}, callback) : back;
    assert.equal(new URL(answered.url).searchParams.get('code'), null, `a code from a request pushed before documents were switched off: ${answered.status} ${answered.url}`);
    assert.ok(!isConsent(back) && back.status < 500, `${back.status} ${back.url}`);
    // The ending is real: a request pushed now goes on (to the consent page: the consent went with the client).
    const fresh = await agent.follow((await push()).href, {}, callback);
    assert.ok(isConsent(fresh) || new URL(fresh.url).searchParams.get('code'), `${fresh.status} ${fresh.url}`);
  });
});
