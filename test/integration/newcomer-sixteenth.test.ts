/**
 * A newcomer's first hour (sixteenth passes, docs/security-passes.md): an API written as a host and
 * port without its scheme, the sample app given a CLIENT_ID Latchkey does not have, and the README's
 * architecture section against the modules of src/.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { ApiError, Apis } from '../../src/apis/apis.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { enforcePolicy, type RegistrationPolicy } from '../../src/registration/policy.js';
import { UpstreamError, Upstreams } from '../../src/upstreams/registry.js';
import { errors } from 'oidc-provider';
import { ROOT } from '../../src/paths.js';
import { backends, type OpenBackend } from '../helpers/backends.js';
import { freePort } from '../helpers/ports.js';
import { ClientRefused, startRelyingParty } from '../helpers/relying-party.js';
import { latchkey } from '../helpers/process.js';
import { startServer, type TestServer } from '../helpers/server.js';

const SECRET = 'the-secret-latchkey-printed-0123456789abcdef';
const POLICY: RegistrationPolicy = { authMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'], scopes: ['openid', 'profile', 'email'], privilegedScopes: [] };

describe("a newcomer's first hour (sixteenth passes)", function () {
  this.timeout(60_000);
  let server: TestServer;
  let store: OpenBackend;
  let narrowPort: number;
  before(async () => {
    narrowPort = await freePort();
    [server, store] = await Promise.all([
      startServer({
        cheapHashing: true,
        clients: [
          { client_id: 'demo', client_secret: SECRET, redirect_uris: ['http://localhost:8080/callback'] },
          // Registered with `--scope openid`, where the sample app asks for "openid profile email".
          { client_id: 'narrow', client_secret: SECRET, redirect_uris: [`http://localhost:${narrowPort}/callback`], scope: 'openid' },
        ],
      }),
      backends.find((backend) => !backend.redis)!.open(),
    ]);
  });
  after(async () => Promise.all([server?.stop(), store?.stop()]));

  it('an API identifier written as a host and port without its scheme (localhost:4000) is refused naming the URI meant, in apis add, the admin API and resourceServers (it was kept as the scheme "localhost:")', async () => {
    const apis = new Apis(store.kv, { builtin: [], configured: [], maxAccessTokenTTL: 900 });
    for (const [written, meant] of [
      ['localhost:4000', 'http://localhost:4000'],
      ['127.0.0.1:4000/api', 'http://127.0.0.1:4000/api'],
      ['api.example.com:8443', 'https://api.example.com:8443'],
    ]) {
      await assert.rejects(
        apis.add({ identifier: written!, scopes: ['read'] }),
        (error) => error instanceof ApiError && error.message === `identifier: "${written}" is a host and port without a scheme; did you mean ${meant}?`,
        written,
      );
      assert.equal(await apis.find(written!), undefined);
      assert.throws(
        () => loadConfig({ RESOURCE_SERVERS: JSON.stringify([{ identifier: written, scopes: ['read'] }]) }),
        (error) => error instanceof ConfigError && error.message.includes(`a host and port without a scheme; expected ${meant}`),
        written,
      );
    }
    // A URN, and a URI of another scheme with a path, are still APIs' identifiers (RFC 8707 takes any absolute URI).
    for (const identifier of ['urn:example:ledger', 'https://api.example.com:8443']) {
      assert.equal((await apis.add({ identifier, scopes: ['read'] })).identifier, identifier);
    }
  });

  it('the sample app refused a sign-in by Latchkey shows its error_description, not only the code ("Not signed in (invalid_scope)" did not say which scope)', async () => {
    const rp = await startRelyingParty({ issuer: server.issuer, clientId: 'narrow', clientSecret: SECRET, port: narrowPort, publicUrl: (port) => `http://localhost:${port}`, title: 'Narrow' });
    try {
      let at = `${rp.url}/login`;
      let cookie = '';
      for (let hops = 0; hops < 5; hops++) {
        const response = await fetch(at, { redirect: 'manual', headers: at.startsWith(rp.url) && cookie ? { cookie } : {} });
        if (at.startsWith(rp.url)) cookie = response.headers.get('set-cookie')?.split(';')[0] ?? cookie;
        const next = response.headers.get('location');
        if (!next) break;
        at = new URL(next, at).href;
      }
      assert.equal(new URL(at).pathname, '/');
      const page = await (await fetch(at, { headers: { cookie } })).text();
      assert.match(page, /Not signed in \(invalid_scope: requested scope is not allowed: (profile|email)/, page);
    } finally {
      await rp.close();
    }
  });

  it('a CONFIG_FILE written as a .env (NAME=value lines, as the README\'s Docker lines make one) says so and how a setting is written in YAML, never a value (it said only "expected a mapping of settings")', () => {
    const dir = mkdtempSync(join(tmpdir(), 'newcomer-sixteenth-'));
    try {
      const file = join(dir, '.env');
      writeFileSync(file, 'COOKIE_KEYS=a-cookie-secret-nobody-may-read\nexport REDIS_URL=redis://127.0.0.1:6379/4\n');
      assert.throws(
        () => loadConfig({ CONFIG_FILE: file }),
        (error) =>
          error instanceof ConfigError &&
          error.message === `${file}: expected a mapping of settings (as config/default.yaml writes them), not NAME=value lines as in a .env, which are environment variables: export them, or write each as YAML: REDIS_URL is written redis: {url: …}`,
      );
      // A file of one string that is no .env is told as before.
      writeFileSync(file, 'port 3001\n');
      assert.throws(() => loadConfig({ CONFIG_FILE: file }), (error) => error instanceof ConfigError && error.message === `${file}: expected a mapping of settings`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the sample app given a CLIENT_ID Latchkey does not have says so beside the secret (it was told only to set CLIENT_SECRET, and rotate-secret for a client that is not there)', async () => {
    const start = (clientId: string) =>
      startRelyingParty({ issuer: server.issuer, clientId, clientSecret: SECRET, publicUrl: (port) => `http://localhost:${port}`, title: 'Sample', checkClient: true });
    await assert.rejects(
      start('dmeo'),
      (error) => error instanceof ClientRefused && /if Latchkey has no client dmeo \(npx latchkey clients list shows its clients/.test(error.message) && /set CLIENT_ID/.test(error.message),
    );
    await (await start('demo')).close();
  });

  it('a jwks_uri, backchannel_logout_uri or upstream issuer written as a host and port is refused naming the URI meant (it said only "must be an https URL")', async () => {
    const web = { redirect_uris: ['https://app.example.com/cb'] };
    for (const [name, written, meant] of [
      ['backchannel_logout_uri', 'localhost:8080/backchannel-logout', 'http://localhost:8080/backchannel-logout'],
      ['jwks_uri', 'app.example.com:8443/jwks', 'https://app.example.com:8443/jwks'],
    ] as const) {
      assert.throws(
        () => enforcePolicy(POLICY, { ...web, token_endpoint_auth_method: 'private_key_jwt', [name]: written }, false),
        (error) => error instanceof errors.InvalidClientMetadata && error.error_description === `${name} must be an https URL; did you mean ${meant}?`,
        name,
      );
    }
    const upstreams = new Upstreams(store.kv, ['a-secret-of-the-test-store']);
    await assert.rejects(
      upstreams.add({ id: 'corp', issuer: 'localhost:5000', clientId: 'latchkey', clientSecret: 'secret', scope: 'openid email profile', displayName: 'Corp', linkByEmail: false, endSession: false }),
      (error) => error instanceof UpstreamError && error.message.endsWith('; did you mean http://localhost:5000?'),
    );
  });

  it('the CLI on Redis beside the embedded server of the first start (the README\'s "On Redis", both running) says the embedded one is left alone, not that what it makes is never seen (a server on Redis sees it)', async function () {
    this.timeout(90_000);
    const onRedis = await startServer({ ownRedis: true, cheapHashing: true });
    try {
      // As the second terminal has it: the first start's directory, the Redis server's REDIS_URL, no ISSUER.
      const { ISSUER: _issuer, PORT: _port, ...here } = server.env;
      const run = await latchkey({ ...here, REDIS_URL: onRedis.env.REDIS_URL! }, ['users', 'list']);
      assert.equal(run.status, 0, run.stderr);
      const lines = run.stderr.trim().split('\n');
      assert.match(lines[0]!, new RegExp(`^latchkey: acting on Redis redis://127\\.0\\.0\\.1:\\d+, key prefix lk: \\(issuer ${onRedis.issuer}, as the servers on it announce\\)$`));
      assert.equal(
        lines[1],
        `latchkey: also running from this directory: the server at ${server.issuer} (pid ${process.pid}) on the embedded store ${resolve(server.env.EMBEDDED_FILE!)}, which this command does not act on (unset REDIS_URL to act on its data)`,
      );
      assert.equal(lines.length, 2, run.stderr);
    } finally {
      await onRedis.stop();
    }
  });

  it("every module of src/ is named in the README's architecture section or docs/architecture.md (four were not)", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const architecture = readme.slice(readme.indexOf('\n## Architecture'), readme.indexOf('\n## Performance'));
    // `src/accounts/page/{passkeys,authenticator}-section.ts` names each.
    const text = (architecture + readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8')).replace(/\{([\w,-]+)\}([\w.-]*\.ts)/g, (_, names: string, rest: string) =>
      names
        .split(',')
        .map((name) => name + rest)
        .join(' '),
    );
    const modules = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
        entry.isDirectory() ? modules(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [relative(join(ROOT, 'src'), join(dir, entry.name))] : [],
      );
    const unnamed = modules(join(ROOT, 'src')).filter((module) => !new RegExp(`[\`/ ]${module.split('/').at(-1)!.replace(/\./g, '\\.')}\\b`).test(text));
    assert.deepEqual(unnamed, []);
  });
});
