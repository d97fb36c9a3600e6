/**
 * latchkey/resource-server's refusal of a token whose audience is a slip away from the API's own
 * `audience` option (a trailing slash, the host's case) says that the option may be the slip:
 * Latchkey issues a token only for a registered API's identifier, so the caller cannot follow the
 * old advice alone ("asks for it with resource=<the option>", an API Latchkey does not know)
 * (docs/security-passes.md, "Looked at in the seventeenth passes: the newcomer's first hour").
 * A token for an unrelated API keeps the advice for the caller. The far side is the stand-in issuer.
 */
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { createResourceServer, TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';
import { startStandInIssuer, type StandInIssuer } from '../helpers/stand-in-issuer.js';

describe('latchkey/resource-server: an audience option a slip away from the token\'s (seventeenth passes)', () => {
  let standIn: StandInIssuer;
  let helper: ResourceServer;

  before(async () => {
    standIn = await startStandInIssuer('k1', () => ({ entries: [], cursor: null, more: false }));
    // The newcomer's slip: the API registered as https://api.example.test, the option with a slash.
    helper = await createResourceServer({ issuer: standIn.issuer, audience: 'https://api.example.test/', clientId: 'api', clientSecret: 'secret' });
  });
  after(async () => {
    helper?.close();
    await standIn?.close();
  });

  const now = () => Math.floor(Date.now() / 1000);
  const refusal = async (aud: string | string[]) => {
    const token = await new SignJWT({ iss: standIn.issuer, aud, sub: 'caller', client_id: 'caller', jti: `j${Math.random()}`, iat: now(), exp: now() + 900, scope: 'read' })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'k1' })
      .sign(standIn.privateKey);
    return helper.verify(`Bearer ${token}`).then(
      () => assert.fail('accepted'),
      (error: unknown) => {
        assert.ok(error instanceof TokenRejected, String(error));
        assert.equal(error.code, 'invalid_token');
        return error.message;
      },
    );
  };

  it('a token for the identifier without the slash (or in another case) names it as the audience to give', async () => {
    assert.equal(
      await refusal('https://api.example.test'),
      'the access token is for "https://api.example.test", not this API (https://api.example.test/): Latchkey issues tokens only for a registered API\'s identifier, compared exactly; if this API is registered as "https://api.example.test", give audience: "https://api.example.test" here; if not, the caller asks for it with resource=https://api.example.test/',
    );
    assert.match(await refusal('https://API.example.test'), /give audience: "https:\/\/API\.example\.test" here/);
    // What the token says is quoted, escaped: a line break the URL parser would drop stays out of the log line.
    assert.match(await refusal('https://api.example.test\n'), /give audience: "https:\/\/api\.example\.test\\n" here/);
  });

  it('a token for another API keeps the advice for the caller alone', async () => {
    assert.equal(
      await refusal('https://other.example.test'),
      'the access token is for "https://other.example.test", not this API (https://api.example.test/): the caller asks for it with resource=https://api.example.test/',
    );
  });
});
