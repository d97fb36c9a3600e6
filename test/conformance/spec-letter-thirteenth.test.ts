/**
 * The thirteenth fresh-eyes conformance pass (2026-12-07): what the twelfth pass left, and letters no
 * check covered (docs/security-passes.md, "the thirteenth fresh-eyes passes … the letter of the
 * specs"). Black box over HTTP (openid-client, an Agent as the person).
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { Agent, ALICE, answerOf, callbackParams, isConsent, RelyingParty, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'spec-letter-thirteenth-client-secret-with-plenty-of-entropy';
const basic = `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`;

describe('Spec-letter pass, thirteenth (left open before, and letters no check covered)', function () {
  this.timeout(60_000);
  let op: Op;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      clients: [
        webClient('web', SECRET),
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [] },
        webClient('conform', SECRET, { id_token_scope_claims: false }),
      ],
    });
  });
  after(async () => {
    await op?.stop();
  });

  const userinfo = async (accessToken: string) =>
    (await (await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${accessToken}` } })).json()) as Record<string, unknown>;

  const postForm = async (url: string, params: Record<string, string>, headers: Record<string, string> = { authorization: basic }) =>
    answerOf(await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) }));

  it("a claim request whose essential is not a boolean, or whose values is not an array, is invalid_request: at /auth at the redirect URI with state and iss, pushed and at device authorization; never a code whose acr another reader of the request took for unasked (Core §5.5.1 'essential', 'values'; RFC 6749 §4.1.2.1 malformed)", async () => {
    const rp = await RelyingParty.create(op, 'web', { secret: SECRET });
    const alice = new Agent();
    await rp.signIn(alice, ALICE, { scope: 'openid email' });
    const malformed = [
      { id_token: { acr: { essential: 1, values: ['mfa'] } } },
      { id_token: { acr: { essential: 'true', values: ['mfa'] } } },
      { id_token: { acr: { essential: true, value: ['mfa'] } } },
      { id_token: { acr: { values: 'mfa' } } },
      { id_token: { email: { essential: 'yes' } } },
      { userinfo: { email: { essential: null } } },
      { userinfo: { name: { values: { en: 'Alice' } } } },
      { id_token: { sub: { value: [op.subs.alice] } } },
    ];
    for (const request of malformed) {
      const claims = JSON.stringify(request);
      const flow = await rp.authorize(alice, { prompt: 'none', claims, state: 'malformed' });
      const params = callbackParams(flow);
      assert.equal(params.get('error'), 'invalid_request', `${claims}: ${flow.page.url}`);
      assert.match(params.get('error_description') ?? '', /claims/, claims);
      assert.equal(params.get('code'), null, claims);
      assert.equal(params.get('state'), 'malformed', claims);
      assert.equal(params.get('iss'), op.issuer, claims);
      const pushed = await postForm(op.metadata.pushed_authorization_request_endpoint!, {
        response_type: 'code', scope: 'openid', redirect_uri: rp.redirectUri, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', claims,
      });
      assert.equal(pushed.status, 400, `${claims}: ${JSON.stringify(pushed.body)}`);
      assert.equal(pushed.body.error, 'invalid_request', claims);
      const device = await postForm(op.metadata.device_authorization_endpoint!, { client_id: 'tv', scope: 'openid', claims }, {});
      assert.equal(device.status, 400, `${claims}: ${JSON.stringify(device.body)}`);
      assert.equal(device.body.error, 'invalid_request', claims);
    }
    // Well-formed requests go on as before: a boolean essential, values a list, value a string.
    for (const request of [{ id_token: { acr: { essential: false, values: ['mfa'] }, email: { essential: true } } }, { id_token: { sub: { value: op.subs.alice } }, userinfo: { email: { value: ALICE.email } } }]) {
      const flow = await rp.authorize(alice, { prompt: 'none', scope: 'openid email', claims: JSON.stringify(request) });
      assert.ok(callbackParams(flow).get('code'), `${JSON.stringify(request)}: ${flow.page.url}`);
    }
  });

  describe('the claims parameter naming a claim the person gave through its scope (Core §5.4, §5.5, §3.1.2.6)', () => {
    it('prompt=none asking by name for a claim of a scope the person allowed gets a code, not consent_required, and the claim where it was asked: the ID token, even of a client whose ID tokens leave scope claims out', async () => {
      for (const id of ['web', 'conform']) {
        const rp = await RelyingParty.create(op, id, { secret: SECRET });
        const alice = new Agent();
        await rp.signIn(alice, ALICE, { scope: 'openid email' });
        const claims = JSON.stringify({ id_token: { email: { essential: true } }, userinfo: { email_verified: null } });
        const flow = await rp.authorize(alice, { prompt: 'none', scope: 'openid email', claims, state: 'silent' });
        const params = callbackParams(flow);
        assert.equal(params.get('error'), null, `${id}: ${params.get('error')} ${params.get('error_description')}`);
        const tokens = await rp.redeem(flow);
        const idToken = decodeJwt(tokens.id_token!);
        assert.equal(idToken.email, ALICE.email, `${id}: the ID token holds the claim asked for in it`);
        const info = await userinfo(tokens.access_token);
        assert.equal(info.email, ALICE.email, id);
        assert.equal(info.email_verified, true, id);
        // Asked again without its scope in the request: the person allowed the app their address already.
        const again = await rp.authorize(alice, { prompt: 'none', scope: 'openid', claims: JSON.stringify({ id_token: { email: null } }) });
        assert.equal(callbackParams(again).get('error'), null, `${id}: ${callbackParams(again).get('error_description')}`);
        assert.equal(decodeJwt((await rp.redeem(again)).id_token!).email, ALICE.email, id);
      }
    });

    it('without prompt=none, such a request skips the consent page; a claim of a scope never allowed is still asked for (consent page), or consent_required with prompt=none', async () => {
      const rp = await RelyingParty.create(op, 'web', { secret: SECRET });
      const alice = new Agent();
      await rp.signIn(alice, ALICE, { scope: 'openid email' });
      const asked = await rp.authorize(alice, { scope: 'openid email', claims: JSON.stringify({ userinfo: { email: { essential: true } } }) });
      assert.ok(asked.page.url.startsWith(rp.redirectUri), `no consent page: ${asked.page.status} ${asked.page.url}`);
      assert.ok(callbackParams(asked).get('code'));
      // So in another browser: the grant made there from what the person allowed asks nothing more.
      const elsewhere = new Agent();
      const login = await rp.authorize(elsewhere, { scope: 'openid email', claims: JSON.stringify({ id_token: { email: null } }) });
      const back = await elsewhere.submit(login.page, '/login', { username: ALICE.username, password: ALICE.password }, rp.redirectUri);
      assert.ok(back.url.startsWith(rp.redirectUri), `no consent page after signing in: ${back.status} ${back.url}`);
      assert.equal(decodeJwt((await rp.redeem({ ...login, page: back })).id_token!).email, ALICE.email);
      // name is the profile scope's, which the person never allowed this app.
      const beyond = JSON.stringify({ id_token: { name: { essential: true } } });
      const silent = await rp.authorize(alice, { prompt: 'none', scope: 'openid email', claims: beyond });
      assert.equal(callbackParams(silent).get('error'), 'consent_required');
      const shown = await rp.authorize(alice, { scope: 'openid email', claims: beyond });
      assert.ok(isConsent(shown.page), `the consent page: ${shown.page.status} ${shown.page.url}`);
    });
  });
});
