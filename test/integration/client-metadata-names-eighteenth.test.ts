/**
 * The eighteenth newcomer pass (h4): client metadata named as the request parameter it lists
 * (`redirect_uri` for `redirect_uris`, `post_logout_redirect_uri`, `grant_type`, `response_type`) was
 * dropped by the engine as metadata it does not know: an operator's client was made without its
 * post-logout URI (its sign-out refused later, "post_logout_redirect_uri not registered"), and one
 * given `grant_type: client_credentials` was told "redirect_uris is mandatory property". The admin
 * API and the `clients` setting now refuse it, naming the list. (RFC 7591 registration still ignores
 * metadata it does not understand, as §2 says it must.) See docs/security-passes.md, "the newcomer's
 * first hour (h4)".
 */
import assert from 'node:assert/strict';
import { latchkey } from '../helpers/process.js';
import { startServer, type TestServer } from '../helpers/server.js';

const OPS_SECRET = 'ops-secret-0123456789abcdef0123456789abcdef';

describe('newcomer, eighteenth pass: client metadata named as its request parameter', function () {
  this.timeout(60_000);
  let server: TestServer;
  let token: string;

  before(async () => {
    server = await startServer({ clients: [{ client_id: 'ops', client_secret: OPS_SECRET, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }] });
    const granted = await latchkey(server.env, ['apis', 'grant', '--client', 'ops', '--api', `${server.issuer}/admin`, '--scope', 'admin']);
    assert.equal(granted.status, 0, granted.stderr);
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`ops:${OPS_SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${server.issuer}/admin`, scope: 'admin' }),
    });
    token = ((await response.json()) as { access_token: string }).access_token;
    assert.ok(token);
  });
  after(() => server?.stop());

  const admin = async (method: string, path: string, body: unknown) => {
    const response = await fetch(`${server.url}/admin${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it('the admin API refuses redirect_uri, post_logout_redirect_uri, grant_type and response_type, naming the list meant, and makes no client', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ client_id: 'a1', redirect_uri: 'https://app.example.com/cb' }, 'redirect_uri is not client metadata: the list is redirect_uris, an array of URIs'],
      [{ client_id: 'a2', redirect_uris: ['https://app.example.com/cb'], post_logout_redirect_uri: 'https://app.example.com/out' }, 'post_logout_redirect_uri is not client metadata: the list is post_logout_redirect_uris, an array of URIs'],
      [{ client_id: 'a3', grant_type: 'client_credentials' }, 'grant_type is not client metadata: the list is grant_types, an array of grant types'],
      [{ client_id: 'a4', redirect_uris: ['https://app.example.com/cb'], response_type: 'code' }, 'response_type is not client metadata: the list is response_types, an array of response types'],
    ];
    for (const [metadata, description] of cases) {
      const { status, body } = await admin('POST', '/clients', metadata);
      assert.equal(status, 400, JSON.stringify(body));
      assert.deepEqual({ error: body.error, error_description: body.error_description }, { error: 'invalid_client_metadata', error_description: description });
      assert.equal((await fetch(`${server.url}/admin/clients/${String(metadata.client_id)}`, { headers: { authorization: `Bearer ${token}` } })).status, 404);
    }
    // And an update: the client keeps what it had.
    const made = await admin('POST', '/clients', { client_id: 'a5', redirect_uris: ['https://app.example.com/cb'], post_logout_redirect_uris: ['https://app.example.com/out'] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const changed = await admin('PUT', '/clients/a5', { redirect_uris: ['https://app.example.com/cb'], post_logout_redirect_uri: 'https://app.example.com/bye' });
    assert.equal(changed.status, 400);
    assert.equal(changed.body.error_description, 'post_logout_redirect_uri is not client metadata: the list is post_logout_redirect_uris, an array of URIs');
  });

  it('the clients setting refuses it at start, in one line naming the client and the list', async () => {
    await assert.rejects(
      startServer({ clients: [{ client_id: 'web', client_secret: OPS_SECRET, redirect_uri: 'http://localhost:8085/cb' }] }),
      { message: 'clients (CLIENTS): client "web": redirect_uri is not client metadata: the list is redirect_uris, an array of URIs' },
    );
  });
});
