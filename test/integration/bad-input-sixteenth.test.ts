/**
 * The sixteenth passes' web and input attacks (h7, docs/security-passes.md "the attack suite: web
 * and input attacks"): a claims parameter nested deep. The engine parses it whatever its depth, then
 * copies it: at the pushed request endpoint, 2,000 levels (32 KB of the 56 KiB a body may have)
 * overflowed the stack, a 500; the authorization and device authorization endpoints kept such an
 * object for every later step of the sign-in. Now any of them refuses one deeper than 32 levels as
 * the malformed request it is.
 */
import assert from 'node:assert/strict';
const MAX_CLAIMS_DEPTH = 32;
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'https://app.example.test/callback';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

/** A claims parameter whose `email` request nests `levels` objects deep (the parameter itself `levels` + 2). */
const nested = (levels: number) => `{"userinfo":{"email":${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}}}`;

describe('web and input attacks, sixteenth pass (h7): a claims parameter nested deep', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      clients: [
        { client_id: 'app', token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT] },
        { client_id: 'tv', token_endpoint_auth_method: 'none', application_type: 'native', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [] },
      ],
    });
  });
  after(() => server?.stop());

  const authorization = (claims: string) =>
    new URLSearchParams({ client_id: 'app', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256', claims });
  const post = (path: string, body: URLSearchParams) =>
    fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });

  it('the pushed request endpoint refuses one 2,000 levels deep as invalid_request, not a 500', async () => {
    const answer = await post('/request', authorization(nested(2_000)));
    const body = (await answer.json()) as Record<string, unknown>;
    assert.equal(answer.status, 400, JSON.stringify(body));
    assert.deepEqual(body, { error: 'invalid_request', error_description: `the claims parameter nests deeper than ${MAX_CLAIMS_DEPTH} levels` });
  });

  it('the authorization endpoint sends the app invalid_request for one 100 levels deep, and starts no sign-in', async () => {
    const answer = await fetch(`${server.url}/auth?${authorization(nested(100))}`, { redirect: 'manual' });
    assert.equal(answer.status, 303);
    const location = new URL(answer.headers.get('location')!, server.url);
    assert.equal(`${location.origin}${location.pathname}`, REDIRECT, location.href);
    assert.equal(location.searchParams.get('error'), 'invalid_request');
    assert.match(location.searchParams.get('error_description') ?? '', /nests deeper than/);
  });

  it('the device authorization endpoint refuses one 100 levels deep', async () => {
    const answer = await post('/device/auth', new URLSearchParams({ client_id: 'tv', scope: 'openid', claims: nested(100) }));
    assert.equal(answer.status, 400);
    assert.equal(((await answer.json()) as { error: string }).error, 'invalid_request');
  });

  it('a claims parameter of the most levels taken, and an ordinary one, are pushed as before', async () => {
    for (const claims of [nested(MAX_CLAIMS_DEPTH - 2), '{"userinfo":{"email":{"essential":true}},"id_token":{"acr":{"values":["mfa"]}}}']) {
      const answer = await post('/request', authorization(claims));
      assert.equal(answer.status, 201, await answer.text());
    }
    assert.equal((await post('/request', authorization(nested(MAX_CLAIMS_DEPTH - 1)))).status, 400, 'one level more is refused');
  });
});
