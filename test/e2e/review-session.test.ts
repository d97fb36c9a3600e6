/**
 * The session review (2026-12-02): fresh eyes on this session's changes to src/, as an attacker.
 * Each test performs an attack that succeeded before its fix (docs/security.md, findings).
 */
import assert from 'node:assert/strict';
import { ALICE, Agent, RelyingParty, startOp, webClient, type Op } from '../conformance/fixture.js';
import { basic } from '../helpers/tokens.js';

const SECRET = 'review-session-secret-with-plenty-of-entropy-01234567';
const SINGLE = 'https://single.example.test/callback';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const HTTPS = 'https://spa.example.test/cb';
/** Names common hosts files give 127.0.0.1 or ::1 (Debian, Red Hat), and 0.0.0.0 mapped into IPv6 (as the URL parser writes it: registration refuses other spellings). */
const HOSTS_FILE_LOOPBACKS = [
  'https://localhost.localdomain:5177/cb',
  'https://ip6-localhost:5178/cb',
  'https://ip6-loopback:5179/cb',
  'https://localhost4:5180/cb',
  'https://localhost6.localdomain6:5181/cb',
  'https://[::ffff:0:0]:5182/cb',
];

describe('e2e: session review (2026-12-02)', function () {
  this.timeout(60_000);
  let op: Op;

  before(async () => {
    op = await startOp({
      people: [ALICE],
      clients: [
        webClient('single', SECRET, { redirect_uris: [SINGLE], grant_types: ['authorization_code'] }),
        { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: [HTTPS, ...HOSTS_FILE_LOOPBACKS], grant_types: ['authorization_code'] },
      ],
    });
  });
  after(() => op?.stop());

  it("a public client's loopback redirect URI spelt with a hosts file's loopback name still needs the person's consent: a remembered consent gives no code without a page there (RFC 8252 §8.6)", async () => {
    const agent = new Agent();
    // The person allowed the app once, at its https redirect URI.
    const app = await RelyingParty.create(op, 'spa', {}, HTTPS);
    await app.signIn(agent, ALICE, { scope: 'openid' });
    // The impersonator listens on this machine at a loopback redirect URI the app registered, and starts a silent request with its own PKCE.
    for (const redirectUri of HOSTS_FILE_LOOPBACKS) {
      const url = new URL(op.metadata.authorization_endpoint!);
      url.search = new URLSearchParams({ client_id: 'spa', response_type: 'code', scope: 'openid', prompt: 'none', redirect_uri: redirectUri, code_challenge: CHALLENGE, code_challenge_method: 'S256' }).toString();
      const location = new URL(String((await agent.request(url.href)).headers.get('location')));
      assert.equal(location.searchParams.get('code'), null, `${redirectUri}: ${location.href}`);
      assert.equal(location.searchParams.get('error'), 'interaction_required', `${redirectUri}: ${location.href}`);
    }
  });

  it("held: the marker of an omitted redirect_uri is the server's: a pushed request object, which the engine would store as the client sent it (marker and all, read back at /auth), is refused, as is one at /auth (request objects are off)", async () => {
    // An unsecured request object naming its redirect_uri and claiming it was left out.
    const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url');
    const claims = { iss: 'single', aud: op.issuer, client_id: 'single', response_type: 'code', scope: 'email', redirect_uri: SINGLE, latchkey_redirect_uri_omitted: '1', code_challenge: CHALLENGE, code_challenge_method: 'S256' };
    const request = `${encode({ alg: 'none' })}.${encode(claims)}.`;
    const push = await fetch(op.metadata.pushed_authorization_request_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: 'single', secret: SECRET }) },
      body: new URLSearchParams({ client_id: 'single', request }),
    });
    assert.equal(push.status, 400);
    assert.equal(((await push.json()) as { error?: string }).error, 'request_not_supported');
    const url = new URL(op.metadata.authorization_endpoint!);
    url.search = new URLSearchParams({ client_id: 'single', response_type: 'code', scope: 'email', request }).toString();
    const answer = await new Agent().request(url.href);
    const location = new URL(String(answer.headers.get('location')));
    assert.equal(location.searchParams.get('code'), null, location.href);
    assert.equal(location.searchParams.get('error'), 'request_not_supported', location.href);
  });
});
