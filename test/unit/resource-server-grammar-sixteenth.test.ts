/**
 * latchkey/resource-server answers an Authorization header whose token breaks its scheme's grammar
 * as a malformed request (RFC 6750 §2.1, §3.1: invalid_request, 400), as Latchkey's own userinfo,
 * registration, admin API and revocation feed do (docs/security-passes.md, "Looked at in the
 * sixteenth passes: the letter of the specs"). The far side is the stand-in issuer of
 * test/helpers/stand-in-issuer.ts.
 */
import assert from 'node:assert/strict';
import { createProtectedResource, createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { startStandInIssuer, type StandInIssuer } from '../helpers/stand-in-issuer.js';

describe('latchkey/resource-server: a malformed Authorization header is invalid_request (sixteenth passes)', () => {
  let standIn: StandInIssuer;
  let helper: ResourceServer;

  before(async () => {
    standIn = await startStandInIssuer('k1', () => ({ entries: [], cursor: null, more: false }));
    helper = await createResourceServer({ issuer: standIn.issuer, audience: 'https://api.example.test', clientId: 'api', clientSecret: 'secret' });
  });
  after(async () => {
    helper?.close();
    await standIn?.close();
  });

  const refusal = (header: string | undefined) =>
    helper.verify(header).then(
      () => assert.fail(`${JSON.stringify(header)} was accepted`),
      (error: unknown) => {
        assert.ok(error instanceof TokenRejected, String(error));
        return error;
      },
    );

  it('a Bearer or DPoP header with no token, or a token outside b64token / token68, is invalid_request: status 400, the failing scheme\'s challenge naming it (RFC 6750 §2.1, §3.1; RFC 9449 §7.1)', async () => {
    const api = createProtectedResource({ resource: 'https://api.example.test', authorizationServers: [standIn.issuer] });
    for (const header of ['Bearer', 'Bearer a b', 'Bearer a"b', 'Bearer a,b', 'Bearer =abc', 'Bearer a=b', 'bearer a\\b', 'DPoP a;b']) {
      const error = await refusal(header);
      assert.equal(error.code, 'invalid_request', header);
      assert.equal(error.status, 400, header);
      assert.match(helper.challenge(error), new RegExp(`^${error.scheme}\\b[^]*error="invalid_request"`), header);
      assert.equal(api.unauthorized(error).status, 400, `${header}: ProtectedResource answers it 400 too`);
    }
  });

  it('held: a well-formed token that is not a JWT stays invalid_token (401), and no header at all a challenge without an error (RFC 6750 §3.1)', async () => {
    const garbage = await refusal('Bearer not-a-jwt');
    assert.equal(garbage.code, 'invalid_token');
    assert.equal(garbage.status, 401);
    const none = await refusal(undefined);
    assert.equal(none.status, 401);
    assert.doesNotMatch(helper.challenge(none), /error=/);
    const scope = new TokenRejected('missing scope: write', 'insufficient_scope');
    assert.equal(scope.status, 403);
  });
});
