/**
 * The red team's fifteenth pass at "Latchkey hands out more than was granted" (2026-12-04), black box:
 * what an app that registers itself may show a person about itself.
 *
 * - A self-registered app could call itself by Latchkey's own name: open registration (RFC 7591), its
 *   RFC 7592 update and the developer page took "Latchkey account page" (the name of Latchkey's own
 *   page, which people never see a consent page for: it is Latchkey itself), "Latchkey", or a
 *   lookalike ("Lаtchkey" with a Cyrillic а, "LATCH-KEY"). Our login page then read "Sign in to
 *   continue to Latchkey account page", and our consent page "Latchkey account page asks to: … keep
 *   access while you are not using it", under Latchkey's own header: a person is asked, on Latchkey's
 *   own page, to give Latchkey more, and gives it to the app. Such names are now refused where an
 *   app names itself (registration/policy.ts); an operator may still use them.
 * - A self-registered app's name had no length and needed nothing visible: 3,000 blank braille cells
 *   (U+2800, not a control or invisible character) pushed the sign-in page's heading and the app's
 *   name off the screen; a name of blanks alone named nobody. Where an app names itself, a name is now
 *   at most 100 characters and has a letter or digit.
 *
 * Held, pinned here: markup in an app's name is shown as text; a javascript: or data: link or logo
 * is refused at registration; an upstream added with --link-by-email that says `email_verified` as
 * the string "true" (or 1) beside a local person's verified address links nothing and signs no one
 * in, and a first sign-in saying so makes an account whose address apps get as unverified (the
 * fourteenth pass read this; performed here with the fake upstream). docs/security-passes.md lists what else the pass tried.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { developerSignIn } from '../helpers/developer.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { isLogin, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const insecure = { execute: [oidc.allowInsecureRequests] };
const PASSWORD = 'red team granted fifteen passphrase';
const SECRET = 'red-team-granted-fifteen-client-secret-0123456789';
const UPSTREAM_SECRET = 'red-team-granted-fifteen-upstream-secret-0123456789';
const NOTES = 'https://notes.example.test/cb';
const NOTES_CLIENT = { client_id: 'notes', client_name: 'Notes', client_secret: SECRET, redirect_uris: [NOTES], grant_types: ['authorization_code'], scope: 'openid email' };
const REDIRECT = 'https://app.example.net/cb';
/** An operator's own app may carry the service's name (the operator is trusted with what it registers). */
const OPERATORS = {
  client_id: 'status', client_name: 'Latchkey status board', token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['https://status.example.test/cb'], scope: 'openid',
};
/**
 * Latchkey's own names and lookalikes of them: the page's own, the service's, a Cyrillic а, a capital I for the l, full-width, spaced and cased otherwise, inside a longer name;
 * and (the authorization model, ninth pass) Cherokee and Greek capitals with a lunate sigma for the C, a Latin a with a stroke, a pound sign for the L.
 */
const LATCHKEY_NAMES = ['Latchkey account page', 'Latchkey', 'L\u0430tchkey', 'Iatchkey', '\uff2c\uff21\uff34\uff23\uff28\uff2b\uff25\uff39', 'LATCH-KEY', 'Latch key', 'Sign in with Latchkey', 'latchkey developer page',
  '\u13de\u0391\u03a4\u03f9\u0397\u039a\u0395\u03a5 account page', 'L\u2c65tchkey', '\u00a3atchkey'];

