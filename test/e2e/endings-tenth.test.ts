/**
 * Endings, tenth fresh-eyes pass (docs/security-passes.md, "Looked at in the tenth fresh-eyes passes
 * of 2026-12-07: endings, tenth pass").
 *
 * A session that lets go of an app's grant but keeps the grant (the person signs out of that app
 * only, and the app holds offline access) ends the grant's artifacts bound to the session: its
 * opaque access tokens, codes and device codes issued without offline access. The engine ends them
 * by comparison (token_helpers.js checkSessionBinding: the grant the session names for the app now),
 * not by deleting them; so a consent page the person had open for the app, adding to that grant,
 * confirmed after the sign-out, named the grant for the app in the session again, and every one of
 * them worked again: an access token 401 at userinfo after the sign-out was 200 after the Allow.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'tenth endings pass passphrase';
const APP = { id: 'app', secret: 'app-client-secret-of-the-tenth-endings-pass-0123456789', redirect: 'https://app.example.test/callback' };

describe('e2e: endings, tenth fresh-eyes pass: what a sign-out of one app ended stays ended', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, clients: [{ client_id: APP.id, client_secret: APP.secret, redirect_uris: [APP.redirect], grant_types: ['authorization_code', 'refresh_token'] }] });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => server?.stop());

  const userinfo = async (accessToken: string) => (await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${accessToken}` } })).status;

  /** `agent`'s authorization request at the app, followed through the person's steps to the app: the answer's URL and the request's PKCE verifier. */
  async function codeFor(agent: Agent, username: string, params: Record<string, string>) {
    const { page, verifier } = await startAuthorization(agent, app, APP.redirect, params);
    const done = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: APP.redirect });
    assert.ok(done.url.startsWith(APP.redirect), `back at the app: ${done.status} ${done.url}`);
    return { answer: new URL(done.url), verifier };
  }
  const redeemed = ({ answer, verifier }: { answer: URL; verifier: string }) => oidc.authorizationCodeGrant(app, answer, { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });

  it("a consent page adding to an app's grant, confirmed after the person signed out of that app only (its offline access kept): the access token and the code the sign-out ended stay ended; the app gets what the person allowed under another grant", async () => {
    await server.accounts.create('rita', PASSWORD, { email: 'rita@example.test', email_verified: true });
    const agent = new Agent();
    // Offline access first (the grant outlives a sign-out), then a sign-in without it: bound to the session.
    assert.ok((await redeemed(await codeFor(agent, 'rita', { scope: 'openid offline_access', prompt: 'consent' }))).refresh_token, 'offline access was granted');
    const bound = await redeemed(await codeFor(agent, 'rita', { scope: 'openid' }));
    assert.equal(bound.refresh_token, undefined);
    assert.equal(await userinfo(bound.access_token), 200);
    const unredeemed = await codeFor(agent, 'rita', { scope: 'openid' });
    // The app asks for more; the person leaves its consent page open.
    const { page: consentPage, verifier: consentVerifier } = await startAuthorization(agent, app, APP.redirect, { scope: 'openid email' });
    assert.ok(isConsent(consentPage), `the consent page: ${consentPage.url}`);

    // Signed out of this app only.
    const confirmation = await agent.follow(`${server.issuer}/session/end?client_id=${APP.id}`);
    assert.match((await agent.submit(confirmation, '/session/end/confirm', {})).url, /\/session\/end\/success/);
    assert.equal(await userinfo(bound.access_token), 401, 'the sign-out ended the access token bound to the session');

    // The page from before, allowed now.
    const allowed = await agent.submit(consentPage, '/confirm', {}, APP.redirect);
    assert.ok(allowed.url.startsWith(APP.redirect), `back at the app: ${allowed.status} ${allowed.url}`);
    assert.equal(await userinfo(bound.access_token), 401, 'the access token the sign-out ended works again (before the tenth fresh-eyes endings pass: 200)');
    await assert.rejects(redeemed(unredeemed), (error: { error?: string }) => error.error === 'invalid_grant', 'the code the sign-out ended is redeemed (before: tokens)');
    // What the person allowed is the app's all the same, under a grant the sign-out did not end.
    const allowedTokens = await redeemed({ answer: new URL(allowed.url), verifier: consentVerifier });
    assert.equal(allowedTokens.scope, 'openid email');
    assert.equal(await userinfo(allowedTokens.access_token), 200);
  });

  it("the same page confirmed once the app signed the person in again after that sign-out (another grant in the session's place): the access token the sign-out ended stays ended, the app's new one works, and the person is asked about the new grant", async () => {
    await server.accounts.create('pia', PASSWORD, { email: 'pia@example.test', email_verified: true });
    const agent = new Agent();
    assert.ok((await redeemed(await codeFor(agent, 'pia', { scope: 'openid offline_access', prompt: 'consent' }))).refresh_token);
    const bound = await redeemed(await codeFor(agent, 'pia', { scope: 'openid' }));
    const { page: consentPage } = await startAuthorization(agent, app, APP.redirect, { scope: 'openid email' });
    assert.ok(isConsent(consentPage), `the consent page: ${consentPage.url}`);
    const confirmation = await agent.follow(`${server.issuer}/session/end?client_id=${APP.id}`);
    assert.match((await agent.submit(confirmation, '/session/end/confirm', {})).url, /\/session\/end\/success/);
    // The app signs the person in again: a grant of its own from what they allowed, no page.
    const again = await redeemed(await codeFor(agent, 'pia', { scope: 'openid' }));
    assert.equal(await userinfo(again.access_token), 200);

    const allowed = await agent.submit(consentPage, '/confirm', {}, APP.redirect);
    assert.equal(await userinfo(bound.access_token), 401, 'the access token the sign-out ended works again (before the tenth fresh-eyes endings pass: 200)');
    assert.equal(await userinfo(again.access_token), 200, "the app's access token of now is not ended for the grant from before (before: 401, that grant put back in its place)");
    assert.ok(isConsent(allowed), `the person is asked about the grant the session names now: ${allowed.status} ${allowed.url}`);
  });
});
