/**
 * The red team's twenty-second pass at "Latchkey hands out more than was granted" (2026-12-04), black
 * box (docs/security.md, "Looked at in the twenty-second granting pass").
 *
 * Found and fixed: the consent page's check after its writes told an app's RFC 7009 revocation of an
 * access token (the grant kept) from a grant's ending by the second of the grant's revocation entry,
 * so an ending that stalled between its entry and the deletion of the grant's record, across a
 * consent page whose request began in between, was missed: the page wrote the ended grant back, with
 * all it held, and the app got a code from it; and an access token revoked while the page was open
 * had the page refused as a withdrawn consent. The store now marks a grant's ending by its kind
 * (revocation/list.ts endGrant), and the page is refused exactly when the grant ended.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { isConsent, signInSteps, startAuthorization } from '../helpers/sign-in.js';
import { startServer } from '../helpers/server.js';
import { commandsIn, startRelay, startRelayedServer, type Relay, type RelayedServer } from '../helpers/relay.js';

const PASSWORD = 'red team granted twenty-two passphrase';
const REDIRECT = 'https://twenty-two.example.test/callback';
const APP = { id: 'twenty-two', secret: 'twenty-two-client-secret-with-plenty-of-entropy-0123456789' };

describe("e2e: red team, twenty-second granting pass, a consent page across a grant's ending told apart from an access token's revocation", function () {
  this.timeout(90_000);
  let relayed: RelayedServer;
  let config: oidc.Configuration;

  before(async () => {
    relayed = await startRelayedServer({
      CLIENTS: JSON.stringify([{ client_id: APP.id, client_secret: APP.secret, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], scope: 'openid offline_access email profile' }]),
    });
    config = await oidc.discovery(new URL(relayed.server.issuer), APP.id, APP.secret, oidc.ClientSecretBasic(APP.secret), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await relayed?.stop();
  });

  /** A person signed in at a browser with a grant of `openid offline_access email` to the app: the browser and the grant's tokens. */
  async function signedIn(person: string): Promise<{ browser: Agent; tokens: oidc.TokenEndpointResponse }> {
    await relayed.server.accounts.create(person, PASSWORD, { email: `${person}@example.test`, name: person });
    const browser = new Agent();
    const { page, verifier } = await startAuthorization(browser, config, REDIRECT, { scope: 'openid offline_access email', prompt: 'consent' });
    const back = await signInSteps(browser, page, { username: person, password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(back.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    assert.ok(tokens.refresh_token, 'offline access');
    return { browser, tokens };
  }

  const revoke = (url: string, token: string, hint: string) =>
    fetch(`${url}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: hint, client_id: APP.id, client_secret: APP.secret }),
    });

  /** The store's deletion of a grant's record (the last step of its ending). */
  const grantRecordDeletion = (chunk: string) => commandsIn(chunk).some(([name = '', ...args]) => /^(del|unlink)$/i.test(name) && args.some((arg) => arg.includes('oidc:Grant:')));
  /** The consent confirmation's write of the grant (after it read and checked it). */
  const grantWrite = (chunk: string) => chunk.includes('oidc:Grant:') && chunk.includes('"kind":"Grant"');

  it("a grant's ending (the app's RFC 7009 revocation of its refresh token) stalled before the grant's record is deleted, across a consent page begun a second later: the page does not write the ended grant back, and the app gets no code (RFC 7009 §2.1)", async () => {
    const { server, relay, env } = relayed;
    // The ending at a second instance, on a relay of its own: held at the grant's deletion, after
    // the grant's revocation entry, while the person's consent page goes on at the first.
    let endingRelay: Relay | undefined;
    let other: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      endingRelay = await startRelay(Number(new URL(env.REDIS_URL!).port));
      other = await startServer({ redisUrl: endingRelay.url, dir: dirname(env.KEYS_DIR!), env: { ISSUER: server.issuer, CLIENTS: env.CLIENTS!, REDIS_COMMAND_TIMEOUT: '30000' } });
      const { browser, tokens } = await signedIn('vera');
      const ending = await endingRelay.hold(grantRecordDeletion, () => revoke(other!.url, tokens.refresh_token!, 'refresh_token'));
      // The consent page's request begins in a later second than the grant's revocation entry.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const consent = (await startAuthorization(browser, config, REDIRECT, { scope: 'openid offline_access email profile' })).page;
      assert.ok(isConsent(consent), `expected the consent page adding to the grant, got ${consent.status} ${consent.url}`);
      assert.match(consent.html, /name and profile/);
      assert.doesNotMatch(consent.html, /email address|offline access/, 'the page lists only what the grant lacks');
      // Confirmed: held at its write of the grant, which it read while the grant was still stored.
      const confirming = await relay.hold(grantWrite, () => browser.submit(consent, '/confirm', {}, REDIRECT));
      // The ending goes on: the grant's record deleted, the revocation answered.
      assert.equal((await ending.release()).status, 200);
      const confirmed = await confirming.release();
      assert.equal(new URL(confirmed.url).searchParams.get('code'), null, `the ended grant was written back by the consent page, and the app got a code from it (${confirmed.url})`);
      assert.match(confirmed.html, /the earlier consent was withdrawn/);
      // Nor is anything of it taken up after: the app's silent request gets no code.
      const silent = await startAuthorization(browser, config, REDIRECT, { scope: 'openid email', prompt: 'none' });
      assert.equal(new URL(silent.page.url).searchParams.get('code'), null, `a silent request got a code after the ending: ${silent.page.url}`);
    } finally {
      endingRelay?.release();
      await other?.stop();
      endingRelay?.close();
    }
  });

  it("an app's RFC 7009 revocation of one of its access tokens while its person's consent page is open, in the page's own second or after: the grant is kept, and the page adds to it (RFC 7009 §2.1)", async () => {
    const { server } = relayed;
    const { browser, tokens } = await signedIn('walt');
    // The page first, the revocation after: its entry is of the page's second or a later one.
    const { page: consent, verifier } = await startAuthorization(browser, config, REDIRECT, { scope: 'openid offline_access email profile' });
    assert.ok(isConsent(consent), `expected the consent page, got ${consent.status} ${consent.url}`);
    assert.equal((await revoke(server.url, tokens.access_token, 'access_token')).status, 200);
    const confirmed = await browser.submit(consent, '/confirm', {}, REDIRECT);
    const code = new URL(confirmed.url).searchParams.get('code');
    assert.ok(code, `the consent page was refused after the app revoked an access token, which keeps the grant: ${confirmed.status} ${confirmed.html.slice(0, 300)}`);
    // The grant was kept (its tokens up to the revocation ended with the access token): the code redeems.
    const redeemed = await oidc.authorizationCodeGrant(config, new URL(confirmed.url), { pkceCodeVerifier: verifier, expectedState: oidc.skipStateCheck });
    assert.match(String(redeemed.scope), /\bprofile\b/);
  });
});
