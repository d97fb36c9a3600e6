/**
 * An outsider's and a thief's attack pass over what a browser or an anonymous client reaches, black
 * box: each test performs one attack against a running Latchkey on a real Redis and asserts that it
 * fails. Each title names the attack and the section of the spec it is about; docs/security.md's
 * threat model points here.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { upstreamDiscovery } from '../helpers/fake-upstream.js';
import { Upstreams } from '../../src/upstreams/registry.js';
import { Secret, TOTP } from 'otpauth';
import { Agent, formIn } from '../helpers/agent.js';
import { signInSteps } from '../helpers/sign-in.js';
import { eventually } from '../helpers/eventually.js';
import { basic, clientCredentialsToken } from '../helpers/tokens.js';
import { latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { createLogger } from '../../src/ops/logger.js';

const REDIRECT = 'https://app.example.test/callback';
const SECRET = 'client-secret-with-plenty-of-entropy-0123456789';
const OPS_SECRET = 'ops-client-secret-with-plenty-of-entropy-0123456789';
const PASSWORD = 'correct horse battery staple';
const VICTIM_PASSWORD = 'the victim types this passphrase';

interface ErrorBody {
  error: string;
  error_description?: string;
}

describe("attacks: an outsider's and a thief's pass (black box)", function () {
  this.timeout(60_000);
  const dir = testDir();
  let redis: RedisServer;
  let server: TestServer;
  let env: Record<string, string>;
  const logLines: string[] = [];
  /** How many log lines of the server carry `event`. */
  const logged = (event: string) => logLines.filter((line) => (JSON.parse(line) as { event?: string }).event === event).length;

  before(async () => {
    redis = await startRedisServer();
    const port = await freePort();
    const settings = {
      redisUrl: redis.url,
      dir,
      port,
      clients: [
        { client_id: 'app', client_secret: SECRET, redirect_uris: [REDIRECT], post_logout_redirect_uris: ['https://app.example.test/signed-out'] },
        { client_id: 'ops', client_secret: OPS_SECRET, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
      ],
    };
    env = testEnv(dir, port, settings);
    server = await startServer({ ...settings, env: { LOG_LEVEL: 'info', REGISTRATION_MAX_APPS_PER_DEVELOPER: '3' }, logger: createLogger('info', { write: (line: string) => void logLines.push(line) }) });
    await server.apis.grant('ops', `${server.issuer}/admin`, { scopes: ['admin'] });
    await server.accounts.create('alice', PASSWORD);
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  const admin = async (path: string, method: string, body?: unknown) =>
    fetch(`${server.url}/admin${path}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await clientCredentialsToken(server.url, { id: 'ops', secret: OPS_SECRET }, `${server.issuer}/admin`, 'admin')}` },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });

  it('session fixation: the session id is renewed at sign-in and at every sign-in again (step-up), and the old id signs nobody in (ASVS V7.2.4, OWASP session fixation)', async () => {
    const agent = new Agent();
    const sessionId = () => /(?:^|; )lk_session=([^;]+)/.exec(agent.cookieHeader(server.url))?.[1];
    // A cookie planted before the sign-in (the attacker's, once valid) is not the session signed in.
    const planted = new Agent();
    await signInSteps(planted, await planted.follow(`${server.issuer}/account`), { username: 'alice', password: PASSWORD, login: 'required', consent: 'stop' });
    const plantedId = /(?:^|; )lk_session=([^;]+)/.exec(planted.cookieHeader(server.url))?.[1];
    await planted.submit(await planted.follow(`${server.issuer}/session/end`), '/session/end/confirm', { logout: 'yes' });

    await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'alice', password: PASSWORD, login: 'required', consent: 'stop' });
    const first = sessionId();
    const firstCookies = agent.cookieHeader(server.url);
    assert.ok(first && first !== plantedId);
    // Signing in again (prompt=login, max_age=0: what the account page asks before a credential changes).
    const again = await agent.follow(`${server.issuer}/account/sign-in?again=password`);
    const done = await signInSteps(agent, again, { username: 'alice', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.match(done.url, /\/account/);
    const second = sessionId();
    assert.ok(second && second !== first, 'a new session id after signing in again');
    const current = await fetch(`${server.url}/account`, { headers: { cookie: agent.cookieHeader(server.url), accept: 'text/html' }, redirect: 'manual' });
    assert.equal(current.status, 200, 'the new id is the session');
    const stale = await fetch(`${server.url}/account`, { headers: { cookie: firstCookies, accept: 'text/html' }, redirect: 'manual' });
    assert.equal(stale.status, 302, 'the old id is no session any more');
    assert.match(stale.headers.get('location') ?? '', /sign-in/);
  });

  it('a burst of guesses sent at once is held to the limit: of 30 wrong passwords, or 30 wrong authenticator-app codes, sent together for one username, no more than its allowance (5) are checked; the rest get 429 and Retry-After (RFC 6238 §5.2, ASVS V6.3.1)', async () => {
    const MAX_FAILURES = 5;
    const burst = async (action: string, hidden: Record<string, string>, cookie: string, fields: (i: number) => Record<string, string>) =>
      Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          fetch(action, { method: 'POST', redirect: 'manual', headers: { cookie, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...hidden, ...fields(i) }) }).then(async (answer) => {
            await answer.arrayBuffer();
            return { status: answer.status, retryAfter: answer.headers.get('retry-after') };
          }),
        ),
      );
    // What the server checked is what it logged as a failed check (login.failed, second_factor.failed);
    // the answers are refusals: 401, or 429 with Retry-After once the pause started.
    const refused = (answers: { status: number; retryAfter: string | null }[]) => {
      assert.ok(answers.every(({ status }) => status === 401 || status === 429), answers.map(({ status }) => status).join(' '));
      assert.ok(answers.filter(({ status }) => status === 429).every(({ retryAfter }) => Number(retryAfter) > 0));
      assert.ok(answers.some(({ status }) => status === 429));
    };

    // Passwords: 30 wrong ones for one username, at once.
    await server.accounts.create('burst-password', PASSWORD);
    const agent = new Agent();
    const login = await agent.follow(`${server.issuer}/account`);
    const form = formIn(login.html, '/login');
    const failedLogins = logged('login.failed');
    refused(await burst(new URL(form.action, login.url).href, form.hidden, agent.cookieHeader(login.url), (i) => ({ username: 'burst-password', password: `wrong guess number ${i}` })));
    const checkedPasswords = logged('login.failed') - failedLogins;
    assert.ok(checkedPasswords >= 1 && checkedPasswords <= MAX_FAILURES, `${checkedPasswords} of 30 passwords were checked`);

    // Authenticator-app codes: someone who knows the password sends 30 codes at once.
    await server.accounts.create('burst-totp', PASSWORD);
    const account = (await server.accounts.findByUsername('burst-totp'))!;
    const { secret } = await server.secondFactors.totp.begin(account.sub, 'burst-totp', 'test-session');
    const codeAt = (steps: number) => TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: Date.now() + steps * 30_000 });
    assert.equal(await server.secondFactors.totp.confirm(account.sub, codeAt(-1), 'test-session'), true);
    const valid = new Set([-1, 0, 1, 2].map(codeAt));
    const wrong = Array.from({ length: 200 }, (_, i) => String((123_457 * (i + 1)) % 1_000_000).padStart(6, '0')).filter((code) => !valid.has(code));
    const person = new Agent();
    const second = await signInSteps(person, await person.follow(`${server.issuer}/account`), { username: 'burst-totp', password: PASSWORD, login: 'required', consent: 'stop' });
    const codeForm = formIn(second.html, '/second-factor');
    const failedCodes = logged('second_factor.failed');
    refused(await burst(new URL(codeForm.action, second.url).href, codeForm.hidden, person.cookieHeader(second.url), (i) => ({ method: 'totp', code: wrong[i]! })));
    const checkedCodes = logged('second_factor.failed') - failedCodes;
    assert.ok(checkedCodes >= 1 && checkedCodes <= MAX_FAILURES, `${checkedCodes} of 30 codes were checked`);
  });

  it('a paused username stays paused whatever is sent meanwhile: forms refused before the check (a forged CSRF token, another sign-in\'s form) give back nothing they did not take (RFC 6238 §5.2, ASVS V6.3.1)', async () => {
    await server.accounts.create('paused-person', PASSWORD);
    const tryOnce = async (password: string, csrf?: string) => {
      const agent = new Agent();
      const page = await agent.follow(`${server.issuer}/account`);
      const form = formIn(page.html, '/login');
      const answer = await agent.request(new URL(form.action, page.url).href, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...form.hidden, ...(csrf !== undefined && { csrf }), username: 'paused-person', password }),
      });
      await answer.arrayBuffer();
      return answer.status;
    };
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push(await tryOnce(`wrong ${i}`));
    assert.equal(statuses.at(-1), 429, `the fifth failure starts the pause: ${statuses.join(' ')}`);
    for (let i = 0; i < 3; i += 1) assert.equal(await tryOnce(PASSWORD, 'forged'), 403, 'a forged form is refused');
    assert.equal(await tryOnce(PASSWORD), 429, 'still paused: the right password is not checked');
  });

  it('a guessable client secret cannot be given to a client (admin API, CLI, configuration, where none is generated either): failed client authentications are charged to no client, so only a secret no one can guess holds (RFC 6749 §10.10, RFC 9700 §2.5)', async () => {
    for (const secret of ['x', 'password1', 'a'.repeat(31)]) {
      const created = await admin('/clients', 'POST', { client_id: `weak-${secret.length}`, client_secret: secret, redirect_uris: [REDIRECT] });
      assert.equal(created.status, 400, await created.clone().text());
      const body = (await created.json()) as ErrorBody;
      assert.equal(body.error, 'invalid_client_metadata');
      assert.match(body.error_description ?? '', /client_secret must be at least 32/);
      assert.equal((await admin(`/clients/weak-${secret.length}`, 'GET')).status, 404, 'nothing was stored');
    }
    // A long one is taken, and a generated one as before.
    const chosen = await admin('/clients', 'POST', { client_id: 'chosen', client_secret: 'k'.repeat(8) + SECRET, redirect_uris: [REDIRECT] });
    assert.equal(chosen.status, 201, await chosen.clone().text());
    const updated = await admin('/clients/chosen', 'PUT', { client_secret: 'short', redirect_uris: [REDIRECT] });
    assert.equal(updated.status, 400, 'an update cannot make it guessable either');
    assert.equal(((await updated.json()) as ErrorBody).error, 'invalid_client_metadata');

    const cli = await latchkey(env, ['clients', 'add', '--client-id', 'cli-weak', '--secret', 'hunter2', '--redirect-uri', REDIRECT]);
    assert.equal(cli.status, 1, cli.stdout);
    assert.match(cli.stderr, /^latchkey: invalid_client_metadata: client_secret must be at least 32/m);
    assert.doesNotMatch(cli.stderr, /\n\s+at /, 'no stack trace');

    const port = await freePort();
    const start = await latchkey(testEnv(testDir(), port, { env: { CLIENTS: JSON.stringify([{ client_id: 'cfg-weak', client_secret: 'changeme', redirect_uris: [REDIRECT] }]) } }), ['serve']);
    assert.equal(start.status, 1);
    assert.match(start.stderr, /^latchkey: clients \(CLIENTS\): client "cfg-weak": client_secret must be at least 32/m);
    assert.ok(!start.stderr.includes('changeme'), 'the secret is not printed');
    // A configured client's secret is not generated (the configuration is read at every start): the
    // refusal says to make one, not to leave it out, and a missing one is told the same in one line.
    assert.doesNotMatch(start.stderr, /leave it out/);
    assert.match(start.stderr, /make one with openssl rand -hex 32/);
    const missing = await latchkey(testEnv(testDir(), port, { env: { CLIENTS: JSON.stringify([{ client_id: 'cfg-none', redirect_uris: [REDIRECT] }]) } }), ['serve']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^latchkey: clients \(CLIENTS\): client "cfg-none": client_secret is missing \(a configured client's is not generated\): make one with openssl rand -hex 32 .*"token_endpoint_auth_method": "none"$/m);
    assert.doesNotMatch(missing.stderr, /mandatory property|\n\s+at /);
  });

  it('a password a spray tries first cannot be chosen: common ones, runs, repeats, the username or the service name, at the admin API, the CLI and the account page (NIST SP 800-63B §3.1.1.2, ASVS V6.2.4, V6.2.11)', async () => {
    const weak = ['password', 'Password123!', '12345678', 'qwertyuiop', 'iloveyou', 'aaaaaaaa', '87654321', 'Latchkey2024', 'p@ssw0rd'];
    for (const password of weak) {
      const created = await admin('/users', 'POST', { username: 'sprayed', password });
      assert.equal(created.status, 400, `${password}: ${await created.clone().text()}`);
      assert.match(((await created.json()) as ErrorBody).error_description ?? '', /guess|common/, password);
    }
    const own = await admin('/users', 'POST', { username: 'mallory', password: 'mallory2024' });
    assert.equal(own.status, 400, 'the username with digits');
    assert.equal(await server.accounts.findByUsername('sprayed'), undefined, 'nothing was made');

    const cli = await latchkey(env, ['users', 'add', 'sprayed', '--password-stdin'], 'password1\n');
    assert.equal(cli.status, 1, cli.stdout);
    assert.match(cli.stderr, /^latchkey: .*common/m);
    const passwd = await latchkey(env, ['users', 'passwd', 'alice', '--password-stdin'], 'alice123!\n');
    assert.equal(passwd.status, 1, passwd.stdout);
    assert.ok(await server.accounts.verify('alice', PASSWORD), 'the operator did not set it');

    // The account page: a signed-in person changing theirs.
    const agent = new Agent();
    const page = await signInSteps(agent, await agent.follow(`${server.issuer}/account`), { username: 'alice', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(page.url, `${server.issuer}/account`);
    for (const password of ['qwerty1234', 'Alice2024!']) {
      const changed = await agent.submit(page, '/password', { current_password: PASSWORD, new_password: password, confirm_password: password });
      assert.equal(changed.status, 400, password);
      assert.match(changed.html, /Choose another new password: .*(common|guess)/, password);
    }
    assert.ok(await server.accounts.verify('alice', PASSWORD), 'the password is unchanged');
    // A passphrase of ordinary words is what is asked for, and is taken.
    const good = await admin('/users', 'POST', { username: 'sprayed', password: 'violet tractor under the moon' });
    assert.equal(good.status, 201, await good.clone().text());
    assert.ok(formIn(page.html, '/password'));
  });

  it('one person cannot register apps without end on the developer page: of 10 sent at once, then more one after another, no more than registration.maxAppsPerDeveloper (3 here) are registered, and the refusal says why (OWASP ASVS V11.1.4, resource exhaustion)', async () => {
    await server.accounts.create('prolific', PASSWORD);
    const agent = new Agent();
    const signedIn = await signInSteps(agent, await agent.follow(`${server.issuer}/developer/sign-in`), { username: 'prolific', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.match(signedIn.url, /\/developer/);
    const form = formIn(signedIn.html, '/developer/apps');
    const register = (i: number) =>
      fetch(new URL(form.action, signedIn.url), {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: agent.cookieHeader(server.url), accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...form.hidden, name: `Prolific ${i}`, type: 'web', redirect_uris: `https://app${i}.example.test/callback` }),
      }).then(async (answer) => ({ status: answer.status, html: await answer.text() }));
    const registered = (answers: { status: number; html: string }[]) => answers.filter(({ status, html }) => status === 200 && /App registered/.test(html)).length;

    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => register(i)));
    assert.ok(burst.every(({ status }) => status === 200 || status === 400), burst.map(({ status }) => status).join(' '));
    let count = registered(burst);
    assert.ok(count >= 1 && count <= 3, `${count} of 10 sent at once were registered`);
    let last: { status: number; html: string } | undefined;
    for (let i = 10; i < 16; i += 1) {
      last = await register(i);
      count += registered([last]);
    }
    assert.equal(count, 3, 'no more than the cap, however sent');
    assert.equal(last?.status, 400);
    assert.match(last?.html ?? '', /you have 3 apps already/);
    const clients = (await (await admin('/clients', 'GET')).json()) as { client_name?: string }[];
    assert.equal(clients.filter((client) => client.client_name?.startsWith('Prolific ')).length, 3, 'what the store holds');
  });

  it('a JSON body nested thousands deep in a few kilobytes is a 400 at the admin API, not a 500 (its store write overflowed the stack), and the server still answers (OWASP ASVS V13.1.x, denial of service by input)', async () => {
    for (const depth of [40, 15_000]) {
      const deep = '['.repeat(depth) + ']'.repeat(depth);
      for (const [path, body] of [
        ['/clients', `{"client_id":"deep-${depth}","redirect_uris":["https://deep.example.test/callback"],"x":${deep}}`],
        ['/clients/app', `{"redirect_uris":["${REDIRECT}"],"x":${deep}}`],
      ] as const) {
        const response = await fetch(`${server.url}/admin${path}`, {
          method: path === '/clients' ? 'POST' : 'PUT',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${await clientCredentialsToken(server.url, { id: 'ops', secret: OPS_SECRET }, `${server.issuer}/admin`, 'admin')}` },
          body,
        });
        assert.equal(response.status, 400, `${depth} levels at ${path}`);
        assert.equal(((await response.json()) as ErrorBody).error, 'invalid_request');
      }
    }
    assert.equal((await admin('/clients/deep-15000', 'GET')).status, 404, 'nothing stored');
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  });

  it('header injection: CR LF sent in every parameter that reaches a Location or a page (sign-in sections, callbacks, state, resource, scope, post-logout URI, user code, paths) injects no header and breaks no answer (OWASP ASVS V5.3, CWE-113)', async () => {
    const injected = '%0d%0aX-Injected:%20yes%0d%0aSet-Cookie:%20planted=1%0d%0a';
    const auth = `/auth?${new URLSearchParams({ client_id: 'app', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT, code_challenge: 'a'.repeat(43), code_challenge_method: 'S256' })}`;
    const paths = [
      `/account/sign-in?again=${injected}`, `/developer/sign-in?again=x${injected}`, `/account/callback?state=x.${injected}`, `/developer/callback?state=x.apps${injected}`,
      `${auth}&state=${injected}`, `${auth}&prompt=none&state=${injected}`, `${auth}&resource=https://api.example.test${injected}`, `${auth}&scope=openid${injected}`,
      `/session/end?client_id=app&post_logout_redirect_uri=${encodeURIComponent('https://app.example.test/signed-out')}${injected}`,
      `/upstream/corp/signed-out?state=${injected}`, `/device?user_code=${injected}`, `/interaction/${injected}`, `/account?done=${injected}`, `/developer?done=${injected}`, `/${injected}`,
    ];
    for (const path of paths) {
      const answer = await fetch(`${server.url}${path}`, { redirect: 'manual', headers: { accept: 'text/html' } });
      await answer.arrayBuffer();
      assert.ok(answer.status < 500, `${answer.status} ${path}`);
      assert.equal(answer.headers.get('x-injected'), null, path);
      assert.ok(!answer.headers.getSetCookie().some((line) => line.startsWith('planted=')), path);
      assert.doesNotMatch(answer.headers.get('location') ?? '', /[\r\n]/, path);
    }
  });

  it('our own pages, files and the admin API asked with a method they do not take answer 405 with Allow, a page for people and JSON for programs (the admin API JSON always); a path nothing serves stays 404 (RFC 9110 §15.5.6)', async () => {
    const cases: [string, string, string][] = [
      ['/', 'POST', 'GET, HEAD'],
      ['/favicon.ico', 'PUT', 'GET, HEAD'],
      ['/healthz', 'POST', 'GET, HEAD'],
      ['/readyz', 'DELETE', 'GET, HEAD'],
      ['/static/latchkey.css', 'POST', 'GET, HEAD'],
      ['/static/passkeys.js', 'PUT', 'GET, HEAD'],
      ['/account', 'POST', 'GET, HEAD'],
      ['/account/password', 'GET', 'POST'],
      ['/account/sign-in', 'POST', 'GET, HEAD'],
      ['/developer', 'PUT', 'GET, HEAD'],
      ['/developer/apps', 'GET', 'POST'],
      ['/developer/apps/some-app/delete', 'GET', 'POST'],
      ['/interaction/some-uid', 'POST', 'GET, HEAD'],
      ['/interaction/some-uid/login', 'GET', 'POST'],
      ['/upstream/corp/callback', 'POST', 'GET, HEAD'],
      ['/upstream/corp/backchannel-logout', 'GET', 'POST'],
      ['/admin/openapi.json', 'POST', 'GET, HEAD'],
      ['/admin/clients', 'DELETE', 'GET, HEAD, POST'],
      ['/admin/clients/some-client', 'PATCH', 'GET, HEAD, PUT, DELETE'],
      ['/admin/users/bob/disable', 'GET', 'POST'],
    ];
    for (const [path, method, allow] of cases) {
      const response = await fetch(`${server.url}${path}`, { method, redirect: 'manual', headers: { accept: 'application/json' } });
      assert.equal(response.status, 405, `${method} ${path}`);
      assert.equal(response.headers.get('allow'), allow, `${method} ${path}`);
      assert.equal(((await response.json()) as ErrorBody).error, 'invalid_request', `${method} ${path}`);
    }
    // A person's browser gets the error page (with the framing headers every page has); the admin API answers JSON.
    const page = await fetch(`${server.url}/account/password`, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 405);
    assert.equal(page.headers.get('allow'), 'POST');
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    await page.arrayBuffer();
    const api = await fetch(`${server.url}/admin/clients`, { method: 'PUT', headers: { accept: 'text/html' } });
    assert.equal(api.status, 405);
    assert.match(api.headers.get('content-type') ?? '', /^application\/json/);
    await api.arrayBuffer();
    // A route that took the request keeps its own 404; a path no method serves is 404 without Allow.
    assert.equal((await admin('/clients/no-such-client', 'GET')).status, 404);
    for (const [path, method] of [['/account/nowhere', 'POST'], ['/admin/nowhere', 'GET'], ['/developer/nowhere', 'GET'], ['/nowhere', 'DELETE']] as const) {
      const response = await fetch(`${server.url}${path}`, { method, redirect: 'manual', headers: { accept: 'application/json' } });
      assert.equal(response.status, 404, `${method} ${path}`);
      assert.equal(response.headers.get('allow'), null, `${method} ${path}`);
      await response.arrayBuffer();
    }
  });
});

describe('attacks: cookies a sibling subdomain plants (black box, https issuer)', function () {
  this.timeout(30_000);
  const ISSUER = 'https://id.example.test';
  let server: TestServer;
  // An upstream provider that answers discovery and counts token requests (the callback must be refused before one).
  let upstream: Server;
  let upstreamIssuer = '';
  let upstreamTokenRequests = 0;

  before(async () => {
    upstream = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/.well-known/openid-configuration') return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(upstreamDiscovery(upstreamIssuer)));
      if (path === '/token') upstreamTokenRequests += 1;
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_grant"}');
    });
    await new Promise<void>((done) => upstream.listen(0, '127.0.0.1', done));
    upstreamIssuer = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    // TLS ends at a proxy: the test's agents rewrite the issuer's https URL to the plain http port.
    server = await startServer({ env: { ISSUER, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } });
    await new Upstreams(server.kv, server.config.keys.secrets).add({ id: 'corp', issuer: upstreamIssuer, clientId: 'latchkey', clientSecret: SECRET, scope: 'openid', displayName: 'Corp', linkByEmail: false, endSession: false });
    await server.accounts.create('attacker', PASSWORD);
    await server.accounts.create('victim', VICTIM_PASSWORD);
  });
  after(async () => {
    await server?.stop();
    upstream?.close();
  });

  /** A browser at the issuer's https URL. */
  function browser(): Agent {
    const agent = new Agent();
    const request = agent.request.bind(agent);
    agent.request = (url: string, init?: RequestInit) => request(url.replace(ISSUER, server.url), init);
    return agent;
  }

  /** The attacker's own sign-in, stopped at its resume: the resume URL and the cookies the attacker can plant (everything but __Host- ones). */
  async function attackersSignInUpToTheResume(start: string) {
    const attacker = browser();
    const page = await attacker.follow(start);
    const login = formIn(page.html, '/login');
    const posted = await attacker.request(new URL(login.action, page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...login.hidden, username: 'attacker', password: PASSWORD }),
    });
    assert.equal(posted.status, 303);
    const resume = new URL(posted.headers.get('location')!, ISSUER).href;
    assert.match(resume, /\/auth\/[\w-]+$/);
    // A sibling subdomain sets cookies for the parent domain, any path, but never a __Host- one.
    const plantable = attacker.setCookies.map((line) => line.split(';')[0]!).filter((pair) => !pair.startsWith('__Host-') && !pair.endsWith('='));
    return { resume, plantable, attacker };
  }

  it("login CSRF by cookie tossing: the attacker's resume cookie planted in a victim's browser does not sign the victim in as the attacker; the attacker's own browser resumes (RFC 9700 §4.7, RFC 6265bis §4.1.3.2, ASVS V7.2.4)", async () => {
    for (const start of [`${ISSUER}/account/sign-in`, `${ISSUER}/developer/sign-in`]) {
      const { resume, plantable } = await attackersSignInUpToTheResume(start);
      const tossed = plantable.filter((pair) => pair.startsWith('lk_resume'));
      assert.equal(tossed.length, 2, `the resume cookie and its signature: ${plantable.join(' ')}`);
      const victim = await fetch(resume.replace(ISSUER, server.url), { headers: { cookie: tossed.join('; '), accept: 'text/html' }, redirect: 'manual' });
      const body = await victim.text();
      assert.equal(victim.status, 400, `${start}: ${victim.status} ${victim.headers.get('location')}`);
      assert.match(body, /not started in this browser/);
      assert.ok(!victim.headers.getSetCookie().some((line) => /^__Host-lk_session=[^;]/.test(line)), 'no session is made in the victim\'s browser');
    }
    // The browser that started a sign-in resumes it: the binding cookie is __Host- (Secure, Path=/, no Domain), and goes with the resume.
    const { resume, attacker } = await attackersSignInUpToTheResume(`${ISSUER}/account/sign-in`);
    const flow = attacker.setCookies.filter((line) => line.startsWith('__Host-lk_flow_'));
    assert.equal(flow.length, 1, attacker.setCookies.map((line) => line.split('=')[0]).join(' '));
    const attributes = flow[0]!.split(';').slice(1).map((a) => a.trim().toLowerCase());
    for (const wanted of ['path=/', 'secure', 'httponly', 'samesite=lax']) assert.ok(attributes.includes(wanted), `${wanted}: ${flow[0]}`);
    assert.ok(!attributes.some((a) => a.startsWith('domain=')));
    const back = await attacker.follow(resume, {}, `${ISSUER}/account/callback`);
    assert.ok(back.url.startsWith(`${ISSUER}/account/callback`), `${back.status} ${back.url}`);
    assert.ok(attacker.setCookies.some((line) => /^__Host-lk_flow_[\w-]+=; max-age=0/.test(line)), 'the binding cookie is cleared at the resume');
    const account = await attacker.follow(`${ISSUER}/account`);
    assert.equal(account.status, 200);
    assert.match(account.html, /attacker/);
  });

  it("interaction fixation by cookie tossing: a victim's browser given the attacker's interaction cookie does not sign in to the attacker's sign-in (which the attacker's browser would then resume as the victim), nor does its upstream callback (RFC 9700 §4.7, ASVS V7.2.4)", async () => {
    const attacker = browser();
    const login = await attacker.follow(`${ISSUER}/account/sign-in`);
    assert.match(login.html, /name="password"/);
    const uid = /\/interaction\/([\w-]+)/.exec(login.url)![1]!;
    const planted = attacker.setCookies.map((line) => line.split(';')[0]!).filter((pair) => pair.startsWith('lk_interaction'));
    assert.equal(planted.length, 2);
    const form = formIn(login.html, '/login');
    const asVictim = (init: RequestInit = {}) => ({ ...init, headers: { ...(init.headers as Record<string, string>), cookie: planted.join('; '), accept: 'text/html' }, redirect: 'manual' as const });
    const shown = await fetch(`${server.url}/interaction/${uid}`, asVictim());
    assert.equal(shown.status, 400);
    assert.match(await shown.text(), /not started in this browser/);
    // The victim types their own password into the attacker's sign-in (the CSRF token is the attacker's page's).
    const posted = await fetch(new URL(form.action, server.url).href.replace(ISSUER, server.url), asVictim({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.hidden, username: 'victim', password: VICTIM_PASSWORD }),
    }));
    assert.equal(posted.status, 400, `${posted.status} ${posted.headers.get('location')}`);
    // The attacker's browser, which holds the flow cookie, resumes: it is still asked to sign in, as nobody.
    const resumed = await attacker.follow(`${ISSUER}/auth/${uid}`, {}, `${ISSUER}/account/callback`);
    assert.ok(!resumed.url.startsWith(`${ISSUER}/account/callback`), `the attacker got no session: ${resumed.status} ${resumed.url}`);
    const account = await attacker.follow(`${ISSUER}/account`);
    assert.doesNotMatch(account.html, /victim/);

    // Through an upstream: the attacker starts the upstream sign-in, and plants its state cookie (path /upstream/) in the
    // victim's browser, which the upstream then sends back with the victim's own code for the attacker's state.
    const again = browser();
    const page = await again.follow(`${ISSUER}/account/sign-in`);
    const toUpstream = await again.submit(page, '/upstream/corp', {}, `${upstreamIssuer}/authorize`);
    const state = new URL(toUpstream.url).searchParams.get('state')!;
    assert.ok(state, toUpstream.url);
    const stateCookies = again.setCookies.map((line) => line.split(';')[0]!).filter((pair) => pair.startsWith('lk_upstream'));
    assert.equal(stateCookies.length, 2);
    const callback = await fetch(`${server.url}/upstream/corp/callback?code=the-victims-code&state=${state}`, { headers: { cookie: stateCookies.join('; '), accept: 'text/html' }, redirect: 'manual' });
    assert.equal(callback.status, 400);
    assert.match(await callback.text(), /does not belong to a sign-in started in this browser/);
    assert.equal(upstreamTokenRequests, 0, "the victim's code was not redeemed for the attacker's sign-in");
  });
});

