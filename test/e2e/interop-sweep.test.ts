/**
 * What the interop sweep found driving relying parties and libraries our other suites do not run
 * (Apache's mod_auth_openidc 2.4.12, Authlib 1.2, requests-oauthlib 1.3, PyJWT 2.6, jwcrypto, Ruby's
 * openid_connect 1.2, python-social-auth 4.3, openid-client 5, jwks-rsa, express-jwt, fast-jwt,
 * get-jwks) against a running Latchkey, pinned here with what CI has: the requests those libraries
 * send, made with jose and openid-client, and the shapes of their registrations (RFC 7591).
 *
 * - A client assertion signed as Authlib's PrivateKeyJWT signs it by default (aud our token endpoint,
 *   exp an hour after iat), or as mod_auth_openidc does (aud our token endpoint), is refused on
 *   purpose (docs/protocol.md, Client assertions); the refusal now says why, where it said only
 *   "client authentication failed" to the client and nothing in our log: whoever reads it has proved
 *   the client's key, since the check runs once the signature verified. An assertion that fails the
 *   signature still learns nothing more.
 * - requests-oauthlib sends a public client's code and refresh token with `Authorization: Basic
 *   base64(client_id:)` (an empty secret; oidc-agent too), which stays 401 invalid_client (RFC 6749
 *   §5.2, test/conformance/oauth-endpoints); its description now says what to send instead (the
 *   client_id in the body: `include_client_id=True`), which works.
 * - mod_auth_openidc's own shapes work and stay so: its keys at a jwks_uri with a query
 *   (`<redirect_uri>?jwks=rsa`), and its back-channel logout receiver at `<redirect_uri>?logout=backchannel`,
 *   which gets the logout token with its query intact.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { Agent, ALICE, RelyingParty, startOp, type Op } from '../conformance/fixture.js';
import { initialAccessToken } from '../helpers/operator.js';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** mod_auth_openidc's redirect URI on loopback: its JWKS at ?jwks=rsa, its back-channel logout receiver at ?logout=backchannel. */
async function startApacheLike(keys: JWK[]): Promise<{ base: string; posts: { url: string; token: string | null }[]; server: Server }> {
  const posts: { url: string; token: string | null }[] = [];
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === '/protected/redirect_uri?jwks=rsa') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' }).end(JSON.stringify({ keys }));
      return;
    }
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      posts.push({ url, token: new URLSearchParams(body).get('logout_token') });
      res.writeHead(200, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}/protected/redirect_uri`, posts, server };
}

async function register(op: Op, metadata: Record<string, unknown>): Promise<{ client_id: string; client_secret?: string }> {
  const response = await fetch(op.metadata.registration_endpoint!, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await initialAccessToken(op.server!)}` },
    body: JSON.stringify(metadata),
  });
  const body = (await response.json()) as { client_id: string; client_secret?: string };
  assert.equal(response.status, 201, JSON.stringify(body));
  return body;
}

