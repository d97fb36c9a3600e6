/**
 * The registration policy (src/registration/policy.ts) as a pure function of client metadata: what
 * it refuses, with which RFC 7591 description, and what it lets through. The HTTP paths that run it
 * (RFC 7591, the admin API, the developer page, the CLI) are covered in test/e2e/registration*.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { errors } from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';
import { openApiDocument } from '../../src/registration/openapi.js';
import { ALREADY_CHECKED, API_SCOPES_SET_ASIDE, applyRequirements, DEVICE_CODE_GRANT, enforcePolicy, readsAsOwnName, type RegistrationPolicy } from '../../src/registration/policy.js';
import { isLoopback } from '../../src/loopback.js';

const POLICY: RegistrationPolicy = {
  authMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
  scopes: ['openid', 'profile', 'email', 'offline_access', 'admin'],
  privilegedScopes: ['admin'],
};

const web = (extra: Record<string, unknown> = {}) => ({ redirect_uris: ['https://app.example.com/cb'], ...extra });

/** The description of the InvalidClientMetadata the metadata is refused with (fails if it passes). */
function refusal(metadata: Record<string, unknown>, selfService = false, policy = POLICY): string {
  try {
    enforcePolicy(policy, metadata, selfService);
  } catch (error) {
    assert.ok(error instanceof errors.InvalidClientMetadata, `refused with ${String(error)}`);
    return error.error_description!;
  }
  assert.fail(`accepted: ${JSON.stringify(metadata)}`);
}

