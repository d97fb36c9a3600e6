/**
 * The red team's twenty-first pass at "Latchkey hands out more than was granted" (2026-12-04), black
 * box (docs/security-passes.md, "Looked at in the twenty-first granting pass"): assurance claims (`acr`,
 * `amr`, `auth_time`) said by a token of one sign-in after the same browser signed in more strongly.
 * The twentieth pass found `idp` read from the session's latest sign-in; this pass asks the same of the
 * sign-in's level: a refresh, a code redeemed later, a device approved before, their access tokens at
 * introspection and at an API, after a step-up to a second factor in the same browser. Also held: a
 * refresh narrowed past `openid`, the account chooser continued after another person signed in at the
 * same browser, and a token's own claims (`sid`, `jti`, `azp`…) asked by name. Nothing found.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent } from '../helpers/agent.js';
import { isConsent, isLogin, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'red team granted twenty-one passphrase';
const REDIRECT = 'https://twenty-one.example.test/callback';
const APP = { id: 'twenty-one', secret: 'twenty-one-client-secret-with-plenty-of-entropy-0123456789' };
const STRICT = { id: 'twenty-one-strict', secret: 'twenty-one-strict-secret-with-plenty-of-entropy-0123456789' };
const TV = 'twenty-one-tv';
const API = 'https://api.twenty-one.example.test';
const DEVICE_CODE = 'urn:ietf:params:oauth:grant-type:device_code';

/** The current code of an authenticator app with `secret`. */
const codeFor = (secret: string, steps = 0) => TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });

