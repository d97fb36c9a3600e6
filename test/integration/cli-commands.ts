/**
 * The latchkey CLI's commands, run as a separate process against the same store as a running
 * server: every command has its effect on the running server (on the embedded store through its
 * control socket), and says on stderr which store it acted on. One file per store (cli.test.ts on
 * Redis, cli-embedded.test.ts on the embedded store), so that npm test runs the two side by side:
 * together they are its longest file's run of CLI processes, one after another.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, realpathSync, rmSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import * as oidc from 'openid-client';
import { ROOT } from '../../src/paths.js';
import { eventually } from '../helpers/eventually.js';
import { frontChannel } from '../helpers/front-channel.js';
import { CLI, latchkey } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { introspect } from '../helpers/tokens.js';

/** `npm run sample-rp` as the walkthrough's step 3 runs it, with this environment: its exit status and stderr (killed after 30 s: status null). */
export function sampleRp(env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'relying-party.ts')], {
      env: { PATH: process.env.PATH, NODE_NO_WARNINGS: '1', ...env },
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    // One that starts when it should have stopped is stopped (status null), not left running.
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      done({ status, stderr });
    });
  });
}

export const REDIRECT = 'http://localhost:8080/callback';
export const PASSWORD = 'a long enough password';

/** The env without the settings that say where the server is (as a second terminal would have it). */
const without = (env: Record<string, string>, ...names: string[]) =>
  Object.fromEntries(Object.entries(env).filter(([name]) => !names.includes(name)));

async function clientCredentials(server: TestServer, id: string, secret: string) {
  const response = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
  });
  return response.status;
}

const pick = ({ require_pushed_authorization_requests, dpop_bound_access_tokens }: Record<string, unknown>) => ({ require_pushed_authorization_requests, dpop_bound_access_tokens });

/** The `error` an authorization request without PAR is redirected with, if any. */
async function authorizationError(server: TestServer, clientId: string) {
  const params = new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
  const response = await fetch(`${server.url}/auth?${params}`, { redirect: 'manual' });
  const location = response.headers.get('location') ?? '';
  return location.startsWith(REDIRECT) ? (new URL(location).searchParams.get('error') ?? undefined) : undefined;
}

