/**
 * The red team's seventh pass at "Latchkey hands out more than was granted" (2026-12-02), black box:
 * a sign-in through an upstream that answered from its session of an hour ago claimed a sign-in of
 * now (the ID token's and the access token's `auth_time`), and met a later app's `max_age` with it;
 * and a refresh token and an ID token that said they were good past the end of the grant they were
 * issued under (the person's consent, ttl.grant). A refresh token rotated in the grant's last
 * stretch introspected with an `exp` a whole ttl.refreshToken past it, and an ID token (ttl.idToken)
 * told its app the sign-in could be relied on up to an hour after the consent had ended, from the
 * code, a refresh and a device alike. Each was so before its fix; the rest of the pass held, and
 * docs/security-passes.md lists what was tried.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { fakeUpstreamOf, type startFakeUpstream } from '../helpers/fake-upstream.js';
import { approvedDevice, isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, introspect, RESOURCE_SERVERS, type ClientCredentials } from '../helpers/tokens.js';

const PASSWORD = 'red team granted seven passphrase';
const REDIRECT = 'https://notes.example.test/callback';
const NOTES: ClientCredentials = { id: 'notes', secret: 'notes-client-secret-with-plenty-of-entropy-0123456789' };
const NOTES_CLIENT = { client_id: NOTES.id, client_secret: NOTES.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] };
const TV = 'tv';
const TV_CLIENT = { client_id: TV, application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [], redirect_uris: [] };

/** Grants and refresh tokens live a minute here; ID tokens (ttl.idToken) and access tokens an hour. */
const GRANT_TTL = 60;

/** Resolves once this machine's clock (the server's) is past epoch second `second`: an event, not a guess. */
async function pastSecond(second: number): Promise<void> {
  while (Math.floor(Date.now() / 1000) <= second) await new Promise((resolve) => setTimeout(resolve, 50));
}

describe('e2e: red team, seventh pass, a refresh token and an ID token end no later than their grant (ttl.grant)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let notes: oidc.Configuration;

  before(async () => {
    const env = { RESOURCE_SERVERS, TTL_GRANT: String(GRANT_TTL), TTL_REFRESH_TOKEN: String(GRANT_TTL), TTL_ACCESS_TOKEN: '3600', TTL_ID_TOKEN: '3600' };
    server = await startServer({ ownRedis: true, env, clients: [NOTES_CLIENT, TV_CLIENT] });
    notes = await oidc.discovery(new URL(server.issuer), NOTES.id, NOTES.secret, oidc.ClientSecretBasic(NOTES.secret), { execute: [oidc.allowInsecureRequests] });
    await server.accounts.create('sasha', PASSWORD);
  });
  after(async () => server?.stop());

  function idTokenWithin(idToken: string | undefined, grantEndsBy: number, what: string) {
    assert.ok(idToken, `${what}: an ID token`);
    const { exp } = decodeJwt(idToken);
    assert.ok(exp! <= grantEndsBy, `${what} says it is good until ${exp}, ${exp! - grantEndsBy} s past the end of its grant (${grantEndsBy})`);
  }

  async function refreshTokenWithin(refreshToken: string | undefined, grantEndsBy: number, what: string) {
    assert.ok(refreshToken, `${what}: a refresh token`);
    const told = await introspect(server.url, NOTES, refreshToken);
    assert.equal(told.active, true, JSON.stringify(told));
    assert.ok((told.exp as number) <= grantEndsBy, `${what} introspects good until ${String(told.exp)}, ${(told.exp as number) - grantEndsBy} s past the end of its grant (${grantEndsBy})`);
  }

  it("the code's ID token, a refreshed ID token and a refresh token rotated after the consent say no exp past the grant's end (OIDC Core §2, RFC 7662 §2.2, RFC 6749 §6)", async () => {
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, notes, REDIRECT, { scope: 'openid offline_access read', resource: API });
    const done = await signInSteps(agent, page, { username: 'sasha', password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(notes, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, { resource: API });
    // The grant was saved at the consent, before the code was redeemed: it ends at most GRANT_TTL after the ID token's iat.
    const issuedAt = decodeJwt(tokens.id_token!).iat!;
    const grantEndsBy = issuedAt + GRANT_TTL;
    idTokenWithin(tokens.id_token, grantEndsBy, 'the code’s ID token');
    await refreshTokenWithin(tokens.refresh_token, grantEndsBy, 'the code’s refresh token');

    // A refresh a second or more after the consent: a rotated token's own lifetime would run past the grant.
    await pastSecond(issuedAt);
    const refreshed = await oidc.refreshTokenGrant(notes, tokens.refresh_token!, { resource: API });
    idTokenWithin(refreshed.id_token, grantEndsBy, 'a refreshed ID token');
    await refreshTokenWithin(refreshed.refresh_token, grantEndsBy, 'a rotated refresh token');
    assert.ok(decodeJwt(refreshed.access_token).exp! <= grantEndsBy, 'the access token too (sixth pass)');
  });

  it("… and so does a device's ID token (RFC 8628 §3.5)", async () => {
    const body = (await approvedDevice(server, TV, { username: 'sasha', password: PASSWORD }, { scope: 'openid offline_access read', resource: API })) as { id_token?: string };
    idTokenWithin(body.id_token, decodeJwt(body.id_token!).iat! + GRANT_TTL, 'the device’s ID token');
  });
});

