/**
 * The red team's sixth pass at "Latchkey hands out more than was granted" (2026-12-02), black box:
 * the claims of a token a client narrowed itself. A refresh asking fewer scopes (RFC 6749 §6) got a
 * token whose `scope` said `openid offline_access`, in the token answer and at introspection, while
 * its ID token and userinfo still gave the person's email and name: the sign-in had asked for them by
 * scope and by name too (the `claims` parameter, OIDC Core §5.5), and the refresh carried the
 * claims asked by name whole. It succeeded before its fix; the rest of the pass held, and
 * docs/security.md lists what was tried.
 */
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { introspect, machineClient, type ClientCredentials } from '../helpers/tokens.js';

const PASSWORD = 'red team granted six passphrase';
const REDIRECT = 'https://notes.example.test/callback';
const NOTES: ClientCredentials = { id: 'notes', secret: 'notes-client-secret-with-plenty-of-entropy-0123456789' };
/** Another confidential client, to show introspection tells no one else. */
const OTHER: ClientCredentials = { id: 'other', secret: 'other-client-secret-with-plenty-of-entropy-0123456789' };
const EMAIL = ['email', 'email_verified'];
const PROFILE = ['name', 'given_name', 'family_name', 'locale', 'updated_at'];

describe('e2e: red team, sixth pass, Latchkey hands out more than was granted', function () {
  this.timeout(60_000);
  let server: TestServer;
  let notes: oidc.Configuration;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      clients: [
        { client_id: NOTES.id, client_secret: NOTES.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
        machineClient(OTHER),
      ],
    });
    notes = await oidc.discovery(new URL(server.issuer), NOTES.id, NOTES.secret, oidc.ClientSecretBasic(NOTES.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => server?.stop());

  /** `username` signs in at notes with `params` (consenting); the tokens. */
  async function signIn(username: string, params: Record<string, string>): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
    await server.accounts.create(username, PASSWORD, { email: `${username}@example.test`, email_verified: true, name: `${username} Example`, given_name: username });
    const agent = new Agent();
    const { page, verifier } = await startAuthorization(agent, notes, REDIRECT, params);
    const done = await signInSteps(agent, page, { username, password: PASSWORD, consent: 'required', stopAt: REDIRECT });
    assert.ok(done.url.startsWith(REDIRECT), `back at the app: ${done.status} ${done.url}`);
    return oidc.authorizationCodeGrant(notes, new URL(done.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
  }

  /** The person's claims (all but sub and how they signed in) in an ID token and at userinfo with the access token beside it. */
  async function claimsOf(tokens: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): Promise<{ idToken: string[]; userinfo: string[] }> {
    const person = (claims: object) => Object.keys(claims).filter((claim) => [...EMAIL, ...PROFILE].includes(claim)).sort();
    const sub = decodeJwt(tokens.id_token!).sub!;
    return { idToken: person(decodeJwt(tokens.id_token!)), userinfo: person(await oidc.fetchUserInfo(notes, tokens.access_token, sub)) };
  }

  it("a refresh that narrows the scope narrows the claims asked by name with it: a token narrowed to openid gives no email or name in its ID token or at userinfo, though the sign-in asked for them by scope and by the claims parameter too (RFC 6749 §6, OIDC Core §5.5, §12.2)", async () => {
    // As libraries do: the scopes, and the claims named besides (here for both the ID token and userinfo).
    const claims = JSON.stringify({ id_token: { email: null, name: null }, userinfo: { email: null, name: null } });
    const tokens = await signIn('quinn', { scope: 'openid email profile offline_access', claims });
    const all = await claimsOf(tokens);
    assert.ok(all.idToken.includes('email') && all.idToken.includes('name') && all.userinfo.includes('email') && all.userinfo.includes('name'), `granted: ${JSON.stringify(all)}`);

    // The client narrows a refresh to openid (say, for a part of itself that needs only who the person is).
    const narrowed = await oidc.refreshTokenGrant(notes, tokens.refresh_token!, { scope: 'openid offline_access' });
    assert.equal(narrowed.scope, 'openid offline_access');
    assert.deepEqual(await claimsOf(narrowed), { idToken: [], userinfo: [] }, 'no claim of a scope left out, whichever way it was asked');
    const told = await introspect(server.url, NOTES, narrowed.access_token);
    assert.equal(told.scope, 'openid offline_access', 'introspection says what the token is good for');
    assert.deepEqual(await introspect(server.url, OTHER, narrowed.access_token), { active: false });

    // Narrowed to openid email: email stays (its scope is asked), the profile's name goes.
    const email = await oidc.refreshTokenGrant(notes, narrowed.refresh_token!, { scope: 'openid email offline_access' });
    assert.deepEqual(await claimsOf(email), { idToken: EMAIL, userinfo: EMAIL });

    // The refresh token still holds what was granted: a refresh without narrowing gets it all back.
    const again = await oidc.refreshTokenGrant(notes, email.refresh_token!);
    assert.deepEqual(await claimsOf(again), all);
  });

  it("… and only those of the scopes left out: a claim the person allowed by name alone (no scope of its asked) is kept (OIDC Core §5.5)", async () => {
    // email asked by its scope and by name, name by name alone.
    const tokens = await signIn('rowan', { scope: 'openid email offline_access', claims: JSON.stringify({ userinfo: { name: null, email: null }, id_token: { name: null, email: null } }) });
    assert.deepEqual(await claimsOf(tokens), { idToken: [...EMAIL, 'name'].sort(), userinfo: [...EMAIL, 'name'].sort() });
    const narrowed = await oidc.refreshTokenGrant(notes, tokens.refresh_token!, { scope: 'openid offline_access' });
    assert.deepEqual(await claimsOf(narrowed), { idToken: ['name'], userinfo: ['name'] }, 'email was asked by its scope, left out; name by name alone');
  });
});
