/**
 * The sixteenth fresh-eyes conformance pass (2026-12-07): the letter of the specs where the earlier
 * spec-letter files did not reach (docs/security-passes.md, "Looked at in the sixteenth passes: the
 * letter of the specs"). Black box over HTTP: raw requests, as a client that got its grammar wrong
 * sends them.
 */
import assert from 'node:assert/strict';
import { initialAccessToken } from '../helpers/operator.js';
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

  it('registration of an algorithm or grant type not offered says what is offered, as discovery lists it, not what such a value would need (RFC 7591 §3.2.2)', async () => {
    const register = async (metadata: Record<string, unknown>) => {
      const response = await fetch(op.metadata.registration_endpoint!, {
        method: 'POST',
        headers: { authorization: `Bearer ${await initialAccessToken(op.server!)}`, 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: ['https://app.example.test/callback'], ...metadata }),
      });
      const body = (await response.json()) as { error?: string; error_description?: string };
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal(body.error, 'invalid_client_metadata');
      return body.error_description ?? '';
    };
    const jwks = { keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }] };
    const listed = (values: readonly string[]) => values.join(', ');
    // HS256 is not offered: the engine asked for a client_secret first (even with one sent: registration issues secrets).
    assert.equal(
      await register({ token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'HS256', client_secret: 'x'.repeat(40), jwks }),
      `token_endpoint_auth_signing_alg must be one of: ${listed(op.metadata.token_endpoint_auth_signing_alg_values_supported!)}`,
    );
    assert.equal(
      await register({ token_endpoint_auth_method: 'private_key_jwt', id_token_signed_response_alg: 'HS256', jwks }),
      `id_token_signed_response_alg must be one of: ${listed(op.metadata.id_token_signing_alg_values_supported!)}`,
    );
    assert.equal(
      await register({ token_endpoint_auth_method: 'none', userinfo_signed_response_alg: 'HS256' }),
      `userinfo_signed_response_alg must be one of: ${listed(op.metadata.userinfo_signing_alg_values_supported!)}`,
    );
    // CIBA is not offered: the engine asked for its backchannel_token_delivery_mode first.
    for (const grant of ['urn:openid:params:grant-type:ciba', 'implicit', 'urn:ietf:params:oauth:grant-type:token-exchange']) {
      assert.equal(await register({ grant_types: ['authorization_code', grant] }), `grant_types can only contain: ${listed(op.metadata.grant_types_supported!)}`, grant);
    }
  });
});
