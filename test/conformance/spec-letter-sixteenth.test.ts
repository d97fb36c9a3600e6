/**
 * The sixteenth fresh-eyes conformance pass (2026-12-07): the letter of the specs where the earlier
 * spec-letter files did not reach (docs/security-passes.md, "Looked at in the sixteenth passes: the
 * letter of the specs"). Black box over HTTP: raw requests, as a client that got its grammar wrong
 * sends them.
 */
import assert from 'node:assert/strict';
import { startOp, type Op } from './fixture.js';

describe('Spec-letter pass, sixteenth', function () {
  this.timeout(60_000);
  let op: Op;

  before(async () => {
    op = await startOp();
  });
  after(() => op?.stop());

  /** Authorization headers of the Bearer scheme whose credentials are no b64token (RFC 6750 §2.1: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="). */
  const MALFORMED = ['Bearer a"b', 'Bearer a,b', 'Bearer a;b', 'Bearer =abc', 'Bearer a=b', 'Bearer a@b', 'Bearer a%20b', 'bearer a\\b'];

  it('a Bearer header whose token is no b64token is invalid_request (400, the challenge naming it) at userinfo, registration and RFC 7592, as at the revocation feed; a well-formed unknown token stays 401 invalid_token (RFC 6750 §2.1, §3.1 "otherwise malformed")', async () => {
    const endpoints: Record<string, (authorization: string) => Promise<Response>> = {
      userinfo: (authorization) => fetch(op.metadata.userinfo_endpoint!, { headers: { authorization } }),
      'registration (RFC 7591 §3)': (authorization) =>
        fetch(op.metadata.registration_endpoint!, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: JSON.stringify({ redirect_uris: ['https://app.example.test/callback'] }) }),
      'client configuration (RFC 7592 §2)': (authorization) => fetch(`${op.metadata.registration_endpoint}/some-client`, { headers: { authorization } }),
      'revocation feed': (authorization) => fetch(String(op.metadata.revocation_feed_endpoint), { headers: { authorization } }),
    };
    const wrong: string[] = [];
    for (const [name, send] of Object.entries(endpoints)) {
      for (const header of MALFORMED) {
        const answer = await send(header);
        const body = (await answer.json()) as { error?: string };
        const challenge = answer.headers.get('www-authenticate') ?? '';
        if (answer.status !== 400 || body.error !== 'invalid_request' || !/^Bearer\b[^]*\berror="invalid_request"/.test(challenge)) {
          wrong.push(`${name}, ${JSON.stringify(header)}: ${answer.status} ${body.error} [${challenge}]`);
        }
      }
      const unknown = await send('Bearer not-a-token-of-ours');
      assert.equal(unknown.status, 401, `${name}: a well-formed token that is not ours`);
      assert.match(unknown.headers.get('www-authenticate') ?? '', /error="invalid_token"/, name);
    }
    assert.deepEqual(wrong, [], 'each a malformed request, not a token that is not ours');

    // The DPoP scheme's token68 has the same characters (RFC 9449 §7.1): its challenge names the error.
    const dpop = await fetch(op.metadata.userinfo_endpoint!, { headers: { authorization: 'DPoP a"b', dpop: 'not-a-proof' } });
    assert.equal(dpop.status, 400);
    assert.match(dpop.headers.get('www-authenticate') ?? '', /^DPoP\b[^]*\berror="invalid_request"/);
  });
});
