/**
 * KEYS_SECRETS rotated because the old secret leaked: a new secret is put first ("B,A"), and once
 * a server has started with it, everything sealed under the old one (the key ring, upstreams'
 * client secrets, people's authenticator-app secrets) opens with the new secret alone, so the old
 * one can be dropped ("B") without breaking upstream sign-in or second factors; and a store dump
 * read with the leaked secret opens none of it.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { SecondFactors } from '../../src/accounts/second-factors.js';
import { Sealer } from '../../src/keyring/sealing.js';
import { Upstreams } from '../../src/upstreams/registry.js';
import { Agent } from '../helpers/agent.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, type TestServer } from '../helpers/server.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { upstreamDiscovery } from '../helpers/fake-upstream.js';

const OLD = 'the-old-keys-secret-that-leaked-0123456789abcdef';
const NEW = 'the-new-keys-secret-put-first-0123456789abcdefgh';
const UPSTREAM_SECRET = 'latchkey-client-secret-at-the-upstream-0123456789';
const APP_SECRET = 'app-client-secret-with-plenty-of-entropy-0123456789';
const REDIRECT = 'https://app.example.test/callback';
const PASSWORD = 'a passphrase for the rotation';

const codeFor = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });

/** An upstream whose token endpoint gives an ID token only to the client "latchkey" with UPSTREAM_SECRET. */
async function startUpstream() {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'upstream-key', alg: 'RS256', use: 'sig' };
  const state = { issuer: '', nonce: '', tokens: 0 };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', state.issuer);
    const json = (body: unknown, status = 200) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(upstreamDiscovery(state.issuer));
    }
    if (url.pathname === '/jwks') return json({ keys: [jwk] });
    if (url.pathname === '/authorize') {
      state.nonce = url.searchParams.get('nonce') ?? '';
      const back = new URL(url.searchParams.get('redirect_uri')!);
      back.searchParams.set('code', 'a-code');
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      return res.writeHead(302, { location: back.href }).end();
    }
    if (url.pathname === '/token') {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        // client_secret_basic: each part form-encoded (RFC 6749 §2.3.1), or client_secret_post.
        const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        const [id, secret] = basic ? Buffer.from(basic, 'base64').toString().split(':').map((part) => decodeURIComponent(part.replace(/\+/g, ' '))) : [form.get('client_id'), form.get('client_secret')];
        if (id !== 'latchkey' || secret !== UPSTREAM_SECRET) return json({ error: 'invalid_client' }, 401);
        state.tokens += 1;
        const now = Math.floor(Date.now() / 1000);
        void new SignJWT({ iss: state.issuer, sub: 'upstream-person', aud: 'latchkey', iat: now, exp: now + 300, nonce: state.nonce, email: 'person@upstream.example', email_verified: true })
          .setProtectedHeader({ alg: 'RS256', kid: 'upstream-key' })
          .sign(privateKey)
          .then((idToken) => json({ access_token: 'an-access-token', token_type: 'Bearer', expires_in: 60, id_token: idToken }));
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  state.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { state, close: () => new Promise<void>((done) => server.close(() => done())) };
}

describe('e2e: KEYS_SECRETS rotated, then the old secret dropped', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let server: TestServer | undefined;

  before(async () => {
    redis = await startRedisServer();
    upstream = await startUpstream();
  });
  after(async () => {
    await server?.stop();
    await upstream?.close();
    await redis?.stop();
  });

  it('what was sealed under the old secret opens with the new one alone after a start with "new,old"; with "new" only, upstream sign-in and the authenticator app still work', async () => {
    const dir = testDir();
    const port = await freePort();
    const start = (secrets: string) =>
      startServer({
        redisUrl: redis.url,
        dir,
        port,
        clients: [{ client_id: 'app', client_secret: APP_SECRET, redirect_uris: [REDIRECT] }],
        env: { KEYS_SECRETS: secrets, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' },
      });

    // Under the old secret alone: the key ring, an upstream's client secret, a person's authenticator app.
    server = await start(OLD);
    await new Upstreams(server.kv, [OLD]).add({
      id: 'corp', issuer: upstream.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: 'Corp', linkByEmail: false, endSession: false,
    });
    const pat = await server.accounts.create('pat', PASSWORD);
    const { secret } = await server.secondFactors.totp.begin(pat.sub, 'pat', 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(pat.sub, codeFor(secret, -1), 'test-session'), true);
    await server.stop();
    server = undefined;

    // The new secret first, the old one still there: a start seals everything again under the new one.
    server = await start(`${NEW},${OLD}`);
    const withNewOnly = { upstreams: new Upstreams(server.kv, [NEW]), factors: new SecondFactors(server.kv, new Sealer([NEW]), server.issuer) };
    assert.equal((await withNewOnly.upstreams.find('corp'))?.clientSecret, UPSTREAM_SECRET, "the upstream's client secret opens with the new secret alone");
    assert.equal((await withNewOnly.factors.totp.verify(pat.sub, codeFor(secret, 0), 'test-sign-in')).outcome, 'ok', 'the authenticator app opens with the new secret alone');
    const withLeaked = { upstreams: new Upstreams(server.kv, [OLD]), factors: new SecondFactors(server.kv, new Sealer([OLD]), server.issuer) };
    await assert.rejects(withLeaked.upstreams.find('corp'), /cannot be opened/, 'the leaked secret opens it no more');
    assert.equal((await withLeaked.factors.totp.verify(pat.sub, codeFor(secret, 0), 'test-sign-in')).outcome, 'unreadable', 'nor the authenticator app');
    await server.stop();
    server = undefined;

    // The old secret dropped.
    server = await start(NEW);
    const app = await oidc.discovery(new URL(server.issuer), 'app', APP_SECRET, oidc.ClientSecretBasic(APP_SECRET), { execute: [oidc.allowInsecureRequests] });
    const federated = new Agent();
    const viaUpstream = await startAuthorization(federated, app, REDIRECT, { upstream: 'corp' });
    let done = isConsent(viaUpstream.page) ? await federated.submit(viaUpstream.page, '/confirm', {}, REDIRECT) : viaUpstream.page;
    assert.ok(done.url.startsWith(REDIRECT) && new URL(done.url).searchParams.get('code'), `signed in through the upstream: ${done.status} ${done.url}`);
    assert.ok(upstream.state.tokens >= 1, 'with the client secret at the upstream');

    const person = new Agent();
    const login = await startAuthorization(person, app, REDIRECT);
    const second = await signInSteps(person, login.page, { username: 'pat', password: PASSWORD, login: 'required', consent: 'stop', stopAt: REDIRECT });
    done = await person.submit(second, '/second-factor', { method: 'totp', code: codeFor(secret, 1) }, REDIRECT);
    if (isConsent(done)) done = await person.submit(done, '/confirm', {}, REDIRECT);
    assert.ok(done.url.startsWith(REDIRECT) && new URL(done.url).searchParams.get('code'), `signed in with the authenticator app: ${done.status} ${done.url}`);
  });
});
