/**
 * The seventeenth conformance pass (docs/security-passes.md, "Looked at in the seventeenth passes:
 * the letter of the specs (h3)"): what a refusal of a `resource` says. Black box over HTTP, raw
 * requests.
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
      env: {
        RESOURCE_SERVERS: JSON.stringify([
          { identifier: API_A, scopes: ['ra'], format: 'jwt', grants: [{ client_id: 'machine', scopes: ['ra'] }] },
          { identifier: API_B, scopes: ['rb'], format: 'jwt', grants: [{ client_id: 'machine', scopes: ['rb'] }] },
        ]),
      },
      clients: [
        webClient('web', SECRET, { scope: 'openid offline_access ra rb' }),
        webClient('machine', SECRET, { grant_types: ['client_credentials'], response_types: [], redirect_uris: [], post_logout_redirect_uris: [] }),
      ],
    });
  });
  after(() => op?.stop());

  const token = async (params: [string, string][], client = 'web') => {
    const response = await fetch(op.metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client}:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams(params),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string | undefined> };
  };

  /** A code for the person's consent to `scope` at both APIs (RFC 8707 §2.1: several resource parameters). */
  const code = async (scope: string) => {
    const agent = new Agent();
    const query = new URLSearchParams({ client_id: 'web', response_type: 'code', redirect_uri: CALLBACK, scope, prompt: 'consent', state: 's', code_challenge: CHALLENGE, code_challenge_method: 'S256' });
    query.append('resource', API_A);
    query.append('resource', API_B);
    const first = await agent.follow(`${op.metadata.authorization_endpoint!}?${query}`, {}, CALLBACK);
    const back = await signInSteps(agent, first, { username: ALICE.username, password: ALICE.password, stopAt: CALLBACK });
    const issued = new URL(back.url).searchParams.get('code');
    assert.ok(issued, back.url);
    return issued;
  };
  const redeem = (issued: string, extra: [string, string][] = []) => token([['grant_type', 'authorization_code'], ['code', issued], ['redirect_uri', CALLBACK], ['code_verifier', VERIFIER], ...extra]);

  it("a refresh naming one API with a scope granted only at another is invalid_target saying which scope it asked for, not that nothing was granted there, and the token still refreshes (RFC 8707 §2.2, RFC 6749 §6)", async () => {
    const issued = await redeem(await code('openid offline_access ra rb'));
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

    // Without resource, of a grant at both APIs: the client named no resource, let alone several.
    const unnamed = await token([['grant_type', 'refresh_token'], ['refresh_token', granted.body.refresh_token!], ['scope', 'ra']]);
    assert.equal(unnamed.status, 400);
    assert.equal(unnamed.body.error, 'invalid_target');
    assertAsksToNameOne(unnamed.body.error_description);
  });

  function assertAsksToNameOne(description: string | undefined): void {
    assert.doesNotMatch(description ?? '', /must be requested/, 'no resource parameter was sent');
    assert.match(description ?? '', /resource parameter/);
    for (const api of [API_A, API_B]) assert.ok(description?.includes(api), `${description} names ${api}`);
  }

  it('a code for two APIs redeemed without resource is invalid_target asking to name one, not to send a single one (RFC 8707 §2.2); with one named, it is redeemed', async () => {
    const issued = await code('offline_access ra rb');
    const unnamed = await redeem(issued);
    assert.equal(unnamed.status, 400);
    assert.equal(unnamed.body.error, 'invalid_target');
    assertAsksToNameOne(unnamed.body.error_description);
    // Several named: the engine's own words, which are right then.
    const several = await redeem(issued, [['resource', API_A], ['resource', API_B]]);
    assert.equal(several.body.error, 'invalid_target');
    assert.match(several.body.error_description ?? '', /only a single resource indicator value must be requested/);
    const named = await redeem(issued, [['resource', API_B]]);
    assert.equal(named.status, 200, JSON.stringify(named.body));
    assert.equal(named.body.scope, 'rb');
  });

  it("client_credentials naming two APIs is refused for naming two, before either API's scopes are weighed: not invalid_scope for a scope held at the other (RFC 8707 §2.2)", async () => {
    for (const scope of [[], [['scope', 'ra']], [['scope', 'rb']]] as [string, string][][]) {
      const answer = await token([['grant_type', 'client_credentials'], ['resource', API_A], ['resource', API_B], ...scope], 'machine');
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'invalid_target', JSON.stringify(scope));
      assert.match(answer.body.error_description ?? '', /only a single resource indicator value/, JSON.stringify(scope));
    }
    // The same API twice is one API (held): a token for it.
    const twice = await token([['grant_type', 'client_credentials'], ['resource', API_A], ['resource', API_A], ['scope', 'ra']], 'machine');
    assert.equal(twice.status, 200, JSON.stringify(twice.body));
    assert.equal(twice.body.scope, 'ra');
  });
});
