/**
 * The seventeenth conformance pass (docs/security-passes.md, "Looked at in the seventeenth passes:
 * the letter of the specs"): what a refusal says. Black box over HTTP, raw requests.
 */
import assert from 'node:assert/strict';
import { signInSteps } from '../helpers/sign-in.js';
import { Agent, ALICE, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'spec-letter-seventeenth-secret-with-plenty-of-entropy';
const API_A = 'https://a.seventeenth.example.test';
const API_B = 'https://b.seventeenth.example.test';
const CALLBACK = 'https://web.example.test/callback';
/** RFC 7636 Appendix B's verifier and its S256 challenge. */
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

describe('Spec-letter pass, seventeenth', function () {
  this.timeout(60_000);
  let op: Op;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      env: { RESOURCE_SERVERS: JSON.stringify([{ identifier: API_A, scopes: ['ra'], format: 'jwt' }, { identifier: API_B, scopes: ['rb'], format: 'jwt' }]) },
      clients: [webClient('web', SECRET, { scope: 'openid offline_access ra rb' })],
    });
  });
  after(() => op?.stop());

  const token = async (params: [string, string][]) => {
    const response = await fetch(op.metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`web:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams(params),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string | undefined> };
  };

  it("a refresh naming one API with a scope granted only at another is invalid_target saying which scope it asked for, not that nothing was granted there, and the token still refreshes (RFC 8707 §2.2, RFC 6749 §6)", async () => {
    const agent = new Agent();
    const query = new URLSearchParams({ client_id: 'web', response_type: 'code', redirect_uri: CALLBACK, scope: 'openid offline_access ra rb', prompt: 'consent', state: 's', code_challenge: CHALLENGE, code_challenge_method: 'S256' });
    query.append('resource', API_A);
    query.append('resource', API_B);
    const first = await agent.follow(`${op.metadata.authorization_endpoint!}?${query}`, {}, CALLBACK);
    const back = await signInSteps(agent, first, { username: ALICE.username, password: ALICE.password, stopAt: CALLBACK });
    const code = new URL(back.url).searchParams.get('code');
    assert.ok(code, back.url);
    const issued = await token([['grant_type', 'authorization_code'], ['code', code], ['redirect_uri', CALLBACK], ['code_verifier', VERIFIER]]);
    assert.equal(issued.status, 200, JSON.stringify(issued.body));

    // rb was granted, at B; ra at A. Asking A for rb: the person granted something at A, not rb.
    const refused = await token([['grant_type', 'refresh_token'], ['refresh_token', issued.body.refresh_token!], ['resource', API_A], ['scope', 'rb']]);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'invalid_target');
    assert.doesNotMatch(refused.body.error_description ?? '', /nothing was granted/, 'ra was granted at A');
    assert.match(refused.body.error_description ?? '', /\brb\b/, 'names the scope asked for');

    const granted = await token([['grant_type', 'refresh_token'], ['refresh_token', issued.body.refresh_token!], ['resource', API_A], ['scope', 'ra']]);
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    assert.equal(granted.body.scope, 'ra');
  });
});