describe("e2e (openid-client): red team, fifteenth pass, an app that registers itself cannot call itself Latchkey, and what it shows is text on its own hosts", function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { REGISTRATION_OPEN: 'true', OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' }, clients: [OPERATORS, NOTES_CLIENT] });
    await server.accounts.create('alice', PASSWORD);
  });
  after(async () => {
    await server?.stop();
  });

  const register = (body: Record<string, unknown>) => fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const app = (name: string) => ({ client_name: name, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', scope: 'openid email offline_access' });

  it("dynamic registration refuses Latchkey's own name and its lookalikes as an app's name, naming the field", async () => {
    for (const name of LATCHKEY_NAMES) {
      const refused = await register(app(name));
      assert.equal(refused.status, 400, `${name}: ${await refused.clone().text()}`);
      const body = (await refused.json()) as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_client_metadata', name);
      assert.match(body.error_description, /^client_name: .*Latchkey's own name/, name);
    }
    // A name of its own is taken, and a word that only contains the letters apart is not Latchkey.
    for (const name of ['Notes', 'Latch and Key Locksmiths', 'Hatchkey']) {
      const taken = await register(app(name));
      assert.equal(taken.status, 201, `${name}: ${await taken.clone().text()}`);
    }
  });

  it('dynamic registration refuses a name of more than 100 characters or without a letter or digit: a name of 3,000 blank braille cells pushed the sign-in page\'s own heading off the screen', async () => {
    for (const name of ['Notes ' + '\u2800 '.repeat(3000), 'N'.repeat(101), '\u2800', '\u3000\u3000', ' ', '...']) {
      const refused = await register(app(name));
      assert.equal(refused.status, 400, `${JSON.stringify(name.slice(0, 20))}: ${(await refused.clone().text()).slice(0, 300)}`);
      assert.match(((await refused.json()) as { error_description: string }).error_description, /^client_name: /);
    }
    for (const name of ['N'.repeat(100), 'Ñotes \u2014 écrits', '\u30e1\u30e2', 'R2']) {
      const taken = await register(app(name));
      assert.equal(taken.status, 201, `${name}: ${await taken.clone().text()}`);
    }
  });

  it("an app registered under a name of its own cannot take Latchkey's by an RFC 7592 update, and keeps its name", async () => {
    const created = await register(app('Notes'));
    assert.equal(created.status, 201, await created.clone().text());
    const client = (await created.json()) as { client_id: string; registration_client_uri: string; registration_access_token: string };
    const changed = await fetch(client.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${client.registration_access_token}` },
      body: JSON.stringify({ ...app('Latchkey account page'), client_id: client.client_id }),
    });
    assert.equal(changed.status, 400, await changed.clone().text());
    assert.match(((await changed.json()) as { error_description: string }).error_description, /^client_name: /);
    const read = await fetch(client.registration_client_uri, { headers: { authorization: `Bearer ${client.registration_access_token}` } });
    assert.equal(((await read.json()) as { client_name: string }).client_name, 'Notes');
  });

  it("the developer page refuses an app named Latchkey (its own page's name) and makes none", async () => {
    const { agent, page } = await developerSignIn(server.issuer, 'alice', PASSWORD);
    const answer = await agent.submit(page, '/developer/apps', { name: 'Latchkey account page', type: 'web', redirect_uris: REDIRECT });
    assert.match(answer.html, /class="error"[^>]*>[^<]*Latchkey&#39;s own name|class="error"[^>]*>[^<]*Latchkey's own name/, answer.html.slice(0, 3000));
    const apps = await agent.follow(`${server.issuer}/developer`);
    assert.ok(!apps.html.includes('Latchkey account page</'), 'no app of that name is listed');
  });

  it("an operator's own app may carry the service's name: its sign-in page names it", async () => {
    const config = await oidc.discovery(new URL(server.issuer), OPERATORS.client_id, undefined, oidc.None(), insecure);
    const { page } = await startAuthorization(new Agent(), config, OPERATORS.redirect_uris[0]!);
    assert.ok(isLogin(page), page.url);
    assert.match(page.html, /to continue to <strong><bdi>Latchkey status board<\/bdi><\/strong>/);
  });

  it('held: markup in an app\'s name is shown as text on the sign-in page, and a javascript: or data: link or logo is refused', async () => {
    const created = await register(app('<img src=x onerror=alert(1)><b>Notes</b>'));
    assert.equal(created.status, 201, await created.clone().text());
    const { client_id } = (await created.json()) as { client_id: string };
    const config = await oidc.discovery(new URL(server.issuer), client_id, undefined, oidc.None(), insecure);
    const { page } = await startAuthorization(new Agent(), config, REDIRECT);
    assert.ok(isLogin(page), page.url);
    assert.ok(!page.html.includes('<img src=x'), 'the name is not markup');
    assert.ok(page.html.includes('&lt;img src=x onerror=alert(1)&gt;&lt;b&gt;Notes&lt;/b&gt;'), 'the name is shown as text');
    for (const [field, value] of [['policy_uri', 'javascript:alert(1)//app.example.net/'], ['tos_uri', 'data:text/html,<script>alert(1)</script>'], ['logo_uri', 'javascript:alert(1)'], ['client_uri', 'JaVaScRiPt:alert(1)']] as const) {
      const refused = await register({ ...app('Notes'), [field]: value });
      assert.equal(refused.status, 400, `${field}: ${await refused.clone().text()}`);
      assert.match(((await refused.json()) as { error_description: string }).error_description, new RegExp(`^${field} must be an https URL`));
    }
  });
  it('held, performed: an upstream that links by email and says email_verified "true" or 1 beside a local person\'s verified address links nothing and signs no one in (true asks for her sign-in); a first sign-in saying "true" gives apps the address unverified', async () => {
    const fake = await startFakeUpstream(UPSTREAM_SECRET);
    try {
      await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'linking', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: 'Linking', linkByEmail: true, endSession: false });
      const uma = await server.accounts.create('uma', PASSWORD, { email: 'uma@fake.example', email_verified: true });
      const notes = await oidc.discovery(new URL(server.issuer), 'notes', SECRET, undefined, insecure);
      const links = new UpstreamLinks(server.kv, server.accounts);
      const signIn = async (agent: Agent, sub: string, email: string, verified: unknown) => {
        Object.assign(fake.state, { mode: 'good', sub, email, emailVerified: verified });
        const verifier = oidc.randomPKCECodeVerifier();
        const url = oidc.buildAuthorizationUrl(notes, { redirect_uri: NOTES, scope: 'openid email', upstream: 'linking', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
        return { page: await agent.follow(url.href, {}, NOTES), verifier };
      };
      for (const verified of ['true', 1, 'yes']) {
        const sub = `mallory-${String(verified)}`;
        const { page } = await signIn(new Agent(), sub, 'uma@fake.example', verified);
        assert.equal(page.status, 409, `${JSON.stringify(verified)}: ${page.status} ${page.url}`);
        assert.match(page.html, /Linking did not confirm that the address is yours/);
        assert.equal(await links.find('linking', sub), undefined, 'nothing linked');
      }
      // Said as a boolean, the link is offered: the login page asks for Uma's own sign-in, and nothing is linked yet.
      const { page: offered } = await signIn(new Agent(), 'uma-upstream', 'uma@fake.example', true);
      assert.ok(!offered.url.startsWith(NOTES), 'no code without her sign-in');
      assert.ok(isLogin(offered), `${offered.status} ${offered.url}`);
      assert.equal(await links.find('linking', 'uma-upstream'), undefined);
      // A first sign-in with an address no one holds, said "true": the account made holds it unverified, and so do apps.
      const agent = new Agent();
      const { page: consent, verifier } = await signIn(agent, 'newcomer', 'newcomer@fake.example', 'true');
      const back = await agent.submit(consent, '/confirm', {}, NOTES);
      const tokens = await oidc.authorizationCodeGrant(notes, new URL(back.url), { pkceCodeVerifier: verifier });
      const made = (await links.find('linking', 'newcomer'))!;
      assert.ok(made && made.sub !== uma.sub);
      assert.equal((await server.accounts.find(made.sub))?.claims.email_verified, false);
      const info = await oidc.fetchUserInfo(notes, tokens.access_token, made.sub);
      assert.equal(info.email, 'newcomer@fake.example');
      assert.equal(info.email_verified, false);
    } finally {
      await fake.close();
    }
  });
});
