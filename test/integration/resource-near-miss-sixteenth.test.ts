/**
 * A `resource` a slip away from an API's identifier (a trailing slash, `127.0.0.1` for
 * `localhost`, a host in capitals) was refused "unknown resource server: <it>" alone: identifiers are
 * compared exactly (RFC 8707 §2), and nothing said which API was meant. The refusal now names it,
 * where the client could have it anyway (docs/security-passes.md, "Looked at in the sixteenth passes:
 * the developer and the operator (h14)").
 */
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';

const SECRET = 'the-secret-latchkey-printed-0123456789abcdef';

describe('a resource a slip away from an API (sixteenth passes, h14)', function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startServer({
      cheapHashing: true,
      clients: [
        { client_id: 'svc', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
        { client_id: 'stranger', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
      ],
      env: {
        RESOURCE_SERVERS: JSON.stringify([
          { identifier: 'https://api.example.com', scopes: ['read'], format: 'jwt', grants: [{ client_id: 'svc', scopes: ['read'] }] },
          { identifier: 'http://localhost:4000/api', scopes: ['read'], format: 'jwt', grants: [{ client_id: 'svc', scopes: ['read'] }] },
        ]),
      },
    });
  });
  after(async () => server?.stop());

  const token = async (client: string, resource: string) => {
    const response = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client}:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'read' }),
    });
    return { status: response.status, body: (await response.json()) as { error?: string; error_description?: string; access_token?: string } };
  };

  it('names the API meant for a trailing slash, the other loopback name or a capitalised host, and is still refused', async () => {
    for (const [written, meant] of [
      ['https://api.example.com/', 'https://api.example.com'],
      ['https://API.example.com', 'https://api.example.com'],
      ['http://127.0.0.1:4000/api', 'http://localhost:4000/api'],
      ['http://localhost:4000/api/', 'http://localhost:4000/api'],
    ] as const) {
      const { status, body } = await token('svc', written);
      assert.equal(status, 400, written);
      assert.equal(body.error, 'invalid_target', written);
      assert.equal(body.error_description, `unknown resource server: ${written}; did you mean ${meant}? (an API's identifier is compared exactly)`);
    }
    assert.ok((await token('svc', 'https://api.example.com')).body.access_token, 'the identifier as registered');
  });

  it('held: a client without a grant at the API near it is not told of it, and a resource near nothing is refused as before', async () => {
    assert.equal((await token('stranger', 'https://api.example.com/')).body.error_description, 'unknown resource server: https://api.example.com/');
    assert.equal((await token('svc', 'https://elsewhere.example.com')).body.error_description, 'unknown resource server: https://elsewhere.example.com');
  });
});