describe('attacks: a stolen session cookie kept in use (black box)', function () {
  this.timeout(45_000);
  let server: TestServer;

  before(async () => {
    // Sessions live an hour from their last use, and at most 8 seconds after their sign-in (whole
    // seconds: a little over 7), time enough on a loaded machine for each sign-in's own steps to
    // reach the account page first.
    server = await startServer({ env: { TTL_SESSION: '3600', TTL_SESSION_MAX: '8' } });
    await server.accounts.create('alice', PASSWORD);
  });
  after(() => server?.stop());

  it('a session used without pause still ends ttl.sessionMax after its sign-in: the person (or the thief) signs in again (OWASP ASVS V7.3.2)', async () => {
    const thief = new Agent();
    const page = await signInSteps(thief, await thief.follow(`${server.issuer}/account`), { username: 'alice', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(page.url, `${server.issuer}/account`);
    // Kept in use: every round goes through the authorization endpoint (single sign-on), which saves the session.
    const ended = await eventually(async () => {
      const back = await thief.follow(`${server.issuer}/account/sign-in`);
      assert.match(back.html, /name="password"/, `still signed in: ${back.status} ${back.url}`);
      return back;
    }, 80, 250);
    assert.equal(ended.status, 200);
    const account = await thief.follow(`${server.issuer}/account`);
    assert.doesNotMatch(account.url, /\/account$/, 'the account page asks for a sign-in');
    // Signing in again makes a new session, which lives on.
    const again = await signInSteps(thief, account, { username: 'alice', password: PASSWORD, login: 'required', consent: 'stop' });
    assert.equal(again.url, `${server.issuer}/account`, `${again.status} ${again.html.slice(0, 300)}`);
  });
});

describe('attacks: guessing from a new IPv6 address each time (black box, behind a proxy)', function () {
  this.timeout(30_000);
  let server: TestServer;
  let host = 0;
  /** Another address of the network `prefix` (a /64) for every request, as a host given the whole /64 may send it. */
  const nextAddress = (prefix: string) => `${prefix}:${(host += 1).toString(16)}:${((host * 7919) % 65_536).toString(16)}:${((host * 104_729) % 65_536).toString(16)}:1`;

  before(async () => {
    server = await startServer({
      ownRedis: true,
      env: { PROXY: 'true', PROXY_HOPS: '1', DEVICE_FLOW_MAX_FAILURES_PER_IP: '3', DEVICE_FLOW_MAX_FAILURES_PER_CODE: '100' },
      clients: [{ client_id: 'tv', application_type: 'native', token_endpoint_auth_method: 'none', grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], response_types: [], redirect_uris: [] }],
    });
  });
  after(() => server?.stop());

  /** A user code typed at /device from `address` (the entry page fetched from it too). */
  async function enter(address: string, code: string) {
    const agent = new Agent();
    const headers = { 'x-forwarded-for': address };
    const entry = await agent.request(`${server.issuer}/device`, { headers });
    const form = formIn(await entry.text(), '/device');
    return agent.request(new URL(form.action, server.issuer).href, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.hidden, user_code: code }),
    });
  }

  it('user codes guessed at /device from a new address of one IPv6 /64 each time are paused as from one address (RFC 8628 §5.1)', async () => {
    const statuses: number[] = [];
    for (const code of ['BBBB-BBBB', 'CCCC-CCCC', 'DDDD-DDDD', 'FFFF-FFFF']) statuses.push((await enter(nextAddress('2001:db8:99:1'), code)).status);
    assert.deepEqual(statuses.slice(0, 3).includes(429), false, statuses.join(' '));
    const paused = await enter(nextAddress('2001:db8:99:1'), 'GGGG-GGGG');
    assert.equal(paused.status, 429, `the network is paused: ${statuses.join(' ')} ${paused.status}`);
    assert.ok(Number(paused.headers.get('retry-after')) > 0);
    assert.notEqual((await enter('2001:db8:99:2::1', 'HHHH-HHHH')).status, 429, 'another /64 is not');
  });

  it('user codes sent at once from one address are held to its allowance: of 20 wrong codes, no more than 3 are looked up; the rest get 429 and Retry-After (RFC 8628 §5.1)', async () => {
    const letters = 'BCDFGHJKLMNPQRSTVWXZ';
    const codes = Array.from({ length: 20 }, (_, i) => `${letters[i]!.repeat(4)}-${letters[(i + 7) % 20]!.repeat(4)}`);
    const answers = await Promise.all(codes.map(async (code) => {
      const answer = await enter('198.51.100.77', code);
      return { status: answer.status, html: await answer.text(), retryAfter: answer.headers.get('retry-after') };
    }));
    const lookedUp = answers.filter(({ status, html }) => status !== 429 && /not right/.test(html)).length;
    const paused = answers.filter(({ status }) => status === 429);
    assert.equal(lookedUp + paused.length, answers.length, answers.map(({ status }) => status).join(' '));
    assert.ok(lookedUp <= 3, `${lookedUp} of 20 codes were looked up`);
    assert.ok(paused.every(({ retryAfter }) => Number(retryAfter) > 0));
  });
});

