/**
 * The red team's twentieth pass at "Latchkey hands out more than was granted" (2026-12-04), black
 * box (docs/security-passes.md, "Looked at in the twentieth granting pass"): what a token or a request
 * names beside what was granted. Found: an ID token named the upstream its session signed in through
 * last (`idp`), not the one its sign-in went through: a refresh, a code redeemed later and a device
 * approved before named the company's upstream once the same browser had signed in through it after a
 * social login. Held: a DPoP-bound access token at userinfo as a Bearer token or with another key's
 * proof; `value` and `values` of the `claims` parameter for claims other than `sub`; a silent request
 * carrying another client's ID token as its `id_token_hint`.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const PASSWORD = 'red team granted twenty passphrase';
const REDIRECT = 'https://twenty.example.test/callback';
const OTHER_REDIRECT = 'https://other.twenty.example.test/callback';
const APP = { id: 'twenty', secret: 'twenty-client-secret-with-plenty-of-entropy-0123456789' };
const TV = 'twenty-tv';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';
const OTHER = { id: 'twenty-other', secret: 'twenty-other-secret-with-plenty-of-entropy-0123456789' };

type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };

/** A DPoP proof made by hand (RFC 9449 §4.2) for `htm` `htu`, bound to `accessToken`. */
async function proof(key: KeyPair, htm: string, htu: string, accessToken: string): Promise<string> {
  return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm, htu, ath: createHash('sha256').update(accessToken).digest('base64url') })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey) })
    .sign(key.privateKey);
}

