/**
 * The eleventh fresh-eyes conformance pass (2026-12-07): the engine-side letters the tenth pass left
 * (docs/security-passes.md, "the letter of the specs, eleventh pass"), each read against the spec
 * text, then a sweep of every endpoint's answers to bad input. Black box over HTTP (fetch,
 * openid-client, an Agent as the person).
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, ALICE, RelyingParty, startOp, webClient, type Op, answerOf } from './fixture.js';

const SECRET = 'spec-letter-eleventh-client-secret-with-plenty-of-entropy';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('Spec-letter pass, eleventh (the engine-side letters left open, and a sweep)', function () {
  this.timeout(60_000);
  let op: Op;
  let web: RelyingParty;
  let alice: Agent;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      env: { REGISTRATION_OPEN: 'true' },
      clients: [
        webClient('web', SECRET),
        { client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: [DEVICE_GRANT], response_types: [], redirect_uris: [] },
      ],
    });
    web = await RelyingParty.create(op, 'web', { secret: SECRET });
    alice = new Agent();
    await web.signIn(alice, ALICE, { scope: 'openid profile' });
  });
  after(async () => {
    await op?.stop();
  });

  const basic = `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}`;
  const postForm = async (url: string, params: Record<string, string>, headers: Record<string, string> = {}) =>
    answerOf(await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(params) }));

  it('userinfo answers a POST sent with its Bearer header whatever the type of its body, which carries no token unless a form (Core §5.3.1 "HTTP GET or HTTP POST"; RFC 6750 §2.1, §2.2)', async () => {
    const tokens = await web.redeem(await web.authorize(alice, { prompt: 'none', scope: 'openid profile' }));
    const userinfo = op.metadata.userinfo_endpoint!;
    const bodies: [string, string | undefined][] = [
      ['application/json', undefined],
      ['application/json', '{}'],
      ['application/json; charset=utf-8', '{"scope":"openid"}'],
      ['text/plain', 'hello'],
      ['multipart/form-data; boundary=x', '--x--\r\n'],
    ];
    for (const [type, body] of bodies) {
      const answer = await answerOf(await fetch(userinfo, { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': type }, body }));
      assert.equal(answer.status, 200, `${type} ${String(body)}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.sub, op.subs.alice);
      assert.equal(answer.body.name, ALICE.name);
    }
    // A token in a body of another type than a form is no token (RFC 6750 §2.2): a bare challenge, as with none sent.
    const inJson = await answerOf(await fetch(userinfo, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ access_token: tokens.access_token }) }));
    assert.equal(inJson.status, 401, JSON.stringify(inJson.body));
    assert.equal(inJson.body.error, 'invalid_token');
    assert.equal(inJson.body.sub, undefined);
    assert.doesNotMatch(String(inJson.headers.get('www-authenticate')), /error=/);
    // A form body is still read: its token, and its scope.
    const inForm = await postForm(userinfo, { access_token: String(tokens.access_token), scope: 'openid' });
    assert.equal(inForm.status, 200, JSON.stringify(inForm.body));
    assert.deepEqual(Object.keys(inForm.body), ['sub']);
  });

  it('a max_age that is not a count of seconds in decimal digits is invalid_request: at /auth at the redirect URI with state and iss, pushed, and at device authorization (Core §3.1.2.1, §3.1.2.6; RFC 6749 §4.1.2.1)', async () => {
    const loose = ['0x10', '1e3', ' 5', '5 ', '+5', '-0', '1.0', '0b1', '٣'];
    for (const maxAge of loose) {
      const flow = await web.authorize(alice, { prompt: 'none', max_age: maxAge });
      assert.ok(flow.page.url.startsWith(web.redirectUri), `${JSON.stringify(maxAge)}: ${flow.page.status} ${flow.page.url}`);
      const answer = new URL(flow.page.url).searchParams;
      assert.equal(answer.get('error'), 'invalid_request', JSON.stringify(maxAge));
      assert.equal(answer.get('code'), null, JSON.stringify(maxAge));
      assert.equal(answer.get('state'), flow.state);
      assert.equal(answer.get('iss'), op.issuer);
      const pushed = await postForm(
        op.metadata.pushed_authorization_request_endpoint!,
        { client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: web.redirectUri, code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256', max_age: maxAge },
        { authorization: basic },
      );
      assert.equal(pushed.status, 400, `${JSON.stringify(maxAge)}: ${JSON.stringify(pushed.body)}`);
      assert.equal(pushed.body.error, 'invalid_request');
      const device = await postForm(op.metadata.device_authorization_endpoint!, { client_id: 'tv', scope: 'openid', max_age: maxAge });
      assert.equal(device.status, 400, `${JSON.stringify(maxAge)}: ${JSON.stringify(device.body)}`);
      assert.equal(device.body.error, 'invalid_request');
      assert.equal(device.body.device_code, undefined);
    }
    // Decimal digits work as before: a fresh session passes a long max_age, 0 asks for a sign-in.
    for (const [maxAge, expected] of [['3600', 'code'], ['0003600', 'code'], ['0', 'login_required']] as const) {
      const flow = await web.authorize(alice, { prompt: 'none', max_age: maxAge });
      const answer = new URL(flow.page.url).searchParams;
      assert.ok(answer.get(expected === 'code' ? 'code' : 'error'), `${maxAge}: ${flow.page.url}`);
      if (expected !== 'code') assert.equal(answer.get('error'), expected);
    }
    const device = await postForm(op.metadata.device_authorization_endpoint!, { client_id: 'tv', scope: 'openid', max_age: '60' });
    assert.equal(device.status, 200, JSON.stringify(device.body));
  });

  it('held: a client registered without grant_types is told the ones it got, authorization_code and refresh_token, and each works (RFC 7591 §2 makes authorization_code alone the client\'s default, §3.2.1 lets the server provision others and return them)', async () => {
    const registered = await answerOf(await fetch(op.metadata.registration_endpoint!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['https://eleventh.example.test/callback'] }) }));
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    assert.deepEqual(registered.body.grant_types, ['authorization_code', 'refresh_token']);
    const read = await answerOf(await fetch(String(registered.body.registration_client_uri), { headers: { authorization: `Bearer ${String(registered.body.registration_access_token)}` } }));
    assert.deepEqual(read.body.grant_types, ['authorization_code', 'refresh_token'], 'RFC 7592 §2.1 reads the same');
    const client = `Basic ${Buffer.from(`${String(registered.body.client_id)}:${String(registered.body.client_secret)}`).toString('base64')}`;
    // Each grant is the client's: a made-up code or refresh token is invalid_grant, never unauthorized_client.
    const grants: Record<string, string>[] = [{ grant_type: 'refresh_token', refresh_token: 'made-up' }, { grant_type: 'authorization_code', code: 'made-up', redirect_uri: 'https://eleventh.example.test/callback', code_verifier: 'x'.repeat(43) }];
    for (const params of grants) {
      const answer = await postForm(op.metadata.token_endpoint!, params, { authorization: client });
      assert.equal(answer.status, 400, JSON.stringify(answer.body));
      assert.equal(answer.body.error, 'invalid_grant', params.grant_type);
    }
    const unregistered = await postForm(op.metadata.token_endpoint!, { grant_type: 'client_credentials' }, { authorization: client });
    assert.equal(unregistered.body.error, 'unauthorized_client');
  });
});
