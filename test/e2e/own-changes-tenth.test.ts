/**
 * The tenth fresh-eyes pass at the session's own changes (2026-12-07, docs/security-passes.md, "the
 * session's own changes, tenth pass"), black box. Found and fixed here: the mark a raised requirement
 * writes (`revoked:{rv}:raised:<client_id>`, for its people's access tokens) was read for refresh
 * tokens at introspection too, so a refresh token its client goes on refreshing with was answered
 * `{"active": false}` for an access token lifetime after the change, and active again after. And
 * the account page, since recovery codes are made only beside a second factor, hid the codes a
 * person kept from before they removed their last one (which work again once they add one). And
 * (the tenth pass at today's web pages) those kept codes signed in at the enrolment prompt of an app
 * requiring a second factor, which the page says they do not.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isConsent, signedInToAccountPage, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { basic, introspect, type ClientCredentials } from '../helpers/tokens.js';
import { Secret, TOTP } from 'otpauth';
import { secondFactorsKey } from '../../src/store/keys.js';

const REDIRECT = 'https://own-changes.example.test/callback';
const PASSWORD = 'tenth pass over the own changes passphrase';

describe("e2e: tenth fresh-eyes pass, the session's own changes", function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({ ownRedis: true });
  });
  after(() => server?.stop());

  /** A client of `id` (confidential, offline access), its token request, and a person's refresh token through it. */
  async function clientWithPerson(id: string, username: string, totpSecret?: string) {
    const app: ClientCredentials = { id, secret: `${id}-secret-with-plenty-of-entropy-0123456789` };
    const metadata = { client_id: app.id, client_secret: app.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
    await server.clients.add(metadata);
    const config = await oidc.discovery(new URL(server.issuer), app.id, app.secret, oidc.ClientSecretBasic(app.secret), { execute: [oidc.allowInsecureRequests] });
    const call = async (params: Record<string, string>, headers: Record<string, string> = {}) => {
      const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(app), ...headers }, body: new URLSearchParams(params) });
      return { status: response.status, body: (await response.json()) as Record<string, string> };
    };
    const agent = new Agent();
    const started = await startAuthorization(agent, config, REDIRECT, { scope: 'openid offline_access' });
    let page = await signInSteps(agent, started.page, { username, password: PASSWORD, consent: 'stop', stopAt: REDIRECT });
    if (totpSecret) page = await agent.submit(page, '/second-factor', { method: 'totp', code: TOTP.generate({ secret: Secret.fromBase32(totpSecret) }) }, REDIRECT);
    if (isConsent(page)) page = await agent.submit(page, '/confirm', {}, REDIRECT);
    const code = new URL(page.url).searchParams.get('code');
    assert.ok(code, page.url);
    const tokens = await call({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: started.verifier });
    assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
    return { app, metadata, call, refresh: tokens.body.refresh_token!, access: tokens.body.access_token! };
  }

  it("a requirement raised on a client (require_mfa, dpop_bound_access_tokens) ends its people's access tokens of before, not the refresh tokens it still refreshes with: introspection says those are active", async () => {
    await server.accounts.create('oda', PASSWORD, { email: 'oda@example.test' });
    const oda = (await server.accounts.findByUsername('oda'))!;
    const { secret } = await server.secondFactors.totp.begin(oda.sub, 'oda', 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(oda.sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'test-session'), true);

    // require_mfa raised: a sign-in with the second factor goes on refreshing.
    const level = await clientWithPerson('own-changes-level', 'oda', secret);
    assert.equal((await introspect(server.url, level.app, level.refresh)).active, true);
    await server.clients.update(level.app.id, { ...level.metadata, require_mfa: true });
    assert.equal((await introspect(server.url, level.app, level.access)).active, false, 'the access token of before ends');
    assert.equal((await introspect(server.url, level.app, level.refresh)).active, true, 'the refresh token a refresh still takes is active at introspection');
    const refreshed = await level.call({ grant_type: 'refresh_token', refresh_token: level.refresh });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal((await introspect(server.url, level.app, refreshed.body.refresh_token!)).active, true);

    // dpop_bound_access_tokens raised: a confidential client's refresh token is bound by its authentication, and refreshes with a proof.
    await server.accounts.create('pia', PASSWORD, { email: 'pia@example.test' });
    const bound = await clientWithPerson('own-changes-bound', 'pia');
    await server.clients.update(bound.app.id, { ...bound.metadata, dpop_bound_access_tokens: true });
    assert.equal((await introspect(server.url, bound.app, bound.access)).active, false, 'the bearer access token of before ends');
    assert.equal((await introspect(server.url, bound.app, bound.refresh)).active, true, 'the refresh token a refresh still takes is active at introspection');
    const key = await generateKeyPair('ES256', { extractable: true });
    const proof = await new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm: 'POST', htu: `${server.issuer}/token` })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await exportJWK(key.publicKey) })
      .sign(key.privateKey);
    const again = await bound.call({ grant_type: 'refresh_token', refresh_token: bound.refresh }, { dpop: proof });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.token_type, 'DPoP');
  });

  it('the account page of a person without a passkey or authenticator app keeps no recovery codes from before: they go with the last factor (eleventh pass; they were kept, and said to work again once one was added)', async () => {
    const person = await server.accounts.create('rue', PASSWORD);
    const { secret } = await server.secondFactors.totp.begin(person.sub, 'rue', 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(person.sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'test-session'), true);
    await server.secondFactors.recoveryCodes.generate(person.sub);
    await server.secondFactors.totp.remove(person.sub);
    assert.equal((await server.secondFactors.summary(person.sub)).recoveryCodesLeft, 0);
    const { page } = await signedInToAccountPage(server.issuer, 'rue', PASSWORD);
    assert.doesNotMatch(page.html, /recovery codes from before/);
    assert.match(page.html, /add one first, then make them/);
  });
  it('recovery codes kept without a passkey or authenticator app sign nobody in: at the enrolment prompt of an app requiring one, a code posted to the second-factor step is refused', async () => {
    const person = await server.accounts.create('sol', PASSWORD);
    const { secret } = await server.secondFactors.totp.begin(person.sub, 'sol', 'test-session');
    assert.equal(await server.secondFactors.totp.confirm(person.sub, TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: Date.now() - 30_000 }), 'test-session'), true);
    const [code] = await server.secondFactors.recoveryCodes.generate(person.sub);
    // A record as one kept from before the eleventh pass stays: the codes without the factor (they now go with it).
    const { totp: _removed, ...kept } = await server.secondFactors.records.read(person.sub);
    await server.kv.set(secondFactorsKey(person.sub), JSON.stringify(kept));
    const strict = { client_id: 'own-changes-strict', client_secret: 'own-changes-strict-secret-with-plenty-of-entropy-0123', redirect_uris: [REDIRECT], require_mfa: true };
    await server.clients.add(strict);
    const config = await oidc.discovery(new URL(server.issuer), strict.client_id, strict.client_secret, oidc.ClientSecretBasic(strict.client_secret), { execute: [oidc.allowInsecureRequests] });
    // Whoever holds the password and the codes (made by a thief while the factor was there).
    const agent = new Agent();
    const started = await startAuthorization(agent, config, REDIRECT);
    const prompt = await signInSteps(agent, started.page, { username: 'sol', password: PASSWORD, login: 'required', consent: 'stop', stopAt: REDIRECT });
    assert.equal(prompt.status, 403, 'the enrolment prompt');
    const uid = new URL(prompt.url).pathname.split('/')[2];
    const csrf = prompt.html.match(/name="csrf" value="([^"]+)"/)![1]!;
    const posted = await agent.follow(`${server.url}/interaction/${uid}/second-factor`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      // `for`: whose second-factor page the form says it came from (the person's username, as the attacker knows).
      body: new URLSearchParams({ csrf, for: 'sol', method: 'recovery', code: code! }),
    }, REDIRECT);
    const landed = isConsent(posted) ? await agent.submit(posted, '/confirm', {}, REDIRECT) : posted;
    assert.equal(new URL(landed.url).searchParams.get('code'), null, 'no code for the app');
    assert.equal(posted.status, 401, `${posted.status} ${posted.url}`);
    assert.doesNotMatch(posted.html, /value="recovery"/, 'no recovery code asked for');
    assert.equal((await server.secondFactors.records.read(person.sub)).recovery?.hashes.length, 10, 'the code is not spent');
  });
});
