/**
 * Unmodified client libraries with their defaults (thirteenth fresh-eyes passes): what
 * express-openid-connect sent that Latchkey refused, reproduced with openid-client and raw requests.
 * docs/security-passes.md: "Looked at in the thirteenth fresh-eyes passes of 2026-12-07: unmodified
 * third-party client libraries".
 *
 * express-openid-connect's `/logout` (with `idpLogout: true`) sends the ID token of the sign-in as
 * `id_token_hint`, kept in its session for up to seven days by default; oidc-client-ts's
 * `signoutRedirect()` and openid-client's `buildEndSessionUrl` as their READMEs use them do the same.
 * A retired key leaves the ring once every token it signed has expired (an hour after it retired, by
 * default), so after every rotation such a sign-out was refused "could not validate id_token_hint":
 * the person saw "Not signed out" and the app was not returned to. RP-Initiated Logout 1.0 §2: the OP
 * SHOULD accept an ID token as a hint for a current or recent session even when its exp has passed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { Keyring } from '../../src/keyring/keyring.js';
import { ringStore } from '../../src/keyring/index.js';
import { readRing } from '../../src/keyring/stores.js';
import { ROOT } from '../../src/paths.js';
import { Agent, type Page } from '../helpers/agent.js';
import { eventually } from '../helpers/eventually.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'client libraries passphrase';
const WEB = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789', redirect: 'https://app.example.test/callback', signedOut: 'https://app.example.test' };
const OTHER = { id: 'other', secret: 'other-client-secret-with-plenty-of-entropy-012345678', redirect: 'https://other.example.test/callback', signedOut: 'https://other.example.test/bye' };

const webClient = (c: typeof WEB) => ({
  client_id: c.id,
  client_secret: c.secret,
  redirect_uris: [c.redirect],
  post_logout_redirect_uris: [c.signedOut],
  grant_types: ['authorization_code', 'refresh_token'],
});

describe('e2e: unmodified client libraries (thirteenth pass): sign-out with the ID token of the sign-in', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: TestServer;
  let web: oidc.Configuration;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({ redisUrl: redis.url, clients: [webClient(WEB), webClient(OTHER)], cheapHashing: true });
    await server.accounts.create('alice', PASSWORD, { name: 'Alice' });
    web = await oidc.discovery(new URL(server.issuer), WEB.id, WEB.secret, undefined, { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  /** A person signed in to the app in `browser`, and the ID token the app keeps for its session. */
  async function signedIn(browser: Agent): Promise<string> {
    const state = oidc.randomState();
    const { page, verifier } = await startAuthorization(browser, web, WEB.redirect, { state });
    const back = await signInSteps(browser, page, { username: 'alice', password: PASSWORD, stopAt: WEB.redirect });
    const tokens = await oidc.authorizationCodeGrant(web, new URL(back.url), { pkceCodeVerifier: verifier, expectedState: state });
    return tokens.id_token!;
  }

  /** express-openid-connect's /logout with idpLogout: its session's ID token, its baseURL as written, the client_id. */
  const appSignOut = (browser: Agent, hint: string, client = WEB): Promise<Page> =>
    browser.follow(`${server.url}/session/end?${new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: client.signedOut, client_id: client.id })}`);

  const text = (page: Page) => page.html.replace(/<(style|script)[^]*?<\/\1>/g, '').replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');

  /** Whether `browser` is still signed in at Latchkey: a silent request of the app gets a code, or login_required. */
  async function silently(browser: Agent): Promise<string> {
    const { page } = await startAuthorization(browser, web, WEB.redirect, { prompt: 'none' });
    const answer = new URL(page.url).searchParams;
    return answer.get('code') ? 'code' : String(answer.get('error'));
  }

  it('an ID token signed by a key that has left the ring since (retired, then past its retention) still signs the person out, asked, and back to the app', async () => {
    const browser = new Agent();
    const hint = await signedIn(browser);
    const { kid } = decodeProtectedHeader(hint);

    // The ring moves on as rotation and retention move it: the key that signed the ID token has gone, its successor signs.
    const store = await ringStore(server.config, server.kv);
    const before = (await readRing(store))!;
    assert.equal(before.ring.current?.kid, kid);
    const successor = before.ring.next!;
    const keys = before.ring.keys
      .filter((key) => key.kid !== kid)
      .map((key) => (key.kid === successor.kid ? { ...key, state: 'current' as const, activatedAt: new Date().toISOString() } : key));
    const provider = server.providers.current;
    assert.ok(await store.write(new Keyring(keys), before.raw));
    await eventually(async () => assert.notEqual(server.providers.current, provider, 'the server follows the ring'));
    const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string }[] };
    assert.ok(!jwks.keys.some((key) => key.kid === kid), 'the key is no longer published');
    assert.equal(await silently(browser), 'code', 'still signed in at Latchkey');

    const asked = await appSignOut(browser, hint);
    assert.equal(asked.status, 200, text(asked));
    assert.match(text(asked), /Sign out\?/);
    const back = await browser.submit(asked, '/session/end/confirm', { logout: 'yes' }, WEB.signedOut);
    assert.equal(back.url, WEB.signedOut + '/', 'back at the app');
    assert.equal(await silently(browser), 'login_required', 'signed out at Latchkey');
  });

  it('a hint naming a key Latchkey does not hold is taken for its client alone: its claims are checked, and it reaches no further than client_id would', async () => {
    const browser = new Agent();
    const genuine = await signedIn(browser);
    const payload = decodeJwt(genuine);
    const { privateKey } = await generateKeyPair('RS256');
    const forged = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
      new SignJWT({ ...payload, ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'not-a-key-of-ours', ...header }).sign(privateKey);

    // Another issuer's, another client's (client_id named or not), a logout token, one without auth_time: refused as before.
    for (const [hint, client] of [
      [await forged({ iss: 'https://elsewhere.example' }), WEB],
      [await forged({ aud: OTHER.id }), WEB],
      [await forged({}, { typ: 'logout+jwt' }), WEB],
      [await forged({ auth_time: undefined }), WEB],
    ] as const) {
      const refused = await appSignOut(browser, hint, client);
      assert.equal(refused.status, 400, text(refused));
      assert.match(text(refused), /Not signed out/);
    }
    // One that names the app (as client_id does) goes only where that app registered: asked, and to its own address.
    const taken = await appSignOut(browser, await forged({}));
    assert.match(text(taken), /Sign out\?/);
    const elsewhere = await browser.follow(`${server.url}/session/end?${new URLSearchParams({ id_token_hint: await forged({}), post_logout_redirect_uri: OTHER.signedOut })}`);
    assert.equal(elsewhere.status, 400, 'not to another app\'s address');
    // Where a hint names who is to sign in (the authorization endpoint), one Latchkey cannot verify is refused, as before.
    const { page } = await startAuthorization(browser, web, WEB.redirect, { prompt: 'none', id_token_hint: await forged({}) });
    assert.equal(new URL(page.url).searchParams.get('error'), 'invalid_request');
    assert.equal(await silently(browser), 'code', 'nobody was signed out by any of them');
  });

  it('hints-of-removed-keys.ts: at end-session the engine reads of a hint only its aud (the client) and whether IdToken.validate throws', () => {
    const endSession = readFileSync(join(ROOT, 'node_modules', 'oidc-provider', 'lib', 'actions', 'end_session.js'), 'utf8');
    assert.deepEqual(endSession.match(/IdTokenHint\b.*/g), ["IdTokenHint', idTokenHint);", 'IdTokenHint;']);
    assert.match(endSession, /const \{ payload: \{ aud: clientId \} \} = ctx\.oidc\.entities\.IdTokenHint;/);
    assert.match(endSession, /\n\s+await ctx\.oidc\.provider\.IdToken\.validate\(params\.id_token_hint, client\);\n/);
  });
});