describe('attacks: a DPoP proof or client assertion replayed at another instance (black box, two instances on one store)', function () {
  this.timeout(60_000);
  const OPS = { id: 'ops', secret: OPS_SECRET };
  let redis: RedisServer;
  let first: TestServer;
  let second: TestServer;
  let signer: Awaited<ReturnType<typeof generateKeyPair>>;

  before(async () => {
    redis = await startRedisServer();
    signer = await generateKeyPair('ES256', { extractable: true });
    const clients = [
      { client_id: OPS.id, client_secret: OPS.secret, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
      { client_id: 'signer', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ ...(await exportJWK(signer.publicKey)), kid: 'signer-1', alg: 'ES256', use: 'sig' }] }, redirect_uris: [], grant_types: ['client_credentials'], response_types: [] },
    ];
    first = await startServer({ redisUrl: redis.url, clients });
    // The same deployment: one issuer, one store; a thief's replay lands at whichever instance the balancer picks.
    second = await startServer({ redisUrl: redis.url, clients, env: { ISSUER: first.issuer } });
    await first.apis.grant(OPS.id, `${first.issuer}/admin`, { scopes: ['admin:read'] });
  });
  after(async () => {
    await second?.stop();
    await first?.stop();
    await redis?.stop();
  });

  it('a proof seen by one instance is refused by the other, at the token endpoint and at the admin API (RFC 9449 §11.1)', async () => {
    const key = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(key.publicKey);
    const proof = (htm: string, htu: string, claims: Record<string, unknown> = {}) =>
      new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), htm, htu, ...claims }).setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk }).sign(key.privateKey);
    const token = (server: TestServer, dpop: string) =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(OPS), dpop },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${first.issuer}/admin`, scope: 'admin:read' }),
      }).then(async (answer) => ({ status: answer.status, body: (await answer.json()) as { access_token?: string; token_type?: string; error?: string } }));

    const atToken = await proof('POST', `${first.issuer}/token`);
    const issued = await token(first, atToken);
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    assert.equal(issued.body.token_type, 'DPoP');
    const replayed = await token(second, atToken);
    assert.equal(replayed.status, 400, JSON.stringify(replayed.body));
    assert.equal(replayed.body.access_token, undefined);

    const accessToken = issued.body.access_token!;
    const atAdmin = await proof('GET', `${first.issuer}/admin/clients`, { ath: createHash('sha256').update(accessToken).digest('base64url') });
    const list = (server: TestServer) => fetch(`${server.url}/admin/clients`, { headers: { authorization: `DPoP ${accessToken}`, dpop: atAdmin } });
    assert.equal((await list(first)).status, 200);
    const again = await list(second);
    assert.equal(again.status, 401);
    assert.match(again.headers.get('www-authenticate') ?? '', /invalid_dpop_proof/);
    // Refused as replays, not as strangers: fresh proofs of the same key are taken by the second instance.
    assert.equal((await token(second, await proof('POST', `${first.issuer}/token`))).status, 200);
    const fresh = await proof('GET', `${first.issuer}/admin/clients`, { ath: createHash('sha256').update(accessToken).digest('base64url') });
    assert.equal((await fetch(`${second.url}/admin/clients`, { headers: { authorization: `DPoP ${accessToken}`, dpop: fresh } })).status, 200);
  });

  it('a client assertion (private_key_jwt) used at one instance is refused when replayed at the other (RFC 7523 §3, RFC 9700 §2.5)', async () => {
    const assertion = () =>
      new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', kid: 'signer-1' })
        .setIssuer('signer')
        .setSubject('signer')
        .setAudience(first.issuer)
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(signer.privateKey);
    const token = (server: TestServer, clientAssertion: string) =>
      fetch(`${server.url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion }),
      }).then(async (answer) => ({ status: answer.status, body: (await answer.json()) as { access_token?: string; error?: string } }));
    const stolen = await assertion();
    assert.equal((await token(first, stolen)).status, 200);
    const replayed = await token(second, stolen);
    assert.equal(replayed.status, 401, JSON.stringify(replayed.body));
    assert.equal(replayed.body.error, 'invalid_client');
    assert.equal(replayed.body.access_token, undefined);
    assert.equal((await token(second, await assertion())).status, 200, 'a fresh assertion is taken there');
  });
});
