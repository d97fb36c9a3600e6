/**
 * Upstream identity providers, attacked: eighteenth passes (docs/security-passes.md, "Looked at in
 * the eighteenth passes: passkeys and second factors, upstream providers, new kinds of clients (h8)").
 *
 * A small upstream of the test's own (discovery, authorize straight back, token, JWKS, userinfo as each
 * case says) against a Latchkey on a redis-server of its own, through a cookie-keeping agent, the
 * server's log read for what it says of each answer.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { Agent } from '../helpers/agent.js';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { upstreamDiscovery } from '../helpers/fake-upstream.js';
import { Upstreams } from '../../src/upstreams/registry.js';
import { createLogger } from '../../src/ops/logger.js';

const SECRET = 'upstream-eighteenth-client-secret-with-plenty-of-entropy';
const APP = { client_id: 'app1', client_secret: SECRET, redirect_uris: ['http://app1.localhost:1/callback'], grant_types: ['authorization_code'] };
const REDIRECT = APP.redirect_uris[0]!;
type Answer = (res: ServerResponse) => void;
const unsigned = (claims: JWTPayload) => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;

describe('e2e: upstream identity providers, attacked (eighteenth passes)', function () {
  this.timeout(60_000);
  let latchkey: TestServer;
  let upstream: Server;
  let issuer = '';
  let jwk: JWK;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  let nonce = '';
  const logs: string[] = [];
  /** What the upstream's userinfo endpoint answers: per case. */
  let userinfo: Answer = () => {};
  /** An error the upstream's authorization endpoint sends the person back with, instead of a code; and its token endpoint's answer in place of tokens. */
  let authorizeError: string | undefined;
  let tokenAnswer: Answer | undefined;

  const json = (res: ServerResponse, body: unknown, type = 'application/json') => res.writeHead(200, { 'content-type': type }).end(typeof body === 'string' ? body : JSON.stringify(body));
  const signed = (claims: JWTPayload) => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(privateKey);

  before(async () => {
    const keys = await generateKeyPair('RS256');
    privateKey = keys.privateKey;
    jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    upstream = createServer((req, res) => {
      const url = new URL(req.url ?? '/', issuer);
      // No userinfo_signing_alg_values_supported: this upstream never said it signs userinfo.
      if (url.pathname === '/.well-known/openid-configuration') return json(res, { ...upstreamDiscovery(issuer), userinfo_endpoint: `${issuer}/userinfo` });
      if (url.pathname === '/jwks') return json(res, { keys: [jwk] });
      if (url.pathname === '/authorize') {
        nonce = url.searchParams.get('nonce') ?? '';
        const back = new URL(url.searchParams.get('redirect_uri')!);
        if (authorizeError) {
          back.searchParams.set('error', authorizeError);
          back.searchParams.set('error_description', '<b>down</b> for maintenance');
        }
        else back.searchParams.set('code', 'a-code');
        back.searchParams.set('state', url.searchParams.get('state')!);
        return res.writeHead(302, { location: back.href }).end();
      }
      if (url.pathname === '/token' && tokenAnswer) return tokenAnswer(res);
      if (url.pathname === '/token') {
        const now = Math.floor(Date.now() / 1000);
        return void signed({ iss: issuer, sub: 'odd-person', aud: 'latchkey', iat: now, exp: now + 300, nonce, auth_time: now }).then((idToken) =>
          json(res, { access_token: 'an-access-token', token_type: 'Bearer', id_token: idToken }),
        );
      }
      if (url.pathname === '/userinfo') return userinfo(res);
      res.writeHead(404).end();
    });
    await new Promise<void>((done) => upstream.listen(0, '127.0.0.1', done));
    issuer = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    latchkey = await startServer({ ownRedis: true, port: await freePort(), clients: [APP], logger: createLogger('info', { write: (line: string) => void logs.push(line) }), env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', UPSTREAMS_TIMEOUT: '2' } });
  });
  after(async () => {
    await latchkey?.stop();
    await new Promise<void>((done) => (upstream ? upstream.close(() => done()) : done()));
  });

  let added = 0;
  /** A sign-in to app1 through the upstream, in a fresh browser, under an upstream id of its own: the last page, and the server's log lines of it. */
  async function signIn() {
    const id = `odd-${(added += 1)}`;
    await new Upstreams(latchkey.kv, latchkey.config.keys.secrets).add({ id, issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email profile', displayName: 'Odd', linkByEmail: false, endSession: false });
    logs.length = 0;
    const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: id });
    const page = await new Agent().follow(`${latchkey.issuer}/auth?${params}`, {}, REDIRECT);
    return { ...page, log: logs.join('\n') };
  }

  it('userinfo answered as a JWT by an upstream that never said it signs userinfo (unsigned, keyed with the client secret, or signed with its own key) is its answer refused: the refusal page (403, access_denied for the app), not "not answering" (502, temporarily_unavailable), and nobody signed in', async () => {
    const claims = { sub: 'odd-person', email: 'victim@corp.example', email_verified: true };
    for (const [name, answer] of [
      ['unsigned', (res) => json(res, unsigned(claims), 'application/jwt')],
      ['HS256 keyed with the client secret', (res) => void new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET)).then((jwt) => json(res, jwt, 'application/jwt'))],
      ['RS256 with its own key', (res) => void signed({ ...claims, iss: issuer, aud: 'latchkey' }).then((jwt) => json(res, jwt, 'application/jwt'))],
    ] as const satisfies readonly (readonly [string, Answer])[]) {
      userinfo = answer;
      const page = await signIn();
      assert.equal(page.status, 403, `${name}: ${page.status} ${page.url}`);
      assert.match(page.html, /Sign-in not completed/, name);
      assert.match(page.html, /name="reason" value="access_denied"/, name);
      assert.match(page.log, /"event":"upstream\.refused"/, name);
      assert.doesNotMatch(page.log, /"event":"upstream\.unavailable"/, name);
    }
    // Held: userinfo as plain JSON still signs the person in.
    userinfo = (res) => json(res, { sub: 'odd-person', name: 'Odd Person' });
    const page = await signIn();
    assert.equal(page.status, 200, `${page.status} ${page.url}`);
    assert.doesNotMatch(page.html, /Sign-in not completed|is not answering/);
  });

  it('held: userinfo refusing the access token (401 with a Bearer challenge) or naming its person with no string (a number, an array) is the answer refused (403); a 503 or an HTML error page from a proxy is the upstream not answering (502); never a 500', async () => {
    for (const [name, answer, status, event] of [
      ['401 invalid_token', (res) => res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end(), 403, 'upstream.refused'],
      ['sub a number', (res) => json(res, { sub: 42 }), 403, 'upstream.refused'],
      ['sub an array', (res) => json(res, { sub: ['odd-person'] }), 403, 'upstream.refused'],
      ['503', (res) => res.writeHead(503, { 'retry-after': '5' }).end(), 502, 'upstream.unavailable'],
      ['an HTML error page', (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>Bad gateway</h1>'), 502, 'upstream.unavailable'],
    ] as const satisfies readonly (readonly [string, Answer, number, string])[]) {
      userinfo = answer;
      const page = await signIn();
      assert.equal(page.status, status, `${name}: ${page.status} ${page.url}`);
      assert.equal(page.log.includes(`"event":"${event}"`), true, name);
    }
  });
  it("an upstream that says it is unavailable (RFC 6749 §4.1.2.1 temporarily_unavailable or server_error, at its authorization or token endpoint; a 5xx there held) is the upstream not answering (502, temporarily_unavailable for the app), not a refusal of the person (403, access_denied)", async () => {
    userinfo = (res) => json(res, { sub: 'odd-person' });
    const errorAnswer = (status: number, error: string): Answer => (res) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error, error_description: '<b>down</b> for maintenance', access_token: 'an-access-token-in-an-error' }));
    for (const [name, authorize, token] of [
      ['authorization temporarily_unavailable', 'temporarily_unavailable', undefined],
      ['authorization server_error', 'server_error', undefined],
      ['token 400 temporarily_unavailable', undefined, errorAnswer(400, 'temporarily_unavailable')],
      // Held (a 5xx is no conform error answer: oauth4webapi reads none from it).
      ['token 503 temporarily_unavailable', undefined, errorAnswer(503, 'temporarily_unavailable')],
      ['token 500 server_error', undefined, errorAnswer(500, 'server_error')],
      ['token 503 invalid_grant', undefined, errorAnswer(503, 'invalid_grant')],
    ] as const) {
      authorizeError = authorize;
      tokenAnswer = token;
      const page = await signIn();
      assert.equal(page.status, 502, `${name}: ${page.status} ${page.url}`);
      assert.match(page.html, /is not answering/, name);
      assert.match(page.html, /name="reason" value="temporarily_unavailable"/, name);
      assert.equal(page.log.includes('"event":"upstream.unavailable"'), true, name);
      // The upstream's body is not logged: an error answer may carry tokens (and markup).
      assert.doesNotMatch(page.log, /an-access-token-in-an-error|<b>down/, name);
    }
    // Held: what refuses the person (access_denied, invalid_grant with a 400) is still the refusal page.
    for (const [name, authorize, token] of [
      ['authorization access_denied', 'access_denied', undefined],
      ['token 400 invalid_grant', undefined, errorAnswer(400, 'invalid_grant')],
    ] as const) {
      authorizeError = authorize;
      tokenAnswer = token;
      const page = await signIn();
      assert.equal(page.status, 403, `${name}: ${page.status} ${page.url}`);
      assert.match(page.html, /name="reason" value="access_denied"/, name);
    }
    authorizeError = undefined;
    tokenAnswer = undefined;
  });
});
