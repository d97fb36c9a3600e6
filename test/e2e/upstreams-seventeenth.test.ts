/**
 * Upstream identity providers, attacked: seventeenth passes (docs/security-passes.md, "Looked at in
 * the seventeenth passes: upstream providers, attacked (h13)").
 *
 * A small upstream of the test's own (discovery, authorize straight back, token, JWKS, userinfo as each
 * test says) against a Latchkey on a redis-server of its own, through a cookie-keeping agent; the
 * server's log is read to see that nothing the upstream sent reaches it.
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

const SECRET = 'upstream-seventeenth-client-secret-with-plenty-of-entropy';
const APP = { client_id: 'app1', client_secret: SECRET, redirect_uris: ['http://app1.localhost:1/callback'], grant_types: ['authorization_code'] };
const REDIRECT = APP.redirect_uris[0]!;
type Answer = (res: ServerResponse) => void;
const unsigned = (claims: JWTPayload) => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;

describe('e2e: upstream identity providers, attacked (seventeenth passes)', function () {
  this.timeout(60_000);
  let latchkey: TestServer;
  let upstream: Server;
  let issuer = '';
  let jwk: JWK;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  let nonce = '';
  const logs: string[] = [];
  /** What the upstream's token endpoint, its userinfo, its discovery (beyond the usual) answer: per test. */
  let token: Answer = () => {};
  let userinfo: Answer | undefined;
  let metadata: Record<string, unknown> = {};

  const json = (res: ServerResponse, body: unknown, type = 'application/json') => res.writeHead(200, { 'content-type': type }).end(typeof body === 'string' ? body : JSON.stringify(body));
  /** The token endpoint's answer: a good ID token for this sign-in (its nonce), with `extra` claims. */
  const idToken = (extra: JWTPayload = {}): Answer => (res) => {
    const now = Math.floor(Date.now() / 1000);
    void new SignJWT({ iss: issuer, sub: 'odd-person', aud: 'latchkey', iat: now, exp: now + 300, nonce, auth_time: now, ...extra })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .sign(privateKey)
      .then((signed) => json(res, { access_token: 'an-access-token', token_type: 'Bearer', id_token: signed }));
  };

  before(async () => {
    const keys = await generateKeyPair('RS256');
    privateKey = keys.privateKey;
    jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    upstream = createServer((req, res) => {
      const url = new URL(req.url ?? '/', issuer);
      if (url.pathname === '/.well-known/openid-configuration') return json(res, { ...upstreamDiscovery(issuer), ...(userinfo && { userinfo_endpoint: `${issuer}/userinfo` }), ...metadata });
      if (url.pathname === '/jwks') return json(res, { keys: [jwk] });
      if (url.pathname === '/authorize') {
        nonce = url.searchParams.get('nonce') ?? '';
        const back = new URL(url.searchParams.get('redirect_uri')!);
        back.searchParams.set('code', 'a-code');
        back.searchParams.set('state', url.searchParams.get('state')!);
        return res.writeHead(302, { location: back.href }).end();
      }
      if (url.pathname === '/token') return token(res);
      if (url.pathname === '/userinfo' && userinfo) return userinfo(res);
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
  /**
   * A sign-in to app1 through the upstream, as it now answers, in a fresh browser, under an upstream
   * id of its own (so that its discovery, `metadata` and userinfo included, is read afresh): the last
   * page, and the server's log lines of it.
   */
  async function signIn() {
    const id = `odd-${(added += 1)}`;
    await new Upstreams(latchkey.kv, latchkey.config.keys.secrets).add({ id, issuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email profile', displayName: 'Odd', linkByEmail: false, endSession: false });
    logs.length = 0;
    const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: id });
    const page = await new Agent().follow(`${latchkey.issuer}/auth?${params}`, {}, REDIRECT);
    return { ...page, log: logs.join('\n') };
  }
  /** Signed in: the sign-in went on to the consent page (or the app), not the upstream's error page. */
  const signedIn = (page: { status: number; url: string; html: string }) => page.status === 200 && !page.url.includes('/upstream/') && !/Sign-in not completed|is not answering/.test(page.html);

  it('an ID token dated ahead of now (iat or auth_time more than the 30 s of clock skew) signs no one in: the refusal page, not a sign-in', async () => {
    // openid-client checks exp and nbf, not iat: one dated a year ahead signed the person in.
    const now = Math.floor(Date.now() / 1000);
    userinfo = undefined;
    metadata = {};
    for (const [name, extra] of [
      ['iat a year ahead', { iat: now + 365 * 86400, exp: now + 366 * 86400 }],
      ['iat an hour ahead', { iat: now + 3600, exp: now + 7200 }],
      ['auth_time an hour ahead', { auth_time: now + 3600 }],
    ] as const) {
      token = idToken(extra);
      const page = await signIn();
      assert.equal(page.status, 403, `${name}: ${page.status} ${page.url}`);
      assert.match(page.html, /Sign-in not completed/, name);
      assert.match(page.log, /"event":"upstream\.refused"/, name);
    }
    // Within the clock skew allowed, an upstream whose clock runs a little ahead still signs in.
    token = idToken({ iat: now + 10, auth_time: now + 10 });
    assert.ok(signedIn(await signIn()), 'ten seconds ahead is within the skew');
  });

  it('held: an unsigned ID token (alg none advertised), userinfo as an unsigned JWT or one keyed with the client secret (each advertised), a token or userinfo answer over the size bound, an error answer with markup and tokens: refused or "not answering", never a 500, nothing of it on the page or in the log', async () => {
    const cases: [string, Record<string, unknown>, Answer, Answer | undefined, RegExp][] = [
      ['userinfo JWT alg none', { userinfo_signing_alg_values_supported: ['none'] }, idToken(), (res) => json(res, unsigned({ sub: 'odd-person', email: 'victim@corp.example', email_verified: true }), 'application/jwt'), /Sign-in not completed/],
      [
        'userinfo JWT HS256 with the client secret',
        { userinfo_signing_alg_values_supported: ['HS256'] },
        idToken(),
        (res) => void new SignJWT({ sub: 'odd-person', email: 'victim@corp.example', email_verified: true }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET)).then((signed) => json(res, signed, 'application/jwt')),
        /Sign-in not completed/,
      ],
      [
        'an unsigned ID token from an upstream that advertises alg none for them',
        { id_token_signing_alg_values_supported: ['RS256', 'none'] },
        (res) => json(res, { access_token: 'an-access-token', token_type: 'Bearer', id_token: unsigned({ iss: issuer, sub: 'odd-person', aud: 'latchkey', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300, nonce, email: 'victim@corp.example', email_verified: true }) }),
        undefined,
        /Sign-in not completed/,
      ],
      ['token answer of 3 MB', {}, (res) => json(res, { access_token: 'LEAKED-AT', token_type: 'Bearer', pad: 'x'.repeat(3_000_000) }), undefined, /is not answering/],
      [
        'a token answer dribbled a byte every 300 ms (each read well within the bound, the whole never)',
        {},
        (res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          const drip = setInterval(() => (res.destroyed ? clearInterval(drip) : res.write(' ')), 300);
          res.on('close', () => clearInterval(drip));
        },
        undefined,
        /is not answering/,
      ],
      ['userinfo of 2 MB', {}, idToken(), (res) => json(res, { sub: 'odd-person', pad: 'x'.repeat(2_000_000) }), /is not answering/],
      ['an error with markup and tokens', {}, (res) => res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_grant', error_description: '<script>alert("LEAKED")</script>', access_token: 'LEAKED-AT', refresh_token: 'LEAKED-RT' })), undefined, /Sign-in not completed/],
      ['a token answer that is no conform one', {}, (res) => json(res, { access_token: 'LEAKED-AT', refresh_token: 'LEAKED-RT', id_token: 'LEAKED-ID', token_type: 42 }), undefined, /Sign-in not completed/],
    ];
    for (const [name, meta, tokenAnswer, userinfoAnswer, shown] of cases) {
      metadata = meta;
      token = tokenAnswer;
      userinfo = userinfoAnswer;
      const page = await signIn();
      assert.ok([403, 502].includes(page.status), `${name}: ${page.status} ${page.url}`);
      assert.match(page.html, shown, name);
      assert.ok(!signedIn(page), `${name}: no sign-in`);
      assert.doesNotMatch(page.html, /LEAKED|victim@/, `${name}: nothing of the upstream's answer on the page`);
      assert.doesNotMatch(page.log, /LEAKED|victim@/, `${name}: nor in the log`);
    }
  });
});