describe('interop sweep: relying parties and libraries beyond our usual clients', function () {
  this.timeout(60_000);
  let op: Op;
  let apache: Awaited<ReturnType<typeof startApacheLike>>;
  let key: CryptoKey;
  let stranger: CryptoKey;
  let signer: string;

  before(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    key = pair.privateKey;
    stranger = (await generateKeyPair('RS256')).privateKey;
    apache = await startApacheLike([{ ...(await exportJWK(pair.publicKey)), kid: 'rpkey', alg: 'RS256', use: 'sig' }]);
    op = await startOp({ people: [ALICE] });
    // As mod_auth_openidc's private_key_jwt, or an Authlib client, registers (RFC 7591).
    signer = (
      await register(op, {
        client_name: 'Apache RP (private_key_jwt)',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks_uri: `${apache.base}?jwks=rsa`,
      })
    ).client_id;
  });
  after(async () => {
    await op?.stop();
    apache?.server.close();
  });

  /** A client_credentials request authenticated by an assertion with these claims (iss, sub and jti added). */
  async function tokenWith(claims: { aud: string | string[]; iat: number; exp: number }, signingKey = key) {
    const assertion = await new SignJWT({ iss: signer, sub: signer, jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'rpkey' })
      .sign(signingKey);
    const response = await fetch(op.metadata.token_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: assertion }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }
  const now = () => Math.floor(Date.now() / 1000);

  it("Authlib's default PrivateKeyJWT assertion (aud the token endpoint, an hour long) is refused with why: the aud must be the issuer", async () => {
    const answer = await tokenWith({ aud: op.metadata.token_endpoint!, iat: now(), exp: now() + 3600 });
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error, 'invalid_client');
    assert.equal(answer.body.error_description, `client authentication failed: the client_assertion JWT's aud (audience) must be the issuer identifier (${op.issuer})`);
  });

  it("mod_auth_openidc's assertion (aud the token endpoint, a minute long) is refused with the same reason", async () => {
    const answer = await tokenWith({ aud: op.metadata.token_endpoint!, iat: now(), exp: now() + 60 });
    assert.equal(answer.status, 401);
    assert.match(answer.body.error_description!, /^client authentication failed: the client_assertion JWT's aud \(audience\) must be the issuer identifier/);
  });

  it('with the issuer as aud but an hour long (PrivateKeyJWT(token_endpoint=issuer)), the refusal names the lifetime allowed', async () => {
    const answer = await tokenWith({ aud: op.issuer, iat: now(), exp: now() + 3600 });
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error, 'invalid_client');
    assert.equal(answer.body.error_description, 'client authentication failed: the client_assertion JWT must expire at most 300 seconds after it was issued');
  });

  it('the issuer as aud and a lifetime within clientAssertions.maxLifetime is accepted, its keys read from a jwks_uri with a query (?jwks=rsa)', async () => {
    const answer = await tokenWith({ aud: op.issuer, iat: now(), exp: now() + 300 });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.token_type, 'Bearer');
  });

  it('an assertion whose signature does not verify learns no reason: the engine says only "client authentication failed"', async () => {
    const answer = await tokenWith({ aud: op.metadata.token_endpoint!, iat: now(), exp: now() + 3600 }, stranger);
    assert.equal(answer.status, 401);
    assert.deepEqual(answer.body, { error: 'invalid_client', error_description: 'client authentication failed' });
  });

  it("requests-oauthlib's public client (Basic client_id: with an empty secret) is told to send its client_id in the body, and is taken so", async () => {
    const { client_id: cli } = await register(op, {
      client_name: 'Python CLI',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://localhost:8090/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
    });
    const redeem = async (headers: Record<string, string>, extra: Record<string, string>) => {
      const response = await fetch(op.metadata.token_endpoint!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: 'not-a-code', redirect_uri: 'http://localhost:8090/cb', code_verifier: 'v'.repeat(43), ...extra }),
      });
      return { status: response.status, body: (await response.json()) as Record<string, string>, challenge: response.headers.get('www-authenticate') };
    };
    const basic = await redeem({ authorization: `Basic ${Buffer.from(`${cli}:`).toString('base64')}` }, {});
    assert.equal(basic.status, 401);
    assert.equal(basic.body.error, 'invalid_client');
    assert.match(basic.body.error_description!, /a client without a secret sends its client_id in the request body, and no Authorization header/);
    assert.ok(basic.challenge?.startsWith(`Basic realm="${op.issuer}", error="invalid_client"`), String(basic.challenge));
    // include_client_id=True: the client_id in the body; the client is identified, and the (made-up) code refused as such.
    const body = await redeem({}, { client_id: cli });
    assert.equal(body.status, 400, JSON.stringify(body.body));
    assert.equal(body.body.error, 'invalid_grant');
  });

  it("mod_auth_openidc's back-channel logout receiver at <redirect_uri>?logout=backchannel gets the logout token there, query and sid included", async () => {
    const redirectUri = 'https://apache.example.test/protected/redirect_uri';
    const client = await register(op, {
      client_name: 'Apache RP',
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid email profile offline_access',
      backchannel_logout_uri: `${apache.base}?logout=backchannel`,
      backchannel_logout_session_required: true,
    });
    const rp = await RelyingParty.create(op, client.client_id, { secret: client.client_secret }, redirectUri);
    const agent = new Agent();
    const tokens = await rp.redeem(await rp.signIn(agent, ALICE, { scope: 'openid email' }));
    const sid = tokens.claims()!.sid;
    assert.ok(sid, 'the ID token carries sid, which mod_auth_openidc finds the session by');
    const url = new URL(op.metadata.end_session_endpoint!);
    url.searchParams.set('id_token_hint', tokens.id_token!);
    const page = await agent.follow(url.href, {}, 'https://');
    apache.posts.length = 0;
    await agent.submit(page, '/session/end/confirm', { logout: 'yes' }, 'https://');
    const [post, ...more] = apache.posts;
    assert.equal(more.length, 0);
    assert.equal(post?.url, '/protected/redirect_uri?logout=backchannel');
    const claims = decodeJwt(post.token!);
    assert.equal(claims.aud, client.client_id);
    assert.equal(claims.sid, sid);
  });
});
