/**
 * The fifteenth fresh-eyes conformance pass (2026-12-07): the letter of the specs where the earlier
 * spec-letter files did not reach (docs/security-passes.md, "Looked at in the fifteenth fresh-eyes
 * passes of 2026-12-07: the letter of the specs"). Black box over HTTP: openid-client as the
 * relying party, an Agent as the person, raw requests, and the fake upstream of
 * test/helpers/fake-upstream.ts for what Latchkey receives as a relying party itself.
 */
import assert from 'node:assert/strict';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';
import { ALICE, Agent, isConsent, RelyingParty, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'spec-letter-fifteenth-client-secret-with-plenty-of-entropy';
const REDIRECT = 'https://web.example.test/callback';

describe('Spec-letter pass, fifteenth', function () {
  this.timeout(60_000);
  let op: Op;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    op = await startOp({ people: [ALICE], clients: [webClient('web', SECRET)] });
    fake = await fakeUpstreamOf(op.server!, SECRET);
  });
  after(async () => {
    await op?.stop();
    await fake?.close();
  });

  const basic = (secret = SECRET) => `Basic ${Buffer.from(`web:${secret}`).toString('base64')}`;
  const post = (url: string, form: Record<string, string>, authorization = basic()) =>
    fetch(url, { method: 'POST', headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });

  it('a logout token without exp is refused (400) and ends nothing; the same with exp ends the session (Back-Channel Logout 1.0 §2.4 "exp REQUIRED", §2.6 step 4, errata set 1)', async () => {
    fake.state.mode = 'good';
    fake.state.sub = 'person-exp';
    fake.state.sid = 'sid-exp';
    const params = new URLSearchParams({ client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: 'fake' });
    const browser = new Agent();
    let page = await browser.follow(`${op.issuer}/auth?${params}`, {}, REDIRECT);
    if (isConsent(page)) page = await browser.submit(page, '/confirm', {}, REDIRECT);
    assert.ok(page.url.startsWith(REDIRECT) && new URL(page.url).searchParams.has('code'), `signed in through the upstream: ${page.status} ${page.url}`);
    const silent = async () => {
      const again = new URLSearchParams({ client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', prompt: 'none' });
      return (await browser.follow(`${op.issuer}/auth?${again}`, {}, REDIRECT)).url;
    };
    const backchannel = (token: string) => fetch(`${op.issuer}/upstream/fake/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });

    const withoutExp = await backchannel(await fake.logoutToken({ sid: 'sid-exp', exp: undefined }));
    const text = await withoutExp.text();
    assert.equal(withoutExp.status, 400, `no exp: ${withoutExp.status} ${text}`);
    assert.equal((JSON.parse(text) as { error: string }).error, 'invalid_request');
    assert.match(withoutExp.headers.get('cache-control') ?? '', /\bno-store\b/, 'the answer is not stored (the suite checks it at the back-channel logout URI)');
    assert.doesNotMatch(await silent(), /error=login_required/, 'still signed in');

    const withExp = await backchannel(await fake.logoutToken({ sid: 'sid-exp' }));
    assert.equal(withExp.status, 200, 'the fake sends exp by default');
    assert.match(withExp.headers.get('cache-control') ?? '', /\bno-store\b/);
    assert.match(await silent(), /error=login_required/, 'signed out');
  });

  it('the revocation endpoint answers Cache-Control: no-store and Pragma: no-cache, its 200 and its errors, as the token and introspection endpoints do (RFC 6749 §5.1; the request carries a token and the client\'s credentials)', async () => {
    const rp = await RelyingParty.create(op, 'web', { secret: SECRET });
    const tokens = await rp.redeem(await rp.signIn(new Agent(), ALICE));
    const revocation = op.metadata.revocation_endpoint!;
    const answers = {
      'a token revoked': await post(revocation, { token: tokens.access_token }),
      'an unknown token': await post(revocation, { token: 'not-a-token-of-ours' }),
      'no token (invalid_request)': await post(revocation, {}),
      'a wrong secret (invalid_client)': await post(revocation, { token: 'x' }, basic('not the secret')),
    };
    for (const [what, answer] of Object.entries(answers)) {
      assert.match(answer.headers.get('cache-control') ?? '', /\bno-store\b/, `${what}: ${answer.status} Cache-Control`);
      assert.equal(answer.headers.get('pragma'), 'no-cache', `${what}: Pragma`);
    }
    assert.deepEqual(Object.values(answers).map((answer) => answer.status), [200, 200, 400, 401]);
  });
});
