/**
 * The eleventh fresh-eyes pass over passkeys and second factors (docs/security-passes.md,
 * "passkeys and second factors, eleventh pass"), black box: a running Latchkey on a real Redis, a
 * cookie-keeping agent as the browser, openid-client as the app, forged WebAuthn responses from
 * test/helpers/soft-passkeys.ts.
 */
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { Agent, type Page } from '../helpers/agent.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { authenticatorAdded, signedInToAccountPage, startAuthorization } from '../helpers/sign-in.js';
import { assertion, attestation, passkeyChallenge, registerSoftPasskeys, softPasskey } from '../helpers/soft-passkeys.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'a passphrase nobody types here';

describe('passkeys and second factors, eleventh pass (black box)', function () {
  this.timeout(30_000);
  let server: TestServer;
  let app: oidc.Configuration;

  before(async () => {
    server = await startServer({ ownRedis: true, clients: [{ client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT] }] });
    app = await oidc.discovery(new URL(server.issuer), 'app', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  });
  after(async () => {
    await server?.stop();
  });

  it("a passkey registration whose transports are not a list of the transports WebAuthn names (a number, an object, a string, odd members, null) adds the passkey with the known ones only, never a 500 (WebAuthn L3 §5.8.4)", async () => {
    const person = await server.accounts.create('transports-person', PASSWORD);
    const origin = new URL(server.issuer).origin;
    const { agent } = await signedInToAccountPage(server.issuer, 'transports-person', PASSWORD);
    const withTransports = (challenge: string, transports: unknown) => {
      const response = JSON.parse(attestation(softPasskey(), origin, challenge)) as { response: Record<string, unknown> };
      response.response.transports = transports;
      return JSON.stringify(response);
    };
    for (const transports of [5, {}, 'usb', [{}], ['usb', 'carrier-pigeon', 7], null]) {
      const page: Page = await agent.follow(`${server.issuer}/account`);
      const answer = await agent.submit(page, '/account/passkeys/add', { name: 'odd', credential: withTransports(passkeyChallenge(page), transports) });
      assert.ok(answer.status < 500, `transports ${JSON.stringify(transports)}: ${answer.status}`);
    }
    const { passkeys } = await server.secondFactors.records.read(person.sub);
    // Each was a genuine registration: added, with what it said of its transports that WebAuthn names.
    assert.deepEqual(
      passkeys.map((passkey) => passkey.transports ?? null),
      [null, null, null, null, ['usb'], null],
    );
  });

  it("malformed passkey assertions at the login page (an id that is no string, a user handle that is a number, empty or not base64url, a response that is no object) and another interaction's challenge are refused with the login page (401), never a 500; the genuine one signs in (held)", async () => {
    const person = await server.accounts.create('malformed-person', PASSWORD);
    const key = softPasskey();
    await registerSoftPasskeys(server, person.sub, key);
    const origin = new URL(server.issuer).origin;
    const agent = new Agent();
    const other = await startAuthorization(agent, app, REDIRECT);
    const bent: [string, (challenge: string) => string][] = [
      ['an id that is no string', (challenge) => JSON.stringify({ ...JSON.parse(assertion(key, origin, challenge, person.sub, 1)), id: 5 })],
      ['a user handle that is a number', (challenge) => reshaped(assertion(key, origin, challenge, person.sub, 1), { userHandle: 7 })],
      ['an empty user handle', (challenge) => reshaped(assertion(key, origin, challenge, person.sub, 1), { userHandle: '' })],
      ['a user handle not base64url', (challenge) => reshaped(assertion(key, origin, challenge, person.sub, 1), { userHandle: '*/{}' })],
      ['a response that is no object', (challenge) => JSON.stringify({ ...JSON.parse(assertion(key, origin, challenge, person.sub, 1)), response: 'x' })],
      ["another interaction's challenge", () => assertion(key, origin, passkeyChallenge(other.page), person.sub, 1)],
    ];
    for (const [what, credential] of bent) {
      const { page } = await startAuthorization(agent, app, REDIRECT);
      const refused = await agent.submit(page, '/passkey', { credential: credential(passkeyChallenge(page)) }, REDIRECT);
      assert.equal(refused.status, 401, `${what}: ${refused.status} ${refused.url}`);
    }
    const { page } = await startAuthorization(agent, app, REDIRECT);
    const signedIn = await agent.submit(page, '/passkey', { credential: assertion(key, origin, passkeyChallenge(page), person.sub, 2) }, REDIRECT);
    assert.notEqual(signedIn.status, 401, `the genuine assertion: ${signedIn.status} ${signedIn.url}`);
    assert.ok(signedIn.status < 400, `the genuine assertion: ${signedIn.status} ${signedIn.url}`);
  });

  it('new recovery codes made twice at the same moment (two tabs, a double click): no page shows codes that do not work; the one that lost says to make them again', async () => {
    const person = await server.accounts.create('two-tabs-person', PASSWORD);
    const { agent, page } = await signedInToAccountPage(server.issuer, 'two-tabs-person', PASSWORD);
    await authenticatorAdded(agent, page);
    const shown = await agent.follow(`${server.issuer}/account`);
    const answers = await Promise.all([0, 1].map(() => agent.submit(shown, '/account/recovery-codes', {})));
    let made = 0;
    for (const [i, answer] of answers.entries()) {
      const codes = [...answer.html.matchAll(/<li><code>([^<]+)<\/code>/g)].map((match) => match[1]!);
      if (!codes.length) {
        assert.match(answer.html, /made in another tab or window/, `answer ${i}: ${answer.status} ${answer.url}`);
        continue;
      }
      made += 1;
      // Each page's codes are the person's: one of them signs in (spent here by a sign-in of the test's own).
      assert.ok(await server.secondFactors.recoveryCodes.use(person.sub, codes[i]!, `check-${i}`), `answer ${i} shows codes that do not work`);
    }
    assert.equal(made, 1, 'one set is made');
  });
});

/** An assertion (JSON) with these members of its `response` replaced. */
function reshaped(json: string, members: Record<string, unknown>): string {
  const parsed = JSON.parse(json) as { response: Record<string, unknown> };
  return JSON.stringify({ ...parsed, response: { ...parsed.response, ...members } });
}