describe('registration policy', () => {
  it('accepts an ordinary web client, a loopback http redirect and a native app with a reverse-domain scheme', () => {
    enforcePolicy(POLICY, web({ scope: 'openid profile', logo_uri: 'https://app.example.com/logo.png' }), true);
    enforcePolicy(POLICY, { redirect_uris: ['http://localhost:8080/cb', 'http://127.0.0.1/cb', 'http://[::1]:9/cb', 'http://app.localhost/cb'] }, true);
    enforcePolicy(POLICY, { application_type: 'native', redirect_uris: ['com.example.app:/callback'], token_endpoint_auth_method: 'none' }, true);
  });

  it('refuses wildcards, fragments, user names and passwords, relative URIs and http off loopback in redirect URIs, naming the field', () => {
    assert.match(refusal(web({ redirect_uris: ['https://*.example.com/cb'] })), /^redirect_uris: .*wildcards are not allowed/);
    assert.match(refusal(web({ redirect_uris: ['https://app.example.com/cb#x'] })), /^redirect_uris: .*must not have a fragment/);
    assert.match(refusal(web({ redirect_uris: ['https://app.example.com@evil.example/cb'] })), /^redirect_uris: .*must not have a user name or password/);
    assert.match(refusal(web({ redirect_uris: ['https://u:p@app.example.com/cb'] })), /^redirect_uris: .*must not have a user name or password/);
    assert.match(refusal(web({ post_logout_redirect_uris: ['http://a@localhost:8080/out'] })), /^post_logout_redirect_uris: .*must not have a user name or password/);
    assert.match(refusal(web({ redirect_uris: ['/cb'] })), /^redirect_uris: .*not an absolute URI/);
    assert.match(refusal(web({ redirect_uris: ['http://app.example.com/cb'] })), /^redirect_uris: .*use https/);
    assert.match(refusal(web({ post_logout_redirect_uris: ['http://app.example.com/bye'] })), /^post_logout_redirect_uris: .*use https/);
    // Not URI characters: parsers disagree on where "\" goes (WHATWG: a path; others: evil.example's userinfo ends), and drop tabs.
    for (const uri of ['https://app.example.com\\@evil.example/cb', 'https://app.example.com/c b', 'https://app.example.com/c\tb', 'https://app.example.com/cb\n']) {
      assert.match(refusal(web({ redirect_uris: [uri] })), /^redirect_uris: .*spaces and backslashes are not URI characters/s, JSON.stringify(uri));
      enforcePolicy(POLICY, web({ redirect_uris: [uri] }), false, ALREADY_CHECKED);
    }
    assert.match(refusal(web({ post_logout_redirect_uris: ['https://app.example.com\\bye'] })), /^post_logout_redirect_uris: .*spaces and backslashes/);
    // No "//" after http(s): a path to RFC 3986, a host to the URL parser.
    for (const uri of ['https:evil.example/cb', 'https:/evil.example/cb', 'HTTPS:evil.example/cb', 'http:localhost:8080/cb']) {
      assert.match(refusal(web({ redirect_uris: [uri] })), /^redirect_uris: .*names its host after "\/\/"/, uri);
      enforcePolicy(POLICY, web({ redirect_uris: [uri] }), false, ALREADY_CHECKED);
    }
    assert.match(refusal(web({ post_logout_redirect_uris: ['https:app.example.com/bye'] })), /^post_logout_redirect_uris: .*names its host after/);
    // "//" followed by another "/": an empty authority and a path to RFC 3986, a host to the URL parser
    // (security-passes.md, the session's own changes, ninth pass).
    for (const uri of ['https:///evil.example/cb', 'https:////evil.example/cb', 'HTTP:///localhost:8080/cb']) {
      assert.match(refusal(web({ redirect_uris: [uri] })), /^redirect_uris: .*names its host after "\/\/"/, uri);
    }
    assert.match(refusal(web({ post_logout_redirect_uris: ['https:///app.example.com/bye'] })), /^post_logout_redirect_uris: .*names its host after/);
  });

  it('allows custom schemes only for native apps, and only reverse domain names', () => {
    assert.match(refusal(web({ redirect_uris: ['com.example.app:/cb'] })), /custom scheme is allowed only for native apps/);
    assert.match(refusal({ application_type: 'native', redirect_uris: ['myapp:/cb'] }), /must be a reverse domain name/);
  });

  it('says what is missing from a redirect URI typed without http:// (it parses as the scheme "localhost:")', () => {
    assert.equal(refusal(web({ redirect_uris: ['localhost:8080/callback'] })), 'redirect_uris: localhost:8080/callback: a host and port without a scheme; did you mean http://localhost:8080/callback?');
    assert.match(refusal({ application_type: 'native', redirect_uris: ['app.example.com:8443'] }), /: a host and port without a scheme; did you mean https:\/\/app\.example\.com:8443\?$/);
  });

  it('refuses URI lists that are not arrays of strings before reading them', () => {
    assert.equal(refusal({ redirect_uris: 'https://app.example.com/cb' }), 'redirect_uris must be an array of URI strings');
    assert.equal(refusal({ redirect_uris: [42] }), 'redirect_uris must be an array of URI strings');
    assert.equal(refusal(web({ post_logout_redirect_uris: { 0: 'x' } })), 'post_logout_redirect_uris must be an array of URI strings');
  });

  it('refuses a client authentication method not offered', () => {
    assert.match(refusal(web({ token_endpoint_auth_method: 'client_secret_jwt' })), /^token_endpoint_auth_method must be one of: client_secret_basic, /);
  });

  it('refuses a registered JWK Set with a key that cannot be read (RFC 7591 §3.2.2), where a client is written; takes RSA, EC and OKP public keys', async () => {
    const keys = await Promise.all((['RS256', 'ES256', 'EdDSA'] as const).map(async (alg) => ({ ...(await exportJWK((await generateKeyPair(alg)).publicKey)), kid: alg })));
    const withKeys = (jwks: unknown[]) => web({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: jwks } });
    enforcePolicy(POLICY, withKeys(keys), true);
    const short = { ...generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' }), kid: 'short' };
    // A key of a kind the engine skips (RFC 7517 §5: an unknown kty or curve) is not judged.
    enforcePolicy(POLICY, withKeys([...keys, { kty: 'XYZ', kid: 'future' }, { kty: 'EC', crv: 'P-999', x: 'AA', y: 'AA' }]), true);
    for (const bad of [{ ...keys[0], n: '!!' }, { ...keys[1], x: 'AA', y: 'AA' }, { ...keys[2], x: '@@' }, 'a string', { crv: 'P-256' }, short]) {
      assert.match(refusal(withKeys([keys[0], bad]), true), /^jwks: key 2( \(kid \w+\))? is no public key that can be read$/, JSON.stringify(bad));
    }
    enforcePolicy(POLICY, withKeys([{ kty: 'RSA', n: '!!', e: 'AQAB' }]), false, ALREADY_CHECKED);
  });

  it('refuses a short chosen client secret and suggests a command whose output works as it is in a Basic header (no base64 + or /)', () => {
    const description = refusal(web({ client_secret: 'x'.repeat(31) }));
    assert.match(description, /^client_secret must be at least 32 random characters/);
    // openssl rand -base64 32 gives + / =, which curl -u and other clients that skip RFC 6749
    // §2.3.1's form-encoding send as they are, and the token endpoint then decodes + as a space.
    assert.doesNotMatch(description, /base64/);
    assert.match(description, /openssl rand -hex 32/);
    enforcePolicy(POLICY, web({ client_secret: 'f'.repeat(64) }), false);
  });

  it('takes the example client of config/default.yaml as an operator would copy it (its secret long enough, of URL-safe characters)', () => {
    const text = readFileSync(new URL('../../config/default.yaml', import.meta.url), 'utf8');
    const block = text.split('\n# Static clients')[1]!.split('\nclients:')[0]!;
    const example = block.split('\n').filter((line) => line.startsWith('#   ') || line.startsWith('#     ')).map((line) => line.slice(2)).join('\n');
    const [client] = parse(example) as Record<string, unknown>[];
    assert.match(String(client!.client_secret), /^[\w-]{32,}$/);
    enforcePolicy(POLICY, client!, false);
  });

  it('the admin API\'s description says how long a chosen client_secret must be, as the policy does', () => {
    const document = openApiDocument('https://id.example.com') as unknown as { components: { schemas: { Client: { properties: { client_secret: { minLength?: number; description?: string } } } } } };
    const described = document.components.schemas.Client.properties.client_secret;
    assert.equal(described.minLength, 32);
    assert.match(described.description ?? '', /at least 32/);
    assert.match(refusal(web({ client_secret: 'y'.repeat(described.minLength - 1) })), /^client_secret must be at least 32/);
    enforcePolicy(POLICY, web({ client_secret: 'y'.repeat(described.minLength) }), false);
  });

  it('refuses client_credentials for a public client (RFC 6749 §4.4)', () => {
    assert.match(refusal(web({ token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'client_credentials'] })), /^grant_types: client_credentials is only for clients that authenticate/);
    enforcePolicy(POLICY, web({ token_endpoint_auth_method: 'client_secret_basic', grant_types: ['client_credentials'] }), false);
  });

  it('refuses scopes not offered, and privileged scopes on self-service paths only', () => {
    assert.match(refusal(web({ scope: 'openid payroll' })), /^scope "payroll" is not offered here/);
    assert.match(refusal(web({ scope: 'openid payroll' })), /allowed: .*\badmin\b/, 'an operator is told every scope');
    // A self-service registrant is told only what it may ask for (the operator's scopes it may not).
    const told = refusal(web({ scope: 'openid payroll' }), true);
    assert.match(told, /^scope "payroll" is not offered here; allowed: .*\bopenid\b/);
    assert.doesNotMatch(told, /\badmin\b/);
    assert.equal(refusal(web({ scope: 'openid admin' }), true), 'scope "admin" is granted only by an operator');
    enforcePolicy(POLICY, web({ scope: 'openid admin' }), false);
  });

  it('takes the runtime APIs\' scopes it is given, and sets them aside for the engine; a loaded client\'s scope was checked before', () => {
    const metadata = web({ scope: 'openid ledger:read' });
    enforcePolicy(POLICY, metadata, true, ['ledger:read']);
    assert.deepEqual((metadata as Record<symbol, unknown>)[API_SCOPES_SET_ASIDE], ['ledger:read']);
    assert.throws(
      () => enforcePolicy(POLICY, web({ scope: 'openid ledger:write' }), true, ['ledger:read']),
      (error: errors.InvalidClientMetadata) => /^scope "ledger:write" is not offered here/.test(error.error_description ?? ''),
    );
    // Two APIs offering the same scope: the refusal lists it once (and no operator-only scope to a self-service registrant).
    assert.throws(
      () => enforcePolicy(POLICY, web({ scope: 'openid ledger:write' }), true, ['ledger:read', 'notes:read', 'ledger:read']),
      (error: errors.InvalidClientMetadata) => (error.error_description ?? '').endsWith(`allowed: ${POLICY.scopes.filter((scope) => !POLICY.privilegedScopes.includes(scope)).join(' ')} ledger:read notes:read`),
    );
    enforcePolicy(POLICY, web({ scope: 'openid payroll' }), true, ALREADY_CHECKED);
    assert.equal(refusal(web({ scope: 'openid admin' }), true), 'scope "admin" is granted only by an operator');
  });

  it('requires https (or loopback http) for the URLs a person is shown', () => {
    for (const name of ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri']) {
      assert.equal(refusal(web({ [name]: 'http://app.example.com/x' })), `${name} must be an https URL`);
      assert.equal(refusal(web({ [name]: 'javascript:alert(1)' })), `${name} must be an https URL`);
      assert.equal(refusal(web({ [name]: 'not a url' })), `${name} must be an https URL`);
      enforcePolicy(POLICY, web({ [name]: 'http://localhost:8080/x' }), true);
    }
  });

  it('refuses, where a client is written, a logo, link or back-channel URI whose host is not written as the URL parser reads it (a trailing dot, percent-encoding, an IPv4 shorthand); one loaded is taken (eleventh pass)', () => {
    for (const [name, uri] of [['logo_uri', 'https://app.example.com./logo.png'], ['policy_uri', 'https://app%2eexample.com/policy'], ['backchannel_logout_uri', 'http://127.1/bc']] as const) {
      assert.match(refusal(web({ [name]: uri })), new RegExp(`^${name}: .*host`), uri);
      enforcePolicy(POLICY, web({ [name]: uri }), false, ALREADY_CHECKED);
    }
    enforcePolicy(POLICY, web({ logo_uri: 'https://CDN.app.example.com/logo.png', backchannel_logout_uri: 'http://127.0.0.1:8080/bc' }), false);
  });

  it('refuses, where a client is written, a logo, link or back-channel URI with a user name or password, or without "//" before its host, for what it is (review of the eleventh passes)', () => {
    // A redirect URI's password is not quoted back either (the description is logged).
    assert.doesNotMatch(refusal(web({ redirect_uris: ['https://u:hunter2@app.example.com/cb'] })), /hunter2/);
    for (const name of ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri', 'jwks_uri', 'backchannel_logout_uri']) {
      // The userinfo was read as a port ("a port is written as a number…") and its password quoted back.
      for (const uri of ['https://user:hunter2@app.example.com/x', 'https://app.example.com:hunter2@evil.example/x']) {
        const said = refusal(web({ [name]: uri }));
        assert.match(said, new RegExp(`^${name}: https://\\*\\*\\*@.*must not have a user name or password`), uri);
        assert.doesNotMatch(said, /hunter2/, uri);
      }
      // The URL parser reads a host into these; a browser resolves them against the page (RFC 3986 §3.3: a path).
      for (const uri of ['https:app.example.com/x', 'https:/app.example.com/x', 'https:\\\\app.example.com\\x']) {
        assert.match(refusal(web({ [name]: uri })), new RegExp(`^${name}: .*"//"`), uri);
        enforcePolicy(POLICY, web({ [name]: uri }), false, ALREADY_CHECKED);
      }
      // Read as app.example.com's by the URL parser, as evil.example's by others.
      assert.match(refusal(web({ [name]: 'https://app.example.com\\@evil.example/x' })), new RegExp(`^${name}: .*host`));
    }
  });

  it('does not quote back the password of a URI written without "//" before its user name, which the URL parser reads as one (second review of the eleventh passes)', () => {
    // "https:u:pw@host" is read as https://u:pw@host/ (so with a leading space or a tab in the scheme, which the parser drops); the mask took only "scheme://…@".
    const forms = ['https:u:hunter2@app.example.com/cb', 'https:/u:hunter2@app.example.com/cb', 'https:\\\\u:hunter2@app.example.com/cb', 'HTTPS:///u:hunter2@app.example.com/cb', ' https://u:hunter2@app.example.com/cb', 'ht\ttps://u:hunter2@app.example.com/cb'];
    for (const uri of forms) {
      for (const name of ['redirect_uris', 'post_logout_redirect_uris']) {
        const said = refusal(web({ [name]: [uri] }));
        assert.doesNotMatch(said, /hunter2/, `${name} ${uri}`);
        assert.match(said, /\*\*\*@app\.example\.com|not quoted/, `${name} ${uri}`);
      }
      for (const name of ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri', 'jwks_uri', 'backchannel_logout_uri']) {
        assert.doesNotMatch(refusal(web({ [name]: uri })), /hunter2/, `${name} ${uri}`);
      }
    }
  });

  it('takes a self-registered logo, policy, terms or site link only on the host of a redirect URI or under it (RFC 7591 §5), an operator\'s anywhere', () => {
    for (const name of ['client_uri', 'logo_uri', 'policy_uri', 'tos_uri']) {
      assert.equal(refusal(web({ [name]: 'https://notes.example.test/x' }), true), `${name} must be on the host of a redirect URI (app.example.com) or a name under it, not notes.example.test (RFC 7591 section 5)`);
      assert.match(refusal(web({ [name]: 'https://example.com/x' }), true), /not example\.com/, 'the parent domain is not the app\'s host');
      assert.match(refusal(web({ [name]: 'https://evilapp.example.com/x' }), true), /not evilapp\.example\.com/);
      assert.match(refusal({ application_type: 'native', redirect_uris: ['com.example.app:/cb', 'http://127.0.0.1/cb'], [name]: 'https://app.example.com/x' }, true), /has no https redirect URI/);
      enforcePolicy(POLICY, web({ [name]: 'https://app.example.com/x' }), true);
      enforcePolicy(POLICY, web({ [name]: 'https://cdn.app.example.com/x' }), true);
      enforcePolicy(POLICY, { client_id: 'https://agent.example.net/client.json', redirect_uris: ['http://127.0.0.1:4000/cb'], [name]: 'https://agent.example.net/' }, true);
      // An operator (admin API, CLI, configuration) and a client loaded as stored.
      enforcePolicy(POLICY, web({ [name]: 'https://notes.example.test/x' }), false);
      enforcePolicy(POLICY, web({ [name]: 'https://notes.example.test/x' }), true, ALREADY_CHECKED);
    }
  });

  it("refuses Latchkey's own address as a self-registered or developer-owned client's redirect or post-logout URI; an operator's client may use it, one loaded was checked before", () => {
    const policy: RegistrationPolicy = { ...POLICY, issuer: 'https://id.example.com' };
    const refused = (metadata: Record<string, unknown>, selfService: boolean) => refusal(metadata, selfService, policy);
    assert.equal(refused(web({ redirect_uris: ['https://app.example.com/cb', 'https://id.example.com/account/callback'] }), true), "redirect_uris: https://id.example.com/account/callback: this is Latchkey's own address; an app's redirect URIs are on the app's own site");
    assert.match(refused(web({ post_logout_redirect_uris: ['https://ID.example.com:443/session/end'] }), true), /^post_logout_redirect_uris: .*Latchkey's own address/);
    // The developer page's clients have an owner (a person), whatever route writes them.
    assert.match(refused(web({ owner: 'account-1', redirect_uris: ['https://id.example.com/developer/callback'] }), false), /^redirect_uris: .*Latchkey's own address/);
    // The same server spelt with a trailing dot (since the eleventh pass refused on every path as a host not written as read: uri-hosts.ts).
    assert.match(refused(web({ redirect_uris: ['https://id.example.com./account/callback'] }), true), /^redirect_uris: .*without a trailing dot/);
    // An issuer on loopback: every loopback name and address of its port is it (this machine, whatever it is called).
    const local: RegistrationPolicy = { ...POLICY, issuer: 'http://localhost:3000' };
    for (const uri of ['http://127.0.0.1:3000/x', 'http://[::1]:3000/x', 'http://127.1.2.3:3000/x']) {
      assert.match(refusal(web({ redirect_uris: [uri] }), true, local), /^redirect_uris: .*Latchkey's own address/, uri);
    }
    // 2130706433 is 127.0.0.1 spelt otherwise: refused on every path since the eleventh pass (uri-hosts.ts).
    assert.match(refusal(web({ redirect_uris: ['http://2130706433:3000/x'] }), true, local), /^redirect_uris: .*as the URL parser reads it.*write the host as 127\.0\.0\.1/);
    enforcePolicy(local, web({ redirect_uris: ['http://127.0.0.1:8080/cb', 'http://localhost:3001/cb'] }), true);
    // Another origin of the same host (a port, a scheme) is another site.
    enforcePolicy(policy, web({ redirect_uris: ['https://id.example.com:8443/cb', 'https://app.id.example.com/cb'] }), true);
    enforcePolicy(policy, web({ redirect_uris: ['https://id.example.com/account/callback'] }), false);
    enforcePolicy(policy, web({ owner: 'account-1', redirect_uris: ['https://id.example.com/cb'] }), true, ALREADY_CHECKED);
  });

  it("refuses Latchkey's own name, and names that read as it, as a self-registered or developer-owned client's name; an operator's client may take it, one loaded was checked before", () => {
    // Small capitals, a turned L, and digits and signs for letters: none of them in TR 39's table (web pass of 2026-12-06).
    const lookalikes = ['\u029fatchkey account page', '\u1d0catchkey', '\ua780atchkey', 'L\u1d00tchkey', 'L@tchkey', 'L4tchk3y', 'Latc\u029ckey', 'Latch\u1d0bey'];
    for (const name of ['Latchkey', 'Latchkey account page', 'L\u0430tchkey', 'Iatchkey', 'LATCH-KEY', 'Latch.key', 'Latchk\u00e9y', '\uff2c\uff41\uff54\uff43\uff48\uff4b\uff45\uff59', 'Notes for Latchkey', ...lookalikes]) {
      assert.ok(readsAsOwnName(name), name);
      assert.match(refusal(web({ client_name: name }), true), /^client_name: ".*" reads as Latchkey's own name/, name);
      assert.match(refusal(web({ client_name: name, owner: 'account-1' }), false), /^client_name: /, name);
      enforcePolicy(POLICY, web({ client_name: name }), false);
      enforcePolicy(POLICY, web({ client_name: name, owner: 'account-1' }), true, ALREADY_CHECKED);
    }
    for (const name of ['Notes', 'Latch and Key', 'Hatchkey', 'iatchkey', 'Latches']) {
      assert.ok(!readsAsOwnName(name), name);
      enforcePolicy(POLICY, web({ client_name: name }), true);
    }
  });

  it("refuses names that read as Latchkey's own through what the reading did not map: a Greek capital lunate sigma that NFKC turned into a Σ before the skeleton, a Cyrillic palochka that the skeleton reads as an i, Latin letters with a stroke, bar or hook of their own or turned (Ⱡ, ⱥ, ꝁ, ⱪ, ⱨ, ǝ, ɒ), and signs standing for letters (£, †) (the authorization model, ninth pass)", () => {
    const lookalikes = [
      '\u13de\u0391\u03a4\u03f9\u0397\u039a\u0395\u03a5', // ᏞΑΤϹΗΚΕΥ: Cherokee and Greek capitals, no Latin letter to mix with
      '\u2c60atchkey account page', 'L\u2c65tchkey', 'Latch\ua741ey', 'Latch\u2c6aey', 'Latc\u2c68key', 'Latchk\u01ddy', 'L\u0252tchkey',
      '\u00a3atchkey', 'La\u2020chkey', '\u2c60\u023a\u0166\u023b\u2c67\u2c69\u0246\u024e',
      '\u04cf\u0430\u0442\u0441\u04bb\u043a\u0435\u0443', // ӏатсһкеу: all Cyrillic, a palochka (a tall stroke, which TR 39 reads as an i) for the l
    ];
    for (const name of lookalikes) {
      assert.ok(readsAsOwnName(name), name);
      assert.match(refusal(web({ client_name: name }), true), /^client_name: ".*" reads as Latchkey's own name/, name);
      enforcePolicy(POLICY, web({ client_name: name }), false);
    }
    // Names that merely hold such letters or signs, or stand near the name, are taken.
    for (const name of ['\u0141\u00f3d\u017a Notes', 'Stra\u00dfe Maps', '\u00c6r\u00f8 Ferries', '\u00dej\u00f3\u00f0leikh\u00fasi\u00f0', 'Caf\u00e9 \u00a3 Budget', 'Hatch\u2020key', 'Latch and Key', 'iatchkey', '\u65e5\u672c\u8a9e\u306e\u30a2\u30d7\u30ea\u3067\u3059', '\u00ab\u00bb\u00ab\u00bb\u00ab\u00bb\u00ab\u00bb Notes', `Notes ${'\u{1F600}'.repeat(8)}`]) {
      assert.ok(!readsAsOwnName(name), name);
      enforcePolicy(POLICY, web({ client_name: name }), true);
    }
  });

  it('takes a self-registered or developer-owned name of at most 100 characters with a letter or digit; an operator\'s may be any, one loaded was checked before', () => {
    for (const name of ['N'.repeat(101), '\u2800'.repeat(3), ' ', '...', '\u3000']) {
      assert.match(refusal(web({ client_name: name }), true), /^client_name: (at most 100 characters|a name needs a letter or digit)$/, JSON.stringify(name));
      assert.match(refusal(web({ client_name: name, owner: 'account-1' }), false), /^client_name: /);
      enforcePolicy(POLICY, web({ client_name: name }), false);
      enforcePolicy(POLICY, web({ client_name: name }), true, ALREADY_CHECKED);
    }
    for (const name of ['N'.repeat(100), '\u{1F600}'.repeat(99) + 'N', '\u30e1\u30e2', 'R2']) enforcePolicy(POLICY, web({ client_name: name }), true);
  });

  it("refuses, in a self-registered or developer-owned name, spaces other than the plain one (an em space's line break forged a line of the page's own) and a word mixing alphabets; an operator's may, one loaded was checked before", () => {
    const forged = `Notes${'\u2003'.repeat(40)}Sends you back to notes.example.com`;
    for (const [name, refused] of [
      [forged, /^client_name: spaces are plain spaces \(found U\+2003\)$/],
      ['Notes\u3000App', /found U\+3000/],
      ['Notes\u00a0App', /found U\+00A0/],
      ['Notes\u2800App', /found U\+2800/],
      ['\u053catchkey', /reads as Latchkey's own name/],
      ['Notes \u053catchkey', /reads as Latchkey's own name/],
      ['\u053cedger', /mixes letters of two alphabets in one word \(U\+053C\)/],
      ['G\u043e\u043egle Drive', /mixes letters of two alphabets in one word \(U\+043E\)/],
    ] as const) {
      assert.match(refusal(web({ client_name: name }), true), refused, JSON.stringify(name));
      assert.match(refusal(web({ client_name: name, owner: 'account-1' }), false), /^client_name: /);
      enforcePolicy(POLICY, web({ client_name: name }), false);
      enforcePolicy(POLICY, web({ client_name: name }), true, ALREADY_CHECKED);
    }
    // Words each in one alphabet, and Latin beside Chinese, Japanese or Korean in one word (UTS 39 §5.2).
    for (const name of ['Caf\u00e9 \u041c\u043e\u0441\u043a\u0432\u0430', 'Tokyo\u6771\u4eac', '\u0395\u03bb\u03bb\u03ac\u03b4\u03b1 Travel', 'Notes  App']) {
      enforcePolicy(POLICY, web({ client_name: name }), true);
    }
  });

  it('lets only native clients, public or confidential, use the device grant (RFC 8628), on every path', () => {
    const device = { grant_types: [DEVICE_CODE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [] };
    for (const selfService of [true, false]) {
      enforcePolicy(POLICY, { ...device, application_type: 'native', token_endpoint_auth_method: 'none' }, selfService);
      enforcePolicy(POLICY, { ...device, application_type: 'native', token_endpoint_auth_method: 'private_key_jwt' }, selfService);
      assert.match(refusal(device, selfService), /^grant_types: .*device_code is only for devices and command-line tools; register them with application_type "native"/);
      assert.match(refusal({ ...device, application_type: 'web', token_endpoint_auth_method: 'none' }, selfService), /application_type "native"/);
    }
  });

  it('knows loopback names and addresses (RFC 6761 §6.3, RFC 8252 §7.3)', () => {
    for (const host of ['localhost', 'app.localhost', '127.0.0.1', '127.1.2.3', '[::1]']) assert.ok(isLoopback(host), host);
    for (const host of ['localhost.example.com', '128.0.0.1', '::1', 'example.com', '127.0.0']) assert.ok(!isLoopback(host), host);
  });

  it('par.required sets require_pushed_authorization_requests on every client, even one that says false, except the exempted', () => {
    const required: RegistrationPolicy = { ...POLICY, requirePushedRequests: { except: ['latchkey-developer'] } };
    for (const given of [undefined, false, true]) {
      const metadata: Record<string, unknown> = web({ client_id: 'app', require_pushed_authorization_requests: given });
      applyRequirements(required, metadata);
      assert.equal(metadata.require_pushed_authorization_requests, true, String(given));
    }
    const own: Record<string, unknown> = web({ client_id: 'latchkey-developer' });
    applyRequirements(required, own);
    assert.equal(own.require_pushed_authorization_requests, undefined);
    const optional: Record<string, unknown> = web({ client_id: 'app', require_pushed_authorization_requests: false });
    applyRequirements(POLICY, optional);
    assert.equal(optional.require_pushed_authorization_requests, false, 'without par.required the metadata decides');
  });
});
