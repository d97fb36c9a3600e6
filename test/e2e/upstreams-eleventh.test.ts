/**
 * Upstream identity providers, as an attacker: eleventh fresh-eyes pass (docs/security-passes.md,
 * "Looked at in the eleventh fresh-eyes passes of 2026-12-07: upstream identity providers").
 *
 * An upstream we program answer by answer (discovery with or without userinfo, JWKS, token
 * endpoint, logout tokens signed with its key), against a Latchkey with its own store, through a
 * cookie-keeping agent.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { Agent, answerAt } from '../helpers/agent.js';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { upstreamDiscovery } from '../helpers/fake-upstream.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const SECRET = 'upstream-eleventh-client-secret-with-plenty-of-entropy';
const APP = { client_id: 'app1', client_secret: SECRET, redirect_uris: ['http://app1.localhost:1/callback'], grant_types: ['authorization_code'] };
const REDIRECT = APP.redirect_uris[0]!;

/**
 * An upstream at `<origin>/plain` (no userinfo endpoint) and `<origin>/ui` (with one, answering the
 * ID token's sub): its ID tokens say what `idToken` makes of the usual claims.
 */
async function startUpstream() {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const state = { origin: '', nonce: '', sub: 'person', idToken: (claims: JWTPayload): JWTPayload => claims };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', state.origin);
    const [, prefix = '', path = ''] = /^(\/[a-z]+)(\/.*)$/.exec(url.pathname) ?? [];
    const issuer = `${state.origin}${prefix}`;
    const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (path === '/.well-known/openid-configuration') return json({ ...upstreamDiscovery(issuer), ...(prefix === '/ui' && { userinfo_endpoint: `${issuer}/userinfo` }) });
    if (path === '/jwks') return json({ keys: [jwk] });
    if (path === '/userinfo') return json({ sub: state.sub });
    if (path === '/authorize') {
      state.nonce = url.searchParams.get('nonce') ?? '';
      const back = new URL(url.searchParams.get('redirect_uri')!);
      back.searchParams.set('code', 'a-code');
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      return res.writeHead(302, { location: back.href }).end();
    }
    if (path === '/token') {
      const now = Math.floor(Date.now() / 1000);
      const claims = state.idToken({ iss: issuer, sub: state.sub, aud: 'latchkey', iat: now, exp: now + 300, nonce: state.nonce, auth_time: now, sid: 'upstream-sid' });
      void sign(claims, privateKey).then((idToken) => json({ access_token: 'an-access-token', token_type: 'Bearer', expires_in: 60, id_token: idToken }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  state.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    state,
    logoutToken: (issuer: string, claims: JWTPayload) => sign({ iss: issuer, aud: 'latchkey', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 120, jti: crypto.randomUUID(), events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, ...claims }, privateKey, 'logout+jwt'),
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

function sign(payload: JWTPayload, key: CryptoKey, typ?: string): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'k1', ...(typ && { typ }) }).sign(key);
}

describe('e2e: upstream identity providers, as an attacker (eleventh pass)', function () {
  this.timeout(60_000);
  let latchkey: TestServer;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;

  before(async () => {
    upstream = await startUpstream();
    latchkey = await startServer({ ownRedis: true, port: await freePort(), clients: [APP], env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', UPSTREAMS_TIMEOUT: '2' } });
    const upstreams = new Upstreams(latchkey.kv, latchkey.config.keys.secrets);
    const common = { clientId: 'latchkey', clientSecret: SECRET, scope: 'openid email profile', linkByEmail: false, endSession: false };
    await upstreams.add({ ...common, id: 'plain', issuer: `${upstream.state.origin}/plain`, displayName: 'Plain' });
    await upstreams.add({ ...common, id: 'ui', issuer: `${upstream.state.origin}/ui`, displayName: 'With userinfo' });
  });
  after(async () => {
    await latchkey?.stop();
    await upstream?.close();
  });

  /** An app's sign-in sent straight to the upstream `id`, in a fresh browser: the page it ends on (the app's redirect unvisited). */
  function signIn(id: string) {
    const params = new URLSearchParams({ client_id: 'app1', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', upstream: id });
    const agent = new Agent();
    return { agent, page: agent.follow(`${latchkey.issuer}/auth?${params}`, {}, REDIRECT) };
  }

  it("an ID token whose sub is empty or longer than 255 characters (OIDC Core §2), or whose sid is as long, is refused as one that does not verify: the page says so, the app gets access_denied, nothing is made or linked", async () => {
    const links = new UpstreamLinks(latchkey.kv, latchkey.accounts);
    const long = 'p'.repeat(256);
    const cases: [string, string, (claims: JWTPayload) => JWTPayload][] = [
      ['plain', '', (claims) => claims],
      ['ui', '', (claims) => claims],
      ['plain', long, (claims) => claims],
      ['ui', long, (claims) => claims],
      ['plain', 'sid-too-long', (claims) => ({ ...claims, sid: 's'.repeat(256) })],
    ];
    for (const [id, sub, idToken] of cases) {
      upstream.state.sub = sub;
      upstream.state.idToken = idToken;
      const accountsBefore = (await latchkey.accounts.list()).length;
      const { agent, page } = signIn(id);
      const refused = await page;
      const what = `${id}, sub of ${sub.length} characters (${sub.slice(0, 12)})`;
      assert.equal(refused.status, 403, `${what}: ${refused.status} ${refused.url}`);
      assert.match(refused.html, /Sign-in not completed/, what);
      const cancelled = await agent.submit(refused, '/upstream-cancel', {}, REDIRECT);
      assert.equal(answerAt(cancelled, REDIRECT), 'access_denied', what);
      assert.equal(await links.find(id, sub), undefined, what);
      assert.equal((await latchkey.accounts.list()).length, accountsBefore, what);
    }
    // 255 characters is a sub, and signs in.
    upstream.state.sub = 'p'.repeat(255);
    upstream.state.idToken = (claims) => claims;
    const done = await signIn('ui').page;
    assert.equal(done.status, 200, `${done.status} ${done.url}`);
    assert.ok(await links.find('ui', upstream.state.sub));
  });

  it('a logout token naming a sid or a sub longer than 255 characters is refused (400), as no ID token could have named it', async () => {
    for (const claims of [{ sid: 's'.repeat(256) }, { sub: 'p'.repeat(256) }]) {
      const token = await upstream.logoutToken(`${upstream.state.origin}/plain`, claims);
      const response = await fetch(`${latchkey.url}/upstream/plain/backchannel-logout`, { method: 'POST', body: new URLSearchParams({ logout_token: token }) });
      assert.equal(response.status, 400, JSON.stringify(Object.keys(claims)));
    }
  });
});