describe('e2e: red team, twenty-first granting pass, assurance a token says after a stronger sign-in in the same browser', function () {
  this.timeout(60_000);
  let server: TestServer;
  let app: oidc.Configuration;
  let strict: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true });
    await server.accounts.create('ada', PASSWORD, { email: 'ada@example.test', email_verified: true, name: 'Ada Example' });
    await server.accounts.create('cleo', PASSWORD, { email: 'cleo@example.test', email_verified: true, name: 'Cleo Example' });
    await server.apis.add({ identifier: API, scopes: ['notes:read'] });
    await server.clients.add({ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email offline_access notes:read' });
    await server.clients.add({ client_id: STRICT.id, client_secret: STRICT.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'], require_mfa: true });
    await server.clients.add({ client_id: TV, application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: [], response_types: [], grant_types: [DEVICE_CODE, 'refresh_token'], scope: 'openid offline_access' });
    app = await oidc.discovery(new URL(server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    strict = await oidc.discovery(new URL(server.issuer), STRICT.id, STRICT.secret, oidc.ClientSecretBasic(STRICT.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  /** The app's request at `agent` (`params` on top), `username` signing in with a password where asked; the code response. */
  async function appCode(agent: Agent, params: Record<string, string>, username = 'ada'): Promise<{ url: URL; verifier: string }> {
    const { page, verifier } = await startAuthorization(agent, app, REDIRECT, params);
    const back = await signInSteps(agent, page, { username, password: PASSWORD, stopAt: REDIRECT });
    assert.ok(back.url.startsWith(REDIRECT), `${back.status} ${back.url} ${back.html.slice(0, 600)}`);
    return { url: new URL(back.url), verifier };
  }

  /** What the app's introspection of `token` says of the sign-in. */
  async function introspected(token: string): Promise<Record<string, unknown>> {
    const response = await fetch(`${server.issuer}/token/introspection`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${APP.id}:${APP.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(body.active, true, JSON.stringify(body));
    return body;
  }

  it('held: a password sign-in\'s refresh, its code redeemed later and a device approved in it say pwd after the same browser stepped up to a second factor (OIDC Core §2, §12.2)', async () => {
    const agent = new Agent();
    // Ada, with a password alone, signs in to the app: offline access, and a token for the API.
    const first = await appCode(agent, { scope: 'openid email offline_access', prompt: 'consent' });
    const tokens = await oidc.authorizationCodeGrant(app, first.url, { pkceCodeVerifier: first.verifier });
    const signedIn = decodeJwt(tokens.id_token!);
    assert.equal(signedIn.acr, 'pwd');
    assert.deepEqual(signedIn.amr, ['pwd']);
    const kept = await appCode(agent, { scope: 'openid email offline_access', prompt: 'none' });
    const forApi = await appCode(agent, { scope: 'openid offline_access notes:read', resource: API, prompt: 'consent' });
    const apiTokens = await oidc.authorizationCodeGrant(app, forApi.url, { pkceCodeVerifier: forApi.verifier }, { resource: API });
    assert.equal(decodeJwt(apiTokens.access_token).acr, 'pwd');

    // A TV asks; she approves it in the same browser, its session password-only.
    const started = await fetch(`${server.issuer}/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: TV, scope: 'openid offline_access' }) });
    const { user_code: userCode, device_code: deviceCode } = (await started.json()) as { user_code: string; device_code: string };
    const confirm = await agent.submit(await agent.follow(`${server.issuer}/device`), '/device', { user_code: userCode });
    let approved = await agent.submit(confirm, '/device', { confirm: 'yes' });
    assert.ok(!isLogin(approved), 'the session signed in already approves');
    if (isConsent(approved)) approved = await agent.submit(approved, '/confirm', {});
    assert.match(approved.html, /Device connected/, `${approved.status} ${approved.url}`);

    // She sets up an authenticator app, and the strict client steps the same browser up: password and code.
    const account = (await server.accounts.findByUsername('ada'))!;
    const { secret } = await server.secondFactors.totp.begin(account.sub, 'ada', 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(account.sub, codeFor(secret, -1), 'test-session'), true);
    const stepUp = await startAuthorization(agent, strict, REDIRECT);
    assert.ok(isLogin(stepUp.page), `the password session is asked to sign in again: ${stepUp.page.url}`);
    const factorPage = await signInSteps(agent, stepUp.page, { username: 'ada', password: PASSWORD, stopAt: REDIRECT });
    let back = await agent.submit(factorPage, '/second-factor', { method: 'totp', code: codeFor(secret) }, REDIRECT);
    if (isConsent(back)) back = await agent.submit(back, '/confirm', {}, REDIRECT);
    assert.ok(back.url.startsWith(REDIRECT), `${back.status} ${back.url} ${back.html.slice(0, 600)}`);
    const stepped = (await oidc.authorizationCodeGrant(strict, new URL(back.url), { pkceCodeVerifier: stepUp.verifier })).claims()!;
    assert.equal(stepped.acr, 'mfa');

    // What the password sign-in gave says pwd still, wherever it is read.
    const asSignedIn = (claims: Record<string, unknown>, what: string) => {
      assert.equal(claims.acr, 'pwd', `${what}: acr ${String(claims.acr)}`);
      assert.deepEqual(claims.amr, ['pwd'], `${what}: amr ${JSON.stringify(claims.amr)}`);
      assert.equal(claims.auth_time, signedIn.auth_time, `${what}: auth_time of the later sign-in`);
    };
    const refreshed = await oidc.refreshTokenGrant(app, tokens.refresh_token!);
    asSignedIn(decodeJwt(refreshed.id_token!), 'the refreshed ID token');
    const late = await oidc.authorizationCodeGrant(app, kept.url, { pkceCodeVerifier: kept.verifier });
    asSignedIn(decodeJwt(late.id_token!), 'the ID token of a code redeemed later');
    const apiRefreshed = await oidc.refreshTokenGrant(app, apiTokens.refresh_token!, { resource: API });
    asSignedIn(decodeJwt(apiRefreshed.access_token), "the API's JWT access token of a refresh");
    // Introspection says nothing of the sign-in (RFC 7662 §2.2 names no such member), so neither level.
    for (const [what, token] of [['the refreshed access token', refreshed.access_token], ["the API's access token", apiRefreshed.access_token]] as const) {
      const body = await introspected(token);
      assert.deepEqual(['acr', 'amr', 'auth_time'].filter((claim) => claim in body), [], `${what} at introspection: ${JSON.stringify(body)}`);
    }
    const polled = await fetch(`${server.issuer}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: DEVICE_CODE, device_code: deviceCode, client_id: TV }) });
    const device = (await polled.json()) as { id_token?: string; refresh_token?: string };
    assert.ok(device.id_token, JSON.stringify(device));
    assert.equal(decodeJwt(device.id_token).acr, 'pwd', "the device's ID token");
    assert.deepEqual(decodeJwt(device.id_token).amr, ['pwd'], "the device's ID token");
    assert.equal(decodeJwt(device.id_token).auth_time, signedIn.auth_time, "the device's ID token: the sign-in's auth_time, not the approval's");
  });
  it('held: a refresh narrowed past `openid` itself gives no ID token, and its access token no claim at userinfo, not even one allowed by name (OIDC Core §5.5, RFC 6749 §6)', async () => {
    const claims = JSON.stringify({ id_token: { email: null }, userinfo: { email: null } });
    const { url, verifier } = await appCode(new Agent(), { scope: 'openid offline_access', claims, prompt: 'consent' }, 'cleo');
    const tokens = await oidc.authorizationCodeGrant(app, url, { pkceCodeVerifier: verifier });
    assert.equal(decodeJwt(tokens.id_token!).email, 'cleo@example.test', 'allowed by name');
    const narrowed = await oidc.refreshTokenGrant(app, tokens.refresh_token!, { scope: 'offline_access' });
    assert.equal(narrowed.id_token, undefined, 'an ID token for a refresh without openid');
    assert.equal(narrowed.scope, 'offline_access');
    const userinfo = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${narrowed.access_token}` } });
    const answer = await userinfo.text();
    assert.equal(userinfo.status, 403, answer);
    assert.ok(!answer.includes('cleo@example.test'), answer);
    const seen = await introspected(narrowed.access_token);
    assert.equal(seen.scope, 'offline_access');
    assert.equal(seen.email, undefined);
  });
  it("held: the account chooser's \"continue\" after another person signed in at the same browser gives no code, neither the one shown nor the one signed in now (OIDC Core §3.1.2.1)", async () => {
    const agent = new Agent();
    await appCode(agent, { scope: 'openid', prompt: 'consent' }, 'cleo');
    const chooser = await startAuthorization(agent, app, REDIRECT, { prompt: 'select_account' });
    assert.ok(chooser.page.html.includes('/continue'), `the chooser for Cleo: ${chooser.page.status} ${chooser.page.url}`);
    // Dora signs in at the same browser meanwhile (the engine ends Cleo's session first).
    await server.accounts.create('dora', PASSWORD, { email: 'dora@example.test', email_verified: true, name: 'Dora Example' });
    const doraStart = await startAuthorization(agent, app, REDIRECT, { scope: 'openid', prompt: 'login' });
    let doraPage = await signInSteps(agent, doraStart.page, { username: 'dora', password: PASSWORD, stopAt: REDIRECT });
    if (doraPage.html.includes('/session/end/confirm')) doraPage = await agent.submit(doraPage, '/session/end/confirm', {}, REDIRECT);
    if (isConsent(doraPage)) doraPage = await agent.submit(doraPage, '/confirm', {}, REDIRECT);
    const doraSub = decodeJwt((await oidc.authorizationCodeGrant(app, new URL(doraPage.url), { pkceCodeVerifier: doraStart.verifier })).id_token!).sub;
    assert.equal(doraSub, (await server.accounts.findByUsername('dora'))!.sub);
    // Cleo's chooser, still open, is continued.
    const after = await agent.submit(chooser.page, '/continue', {}, REDIRECT);
    assert.equal(after.status, 400, `${after.status} ${after.url}`);
    assert.ok(!after.url.startsWith(REDIRECT), after.url);
    assert.match(after.html, /Sign-in expired/);
  });
  it("held: a token's own claims asked by name (`sid`, `nonce`, `azp`, `jti`, `client_id`, `scope`, `auth_time` at userinfo) give nothing; what is given was listed (OIDC Core §5.5)", async () => {
    await server.clients.add({ client_id: 'twenty-one-open', client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code'] });
    const open = await oidc.discovery(new URL(server.issuer), 'twenty-one-open', APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
    await server.accounts.create('eve', PASSWORD, { email: 'eve@example.test', email_verified: true, name: 'Eve Example' });
    const claims = JSON.stringify({
      userinfo: { sid: null, nonce: null, azp: null, updated_at: null, auth_time: { essential: true }, jti: null, client_id: null, scope: null, acr: null },
      id_token: { updated_at: null, jti: { essential: true }, scope: null, client_id: null, azp: null },
    });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, open, REDIRECT, { scope: 'openid', claims });
    const consent = await signInSteps(agent, page, { username: 'eve', password: PASSWORD, consent: 'stop' });
    assert.ok(isConsent(consent), `${consent.status} ${consent.url}`);
    const listed = consent.html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
    assert.match(listed, /See these details about you: updated_at/);
    const back = await agent.submit(consent, '/confirm', {}, REDIRECT);
    const tokens = await oidc.authorizationCodeGrant(open, new URL(back.url), { pkceCodeVerifier: verifier });
    const idToken = decodeJwt(tokens.id_token!);
    for (const claim of ['jti', 'scope', 'client_id', 'azp', 'email', 'name']) assert.equal(idToken[claim], undefined, `${claim} in the ID token: ${JSON.stringify(idToken)}`);
    const userinfo = await fetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    const body = (await userinfo.json()) as Record<string, unknown>;
    assert.equal(userinfo.status, 200);
    assert.deepEqual(Object.keys(body).sort(), ['sub', 'updated_at'], JSON.stringify(body));
  });
});