/** The commands' tests on one store. */
export function cliCommands(mode: 'redis' | 'embedded'): void {
  describe(`latchkey CLI (${mode} store)`, function () {
    this.timeout(60_000);
    let redis: RedisServer | undefined;
    let server: TestServer;
    let env: Record<string, string>;
    const dir = testDir();

    before(async () => {
      if (mode === 'redis') redis = await startRedisServer();
      const port = await freePort();
      const options = redis ? { redisUrl: redis.url, dir, port } : { dir, port };
      env = testEnv(dir, port, options);
      server = await startServer(options);
    });
    after(async () => {
      await server?.stop();
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    const actingOn = () =>
      mode === 'redis'
        ? `latchkey: acting on Redis ${redis!.url.replace(/\/$/, '')}, key prefix lk: (issuer ${server.issuer})`
        : `latchkey: acting on the embedded store of the server at ${server.issuer} (${env.EMBEDDED_FILE})`;

    it('clients add prints the client with a generated 256-bit secret, and the running server accepts it', async () => {
      const run = await latchkey(env, ['clients', 'add', '--client-id', 'batch', '--grant-type', 'client_credentials']);
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stderr.trim(), actingOn(), 'one line on stderr says which store and issuer it acted on');
      const client = JSON.parse(run.stdout) as { client_id: string; client_secret: string };
      assert.equal(client.client_id, 'batch');
      assert.ok(Buffer.from(client.client_secret, 'base64url').length >= 32, 'at least 256 bits');
      await eventually(async () => assert.equal(await clientCredentials(server, 'batch', client.client_secret), 200, 'no restart needed'));
      assert.equal(await clientCredentials(server, 'batch', 'wrong'), 401);
    });

    it('clients add for a web app and a public app; list hides secrets; duplicates and bad metadata are refused', async () => {
      const web = await latchkey(env, ['clients', 'add', '--client-id', 'web', '--redirect-uri', 'https://app.example/cb', '--name', 'Web App']);
      assert.equal(web.status, 0, web.stderr);
      const spa = await latchkey(env, ['clients', 'add', '--client-id', 'spa', '--public', '--redirect-uri', 'http://localhost:5173/cb']);
      assert.equal(spa.status, 0, spa.stderr);
      assert.equal((JSON.parse(spa.stdout) as { token_endpoint_auth_method: string }).token_endpoint_auth_method, 'none');
      assert.equal((JSON.parse(spa.stdout) as { client_secret?: string }).client_secret, undefined);

      const list = await latchkey(env, ['clients', 'list']);
      assert.equal(list.status, 0, list.stderr);
      const clients = JSON.parse(list.stdout) as { client_id: string; client_secret?: string }[];
      assert.deepEqual(clients.map((c) => c.client_id).sort(), ['batch', 'spa', 'web']);
      assert.ok(clients.every((c) => c.client_secret === undefined));

      const again = await latchkey(env, ['clients', 'add', '--client-id', 'web', '--redirect-uri', 'https://app.example/cb']);
      assert.equal(again.status, 1);
      // Step 2 of the walkthrough run again (with --backchannel-logout-uri added): says how to register it anew.
      assert.match(again.stderr, /^latchkey: a client "web" exists already: to register it anew, latchkey clients remove web first \(its secret and tokens go with it\)$/m);

      const bad = await latchkey(env, ['clients', 'add', '--client-id', 'bad', '--redirect-uri', 'https://app.example/cb#fragment']);
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /^latchkey: invalid_(redirect_uri|client_metadata): .*fragment/m);
    });

    it('clients add --native registers a desktop or mobile app: custom-scheme redirect URI, public, application_type native; without it the refusal names the flag (newcomer pass: no flag could)', async () => {
      const refused = await latchkey(env, ['clients', 'add', '--client-id', 'desk', '--redirect-uri', 'com.example.desk:/callback']);
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /^latchkey: .*com\.example\.desk:\/callback: a custom scheme is allowed only for native apps \(application_type "native"\): give --native$/m);
      const native = await latchkey(env, ['clients', 'add', '--client-id', 'desk', '--native', '--redirect-uri', 'com.example.desk:/callback', '--redirect-uri', 'http://127.0.0.1/callback']);
      assert.equal(native.status, 0, native.stderr);
      const client = JSON.parse(native.stdout) as { application_type?: string; token_endpoint_auth_method: string; client_secret?: string; redirect_uris: string[] };
      assert.equal(client.application_type, 'native');
      assert.equal(client.token_endpoint_auth_method, 'none');
      assert.equal(client.client_secret, undefined);
      assert.deepEqual(client.redirect_uris, ['com.example.desk:/callback', 'http://127.0.0.1/callback']);
      // The running server takes its authorization request.
      const params = new URLSearchParams({ client_id: 'desk', response_type: 'code', redirect_uri: 'com.example.desk:/callback', scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
      const answer = await fetch(`${server.url}/auth?${params}`, { redirect: 'manual' });
      assert.equal(answer.status, 303, `${answer.status} ${answer.headers.get('location')}`);
      assert.match(answer.headers.get('location') ?? '', /\/interaction\//);
      assert.equal((await latchkey(env, ['clients', 'remove', 'desk'])).status, 0);
    });

    it('clients add --require-par --dpop-bound-access-tokens, clients update turns one off; the running server follows', async () => {
      const added = await latchkey(env, ['clients', 'add', '--client-id', 'bound', '--public', '--redirect-uri', REDIRECT, '--require-par', '--dpop-bound-access-tokens']);
      assert.equal(added.status, 0, added.stderr);
      assert.deepEqual(pick(JSON.parse(added.stdout)), { require_pushed_authorization_requests: true, dpop_bound_access_tokens: true });
      // Without PAR the authorization request is refused (RFC 9126 §5), then accepted once PAR is optional.
      await eventually(async () => assert.equal(await authorizationError(server, 'bound'), 'invalid_request'));
      const updated = await latchkey(env, ['clients', 'update', 'bound', '--no-require-par']);
      assert.equal(updated.status, 0, updated.stderr);
      assert.deepEqual(pick(JSON.parse(updated.stdout)), { require_pushed_authorization_requests: false, dpop_bound_access_tokens: true });
      await eventually(async () => assert.equal(await authorizationError(server, 'bound'), undefined));
      const nothing = await latchkey(env, ['clients', 'update', 'bound']);
      assert.equal(nothing.status, 1);
      assert.match(nothing.stderr, /nothing to change/);
      assert.equal((await latchkey(env, ['clients', 'update', 'nobody', '--require-par'])).status, 1);
    });

    it('clients remove deletes a client and the running server stops accepting it', async () => {
      const run = await latchkey(env, ['clients', 'remove', 'batch']);
      assert.equal(run.status, 0, run.stderr);
      await eventually(async () => assert.equal(await clientCredentials(server, 'batch', 'irrelevant'), 401));
      assert.equal((await latchkey(env, ['clients', 'remove', 'web'])).status, 0);
      const list = JSON.parse((await latchkey(env, ['clients', 'list'])).stdout) as { client_id: string }[];
      assert.ok(!list.some((c) => c.client_id === 'web'));
      const missing = await latchkey(env, ['clients', 'remove', 'web']);
      assert.equal(missing.status, 1);
      assert.match(missing.stderr, /no client "web"/);
    });

    it('users add (password from stdin), list, duplicate refused, disable/enable, passwd, remove', async () => {
      const add = await latchkey(env, ['users', 'add', 'Bob', '--password-stdin', '--email', 'bob@example.test', '--name', 'Bob', '--locale', 'en-GB'], 'a long enough password\n');
      assert.equal(add.status, 0, add.stderr);
      const bob = JSON.parse(add.stdout) as { sub: string; username: string };
      assert.equal(bob.username, 'Bob');
      assert.ok(!bob.sub.toLowerCase().includes('bob'), 'sub is opaque, not the username');
      await eventually(async () => assert.ok(await server.accounts.verify('bob', 'a long enough password'), 'case-insensitive, newline stripped'));

      const duplicate = await latchkey(env, ['users', 'add', 'BOB', '--password-stdin'], 'another password\n');
      assert.equal(duplicate.status, 1);
      assert.match(duplicate.stderr, /taken/);

      assert.equal((await latchkey(env, ['users', 'disable', 'bob'])).status, 0);
      await eventually(async () => assert.equal(await server.accounts.verify('bob', 'a long enough password'), undefined));
      assert.equal((await latchkey(env, ['users', 'enable', 'bob'])).status, 0);
      assert.equal((await latchkey(env, ['users', 'passwd', 'bob', '--password-stdin'], 'a brand new password\n')).status, 0);
      await eventually(async () => assert.ok(await server.accounts.verify('bob', 'a brand new password')));

      const list = JSON.parse((await latchkey(env, ['users', 'list'])).stdout) as { username: string; disabled: boolean }[];
      assert.deepEqual(list.map((u) => [u.username, u.disabled]), [['Bob', false]]);
      assert.equal((await latchkey(env, ['users', 'remove', 'bob'])).status, 0);
      await eventually(async () => assert.equal(await server.accounts.findByUsername('bob'), undefined));
    });

    it('upstreams add (client secret from stdin, sealed), list without secrets, duplicate refused, remove', async () => {
      const secret = 'an-upstream-client-secret';
      const add = await latchkey(env, ['upstreams', 'add', '--id', 'corp', '--issuer', 'https://idp.example.com', '--client-id', 'latchkey', '--client-secret-stdin', '--display-name', 'Corp SSO', '--claim', 'name=display_name'], `${secret}\n`);
      assert.equal(add.status, 0, add.stderr);
      const added = JSON.parse(add.stdout) as { id: string; redirect_uri: string; claims: Record<string, string> };
      assert.equal(added.redirect_uri, `${server.issuer}/upstream/corp/callback`);
      assert.equal(added.claims.name, 'display_name');
      assert.equal((added as { post_logout_redirect_uri?: string }).post_logout_redirect_uri, undefined, 'signing out stays at Latchkey');
      assert.ok(!add.stdout.includes(secret));
      // With --end-session, signing out goes on to the upstream, which must know where to send people back.
      const ending = await latchkey(env, ['upstreams', 'add', '--id', 'ending', '--issuer', 'https://idp.example.com', '--client-id', 'latchkey', '--client-secret-stdin', '--end-session'], 'x\n');
      assert.equal(ending.status, 0, ending.stderr);
      assert.equal((JSON.parse(ending.stdout) as { post_logout_redirect_uri: string }).post_logout_redirect_uri, `${server.issuer}/upstream/ending/signed-out`);
      assert.equal((await latchkey(env, ['upstreams', 'remove', 'ending'])).status, 0);
      const { Upstreams } = await import('../../src/upstreams/registry.js');
      await eventually(async () => assert.equal((await new Upstreams(server.kv, server.config.keys.secrets).find('corp'))?.clientSecret, secret, 'the server opens it, newline stripped'));
      const duplicate = await latchkey(env, ['upstreams', 'add', '--id', 'corp', '--issuer', 'https://idp.example.com', '--client-id', 'x', '--client-secret-stdin'], 'x\n');
      assert.equal(duplicate.status, 1);
      assert.match(duplicate.stderr, /^latchkey: an upstream "corp" exists already$/m);
      // Nothing on standard input: the line says where the secret is read from.
      const empty = await latchkey(env, ['upstreams', 'add', '--id', 'empty', '--issuer', 'https://idp.example.com', '--client-id', 'x', '--client-secret-stdin'], '');
      assert.equal(empty.status, 1);
      assert.match(empty.stderr, /^latchkey: --client-secret-stdin reads Latchkey's client secret at the upstream from standard input, and none came: .*; see latchkey upstreams add --help$/m);
      // A local upstream for a try-out is on loopback: the refusal of plain http elsewhere says so.
      const plain = await latchkey(env, ['upstreams', 'add', '--id', 'plain', '--issuer', 'http://idp.example.com', '--client-id', 'x', '--client-secret-stdin'], 'x\n');
      assert.equal(plain.status, 1);
      assert.match(plain.stderr, /^latchkey: the issuer must be an https URL \(http only on a loopback host, for development: localhost, 127\.0\.0\.1, \[::1\]\)$/m);
      const list = await latchkey(env, ['upstreams', 'list']);
      assert.deepEqual((JSON.parse(list.stdout) as { id: string }[]).map((u) => u.id), ['corp']);
      assert.ok(!list.stdout.includes(secret));
      assert.equal((await latchkey(env, ['upstreams', 'remove', 'corp'])).status, 0);
      assert.equal((await latchkey(env, ['upstreams', 'remove', 'corp'])).status, 1);
    });

    it('keys list shows the current key and the next one, made at first start', async () => {
      const run = await latchkey(env, ['keys', 'list']);
      assert.equal(run.status, 0, run.stderr);
      const keys = JSON.parse(run.stdout) as { kid: string; state: string; usableFrom?: string; rotatesAt?: string }[];
      assert.deepEqual(keys.map((k) => k.state), ['current', 'next']);
      assert.ok(keys[1]!.usableFrom && keys[1]!.rotatesAt, 'the next key says when it may sign and when the schedule promotes it');
      if (mode === 'embedded') assert.equal(statSync(join(dir, 'keys', 'keyring.json')).mode & 0o777, 0o600);
      else assert.ok(!existsSync(join(dir, 'keys', 'keyring.json')), 'with Redis the ring lives in Redis, not in keys/');
    });

    it('keys rotate waits for the publish lead unless --now; the running server signs with the new key without a restart', async () => {
      const before = JSON.parse((await latchkey(env, ['keys', 'list'])).stdout) as { kid: string; state: string }[];
      const early = await latchkey(env, ['keys', 'rotate']);
      assert.equal(early.status, 1);
      assert.deepEqual(early.stderr.trim().split('\n')[0], actingOn());
      assert.match(early.stderr.trim().split('\n')[1]!, /^latchkey: the next key .* may sign from .*keys\.publishLead.*--now/);
      assert.equal(early.stderr.trim().split('\n').length, 2, 'which store, then one line');

      const rotated = await latchkey(env, ['keys', 'rotate', '--now']);
      assert.equal(rotated.status, 0, rotated.stderr);
      const result = JSON.parse(rotated.stdout) as { current: string; retired: string; next: string };
      assert.equal(result.current, before[1]!.kid, 'the next key became current');
      assert.equal(result.retired, before[0]!.kid);
      const after = JSON.parse((await latchkey(env, ['keys', 'list'])).stdout) as { kid: string; state: string }[];
      assert.deepEqual(after.map((k) => [k.state, k.kid]), [['current', result.current], ['next', result.next], ['retired', result.retired]]);

      await eventually(async () => {
        const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string }[] };
        assert.deepEqual(new Set(jwks.keys.map((k) => k.kid)), new Set([result.current, result.next, result.retired]));
        assert.equal(server.keys.ring.current?.kid, result.current);
      });
    });

    it('grants revoke needs --user, --client or both, and a known user and client', async () => {
      const neither = await latchkey(env, ['grants', 'revoke']);
      assert.equal(neither.status, 1);
      assert.match(neither.stderr, /^latchkey: give --user, --client or both; see latchkey grants revoke --help$/m);
      const unknown = await latchkey(env, ['grants', 'revoke', '--user', 'nobody']);
      assert.equal(unknown.status, 1);
      assert.match(unknown.stderr, /no user "nobody"/);
      const client = await latchkey(env, ['grants', 'revoke', '--client', 'spa']);
      assert.equal(client.status, 0, client.stderr);
      assert.deepEqual(JSON.parse(client.stdout), { client_id: 'spa', revoked: 0 });
      const unknownClient = await latchkey(env, ['grants', 'revoke', '--client', 'nosuch']);
      assert.equal(unknownClient.status, 1, 'like --user nosuch');
      assert.match(unknownClient.stderr, /^latchkey: no client "nosuch"/m);
      const unknownOfUser = await latchkey(env, ['grants', 'revoke', '--user', 'nobody', '--client', 'spa']);
      assert.match(unknownOfUser.stderr, /no user "nobody"/);
    });

    it('registration token create, run without PORT or ISSUER, prints the server\'s registration endpoint, and /reg takes the token', async () => {
      const run = await latchkey(without(env, 'PORT', 'ISSUER'), ['registration', 'token', 'create', '--expires-in', '600']);
      assert.equal(run.status, 0, run.stderr);
      assert.equal(run.stderr.trim(), actingOn());
      const { initial_access_token: token, registration_endpoint: endpoint } = JSON.parse(run.stdout) as Record<string, string>;
      assert.equal(endpoint, `${server.issuer}/reg`, 'the running server\'s port, not 3000');
      const response = await fetch(`${server.url}/reg`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: ['https://app.example.test/cb'] }),
      });
      assert.equal(response.status, 201, await response.text());
    });

    if (mode === 'redis') {
      it('run from another directory (no run file there) without ISSUER, it takes the issuer the servers on the store announced; with another ISSUER, it says the two differ (newcomer pass: logout tokens it posted named http://localhost:3000, and apps refused them)', async () => {
        const elsewhere = { ...without(env, 'PORT', 'ISSUER'), EMBEDDED_FILE: join(testDir(), 'store.json') };
        const run = await latchkey(elsewhere, ['registration', 'token', 'create', '--expires-in', '600']);
        assert.equal(run.status, 0, run.stderr);
        assert.equal(run.stderr.trim(), `latchkey: acting on Redis ${redis!.url.replace(/\/$/, '')}, key prefix lk: (issuer ${server.issuer}, as the servers on it announce)`);
        assert.equal((JSON.parse(run.stdout) as Record<string, string>).registration_endpoint, `${server.issuer}/reg`);

        const other = await latchkey({ ...elsewhere, ISSUER: 'http://localhost:3999' }, ['registration', 'token', 'create', '--expires-in', '600']);
        assert.equal(other.status, 0, other.stderr);
        const lines = other.stderr.trim().split('\n');
        assert.equal(lines.length, 2, other.stderr);
        assert.equal(lines[1], `latchkey: the servers on this store announce the issuer ${server.issuer}, not http://localhost:3999 (ISSUER): what this command signs, posts or prints names http://localhost:3999 (logout tokens the apps refuse); unset ISSUER, or give theirs`);
        // Beside the server (its run file), its own issuer, no warning.
        assert.equal((await latchkey(env, ['users', 'list'])).stderr.trim(), actingOn());
      });
    }

    it('grants revoke --user and users disable end the person\'s tokens on the running server', async () => {
      const web = await latchkey(env, ['clients', 'add', '--client-id', 'live', '--redirect-uri', REDIRECT]);
      assert.equal(web.status, 0, web.stderr);
      const secret = (JSON.parse(web.stdout) as { client_secret: string }).client_secret;
      assert.equal((await latchkey(env, ['users', 'add', 'carol', '--password-stdin'], PASSWORD)).status, 0);
      const config = await oidc.discovery(new URL(server.issuer), 'live', secret, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
      const signIn = async () => {
        const flow = await frontChannel(config, { redirectUri: REDIRECT, username: 'carol', password: PASSWORD, params: { scope: 'openid' } });
        return (await oidc.authorizationCodeGrant(config, flow.callback, { pkceCodeVerifier: flow.verifier })).access_token;
      };
      const active = async (token: string) => (await introspect(server.url, { id: 'live', secret }, token)).active;

      const first = await signIn();
      assert.equal(await active(first), true);
      const revoke = await latchkey(env, ['grants', 'revoke', '--user', 'carol']);
      assert.equal(revoke.status, 0, revoke.stderr);
      assert.equal((JSON.parse(revoke.stdout) as { revoked: number }).revoked, 1);
      assert.equal(await active(first), false, 'revoked on the running server');

      const second = await signIn();
      assert.equal(await active(second), true);
      assert.equal((await latchkey(env, ['users', 'disable', 'carol'])).status, 0);
      assert.equal(await active(second), false, 'disabled on the running server');
    });

    if (mode === 'redis') {
      it('with another KEYS_SECRETS than the server\'s, commands that open the key ring or seal a secret refuse in one line and change nothing', async () => {
        assert.equal((await latchkey(env, ['users', 'add', 'frank', '--password-stdin'], `${PASSWORD}\n`)).status, 0);
        // A second terminal that exported REDIS_URL but not the server's KEYS_SECRETS (here: the public default's stand-in).
        const other = { ...env, KEYS_SECRETS: 'not-the-server-secret-but-long-enough-0123456789' };
        // (users passwd, as the README's "On Redis" lists them: it was left out there; tenth newcomer pass)
        for (const args of [['users', 'passwd', 'frank', '--password-stdin'], ['users', 'disable', 'frank'], ['users', 'remove', 'frank'], ['users', 'mfa', 'reset', 'frank'], ['upstreams', 'add', '--id', 'corp2', '--issuer', 'https://idp.example.com', '--client-id', 'x', '--client-secret-stdin']]) {
          const run = await latchkey(other, args, 'an-upstream-secret\n');
          assert.equal(run.status, 1, args.join(' '));
          // The server runs without KEYS_SECRETS (the public default sealed the ring): "the same as the
          // server" sent a newcomer who had exported their own to look for it there (tenth newcomer pass).
          assert.match(run.stderr, /^latchkey: key \S+ was sealed with a secret that is not in keys\.secrets \(KEYS_SECRETS\): it was sealed with the public development secret, which a server started without KEYS_SECRETS uses; unset KEYS_SECRETS here to act on its store, or give latchkey the same KEYS_SECRETS as the server$/m, args.join(' '));
          assert.equal(run.stderr.trim().split('\n').length, 2, 'the store line and the reason');
        }
        const frank = await server.accounts.findByUsername('frank');
        assert.ok(frank, 'not removed');
        assert.equal(frank.disabled, false, 'not disabled');
        assert.ok(await server.accounts.verify('frank', PASSWORD));
        const list = JSON.parse((await latchkey(env, ['upstreams', 'list'])).stdout) as { id: string }[];
        assert.ok(!list.some((upstream) => upstream.id === 'corp2'), 'no upstream sealed under a secret the server does not hold');
        assert.equal((await latchkey(env, ['users', 'remove', 'frank'])).status, 0, 'the server\'s secrets do it');
      });

      it('without REDIS_URL the CLI refuses (one line) instead of acting on the embedded file', async () => {
        const run = await latchkey(without(env, 'REDIS_URL'), ['users', 'list']);
        assert.equal(run.status, 1);
        assert.equal(run.stderr.trim().split('\n').length, 1);
        assert.match(run.stderr, new RegExp(`^latchkey: the server at ${server.issuer} \\(pid \\d+\\) runs on Redis redis://127\\.0\\.0\\.1:\\d+, key prefix lk:, not on the embedded store: set REDIS_URL`));
        assert.equal(run.stdout, '');
      });

      it('with another REDIS_KEY_PREFIX than the server\'s it says so: the empty list is other data, not the server\'s', async () => {
        const run = await latchkey({ ...env, REDIS_KEY_PREFIX: 'other:' }, ['users', 'list']);
        assert.equal(run.status, 0, run.stderr);
        const lines = run.stderr.trim().split('\n');
        assert.equal(lines.length, 2, run.stderr);
        assert.match(lines[0]!, /^latchkey: acting on Redis redis:\/\/127\.0\.0\.1:\d+, key prefix other: /);
        assert.match(lines[1]!, new RegExp(`^latchkey: the server at ${server.issuer} \\(pid \\d+\\) runs on Redis redis://127\\.0\\.0\\.1:\\d+, key prefix lk:, not on this store: give latchkey its REDIS_URL and REDIS_KEY_PREFIX to act on its data$`));
        const same = await latchkey(env, ['users', 'list']);
        assert.equal(same.stderr.trim(), actingOn(), 'the server\'s own settings: no warning');
      });
    } else {
      it('REDIS_URL exported beside a server on the embedded store: it acts on Redis as told, and says the server runs on the embedded store (newcomer pass: people added so never reached the server)', async () => {
        const other = await startRedisServer();
        try {
          const run = await latchkey({ ...env, REDIS_URL: other.url }, ['users', 'list']);
          assert.equal(run.status, 0, run.stderr);
          const lines = run.stderr.trim().split('\n');
          assert.equal(lines.length, 2, run.stderr);
          assert.match(lines[0]!, /^latchkey: acting on Redis redis:\/\/127\.0\.0\.1:\d+, key prefix lk: /);
          assert.equal(lines[1], `latchkey: the server at ${server.issuer} (pid ${process.pid}) runs on the embedded store ${resolve(env.EMBEDDED_FILE!)}, not on Redis: unset REDIS_URL to act on its data (what this command makes there, it never sees)`);
        } finally {
          await other.stop();
        }
      });

      it('a second server on the same embedded store is refused, without logging that it uses the embedded store; a busy PORT or metrics port and an unknown HOST are one line', async function () {
        this.timeout(120_000); // nine starts of the server's process, each refused only after its checks
        const cases: [Record<string, string>, RegExp][] = [
          [{ PORT: String(await freePort()) }, /^latchkey: EMBEDDED_FILE: .*store\.json is already served by another latchkey process; .*give this one its own with EMBEDDED_FILE=data\/other\.json/],
          // (another embedded file and key ring: the running server's KEYS_DIR is refused on another store, twelfth newcomer pass)
          [{ EMBEDDED_FILE: join(dir, 'other.json'), KEYS_DIR: join(dir, 'other-keys') }, new RegExp(`^latchkey: PORT: port ${server.port} on 127\\.0\\.0\\.1 is in use by another process; expected a free port`)],
          // (another embedded file, so that only the port is in the way)
          [{ PORT: '0', METRICS_PORT: String(server.port), EMBEDDED_FILE: join(dir, 'other.json'), KEYS_DIR: join(dir, 'other-keys') }, new RegExp(`^latchkey: METRICS_PORT: port ${server.port} on 127\\.0\\.0\\.1 is in use`)],
          [{ PORT: '0', HOST: 'no-such-host.invalid', EMBEDDED_FILE: join(dir, 'other.json'), KEYS_DIR: join(dir, 'other-keys') }, /^latchkey: HOST: "no-such-host\.invalid" is not a known host name; expected an address of this machine/],
        ];
        for (const [extra, pattern] of cases) {
          const run = await latchkey({ ...env, LOG_LEVEL: 'silent', ...extra }, ['serve']);
          assert.equal(run.status, 1, JSON.stringify(extra));
          assert.match(run.stderr, pattern);
          assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
        }
        // A start refused so does not log, after its refusal, that it is "using the embedded in-process
        // store" as if it went on (ninth newcomer pass: that warning was the last line a newcomer saw).
        const logged = await latchkey({ ...env, LOG_LEVEL: 'info', PORT: String(await freePort()) }, ['serve']);
        assert.equal(logged.status, 1, logged.stderr);
        assert.match(logged.stderr, /already served by another latchkey process/);
        assert.doesNotMatch(logged.stdout, /using the embedded in-process store/, logged.stdout);
        // A start refused so makes nothing first: no signing key generated into a keys directory of its own.
        const fresh = join(dir, 'keys-of-a-failed-start');
        const refused = await latchkey({ ...env, LOG_LEVEL: 'silent', EMBEDDED_FILE: join(dir, 'other.json'), KEYS_DIR: fresh }, ['serve']);
        assert.equal(refused.status, 1, refused.stderr);
        assert.ok(!existsSync(join(fresh, 'keyring.json')), 'no key written by a start that could not listen');
        // Another Latchkey from the same directory holds PORT, METRICS_PORT and EMBEDDED_FILE: all
        // three said at once, one line each, rather than one per attempt.
        const metrics = createServer();
        await new Promise<void>((done) => metrics.listen(0, '127.0.0.1', done));
        try {
          const metricsPort = (metrics.address() as AddressInfo).port;
          const run = await latchkey({ ...env, LOG_LEVEL: 'silent', METRICS_ENABLED: 'true', METRICS_PORT: String(metricsPort) }, ['serve']);
          assert.equal(run.status, 1, run.stderr);
          const lines = run.stderr.trim().split('\n');
          assert.equal(lines.length, 3, run.stderr);
          // The free port suggested is the next one free (another test's may hold the one after: seen in CI).
          const suggested = (line: string, name: string) => Number(new RegExp(`e\\.g\\. ${name}=(\\d+) `).exec(line)?.[1]);
          assert.match(lines[0]!, new RegExp(`^latchkey: PORT: port ${server.port} on 127\\.0\\.0\\.1 is in use by another process; expected a free port, e\\.g\\. PORT=\\d+ `));
          assert.ok(suggested(lines[0]!, 'PORT') > server.port, lines[0]);
          assert.match(lines[1]!, new RegExp(`^latchkey: METRICS_PORT: port ${metricsPort} on 127\\.0\\.0\\.1 is in use by another process; expected a free port, e\\.g\\. METRICS_PORT=\\d+ `));
          assert.ok(suggested(lines[1]!, 'METRICS_PORT') > metricsPort, lines[1]);
          assert.match(lines[2]!, /^latchkey: EMBEDDED_FILE: .*store\.json is already served by another latchkey process/);
        } finally {
          metrics.close();
        }
        // The busy metrics port failed after the server took other.json's control socket and record.
        for (const left of ['sock', 'server']) assert.ok(!existsSync(join(dir, `other.json.${left}`)), `a failed start leaves no other.json.${left}`);
        assert.ok(existsSync(`${env.EMBEDDED_FILE}.sock`), 'the running server keeps its control socket');
        assert.equal(statSync(`${env.EMBEDDED_FILE}.sock`).mode & 0o777, 0o600);
      });

      it('with no server running, a command says so, and one whose effect lives in a server\'s memory refuses', async () => {
        const idle = testDir();
        try {
          const idleEnv = testEnv(idle, await freePort());
          const token = await latchkey(idleEnv, ['registration', 'token', 'create']);
          assert.equal(token.status, 1);
          assert.equal(token.stderr.trim(), 'latchkey: registration token create needs a running server: on the embedded store what it makes lives in the server\'s memory; start it (npm start) or set REDIS_URL');
          // No store file there yet, with EMBEDDED_FILE given: a new store there on purpose.
          const list = await latchkey(idleEnv, ['users', 'list']);
          assert.equal(list.status, 0, list.stderr);
          assert.equal(list.stderr.trim(), `latchkey: acting on the embedded store file ${idleEnv.EMBEDDED_FILE} (no server is running on it; there is none there yet)`);
          const made = await latchkey(idleEnv, ['clients', 'add', '--client-id', 'idle-app', '--redirect-uri', 'https://idle.example.test/cb']);
          assert.equal(made.status, 0, made.stderr);
          const again = await latchkey(idleEnv, ['users', 'list']);
          assert.equal(again.stderr.trim(), `latchkey: acting on the embedded store file ${idleEnv.EMBEDDED_FILE} (no server is running on it)`);
        } finally {
          rmSync(idle, { recursive: true, force: true });
        }
      });

      it('from another directory than the server\'s, with no store there and no EMBEDDED_FILE, a command is refused and makes nothing', async () => {
        const elsewhere = testDir();
        try {
          const { EMBEDDED_FILE: _given, ...strayEnv } = testEnv(elsewhere, await freePort());
          const stray = join(realpathSync(elsewhere), 'data', 'dev-store.json');
          const way = `run latchkey from the directory the server runs from (the Latchkey checkout, ${resolve(ROOT)}), or set EMBEDDED_FILE to make a new store there on purpose`;
          for (const [args, stdin] of [[['users', 'add', 'bob', '--password-stdin'], 'another long passphrase'], [['users', 'list']]] as const) {
            const run = await latchkey(strayEnv, [...args], stdin, elsewhere);
            assert.equal(run.status, 1, run.stderr);
            assert.equal(run.stderr.trim(), `latchkey: no embedded store at ${stray} and no server running on it: ${way}`);
            assert.equal(run.stdout, '');
          }
          assert.ok(!existsSync(join(elsewhere, 'data')), 'a refused command makes no store');
        } finally {
          rmSync(elsewhere, { recursive: true, force: true });
        }
      });

      it('--password-stdin at a terminal prompts twice without echo, and refuses two passwords that differ; so does `users add <name>` alone there, as the quick start writes it (a pseudo-terminal through script(1))', async () => {
        const typed = 'typed at a terminal';
        /** `users add <username>` at a terminal, typing `first` at the prompt and `again` at the second. */
        const addAtTerminal = (username: string, first: string, again: string, flag = ' --password-stdin') =>
          new Promise<string>((done, fail) => {
            const command = `${process.execPath} ${CLI} users add ${username}${flag}`;
            const child = spawn('script', ['-qec', command, '/dev/null'], { env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
            let out = '';
            let answered = 0;
            child.stdout.on('data', (chunk) => {
              out += chunk;
              if (answered === 0 && out.includes('Password: ')) child.stdin.write(`${first}\r`, () => void (answered = 1));
              if (answered === 1 && out.includes('Password again: ')) {
                answered = 2;
                child.stdin.end(`${again}\r`);
              }
            });
            child.on('error', fail);
            child.on('close', () => done(out));
          });
        const output = await addAtTerminal('dora', typed, typed);
        assert.match(output, /Password: [^]*Password again: /);
        assert.ok(!output.includes(typed), `the password was echoed: ${output}`);
        assert.match(output, /"username": "dora"/);
        await eventually(async () => assert.ok(await server.accounts.verify('dora', typed)));
        const slipped = await addAtTerminal('dorian', typed, `${typed}!`);
        assert.match(slipped, /the two passwords typed are not the same; nothing was changed/);
        assert.equal(await server.accounts.findByUsername('dorian'), undefined, 'no account made');
        // Without the flag (refused before: "--password-stdin is required").
        const asked = await addAtTerminal('dorothea', typed, typed, '');
        assert.match(asked, /Password: [^]*Password again: /);
        assert.match(asked, /"username": "dorothea"/);
        await eventually(async () => assert.ok(await server.accounts.verify('dorothea', typed)));
      });
    }
  });
}
