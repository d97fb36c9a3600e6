/**
 * The red team's sixteenth pass at "Latchkey hands out more than was granted" (2026-12-04), black box:
 * what an upstream's word vouches for once an operator maps our claims from other claims of its.
 *
 * - An upstream added with `--claim email=preferred_username` (an operator's mapping for an upstream
 *   that puts the address people sign in with in another claim than `email`) gave the address read
 *   from that claim the upstream's `email_verified`, which speaks of the upstream's own `email`
 *   (OIDC Core §5.1) and nothing else. A person at the upstream whose username (or `upn`, or any claim
 *   the person or their tenant sets) reads `bob@corp.example`, and whose own verified address is
 *   another, got an account holding `bob@corp.example` as verified, within the upstream's `--domain`
 *   too, and every app got `email_verified: true` for it; beside a local person's verified address,
 *   the link was offered as if the upstream had vouched for it, and an app's silent request with
 *   `login_hint=bob@corp.example` got the code of whoever was signed in so. Now the standard `email_verified`
 *   vouches only for the address the upstream calls `email` (interactions/upstream.ts mapClaims).
 * - An address an upstream's account took unverified (nobody held it), which an operator then gave a
 *   local person, verified, was made verified on that account by the upstream's later `email_verified:
 *   true`: apps got it verified beside hers, and her address as a hint got the other account's code,
 *   where a first sign-in after hers would have asked for her own sign-in. A later sign-in now holds an
 *   address another account holds too unverified (accounts/links.ts #refreshed); in the other order (the
 *   upstream's account held it verified first), an operator's person no longer gets it as verified
 *   (accounts.ts create: the CLI and the admin API, 409).
 *
 * Held, pinned here: an upstream whose mapped claim is its verified `email` still vouches for it; an
 * essential `acr` whose values name no level Latchkey reaches is refused at once, never a code; a refresh
 * for an API that narrows the OpenID scopes narrows the ID token's claims too. docs/security-passes.md lists
 * what else the pass tried.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startFakeUpstream } from '../helpers/fake-upstream.js';
import { isLogin, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { API, basic, clientCredentialsToken, RESOURCE_SERVERS } from '../helpers/tokens.js';
import { UpstreamLinks } from '../../src/accounts/links.js';
import { Upstreams } from '../../src/upstreams/registry.js';

const insecure = { execute: [oidc.allowInsecureRequests] };
const PASSWORD = 'red team granted sixteen passphrase';
const SECRET = 'red-team-granted-sixteen-client-secret-0123456789';
const UPSTREAM_SECRET = 'red-team-granted-sixteen-upstream-secret-0123456789';
const NOTES = 'https://notes.example.test/cb';
const OPS = { id: 'ops', secret: 'red-team-granted-sixteen-ops-secret-0123456789' };
const NOTES_CLIENT = { client_id: 'notes', client_name: 'Notes', client_secret: SECRET, redirect_uris: [NOTES], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid email offline_access read' };

describe('e2e (openid-client): red team, sixteenth pass, an upstream vouches only for the address it verified, and what else held', function () {
  this.timeout(60_000);
  let server: TestServer;
  let fake: Awaited<ReturnType<typeof startFakeUpstream>>;
  let notes: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true', RESOURCE_SERVERS }, clients: [NOTES_CLIENT, { client_id: OPS.id, client_secret: OPS.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] }] });
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
    fake = await startFakeUpstream(UPSTREAM_SECRET);
    // The operator's mapping: the address is the upstream's preferred_username; email_verified left as the upstream says it.
    await new Upstreams(server.kv, server.config.keys.secrets).add({
      id: 'corp', issuer: fake.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email profile', displayName: 'Corp',
      linkByEmail: true, endSession: false, domains: ['corp.example'], claims: { email: 'preferred_username' },
    });
    notes = await oidc.discovery(new URL(server.issuer), 'notes', SECRET, undefined, insecure);
  });
  after(async () => {
    await fake?.close();
    await server?.stop();
  });

  /** The fake upstream's person `sub` (own address `email`, verified; `username` its preferred_username) signs in at notes through corp. */
  async function signIn(sub: string, email: string, username: string) {
    Object.assign(fake.state, { mode: 'good', sub, email, emailVerified: true, extraClaims: { preferred_username: username } });
    const agent = new Agent();
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(notes, { redirect_uri: NOTES, scope: 'openid email', upstream: 'corp', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
    return { agent, verifier, page: await agent.follow(url.href, {}, NOTES) };
  }

  /** Allows notes on the consent page and redeems its code: the ID token's and userinfo's email and email_verified. */
  async function whatNotesGets({ agent, verifier, page }: Awaited<ReturnType<typeof signIn>>) {
    const back = await agent.submit(page, '/confirm', {}, NOTES);
    const tokens = await oidc.authorizationCodeGrant(notes, new URL(back.url), { pkceCodeVerifier: verifier });
    const idToken = decodeJwt(tokens.id_token!);
    const info = await oidc.fetchUserInfo(notes, tokens.access_token, idToken.sub!);
    return { idToken: [idToken.email, idToken.email_verified], userinfo: [info.email, info.email_verified] };
  }

  it("an address mapped from another claim than the upstream's email is not verified by the upstream's email_verified: apps get it unverified, and it offers no link to the local account holding it", async () => {
    // Mallory's own address at the upstream is verified; her username there reads as Bob's address at corp.example.
    const signedIn = await signIn('mallory', 'mallory@fake.example', 'bob@corp.example');
    const mallory = await whatNotesGets(signedIn);
    assert.deepEqual(mallory.idToken, ['bob@corp.example', false], 'the ID token does not say the address is verified');
    assert.deepEqual(mallory.userinfo, ['bob@corp.example', false], 'nor does userinfo');
    // Nor does it name her: notes asking silently for Bob ("Continue as bob@corp.example") in her browser gets no code of hers.
    const silent = oidc.buildAuthorizationUrl(notes, { redirect_uri: NOTES, scope: 'openid email', prompt: 'none', login_hint: 'bob@corp.example', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
    const answer = new URL((await signedIn.agent.follow(silent.href, {}, NOTES)).url);
    assert.equal(answer.searchParams.get('code'), null, answer.href);
    assert.equal(answer.searchParams.get('error'), 'login_required');
    const links = new UpstreamLinks(server.kv, server.accounts);
    assert.equal((await server.accounts.find((await links.find('corp', 'mallory'))!.sub))?.claims.email_verified, false, 'the account holds it unverified');

    // Beside a local person's verified address, the upstream did not vouch for it: no link is offered, nothing is linked.
    await server.accounts.create('alice', PASSWORD, { email: 'alice@corp.example', email_verified: true });
    const { page } = await signIn('mallory-2', 'mallory-2@fake.example', 'alice@corp.example');
    assert.equal(page.status, 409, `${page.status} ${page.url}`);
    assert.match(page.html, /Corp did not confirm that the address is yours/);
    assert.ok(!isLogin(page));
    assert.equal(await links.find('corp', 'mallory-2'), undefined);
  });

  it("an address an upstream's account holds unverified, given verified to a local person since, is not made verified by the upstream's later word: apps and hints do not take the one for the other", async () => {
    // Another upstream, its email as the upstream says it (no mapping); the sub's address is someone else's, unverified.
    const plain = await startFakeUpstream(UPSTREAM_SECRET);
    try {
      await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'plain', issuer: plain.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: 'Plain', linkByEmail: true, endSession: false });
      const through = async (verified: boolean) => {
        Object.assign(plain.state, { mode: 'good', sub: 'mallory-plain', email: 'dana@corp.example', emailVerified: verified });
        const agent = new Agent();
        const verifier = oidc.randomPKCECodeVerifier();
        const url = oidc.buildAuthorizationUrl(notes, { redirect_uri: NOTES, scope: 'openid email', upstream: 'plain', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
        return { agent, verifier, page: await agent.follow(url.href, {}, NOTES) };
      };
      assert.deepEqual((await whatNotesGets(await through(false))).idToken, ['dana@corp.example', false]);
      // The operator then gives Dana, a local person, her own address, verified; the upstream now says it is verified.
      const dana = await server.accounts.create('dana', PASSWORD, { email: 'dana@corp.example', email_verified: true });
      const again = await through(true);
      const back = new URL(again.page.url.startsWith(NOTES) ? again.page.url : (await again.agent.submit(again.page, '/confirm', {}, NOTES)).url);
      const tokens = await oidc.authorizationCodeGrant(notes, back, { pkceCodeVerifier: again.verifier });
      const idToken = decodeJwt(tokens.id_token!);
      assert.notEqual(idToken.sub, dana.sub);
      assert.deepEqual([idToken.email, idToken.email_verified], ['dana@corp.example', false], 'not verified beside Dana');
      const silent = oidc.buildAuthorizationUrl(notes, { redirect_uri: NOTES, scope: 'openid email', prompt: 'none', login_hint: 'dana@corp.example', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      const answer = new URL((await again.agent.follow(silent.href, {}, NOTES)).url);
      assert.equal(answer.searchParams.get('code'), null, answer.href);
      assert.equal(answer.searchParams.get('error'), 'login_required');
    } finally {
      await plain.close();
    }
  });

  it("an operator's person does not get as verified an address an upstream's account holds verified (admin API: 409), so no two accounts hold one address verified; unverified, or a free address, is taken", async () => {
    const other = await startFakeUpstream(UPSTREAM_SECRET);
    try {
      await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'other', issuer: other.state.issuer, clientId: 'latchkey', clientSecret: UPSTREAM_SECRET, scope: 'openid email', displayName: 'Other', linkByEmail: false, endSession: false });
      Object.assign(other.state, { mode: 'good', sub: 'erin-upstream', email: 'erin@corp.example', emailVerified: true });
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(notes, { redirect_uri: NOTES, scope: 'openid email', upstream: 'other', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' });
      const agent = new Agent();
      assert.deepEqual((await whatNotesGets({ agent, verifier, page: await agent.follow(url.href, {}, NOTES) })).idToken, ['erin@corp.example', true]);
    } finally {
      await other.close();
    }
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    const add = (body: Record<string, unknown>) => fetch(`${server.url}/admin/users`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ password: PASSWORD, ...body }) });
    for (const email of ['erin@corp.example', 'ERIN@corp.example']) {
      const refused = await add({ username: 'erin', email, email_verified: true });
      assert.equal(refused.status, 409, `${email}: ${await refused.clone().text()}`);
      assert.match(((await refused.json()) as { error_description: string }).error_description, /held, verified, by the account/);
    }
    assert.equal(await server.accounts.findByUsername('erin'), undefined, 'nothing was made');
    assert.equal((await add({ username: 'erin', email: 'erin@corp.example' })).status, 201, 'unverified, it is taken');
    assert.equal((await add({ username: 'frank', email: 'frank@corp.example', email_verified: true })).status, 201, 'an address no one holds');
  });

  it('held: an upstream whose mapped claim is its verified email address vouches for it as before', async () => {
    const carol = await whatNotesGets(await signIn('carol', 'carol@corp.example', 'carol@corp.example'));
    assert.deepEqual(carol.idToken, ['carol@corp.example', true]);
    assert.deepEqual(carol.userinfo, ['carol@corp.example', true]);
  });

  it('held: an essential acr whose values name no level Latchkey reaches is unmet_authentication_requirements at once, never a code (OIDC Core §5.5.1.1)', async () => {
    const { page } = await startAuthorization(new Agent(), notes, NOTES, { claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:example:loa:4'] } } }) });
    const back = new URL(page.url);
    assert.ok(page.url.startsWith(NOTES), `${page.status} ${page.url}`);
    assert.equal(back.searchParams.get('error'), 'unmet_authentication_requirements');
    assert.equal(back.searchParams.get('code'), null);
  });

  it("held: a refresh for an API that narrows the OpenID scopes (resource and scope 'openid read') narrows the ID token's claims with them", async () => {
    await server.accounts.create('pat', PASSWORD, { email: 'pat@corp.example', email_verified: true });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, notes, NOTES, { scope: 'openid email offline_access read', resource: API, prompt: 'consent' });
    const back = await signInSteps(agent, page, { username: 'pat', password: PASSWORD, stopAt: NOTES });
    const tokens = await oidc.authorizationCodeGrant(notes, new URL(back.url), { pkceCodeVerifier: verifier }, { resource: API });
    assert.equal(decodeJwt(tokens.id_token!).email, 'pat@corp.example');
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic({ id: 'notes', secret: SECRET }) },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, resource: API, scope: 'openid read' }),
    });
    const refreshed = (await response.json()) as { scope: string; id_token: string; access_token: string };
    assert.equal(response.status, 200, JSON.stringify(refreshed));
    assert.equal(refreshed.scope, 'read');
    assert.equal(decodeJwt(refreshed.access_token).aud, API);
    const idToken = decodeJwt(refreshed.id_token);
    assert.equal(idToken.email, undefined);
    assert.equal(idToken.email_verified, undefined);
  });
});
