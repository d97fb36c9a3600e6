/**
 * The pure parts of Client ID Metadata Documents (src/registration/client-metadata-documents.ts):
 * which client_ids name a document, how long a fetched one is cached, and what a document may say.
 * The fetching, caching and refusals over HTTP are in test/e2e/client-metadata-documents.test.ts.
 */
import assert from 'node:assert/strict';
import { cacheLifetime, checkDocument, documentUrl, DocumentRefused, shownRefusal } from '../../src/registration/client-metadata-documents.js';
import type { RegistrationPolicy } from '../../src/registration/policy.js';

const POLICY: RegistrationPolicy = {
  authMethods: ['client_secret_basic', 'private_key_jwt', 'none'],
  scopes: ['openid', 'profile', 'admin'],
  privilegedScopes: ['admin'],
};
const URL_ID = 'https://agent.example.com/oauth/client.json';
const doc = (extra: Record<string, unknown> = {}) => ({ client_id: URL_ID, redirect_uris: ['https://agent.example.com/cb'], ...extra });

function refusal(document: unknown): string {
  try {
    checkDocument(URL_ID, document, POLICY);
  } catch (error) {
    assert.ok(error instanceof DocumentRefused, String(error));
    return error.message;
  }
  assert.fail('accepted');
}

/** The refusal's words for the error page (DocumentRefused.shown), and its message. */
function refusalShown(document: unknown): { message: string; shown: string } {
  try {
    checkDocument(URL_ID, document, POLICY);
  } catch (error) {
    assert.ok(error instanceof DocumentRefused, String(error));
    return { message: error.message, shown: error.shown };
  }
  assert.fail('accepted');
}