describe("e2e: red team, seventh pass, a sign-in through an upstream is no fresher than the upstream's own (auth_time)", function () {
  this.timeout(60_000);
  const UPSTREAM_SECRET = 'upstream-client-secret-with-plenty-of-entropy-0123456789';
  let server: TestServer;
  let notes: oidc.Configuration;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', RESOURCE_SERVERS }, clients: [NOTES_CLIENT] });
    notes = await oidc.discovery(new URL(server.issuer), NOTES.id, NOTES.secret, oidc.ClientSecretBasic(NOTES.secret), { execute: [oidc.allowInsecureRequests] });
    fake = await fakeUpstreamOf(server, UPSTREAM_SECRET);
  });
  after(async () => {
    await fake?.close();
    await server?.stop();
  });

  /** `agent` goes to notes with `params` (through the fake upstream when it must sign in); the page it ends on, and the tokens when that is a code. */
  async function atNotes(agent: Agent, params: Record<string, string>) {
    const { page, verifier } = await startAuthorization(agent, notes, REDIRECT, { scope: 'openid read', resource: API, upstream: 'fake', ...params });
    const done = isConsent(page) ? await agent.submit(page, '/confirm', {}, REDIRECT) : page;
    const code = done.url.startsWith(REDIRECT) ? new URL(done.url).searchParams.get('code') : null;
    const tokens = code ? await oidc.authorizationCodeGrant(notes, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck }, { resource: API }) : undefined;
    return { done, tokens };
  }

  it("an upstream answering from its session of an hour ago makes no sign-in of now: the ID token's and the access token's auth_time are the upstream's, and an app's max_age later in the same session asks again (OIDC Core §2 auth_time, §3.1.2.1 max_age; RFC 9068 §2.2.1)", async () => {
    const upstreamSignedIn = Math.floor(Date.now() / 1000) - 3600;
    fake.state.sub = 'fake-person-of-an-hour-ago';
    fake.state.authTime = upstreamSignedIn;
    try {
      const agent = new Agent();
      // An app that asks no max_age: the upstream answers from its session of an hour ago, as it may.
      const { tokens } = await atNotes(agent, {});
      assert.ok(tokens, 'signed in');
      assert.equal(decodeJwt(tokens.id_token!).auth_time, upstreamSignedIn, 'the ID token says when the person signed in: at the upstream, an hour ago');
      assert.equal(decodeJwt(tokens.access_token).auth_time, upstreamSignedIn, 'so does the JWT access token');

      // Then an app that needs a sign-in of the last five minutes: the session's word is the upstream's hour-old one.
      const silent = await atNotes(agent, { max_age: '300', prompt: 'none' });
      assert.equal(new URL(silent.done.url).searchParams.get('error'), 'login_required', `no code from an hour-old sign-in: ${silent.done.url}`);
      const asked = await atNotes(agent, { max_age: '300' });
      assert.equal(asked.tokens, undefined, `the upstream's hour-old session is asked again and refused: ${asked.done.status} ${asked.done.url}`);
      assert.equal(fake.state.maxAge, '300', 'max_age went on to the upstream');

      // An upstream that signs the person in again: a sign-in of now.
      fake.state.authTime = undefined;
      const fresh = await atNotes(agent, { max_age: '300' });
      assert.ok(fresh.tokens, `signed in again: ${fresh.done.status} ${fresh.done.url}`);
      assert.ok((decodeJwt(fresh.tokens.id_token!).auth_time as number) > Math.floor(Date.now() / 1000) - 300, 'auth_time is now');
    } finally {
      fake.state.authTime = undefined;
    }
  });
});
