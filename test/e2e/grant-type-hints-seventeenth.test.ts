/**
 * The token endpoint's unsupported_grant_type names the grant meant for a slip of an offered one
 * (`client-credentials`), and says why the password and implicit grants are not offered, where the
 * engine said "unsupported grant_type requested" alone; the request's value is never repeated
 * (src/provider/patches/grant-type-hints.ts; docs/security-passes.md, "Looked at in the seventeenth
 * passes: the newcomer's first hour").
 */
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';

const SECRET = 'grant-type-hints-secret-with-plenty-of-entropy-0123';

describe('e2e: an unsupported grant_type says which was meant (seventeenth passes)', function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startServer({ clients: [{ client_id: 'svc', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [] }] });
  });
  after(async () => {
    await server?.stop();
  });

  const token = async (grantType: string) => {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`svc:${SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: grantType }),
    });
    const body = (await response.json()) as { error?: string; error_description?: string };
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.equal(body.error, 'unsupported_grant_type');
    return body.error_description;
  };

  it('a slip of an offered grant type names it, without repeating what was sent', async () => {
    const said = await token('client-credentials');
    assert.equal(said, 'unsupported grant_type requested; did you mean client_credentials? (grant types are written exactly: authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code)');
    assert.match(String(await token('Authorization_Code')), /did you mean authorization_code\?/);
    assert.match(String(await token('device_code')), /did you mean urn:ietf:params:oauth:grant-type:device_code\?/);
  });

  it('the password and implicit grants say they are not offered; anything else keeps the engine\'s words', async () => {
    assert.match(String(await token('password')), /^the password grant is not offered \(RFC 9700 section 2\.4\)/);
    assert.match(String(await token('implicit')), /^the implicit grant is not offered/);
    assert.equal(await token('urn:example:"quoted"'), 'unsupported grant_type requested');
  });
});