describe('client metadata documents', () => {
  it("says on the page the member and its rule, none of the document's values; the message keeps them (security-passes.md, ninth passes, the letter of the specs: leftovers)", () => {
    const words = 'Call-1-800-555-0100';
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ redirect_uris: [`https://agent.example.com/${words}#x`] }, /^redirect_uris: a redirect URI must not have a fragment$/],
      [{ redirect_uris: [`http://${words}.example/cb`] }, /^redirect_uris: use https/],
      [{ redirect_uris: [`${words}.example:8443/cb`] }, /^redirect_uris: a host and port without a scheme$/],
      [{ redirect_uris: [`https://agent.example.com/cb?code=${words}`] }, /^redirect_uris: a query has code/],
      [{ redirect_uris: [`https://agent.example.com/${words}\\x`] }, /^redirect_uris: spaces and backslashes/],
      [{ post_logout_redirect_uris: [`https://elsewhere.example/${words}`] }, /^post_logout_redirect_uris: one is not on the document's own origin/],
      [{ client_name: `Latchkey ${words}` }, /^client_name: it reads as Latchkey's own name/],
      [{ client_name: `${words} Pаypal` }, /^client_name: it mixes letters of two alphabets/],
      [{ scope: `openid ${words}` }, /^scope: one is not offered here; allowed: openid profile$/],
      [{ token_endpoint_auth_method: words }, /^token_endpoint_auth_method: a client metadata document client authenticates/],
      [{ [`${words}_alg`]: 'HS256' }, /^a member named …_alg or …_enc names an algorithm that needs a shared secret/],
      [{ id_token_signed_response_alg: 'HS256' }, /^id_token_signed_response_alg names an algorithm that needs a shared secret/],
      [{ jwks: { keys: [{ kty: 'RSA', kid: words, n: '!!', e: 'AQAB' }] } }, /^jwks: key 1 is no public key that can be read$/],
      [{ logo_uri: `https://${words}.example/logo.png` }, /^logo_uri must be on the host of a redirect URI or a name under it/],
    ];
    for (const [extra, shown] of cases) {
      const refused = refusalShown(doc(extra));
      assert.match(refused.shown, shown, JSON.stringify(extra));
      assert.ok(!refused.shown.toLowerCase().includes(words.toLowerCase()) && !refused.shown.includes('1-800'), `the page's words repeat the document's: ${refused.shown}`);
      if (JSON.stringify(extra).includes(words)) assert.ok(refused.message.toLowerCase().includes(words.toLowerCase()), `the message names the value: ${refused.message}`);
    }
    // The engine's own checks: only a registered member's name, never what follows it.
    assert.equal(shownRefusal(`redirect_uris must not use the ${words} URI scheme`), 'redirect_uris: a value this server does not accept there (the JSON error and the server log say which)');
    assert.doesNotMatch(shownRefusal(`${words} must be a boolean`), /1-800/);
  });

  it('takes as document URLs only canonical https URLs with a path (http only to loopback, when allowed)', () => {
    assert.equal(documentUrl(URL_ID, false)?.host, 'agent.example.com');
    for (const id of [
      'https://agent.example.com', 'https://agent.example.com/', 'https://agent.example.com/a/../client.json',
      'https://agent.example.com/a/%2e%2e/client.json', 'https://user@agent.example.com/client.json',
      'https://agent.example.com/client.json#x', 'https://Agent.example.com/client.json', 'https://agent.example.com:443/c',
      'http://agent.example.com/client.json', 'ftp://agent.example.com/client.json', 'my-client', 'https://a b.com/c',
      'https://agent.example.com;sandbox/client.json', 'https://agent,example.com/client.json',
    ]) {
      assert.equal(documentUrl(id, false), undefined, id);
    }
    assert.equal(documentUrl('http://127.0.0.1:8080/client.json', false), undefined);
    assert.equal(documentUrl('http://127.0.0.1:8080/client.json', true)?.port, '8080');
    assert.equal(documentUrl('http://10.0.0.1/client.json', true), undefined);
  });

  it('caches for s-maxage, max-age or Expires, within the bounds, and for the minimum when told not to cache', () => {
    const lifetime = (headers: Record<string, string>) => cacheLifetime(new Headers(headers), 60, 3600);
    assert.equal(lifetime({ 'cache-control': 'public, max-age=600' }), 600);
    assert.equal(lifetime({ 'cache-control': 'max-age=600, s-maxage=900' }), 900);
    assert.equal(lifetime({ 'cache-control': 'max-age=600', age: '100' }), 500);
    assert.equal(lifetime({ 'cache-control': 'max-age=5' }), 60);
    assert.equal(lifetime({ 'cache-control': 'max-age=999999' }), 3600);
    assert.equal(lifetime({ 'cache-control': 'no-store' }), 60);
    assert.equal(lifetime({ 'cache-control': 'private, max-age=600' }), 60);
    const date = new Date('2026-01-01T00:00:00Z');
    assert.equal(lifetime({ date: date.toUTCString(), expires: new Date(date.getTime() + 1200_000).toUTCString() }), 1200);
    assert.equal(lifetime({ expires: 'garbage' }), 60);
    assert.equal(lifetime({}), 60);
  });

  it('accepts a public client, defaults to "none", and keeps only the code flow\'s grant types', () => {
    const metadata = checkDocument(URL_ID, doc({ grant_types: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:x'] }), POLICY);
    assert.equal(metadata.token_endpoint_auth_method, 'none');
    assert.deepEqual(metadata.grant_types, ['authorization_code', 'refresh_token']);
    assert.equal(checkDocument(URL_ID, doc({ token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://agent.example.com/jwks' }), POLICY).token_endpoint_auth_method, 'private_key_jwt');
  });

  it('refuses what is not the client\'s own, secrets, symmetric algorithms, and what the policy refuses', () => {
    assert.match(refusal([]), /not a JSON object/);
    assert.match(refusal(doc({ client_id: 'https://agent.example.com/other.json' })), /is not the URL/);
    assert.match(refusal(doc({ client_secret: 'x' })), /client secret/);
    assert.match(refusal(doc({ client_secret_expires_at: 0 })), /client secret/);
    assert.match(refusal(doc({ token_endpoint_auth_method: 'client_secret_post' })), /never a shared secret/);
    assert.match(refusal(doc({ token_endpoint_auth_method: 'client_secret_jwt' })), /never a shared secret/);
    assert.match(refusal(doc({ token_endpoint_auth_method: 'private_key_jwt' })), /jwks_uri/);
    assert.match(refusal(doc({ userinfo_signed_response_alg: 'HS512' })), /shared secret/);
    assert.match(refusal(doc({ id_token_encrypted_response_alg: 'A128KW' })), /shared secret/);
    assert.match(refusal(doc({ owner: 'someone' })), /owner/);
    assert.match(refusal(doc({ sector_identifier_uri: 'https://agent.example.com/s' })), /sector_identifier_uri/);
    assert.match(refusal(doc({ grant_types: ['client_credentials'] })), /authorization_code/);
    assert.match(refusal(doc({ redirect_uris: ['https://agent.example.com/*'] })), /wildcards/);
    assert.match(refusal(doc({ scope: 'openid admin' })), /granted only by an operator/);
    assert.match(refusal(doc({ logo_uri: 'javascript:alert(1)' })), /logo_uri must be an https URL/);
    // A name that would reverse the consent page's words around it, or hide in it (attacks › "bidi controls…").
    assert.match(refusal(doc({ client_name: 'Agent \u202Emoc.elgoog' })), /client_name cannot contain .* \(found U\+202E\)/);
    assert.match(refusal(doc({ client_name: 'Ag\u200Bent' })), /client_name cannot contain/);
    // Redirect URIs the document's own: its origin, loopback, or a private-use scheme named after its host.
    assert.match(refusal(doc({ redirect_uris: ['https://elsewhere.example/cb'] })), /on its own origin \(https:\/\/agent\.example\.com\)/);
    assert.match(refusal(doc({ redirect_uris: ['https://other.agent.example.com/cb'] })), /on its own origin/);
    assert.match(refusal(doc({ post_logout_redirect_uris: ['https://elsewhere.example/out'] })), /post_logout_redirect_uris/);
    assert.match(refusal(doc({ application_type: 'native', redirect_uris: ['com.elsewhere.app:/cb'] })), /on its own origin/);
    for (const redirect of ['https://agent.example.com/cb', 'http://127.0.0.1:4000/cb', 'http://localhost/cb']) {
      assert.deepEqual(checkDocument(URL_ID, doc({ redirect_uris: [redirect] }), POLICY).redirect_uris, [redirect]);
    }
    assert.deepEqual(checkDocument(URL_ID, doc({ application_type: 'native', redirect_uris: ['com.example.agent.ios:/cb'] }), POLICY).redirect_uris, ['com.example.agent.ios:/cb']);
  });
});