describe('e2e: red team, twentieth granting pass, what a token or a request names beside what was granted', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let other: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true });
    await server.accounts.create('ada', PASSWORD, { email: 'ada@example.test', email_verified: true, name: 'Ada Example' });
    await server.clients.add({ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] });
    await server.clients.add({ client_id: OTHER.id, client_secret: OTHER.secret, redirect_uris: [OTHER_REDIRECT], grant_types: ['authorization_code'] });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    other = await oidc.discovery(new URL(server.issuer), OTHER.id, OTHER.secret, oidc.ClientSecretBasic(OTHER.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  /** Ada signs in to `config`'s client at `agent` with `params`; the code response's URL and its PKCE verifier. */
  async function signIn(agent: Agent, config: oidc.Configuration, redirect: string, params: Record<string, string> = {}): Promise<{ url: URL; verifier: string }> {
    const { page, verifier } = await startAuthorization(agent, config, redirect, params);
    const back = await signInSteps(agent, page, { username: 'ada', password: PASSWORD, stopAt: redirect });
    assert.ok(back.url.startsWith(redirect), `${back.status} ${back.url}`);
    return { url: new URL(back.url), verifier };
  }

  it('held: a DPoP-bound access token at userinfo as a Bearer token, without a proof or with another key\'s proof is refused (RFC 9449 §7.1)', async () => {
    const key = await generateKeyPair('ES256', { extractable: true });
    const { url, verifier } = await signIn(new Agent(), app, REDIRECT, { scope: 'openid email' });
    const tokens = await oidc.authorizationCodeGrant(app, url, { pkceCodeVerifier: verifier }, undefined, { DPoP: oidc.getDPoPHandle(app, key) });
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    const userinfo = `${server.issuer}/me`;
    const asBearer = await fetch(userinfo, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(asBearer.status, 401, `a DPoP-bound token as Bearer: ${await asBearer.text()}`);
    const noProof = await fetch(userinfo, { headers: { authorization: `DPoP ${tokens.access_token}` } });
    assert.ok([400, 401].includes(noProof.status), `a DPoP-bound token without a proof: ${noProof.status}`);
    const thief = await generateKeyPair('ES256', { extractable: true });
    const thiefs = await fetch(userinfo, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: await proof(thief, 'GET', userinfo, tokens.access_token) } });
    assert.equal(thiefs.status, 401);
    // In the query or the body (RFC 6750 §2.2, §2.3) it is refused too.
    const inBody = await fetch(userinfo, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ access_token: tokens.access_token }) });
    assert.notEqual(inBody.status, 200, `a DPoP-bound token in the body: ${await inBody.text()}`);
    // The holder of the key gets the person's claims.
    const own = await fetch(userinfo, { headers: { authorization: `DPoP ${tokens.access_token}`, dpop: await proof(key, 'GET', userinfo, tokens.access_token) } });
    const ownBody = (await own.json()) as { email?: string };
    assert.equal(own.status, 200, JSON.stringify(ownBody));
    assert.equal(ownBody.email, 'ada@example.test');
  });

  it('held: `value` and `values` of the claims parameter for claims other than sub neither pick whom they speak of nor put the asked value in a token (OIDC Core §5.5.1)', async () => {
    const claims = JSON.stringify({
      id_token: { email: { essential: true, value: 'eve@example.test' }, name: { values: ['Eve Example'] }, email_verified: { value: true }, acr: { value: 'mfa' }, amr: { values: [['otp']] }, idp: { value: 'corp' } },
      userinfo: { email: { value: 'eve@example.test' }, name: { essential: true, values: ['Eve Example'] }, acr: { essential: true, value: 'mfa' }, auth_time: { essential: true }, idp: { value: 'corp' } },
    });
    const { url, verifier } = await signIn(new Agent(), app, REDIRECT, { scope: 'openid email profile', claims });
    const tokens = await oidc.authorizationCodeGrant(app, url, { pkceCodeVerifier: verifier });
    const idToken = decodeJwt(tokens.id_token!);
    assert.equal(idToken.email, 'ada@example.test');
    assert.equal(idToken.name, 'Ada Example');
    const userinfo = (await oidc.fetchUserInfo(app, tokens.access_token, idToken.sub!)) as Record<string, unknown>;
    assert.equal(userinfo.email, 'ada@example.test');
    assert.equal(userinfo.name, 'Ada Example');
    assert.ok(!JSON.stringify({ idToken, userinfo }).includes('eve'), 'the asked value appears');
    // Nor do they make a password sign-in read as a stronger or federated one (acr, amr, idp asked with values).
    assert.notEqual(idToken.acr, 'mfa');
    assert.deepEqual(idToken.amr, ['pwd']);
    assert.equal(idToken.idp, undefined);
    assert.deepEqual(Object.keys(userinfo).filter((claim) => ['acr', 'amr', 'auth_time', 'idp'].includes(claim)), [], JSON.stringify(userinfo));
  });

  it('held: a silent request carrying another client\'s ID token as its id_token_hint gets no code (OIDC Core §3.1.2.1)', async () => {
    const agent = new Agent();
    const { url, verifier } = await signIn(agent, other, OTHER_REDIRECT);
    const othersIdToken = (await oidc.authorizationCodeGrant(other, url, { pkceCodeVerifier: verifier })).id_token!;
    // The same browser, the app never allowed: the other app's ID token says nothing for it.
    const silent = await startAuthorization(agent, app, REDIRECT, { prompt: 'none', id_token_hint: othersIdToken });
    assert.ok(silent.page.url.startsWith(REDIRECT), silent.page.url);
    const answer = new URL(silent.page.url).searchParams;
    assert.equal(answer.get('code'), null, `a code for another client's hint: ${silent.page.url}`);
    assert.equal(answer.get('error'), 'invalid_request');
    // Ada allows the app; its silent request with the other app's hint is still refused, with its own hint answered.
    const mine = await signIn(agent, app, REDIRECT);
    const ownIdToken = (await oidc.authorizationCodeGrant(app, mine.url, { pkceCodeVerifier: mine.verifier })).id_token!;
    const again = new URL((await startAuthorization(agent, app, REDIRECT, { prompt: 'none', id_token_hint: othersIdToken })).page.url).searchParams;
    assert.equal(again.get('code'), null);
    assert.equal(again.get('error'), 'invalid_request');
    const own = new URL((await startAuthorization(agent, app, REDIRECT, { prompt: 'none', id_token_hint: ownIdToken })).page.url).searchParams;
    assert.ok(own.get('code'), `own hint: ${own.toString()}`);
  });
});

