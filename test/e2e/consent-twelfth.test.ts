/**
 * The twelfth fresh-eyes pass at what the consent page says against what is granted (2026-12-07,
 * docs/security-passes.md, "what the consent page says vs what is granted"), black box. Found and
 * fixed here: the sign-in and consent pages of an app that registered itself (RFC 7591 open
 * registration, the developer page) showed its name and logo as the app's, with nothing saying that
 * Latchkey does not vouch for them (the device page said so since the tenth passes); and
 * `prompt=consent` asking for one thing more listed the new thing alone, while the code's tokens
 * carried what the app asked again beside it.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { registerPublicClient, signInSteps, startAuthorization } from '../helpers/sign-in.js';

const REDIRECT = 'https://orange-notes.example.test/callback';
const PASSWORD = 'twelfth consent page passphrase';
const NAME = 'Orange Notes';
const UNVOUCHED = /registered itself here: this service does not vouch for its name/;

/** The text of a page, tags dropped. */
const text = (page: Page) => page.html.replace(/<(style|script)[^]*?<\/\1>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

describe('e2e: twelfth fresh-eyes pass, what the consent page says against what is granted', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      cheapHashing: true,
      env: { REGISTRATION_OPEN: 'true' },
      // The operator's app of the same name: its name is the operator's word.
      clients: [{ client_id: 'operators-notes', client_name: NAME, token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] }],
    });
    await server.accounts.create('olga', PASSWORD);
  });
  after(() => server?.stop());

  it('the sign-in and consent pages of an app that registered itself say that its name is not vouched for; an operator\'s app of the same name does not', async () => {
    const registered = await registerPublicClient(server.url, server.issuer, REDIRECT, { client_name: NAME, logo_uri: 'https://orange-notes.example.test/logo.png' });
    const agent = new Agent();
    const login = (await startAuthorization(agent, registered.config, REDIRECT, { scope: 'openid' })).page;
    assert.match(text(login), new RegExp(`Sign in to continue to ${NAME}`), text(login));
    assert.match(text(login), UNVOUCHED, 'the login page');
    const consent = await signInSteps(agent, login, { username: 'olga', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.match(text(consent), new RegExp(`${NAME} asks to:`), text(consent));
    assert.match(text(consent), UNVOUCHED, 'the consent page');

    const operators = await oidc.discovery(new URL(server.issuer), 'operators-notes', { token_endpoint_auth_method: 'none' }, oidc.None(), { execute: [oidc.allowInsecureRequests] });
    const other = await signInSteps(agent, (await startAuthorization(agent, operators, REDIRECT, { scope: 'openid' })).page, { username: 'olga', password: PASSWORD, consent: 'stop' });
    assert.match(text(other), new RegExp(`${NAME} asks to:`), text(other));
    assert.doesNotMatch(text(other), UNVOUCHED, 'the operator\'s app');
  });

  it('prompt=consent asking for one thing more lists what the app asks again beside it, as its tokens carry both (not the new one alone)', async () => {
    const app = await registerPublicClient(server.url, server.issuer, REDIRECT, { client_name: 'Plum Diary', scope: 'openid email profile' });
    const agent = new Agent();
    const items = (page: Page) => [...page.html.matchAll(/<li>([^<]*)<\/li>/g)].map((match) => match[1]);
    const first = await signInSteps(agent, (await startAuthorization(agent, app.config, REDIRECT, { scope: 'openid email' })).page, { username: 'olga', password: PASSWORD, consent: 'stop' });
    assert.deepEqual(items(first), ['Know who you are (your account identifier)', 'See your email address']);
    await agent.submit(first, '/confirm', {}, REDIRECT);
    const asked = await startAuthorization(agent, app.config, REDIRECT, { scope: 'openid email profile', prompt: 'consent' });
    assert.ok(asked.page.url.includes('/interaction/'), asked.page.url);
    // Before: ['See your name and profile details'] alone, while the code's tokens gave the email too.
    assert.deepEqual(items(asked.page), ['Know who you are (your account identifier)', 'See your email address', 'See your name and profile details']);
    const back = await agent.submit(asked.page, '/confirm', {}, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(app.config, new URL(back.url), { pkceCodeVerifier: asked.verifier, expectedState: oidc.skipStateCheck });
    assert.deepEqual(tokens.scope?.split(' ').sort(), ['email', 'openid', 'profile']);
  });
});
