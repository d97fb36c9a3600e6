/**
 * RFC 6749 §5.2 and §4.1.2.1 (and RFC 8628 §3.1, which takes §5.2's codes): a client that uses a
 * grant type or response type it is not registered for is `unauthorized_client`; a response type
 * the server does not support at all is `unsupported_response_type`. Black box, over HTTP.
 */
import assert from 'node:assert/strict';
import { Agent, startOp, webClient, type Op } from './fixture.js';

const SECRET = 'unauthorized-client-secret-with-plenty-of-entropy';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('unauthorized_client (RFC 6749 §5.2, §4.1.2.1)', function () {
  this.timeout(60_000);
  let op: Op;

  before(async () => {
    op = await startOp({
      clients: [
        // The code flow only: no refresh tokens, no client credentials, no device flow.
        webClient('web', SECRET, { grant_types: ['authorization_code'] }),
        // A machine with a redirect URI but no response type: it may not use the authorization endpoint.
        { client_id: 'machine', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: ['https://machine.example.test/callback'] },
      ],
    });
  });
  after(() => op?.stop());

  const basic = (id: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${SECRET}`).toString('base64')}` });
  async function post(url: string, params: Record<string, string>, id: string) {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...basic(id) }, body: new URLSearchParams(params) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it('token endpoint: client_credentials, refresh_token and device_code by a client without them', async () => {
    const token = op.metadata.token_endpoint!;
    for (const params of <Record<string, string>[]>[
      { grant_type: 'client_credentials' },
      { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43) },
      { grant_type: DEVICE_GRANT, device_code: 'x'.repeat(43) },
    ]) {
      const answer = await post(token, params, 'web');
      assert.equal(answer.status, 400, params.grant_type);
      assert.equal(answer.body.error, 'unauthorized_client', `${params.grant_type}: ${JSON.stringify(answer.body)}`);
      assert.ok(!('access_token' in answer.body));
    }
    const code = await post(token, { grant_type: 'authorization_code', code: 'x'.repeat(43), redirect_uri: 'https://machine.example.test/callback' }, 'machine');
    assert.equal(code.body.error, 'unauthorized_client');
  });

  it('token endpoint: an unknown grant type stays unsupported_grant_type', async () => {
    const answer = await post(op.metadata.token_endpoint!, { grant_type: 'urn:example:nothing' }, 'web');
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error, 'unsupported_grant_type');
  });

  it('device authorization endpoint: a client not registered for the device grant', async () => {
    const answer = await post(op.metadata.device_authorization_endpoint as string, { scope: 'openid' }, 'web');
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error, 'unauthorized_client');
  });

  it('authorization endpoint: response_type=code for a client without it is unauthorized_client, back at its redirect URI with state', async () => {
    const redirectUri = 'https://machine.example.test/callback';
    const url = new URL(op.metadata.authorization_endpoint!);
    url.search = new URLSearchParams({ client_id: 'machine', response_type: 'code', redirect_uri: redirectUri, scope: 'openid', state: 'st', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' }).toString();
    const page = await new Agent().follow(url.href, {}, redirectUri);
    assert.ok(page.url.startsWith(redirectUri), page.url);
    const params = new URL(page.url).searchParams;
    assert.equal(params.get('error'), 'unauthorized_client');
    assert.equal(params.get('state'), 'st');
    assert.equal(params.get('code'), null);
  });

  it('authorization endpoint: a response type the server does not support is unsupported_response_type', async () => {
    const redirectUri = 'https://web.example.test/callback';
    const url = new URL(op.metadata.authorization_endpoint!);
    url.search = new URLSearchParams({ client_id: 'web', response_type: 'token', redirect_uri: redirectUri, scope: 'openid', state: 'st' }).toString();
    const page = await new Agent().follow(url.href, {}, redirectUri);
    const where = new URL(page.url);
    const params = where.hash ? new URLSearchParams(where.hash.slice(1)) : where.searchParams;
    assert.equal(params.get('error'), 'unsupported_response_type', page.url);
  });
});
