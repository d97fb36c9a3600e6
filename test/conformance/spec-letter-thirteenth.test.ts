/**
 * The thirteenth fresh-eyes conformance pass (2026-12-07): what the twelfth pass left, and letters no
 * check covered (docs/security-passes.md, "the thirteenth fresh-eyes passes … the letter of the
 * specs"). Black box over HTTP (openid-client, an Agent as the person).
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { Agent, ALICE, callbackParams, isConsent, RelyingParty, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'spec-letter-thirteenth-client-secret-with-plenty-of-entropy';

describe('Spec-letter pass, thirteenth (left open before, and letters no check covered)', function () {
  this.timeout(60_000);
  let op: Op;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      clients: [webClient('web', SECRET), webClient('conform', SECRET, { id_token_scope_claims: false })],
    });
  });
  after(async () => {
    await op?.stop();
  });

  const userinfo = async (accessToken: string) =>
    (await (await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: `Bearer ${accessToken}` } })).json()) as Record<string, unknown>;

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
