/**
 * id_token_hint takes ID tokens only (RFC 8725 §3.11): a logout token a relying party received at
 * its back-channel endpoint, or any JWT of ours typed as something else, is refused at the
 * end-session and authorization endpoints; genuine ID tokens (untyped, or typed JWT) still work.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { Agent } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';

const REDIRECT = 'https://app.example.test/callback';
const SIGNED_OUT = 'https://app.example.test/bye';
const SECRET = 'id-token-hint-test-secret-with-plenty-of-entropy-0';
const PASSWORD = 'id token hint test password';

describe('e2e: id_token_hint takes ID tokens only', function () {
  this.timeout(30_000);
  let server: TestServer;
  let receiver: Server;
  const logoutTokens: string[] = [];
  let config: oidc.Configuration;

  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        logoutTokens.push(new URLSearchParams(body).get('logout_token') ?? '');
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
    server = await startServer({
      env: {
        OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
        CLIENTS: JSON.stringify([
          {
            client_id: 'app',
            client_secret: SECRET,
            redirect_uris: [REDIRECT],
            post_logout_redirect_uris: [SIGNED_OUT],
            backchannel_logout_uri: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/logout`,
            backchannel_logout_session_required: true,
          },
        ]),
      },
    });
    await server.accounts.create('hinted', PASSWORD);
    config = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
    receiver?.close();
  });

  async function signIn(agent: Agent): Promise<string> {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const page = await signInSteps(agent, await agent.follow(url.href, {}, REDIRECT), { username: 'hinted', password: PASSWORD, stopAt: REDIRECT });
    const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier });
    return tokens.id_token!;
  }

  const endSession = (agent: Agent, hint: string) =>
    agent.follow(`${server.issuer}/session/end?${new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: SIGNED_OUT })}`);

  async function silentWithHint(agent: Agent, hint: string) {
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      prompt: 'none',
      id_token_hint: hint,
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    return new URL((await agent.follow(url.href, {}, REDIRECT)).url).searchParams;
  }

  /** The same claims as a genuine ID token, signed with our current key, typed `typ` (or untyped). */
  async function retyped(idToken: string, typ: string | undefined): Promise<string> {
    const current = server.keys.ring.current!;
    const header = { alg: 'RS256', kid: current.kid, ...(typ ? { typ } : {}) };
    return new SignJWT(decodeJwt(idToken)).setProtectedHeader(header).sign(await importJWK(current.jwk, 'RS256'));
  }

  it('a genuine logout token is refused as a hint at both endpoints', async () => {
    const agent = new Agent();
    const idToken = await signIn(agent);
    const confirm = await endSession(agent, idToken);
    logoutTokens.length = 0;
    await agent.submit(confirm, '/session/end/confirm', { logout: 'yes' }, SIGNED_OUT);
    const logoutToken = logoutTokens.find(Boolean);
    assert.ok(logoutToken, `a logout token was delivered: ${JSON.stringify(logoutTokens)}`);
    assert.equal(decodeProtectedHeader(logoutToken!).typ, 'logout+jwt');

    const refused = await endSession(new Agent(), logoutToken!);
    assert.equal(refused.status, 400);
    assert.match(refused.html, /id_token_hint/);
    const other = new Agent();
    await signIn(other);
    const params = await silentWithHint(other, logoutToken!);
    assert.equal(params.get('error'), 'invalid_request');
    assert.equal(params.get('code'), null);
  });

  it('a JWT of ours typed at+jwt is refused; untyped and typ JWT are ID tokens', async () => {
    const agent = new Agent();
    const idToken = await signIn(agent);
    for (const typ of ['at+jwt', 'application/at+jwt', 'logout+jwt', 'secevent+jwt']) {
      assert.equal((await endSession(new Agent(), await retyped(idToken, typ))).status, 400, typ);
      assert.equal((await silentWithHint(agent, await retyped(idToken, typ))).get('error'), 'invalid_request', typ);
    }
    for (const typ of [undefined, 'JWT', 'application/jwt']) {
      assert.equal((await endSession(new Agent(), await retyped(idToken, typ))).status, 200, String(typ));
      assert.ok((await silentWithHint(agent, await retyped(idToken, typ))).get('code'), String(typ));
    }
  });
});
