/**
 * A newcomer's first hour (thirteenth fresh-eyes passes, docs/security-passes.md): the slips a
 * developer makes wiring an app to Latchkey for the first time, each answered with what to do.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import * as oidc from 'openid-client';
import { createLogger } from '../../src/ops/logger.js';
import { createResourceServer } from '../../src/resource-server/index.js';
import { latchkey } from '../helpers/process.js';
import { ClientRefused, startRelyingParty } from '../helpers/relying-party.js';
import { freePort } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';

const API = 'https://api.example.test';
const SECRET = 'newcomer-secret-with-plenty-of-entropy-0123456789';
const PADDED = /client secret begins or ends with a space or line break/;

describe('e2e: a newcomer\'s first hour (thirteenth passes)', function () {
  this.timeout(60_000);
  let server: TestServer;

  before(async () => {
    server = await startServer({
      env: {
        RESOURCE_SERVERS: JSON.stringify([{ identifier: API, scopes: ['read'], format: 'jwt', grants: [{ client_id: 'machine', scopes: ['read'] }] }]),
        CLIENTS: JSON.stringify([
          { client_id: 'machine', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
          { client_id: 'webapp', client_secret: SECRET, redirect_uris: ['http://localhost:8080/callback'], post_logout_redirect_uris: ['http://localhost:8080/signed-out'] },
        ]),
      },
    });
  });
  after(async () => {
    await server?.stop();
  });

  /** client_credentials through openid-client as `clientId` with `secret`, sent by `auth`; its error, if any. */
  const clientCredentials = async (clientId: string, secret: string, auth: (secret: string) => oidc.ClientAuth) => {
    const config = await oidc.discovery(new URL(server.issuer), clientId, secret, auth(secret), { execute: [oidc.allowInsecureRequests] });
    try {
      await oidc.clientCredentialsGrant(config, { resource: API, scope: 'read' });
      return undefined;
    } catch (error) {
      // openid-client throws the challenge's error when the answer has one (Basic), else the body's.
      if (error instanceof oidc.WWWAuthenticateChallengeError) {
        const body = (await error.response.json()) as { error: string; error_description?: string };
        return { ...body, status: error.status, challenge: error.response.headers.get('www-authenticate') };
      }
      assert.ok(error instanceof oidc.ResponseBodyError, String(error));
      return { error: error.error, error_description: error.error_description, status: error.status, challenge: error.response.headers.get('www-authenticate') };
    }
  };

  it('a client secret pasted with a space or line break is refused saying so, in the body and the challenge, whichever way it is sent', async () => {
    for (const auth of [oidc.ClientSecretBasic, oidc.ClientSecretPost]) {
      for (const pasted of [`${SECRET} `, `${SECRET}\n`, ` ${SECRET}`, `\t${SECRET}\r\n`]) {
        const error = await clientCredentials('machine', pasted, auth);
        assert.ok(error, `${auth.name} ${JSON.stringify(pasted)} authenticated`);
        assert.match(error.error_description ?? '', PADDED, `${auth.name} ${JSON.stringify(pasted)}: ${error.error} ${error.error_description}`);
        if (error.challenge) assert.match(error.challenge, PADDED);
      }
    }
    // The secret itself, and a wrong one without spaces: as before.
    assert.equal(await clientCredentials('machine', SECRET, oidc.ClientSecretBasic), undefined);
    const wrong = await clientCredentials('machine', `${SECRET}x`, oidc.ClientSecretBasic);
    assert.equal(wrong?.error, 'invalid_client');
    assert.equal(wrong?.error_description, 'client authentication failed');
  });

  it('the sample app (npm run sample-rp) given CLIENT_SECRET with a space stops at start saying so, as Latchkey told it', async () => {
    await latchkey(server.env, ['clients', 'add', '--client-id', 'sample', '--secret', SECRET, '--redirect-uri', 'http://localhost:8080/callback']);
    const start = (clientSecret: string) =>
      startRelyingParty({ issuer: server.issuer, clientId: 'sample', clientSecret, publicUrl: (port) => `http://localhost:${port}`, title: 'Sample', checkClient: true });
    await assert.rejects(start(`${SECRET} `), (error) => error instanceof ClientRefused && PADDED.test(error.message) && /set CLIENT_SECRET/.test(error.message));
    await assert.rejects(start(`${SECRET}x`), (error) => error instanceof ClientRefused && !PADDED.test(error.message));
    await (await start(SECRET)).close();
  });

  it('the hint reads only what was sent: an unknown client is told the same, so it tells no one which clients exist', async () => {
    const known = await clientCredentials('machine', `${SECRET} `, oidc.ClientSecretPost);
    const unknown = await clientCredentials('no-such-client', `${SECRET} `, oidc.ClientSecretPost);
    assert.equal(unknown?.error, known?.error);
    assert.equal(unknown?.error_description, known?.error_description);
    assert.equal(unknown?.status, known?.status);
  });

  it('a chosen client secret or client_id that begins or ends with a space or line break is refused where a client is written (CLI, admin API, configuration: one policy)', async () => {
    const secret = `${SECRET} `;
    const bySecret = await latchkey(server.env, ['clients', 'add', '--client-id', 'padded', '--grant-type', 'client_credentials', '--secret', secret]);
    assert.equal(bySecret.status, 1, bySecret.stdout);
    assert.match(bySecret.stderr, /client_secret must not begin or end with a space or line break/);
    const byId = await latchkey(server.env, ['clients', 'add', '--client-id', ' padded', '--grant-type', 'client_credentials']);
    assert.equal(byId.status, 1, byId.stdout);
    assert.match(byId.stderr, /client_id must not begin or end with a space or line break/);
    const listed = await latchkey(server.env, ['clients', 'list']);
    assert.doesNotMatch(listed.stdout, /padded/);

    await server.apis.grant('machine', `${server.issuer}/admin`, { scopes: ['admin'] });
    const config = await oidc.discovery(new URL(server.issuer), 'machine', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
    const admin = (await oidc.clientCredentialsGrant(config, { resource: `${server.issuer}/admin`, scope: 'admin' })).access_token;
    const byAdmin = await fetch(`${server.url}/admin/clients`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
      body: JSON.stringify({ client_id: 'padded', client_secret: secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }),
    });
    assert.equal(byAdmin.status, 400);
    assert.match(((await byAdmin.json()) as { error_description: string }).error_description, /client_secret must not begin or end with a space or line break/);

    await assert.rejects(
      startServer({ env: { CLIENTS: JSON.stringify([{ client_id: 'configured', client_secret: secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }]) } }),
      /client "configured": .*client_secret must not begin or end with a space or line break/,
    );
  });

  it('a sign-out whose post_logout_redirect_uri is a near miss of the registered one (a trailing slash, https, another port) says which part differs, as a redirect_uri\'s does', async () => {
    const details = async (uri: string) => {
      const answer = await fetch(`${server.url}/session/end?${new URLSearchParams({ client_id: 'webapp', post_logout_redirect_uri: uri })}`, { headers: { accept: 'text/html' } });
      return (await answer.text()).replace(/&#39;/g, "'");
    };
    for (const [uri, part] of [
      ['http://localhost:8080/signed-out/', 'its trailing slash'],
      ['https://localhost:8080/signed-out', 'its scheme (https)'],
      ['http://localhost:8081/signed-out', 'its port'],
    ]) {
      assert.ok((await details(uri!)).includes(`${uri} is not one of this app's post-logout redirect URIs; it differs from a registered one only by ${part} (they are compared exactly)`), uri);
    }
    assert.ok((await details('http://localhost:8080/elsewhere')).includes("http://localhost:8080/elsewhere is not one of this app's post-logout redirect URIs (they are compared exactly)"));
  });

  it('latchkey/resource-server given the issuer with a trailing slash or a path refuses at once, naming the issuer to use (it was an HTTP 404 at //.well-known)', async () => {
    for (const issuer of [`${server.issuer}/`, `${server.issuer}/.well-known/openid-configuration`]) {
      await assert.rejects(
        createResourceServer({ issuer, audience: API, clientId: 'machine', clientSecret: SECRET, startTimeout: 0 }),
        (error: Error) => error instanceof TypeError && error.message.includes(`use ${server.issuer}, got "${issuer}"`),
        issuer,
      );
    }
  });

  /** The warnings a server started with `env` logs (in process, on an embedded store of its own). */
  async function startWarnings(env: Record<string, string>): Promise<string[]> {
    const lines: string[] = [];
    const started = await startServer({ port: await freePort(), env: { LOG_LEVEL: 'info', ...env }, logger: createLogger('info', { write: (line: string) => void lines.push(line) }) });
    await started.stop();
    return lines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((entry) => entry.level === 40).map((entry) => entry.msg);
  }

  it('a public https issuer without PROXY: the start says every client would count as the TLS proxy\'s address, and to set PROXY=true', async () => {
    const warnings = await startWarnings({ ISSUER: 'https://id.example.com' });
    const proxy = warnings.filter((msg) => msg.includes('PROXY=true'));
    assert.equal(proxy.length, 1, warnings.join('\n'));
    assert.match(proxy[0]!, /^issuer \(ISSUER\): https:\/\/id\.example\.com is https, so requests reach this plain-http server through a TLS proxy, but proxy \(PROXY\) is off: .*every client counts as the proxy's address.*set PROXY=true/);
    for (const env of [{ ISSUER: 'https://id.example.com', PROXY: 'true' }, {}] as Record<string, string>[]) {
      const quiet = await startWarnings(env);
      assert.ok(!quiet.some((msg) => msg.includes('PROXY=true')), quiet.join('\n'));
    }
  });

  /** A GET of `path` at the server whose Host header is `host` (fetch cannot set one). */
  const getAs = (url: string, path: string, host: string) =>
    new Promise<number>((done, fail) => {
      const { hostname, port } = new URL(url);
      request({ hostname, port, path, headers: { host } }, (answer) => {
        answer.resume();
        answer.on('end', () => done(answer.statusCode!));
      }).on('error', fail).end();
    });

  it('a localhost issuer reached under another host name (a VM\'s address, a proxy\'s public name): the log says once to set ISSUER', async () => {
    const lines: string[] = [];
    const started = await startServer({ port: await freePort(), env: { LOG_LEVEL: 'info' }, logger: createLogger('info', { write: (line: string) => void lines.push(line) }) });
    const warned = () => lines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((entry) => entry.level === 40 && entry.msg.includes('set ISSUER=')).map((entry) => entry.msg);
    try {
      for (const host of [new URL(started.issuer).host, '127.0.0.1', '[::1]:80', 'app.localhost']) assert.equal(await getAs(started.url, '/', host), 200);
      assert.deepEqual(warned(), [], 'the issuer\'s own host, loopback addresses and *.localhost');
      assert.equal(await getAs(started.url, '/', 'id.example.com:443'), 200);
      assert.equal(await getAs(started.url, '/', '192.0.2.7:3000'), 200);
      const once = warned();
      assert.equal(once.length, 1, once.join('\n'));
      assert.match(once[0]!, new RegExp(`^a request came for id\\.example\\.com, but the issuer is ${started.issuer} \\(ISSUER\\): .*set ISSUER=https://id\\.example\\.com`));
    } finally {
      await started.stop();
    }
  });
});
