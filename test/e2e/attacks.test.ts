/**
 * An attacker's review of the second factor, step-up, device, CIMD, DPoP/PAR and account-page
 * surfaces, black box: each test performs one attack against a running Latchkey on a real Redis,
 * with openid-client as the app and a cookie-keeping agent as the browser, and asserts that it
 * fails. Each title names the attack and the section of the spec it is about; docs/security.md's
 * threat model points here.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Secret, TOTP } from 'otpauth';
import { Agent, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signInSteps } from '../helpers/sign-in.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const OPS_SECRET = 'ops-client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'correct horse battery staple';
const MAX_FAILURES = 3;

const codeFor = (secret: string, steps = 0) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });

/** A code that is none of the ones valid now (±1 step): a wrong guess. */
const wrongCode = (secret: string, i: number) => {
  const valid = new Set([-1, 0, 1].map((step) => codeFor(secret, step)));
  for (let n = i; ; n += 1) {
    const guess = String((123_457 * (n + 1)) % 1_000_000).padStart(6, '0');
    if (!valid.has(guess)) return guess;
  }
};

const isSecondFactor = (page: Page) => page.url.includes('/interaction/') && page.html.includes('/second-factor');

describe('attacks: second factor, step-up and the new endpoints (black box)', function () {
  this.timeout(30_000);
  let server: TestServer;
  const configs: Record<string, oidc.Configuration> = {};

  async function enrolTotp(username: string): Promise<string> {
    const account = (await server.accounts.findByUsername(username))!;
    const { secret } = await server.secondFactors.totp.begin(account.sub, username);
    assert.equal(await server.secondFactors.totp.confirm(account.sub, codeFor(secret, -1)), true);
    return secret;
  }

  const discover = (id: string, secret?: string) =>
    oidc.discovery(new URL(server.issuer), id, secret, secret ? oidc.ClientSecretBasic(secret) : oidc.None(), { execute: [oidc.allowInsecureRequests] });

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { ACCOUNTS_THROTTLE_MAX_FAILURES: String(MAX_FAILURES) },
      clients: [
        { client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] },
        { client_id: 'ops', client_secret: OPS_SECRET, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
      ],
    });
    await server.apis.grant('ops', `${server.issuer}/admin`, { scopes: ['admin'] });
    for (const name of ['alice', 'bob', 'erin']) await server.accounts.create(name, PASSWORD);
    configs.app = await discover('app', SECRET);
  });
  after(() => server?.stop());

  async function authorize(agent: Agent, client: string, params: Record<string, string> = {}) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(configs[client]!, {
      redirect_uri: REDIRECT,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...params,
    });
    return { page: await agent.follow(url.href, {}, REDIRECT), verifier };
  }


  it('TOTP brute force across sign-ins: a right password does not reset the wrong-code count of the username (RFC 6238 §5.2, NIST SP 800-63B §5.2.2)', async () => {
    const secret = await enrolTotp('alice');
    // Each round: a fresh sign-in, the (stolen) right password, then wrong codes just under the limit.
    // Without the fix the password's success cleared the username's count, so rounds never ended.
    let guesses = 0;
    let paused: Page | undefined;
    for (let round = 0; round < 3 && !paused; round += 1) {
      const agent = new Agent();
      const { page } = await authorize(agent, 'app');
      let current = await signInSteps(agent, page, { username: 'alice', password: PASSWORD, login: 'required', stopAt: REDIRECT });
      if (current.status === 429) {
        paused = current;
        break;
      }
      assert.ok(isSecondFactor(current), `round ${round}: expected the second-factor page, got ${current.status} ${current.url}`);
      for (let i = 0; i < MAX_FAILURES - 1; i += 1) {
        current = await agent.submit(current, '/second-factor', { method: 'totp', code: wrongCode(secret, guesses) }, REDIRECT);
        guesses += 1;
        if (current.status === 429) {
          paused = current;
          break;
        }
        assert.equal(current.status, 401);
      }
    }
    assert.ok(paused, `${guesses} wrong codes over several sign-ins, and sign-in for the username never paused`);
    assert.ok(guesses <= MAX_FAILURES, `${guesses} wrong codes were checked before the pause (limit ${MAX_FAILURES})`);
  });
});
