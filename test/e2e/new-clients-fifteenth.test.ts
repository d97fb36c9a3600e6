/**
 * The fifteenth fresh-eyes pass at the new kinds of clients (docs/security-passes.md, "new kinds of
 * clients (h5)"), black box with unmodified libraries: what a device polling the token endpoint is
 * told when the person's side of its flow ended without approval. RFC 8628 §3.5 names the token
 * endpoint's answers to a device (RFC 6749 §5.2's codes, authorization_pending, slow_down,
 * access_denied, expired_token), and a device client acts on those alone: an authorization
 * endpoint's code there (OpenID Connect's unmet_authentication_requirements, whose IANA entry is for
 * the authorization endpoint) is one no device library knows. And a device's approval whose resume
 * reached Latchkey twice at the same moment (a browser's or a proxy's retry) is not undone by the
 * copy that lost.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, formIn } from '../helpers/agent.js';
import { signInSteps } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const PASSWORD = 'fifteenth pass at new clients';
const TV = { client_id: 'tv-15', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] };

describe('e2e: new kinds of clients, fifteenth pass', function () {
  this.timeout(60_000);
  let server: TestServer;
  let tv: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, cheapHashing: true, clients: [TV], env: { DEVICE_FLOW_POLL_INTERVAL: '1' } });
    await server.accounts.create('bob', PASSWORD, { name: 'Bob' });
    tv = await oidc.discovery(new URL(server.issuer), TV.client_id, { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  it("a device whose person could not meet its acr_values (no second factor) is told access_denied at the token endpoint, with the reason, not the authorization endpoint's unmet_authentication_requirements", async () => {
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid', acr_values: 'mfa' });
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const prompt = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'bob', password: PASSWORD, consent: 'stop' });
    assert.equal(prompt.status, 403, 'the enrolment prompt');
    const after = await agent.submit(prompt, '/unmet', {});
    assert.match(after.html, /was not connected: it asks for a second factor/);

    // An unmodified RFC 8628 client (openid-client's poll) stops with the RFC's code, and its description says why.
    await assert.rejects(oidc.pollDeviceAuthorizationGrant(tv, device), (error: { status?: number; error?: string; error_description?: string }) => {
      assert.equal(error.status, 400);
      assert.equal(error.error, 'access_denied', `${error.error}: ${error.error_description}`);
      assert.match(error.error_description ?? '', /^unmet_authentication_requirements: the application requires a second factor/);
      return true;
    });
  });

  it("a device approval whose resume arrives twice at once (a retry) connects the device: the copy refused as not the interaction's leaves the device code alone", async () => {
    const device = await oidc.initiateDeviceAuthorization(tv, { scope: 'openid' });
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: device.user_code });
    const consent = await signInSteps(agent, await agent.submit(confirm, '/device', { confirm: 'yes' }), { username: 'bob', password: PASSWORD, consent: 'stop' });
    // Allow, followed by hand up to the resume (/device/<uid>), which the browser then asks twice.
    const form = formIn(consent.html, '/confirm');
    let answer = await agent.request(new URL(form.action, consent.url).href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form.hidden) });
    let resume = new URL(answer.headers.get('location')!, consent.url);
    for (let hops = 0; !/^\/device\/[^/]+$/.test(resume.pathname) && hops < 5; hops += 1) {
      answer = await agent.request(resume.href);
      resume = new URL(answer.headers.get('location')!, resume);
    }
    assert.match(resume.pathname, /^\/device\/[^/]+$/, resume.href);
    const pages = await Promise.all([agent.request(resume.href), agent.request(resume.href)].map(async (asked) => (await asked).text()));
    const texts = pages.map((html) => html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300));
    assert.equal(pages.filter((html) => /Device connected/.test(html)).length, 1, texts.join('\n'));
    // The other copy says the page was used (a reload of a finished sign-in, or, on a loaded machine, the
    // same moment's other window), never that the device was told an error or is not connected.
    assert.equal(pages.filter((html) => /This page was already used or has expired\. If your device shows it is connected, there is nothing more to do|used in another window or browser at the same moment\. Nothing was done here/.test(html)).length, 1, texts.join('\n'));
    const tokens = await oidc.pollDeviceAuthorizationGrant(tv, device);
    assert.ok(tokens.access_token);
  });
});
