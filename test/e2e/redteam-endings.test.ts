/**
 * A red team's pass at endings that do not end, black box: what a request in flight at an ending
 * gets. Instance A reaches Redis through a relay that holds a client_credentials request after it
 * read its client (at its DPoP proof's replay check), while the operator, straight on Redis (the
 * CLI, or the admin API of instance B), ends the client: removed, its secret rotated without grace
 * (it leaked), or client_credentials taken from it. The token the request then gets is checked
 * where an API looks: introspection and latchkey/resource-server (the feed).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { clientCredentialsInFlight } from '../helpers/in-flight.js';
import { latchkey } from '../helpers/process.js';
import { signInSteps } from '../helpers/sign-in.js';
import { machineClient } from '../helpers/tokens.js';

const PASSWORD = 'red team endings test password';

describe('e2e: red team, endings that do not end (requests in flight)', function () {
  this.timeout(120_000);
  const flight = clientCredentialsInFlight();
  const { admin, endedInFlight } = flight;

  it('a client removed (latchkey clients remove) while its client_credentials request is in flight: the token that request gets is refused at the resource server', () =>
    endedInFlight('client removed', async (client) => {
      const removed = await latchkey(flight.env, ['clients', 'remove', client.id]);
      assert.equal(removed.status, 0, removed.stderr);
    }));

  it('a secret rotated without grace (it leaked: admin API at another instance) while a request with it is in flight: the token that request gets is refused at the resource server', () =>
    endedInFlight('secret rotated without grace', async (client) => {
      const rotated = await admin(`/clients/${client.id}/secret`, { method: 'POST', body: { previous_secret_valid_for: 0 } });
      assert.equal(rotated.status, 200, await rotated.text());
    }));

  it('a client no longer allowed client_credentials (admin API at another instance) while its request is in flight: the token that request gets is refused at the resource server', () =>
    endedInFlight('client_credentials taken away', async (client) => {
      const body = { ...machineClient(client), grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['https://svc.example.test/callback'] };
      const updated = await admin(`/clients/${client.id}`, { method: 'PUT', body });
      assert.equal(updated.status, 200, await updated.text());
    }));

  it("a pushed request (PAR) and a sign-in begun before an operator removed the redirect URI they name (admin API at another instance) send no code there once used (held)", async () => {
    const [kept, removed] = ['https://web.example.test/kept', 'https://web.example.test/removed'];
    const web = { id: `web-${randomUUID().slice(0, 8)}`, secret: `web-secret-${randomUUID()}` };
    const metadata = { client_id: web.id, client_secret: web.secret, redirect_uris: [kept, removed], grant_types: ['authorization_code'], response_types: ['code'] };
    await flight.server.clients.add(metadata);
    await flight.server.accounts.create(`alice-${web.id}`, PASSWORD);
    const app = await oidc.discovery(new URL(flight.server.issuer), web.id, web.secret, oidc.ClientSecretBasic(web.secret), { execute: [oidc.allowInsecureRequests] });
    const params = async () => ({ redirect_uri: removed, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
    const pushed = await oidc.buildAuthorizationUrlWithPAR(app, await params());
    const agent = new Agent();
    const signIn = await agent.follow(oidc.buildAuthorizationUrl(app, await params()).href, {}, removed);
    const updated = await admin(`/clients/${web.id}`, { method: 'PUT', body: { ...metadata, redirect_uris: [kept] } });
    assert.equal(updated.status, 200, await updated.text());

    const resumed = await signInSteps(agent, signIn, { username: `alice-${web.id}`, password: PASSWORD, stopAt: removed });
    assert.ok(!resumed.url.startsWith(removed), `the sign-in begun before sent its code to the removed redirect URI: ${resumed.url}`);
    assert.ok(resumed.status < 500, `never a 5xx (${resumed.status})`);
    // Ended with the narrowing (redteam-endings-22), the request_uri is unknown: the error goes to the client's one redirect URI left, never the removed one.
    const used = await agent.follow(pushed.href, {}, 'https://web.example.test/');
    assert.ok(!used.url.startsWith(removed), `the pushed request sent a code to the removed redirect URI: ${used.url}`);
    assert.ok(used.status < 500, `never a 5xx (${used.status})`);
  });
});
