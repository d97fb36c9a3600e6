/**
 * Red team, twenty-second endings pass (docs/security.md, "Looked at in the twenty-second endings pass").
 *
 * A client narrowed (a redirect URI or a grant type taken away: a configured client edited and the
 * server restarted, or a Client ID Metadata Document changed) while a pushed request (PAR) or a
 * device flow of its was pending, then widened again within the request's lifetime: the request
 * from before was taken up again, a code to the redirect URI it named and a device's tokens. Used
 * while narrowed it was refused (current-registration.ts), but it was kept: a narrowing ended
 * nothing pending. Now a narrowing of a client's redirect URIs or grant types ends its pending
 * requests, as a removal does (provider.ts clientEndings clientReplaced), whichever way the client
 * changed.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { documentHost } from '../helpers/document-host.js';
import { serverRestarts } from '../helpers/restarts.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'twenty-second endings pass test password';
const REDIRECT = 'https://app.example.test/callback';
const OTHER_REDIRECT = 'https://app.example.test/other-callback';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };
const webClient = (changes: Record<string, unknown> = {}) => ({
  client_id: WEB.id,
  client_secret: WEB.secret,
  redirect_uris: [REDIRECT, OTHER_REDIRECT],
  grant_types: ['authorization_code', 'refresh_token'],
  scope: 'openid offline_access',
  ...changes,
});

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
    await start(webClient());
    const agent = new Agent();
    await allowed(agent);
    let config = await web();
    // The ending is real: a request pushed now to the other redirect URI is answered with a code, silently.
    assert.ok(new URL((await agent.follow((await push(config, OTHER_REDIRECT)).href, {}, OTHER_REDIRECT)).url).searchParams.get('code'));
    const pending = await push(config, OTHER_REDIRECT);

    await start(webClient({ redirect_uris: [REDIRECT] }));
    await start(webClient());
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
    await start(webClient(), tvClient());
    await server!.accounts.create('rhea', PASSWORD);
    const device = await oidc.initiateDeviceAuthorization(await tv(), { scope: 'openid offline_access' });

    await start(webClient(), tvClient(['authorization_code', 'refresh_token']));
    await start(webClient(), tvClient());
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

describe('e2e: red team, twenty-second endings pass: a Client ID Metadata Document narrowed and widened again while a request of its is pending', function () {
  this.timeout(60_000);
  const host = documentHost('openid offline_access');
  let server: TestServer | undefined;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', CLIENT_METADATA_DOCUMENTS_CACHE_MIN: '1', CLIENT_METADATA_DOCUMENTS_CACHE_MAX: '2' },
    });
  });
  after(async () => {
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
      await new Promise((resolve) => setTimeout(resolve, 2100));
      await push(config, callback);
    }
    const { shown, answered } = await answer(pending, other);
    assert.equal(new URL(answered.url).searchParams.get('code'), null, `a code from a request pushed before its redirect URI was taken out of the document: ${answered.status} ${answered.url}`);
    assert.equal(shown.status, 400, `${shown.status} ${shown.url}`);
    assert.match(shown.html, /invalid_request_uri/, 'the request_uri is gone');
  });
});