describe('e2e: red team, twentieth granting pass, the upstream an ID token names', function () {
  this.timeout(60_000);
  const UPSTREAM_SECRET = 'red-team-granted-twenty-upstream-secret-0123456789';
  let server: TestServer;
  let app: oidc.Configuration;
  let social: Awaited<ReturnType<typeof startFakeUpstream>>;
  let corp: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
    await server.accounts.create('ada', PASSWORD, { email: 'ada@corp.example', email_verified: true, name: 'Ada Example' });
    await server.clients.add({ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email offline_access' });
    await server.clients.add({ client_id: TV, application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: [DEVICE_CODE] });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    social = await startFakeUpstream(UPSTREAM_SECRET);
    corp = await startFakeUpstream(UPSTREAM_SECRET);
    const upstreams = new Upstreams(server.kv, server.config.keys.secrets);
    for (const [id, fake] of [['social', social], ['corp', corp]] as const) {
      Object.assign(fake.state, { sub: `ada-at-${id}`, email: 'ada@corp.example', emailVerified: true });
      await upstreams.add({ id, issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: id, linkByEmail: true, endSession: false });
    }
  });
  after(async () => {
    await social?.close();
    await corp?.close();
    await server?.stop();
  });

  /** A request of the app through `upstream` at `agent` (`params` on top), Ada confirming a link with her password where offered; the code response. */
  async function through(agent: Agent, upstream: string, params: Record<string, string> = {}): Promise<{ url: URL; verifier: string }> {
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, { scope: 'openid email offline_access', prompt: 'consent', upstream, ...params });
    const back = await signInSteps(agent, page, { username: 'ada', password: PASSWORD, stopAt: REDIRECT });
    assert.ok(back.url.startsWith(REDIRECT), `${back.status} ${back.url}`);
    return { url: new URL(back.url), verifier };
  }

  it("an ID token of a sign-in through one upstream names that upstream, not the one the session signed in through later (a refresh, a code redeemed later)", async () => {
    // Ada links both upstreams to her account (her password confirms each link).
    await through(new Agent(), 'social');
    await through(new Agent(), 'corp');

    // She signs in to the app through the social upstream; the app keeps a refresh token and a second code.
    const agent = new Agent();
    const first = await through(agent, 'social');
    const tokens = await oidc.authorizationCodeGrant(app, first.url, { pkceCodeVerifier: first.verifier });
    assert.equal(decodeJwt(tokens.id_token!).idp, 'social');
    const kept = await through(agent, 'social', { prompt: 'none' });

    // The same browser signs in again, through corp (another app's step, here the same app's).
    const again = await through(agent, 'corp', { prompt: 'login' });
    const corpTokens = await oidc.authorizationCodeGrant(app, again.url, { pkceCodeVerifier: again.verifier });
    assert.equal(decodeJwt(corpTokens.id_token!).idp, 'corp');

    // What the social sign-in gave still says social: its refresh and its code redeemed now.
    const refreshed = await oidc.refreshTokenGrant(app, tokens.refresh_token!);
    assert.equal(decodeJwt(refreshed.id_token!).idp, 'social', 'a refresh of the social sign-in named the upstream signed in through later');
    const late = await oidc.authorizationCodeGrant(app, kept.url, { pkceCodeVerifier: kept.verifier });
    assert.equal(decodeJwt(late.id_token!).idp, 'social', 'a code of the social sign-in redeemed later named the upstream signed in through later');
  });

  it('an ID token of a device approved after a sign-in through one upstream names that upstream, not the one the browser signed in through before the device polled (RFC 8628)', async () => {
    const started = await fetch(`${server.issuer}/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: TV, scope: 'openid' }) });
    const { user_code: userCode, device_code: deviceCode } = (await started.json()) as { user_code: string; device_code: string };
    const agent = new Agent();
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: userCode });
    const login = await agent.submit(confirm, '/device', { confirm: 'yes' });
    assert.ok(login.html.includes('/upstream/social'), `expected the login page with the upstreams, got ${login.status} ${login.url}`);
    let done = await agent.submit(login, '/upstream/social', {});
    if (isConsent(done)) done = await agent.submit(done, '/confirm', {});
    assert.match(done.html, /Device connected/, `${done.status} ${done.url}`);
    // Before the device polls, the same browser signs in through corp.
    await through(agent, 'corp', { prompt: 'login' });
    const polled = await fetch(`${server.issuer}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: DEVICE_CODE, device_code: deviceCode, client_id: TV }) });
    const tokens = (await polled.json()) as { id_token?: string };
    assert.ok(tokens.id_token, JSON.stringify(tokens));
    assert.equal(decodeJwt(tokens.id_token).idp, 'social', "the device's ID token named the upstream signed in through after its approval");
  });
});
