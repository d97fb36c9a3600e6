/**
 * The thirteenth passes' sweep of bad input over the whole HTTP surface (docs/security-passes.md,
 * "bad input, every endpoint"): every endpoint discovery names and our own surfaces, sent wrong
 * methods, odd content types and bodies, odd Authorization, DPoP, cookie and Host headers and
 * malformed percent-encoding, answers with a protocol error or a page, never a 5xx or a stack
 * trace; and usernames that are Object.prototype's own names are accounts like any other.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { addUser } from '../helpers/operator.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { signedInToAccountPage } from '../helpers/sign-in.js';
import { clientCredentialsToken, machineClient } from '../helpers/tokens.js';

const SECRET = 'web-app-secret-with-plenty-of-entropy-0123456789';
const OPS = { id: 'ops', secret: 'ops-secret-with-plenty-of-entropy-0123456789abc' };
const STACK = /\bat [\w.<>]+ \(|node_modules|\.[tj]s:\d+/;

/** One request as sent (raw headers, duplicates and odd Host kept), its status and body. */
function exchange(port: number, method: string, path: string, headers: Record<string, string | string[]>, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('e2e: bad input, every endpoint (thirteenth passes)', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let server: TestServer;
  let port: number;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({
      redisUrl: redis.url,
      clients: [
        { client_id: 'web', client_secret: SECRET, redirect_uris: ['https://app.example.test/cb'], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] },
        machineClient(OPS, { scope: 'admin' }),
      ],
    });
    port = Number(new URL(server.url).port);
    await server.apis.grant(OPS.id, `${server.issuer}/admin`, { scopes: ['admin'] });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  async function surface(): Promise<string[]> {
    const discovery = (await (await fetch(`${server.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    const named = Object.entries(discovery)
      .filter(([name, value]) => typeof value === 'string' && (name.endsWith('_endpoint') || name === 'jwks_uri'))
      .map(([, value]) => new URL(value as string).pathname);
    const own = ['/reg/web', '/device', '/interaction/abc', '/interaction/abc/login', '/interaction/abc/confirm', '/interaction/abc/second-factor', '/interaction/abc/passkey', '/upstream/x/callback', '/account', '/account/password', '/account/passkeys/add', '/developer', '/developer/apps', '/admin/clients', '/admin/users', '/admin/apis', '/revocations', '/healthz', '/readyz', '/metrics', '/.well-known/openid-configuration'];
    return [...new Set([...named, ...own])];
  }

  it('answers every kind of bad input at every endpoint without a 5xx or a stack trace', async () => {
    const H = { host: `localhost:${port}` };
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    const bodies: Array<[string, string]> = [
      ['application/json', '{'], ['application/json', '[]'], ['application/json', 'null'], ['application/json', '{"toString":1}'],
      ['application/json', '{"__proto__":{"x":1}}'], ['application/json', '{"redirect_uris":null,"grant_types":1,"client_id":["a"]}'],
      ['application/x-www-form-urlencoded', 'a=%zz&b=%00&c=%C0%AF'], ['application/x-www-form-urlencoded', '__proto__[x]=1&toString=1&grant_type=a&grant_type=b'],
      ['application/x-www-form-urlencoded; charset=utf-16', 'a=1'], ['multipart/form-data', 'garbage'], ['text/plain', 'x'],
    ];
    const authorizations = ['Basic', 'Basic !!!', `Basic ${b64('nocolon')}`, `Basic ${b64(':')}`, `Basic ${b64('%zz:%zz')}`, 'Bearer a b', 'Bearer a,b', 'DPoP x', 'Foo bar'];
    const bad: string[] = [];
    let sent = 0;
    for (const path of await surface()) {
      const sends: Array<[string, string, Record<string, string | string[]>, string?]> = [];
      for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND']) sends.push([method, path, H]);
      for (const [type, body] of bodies) sends.push(['POST', path, { ...H, 'content-type': type }, body]);
      sends.push(['POST', path, { ...H, 'content-type': ['application/json', 'application/x-www-form-urlencoded'] }, 'a=1']);
      for (const authorization of authorizations) sends.push(['POST', path, { ...H, authorization, 'content-type': 'application/x-www-form-urlencoded' }, 'grant_type=client_credentials&token=x']);
      sends.push(['GET', path, { ...H, authorization: ['Bearer a', 'Bearer b'] }]);
      sends.push(['POST', path, { ...H, dpop: ['garbage', 'more'], authorization: 'DPoP garbage', 'content-type': 'application/x-www-form-urlencoded' }, 'grant_type=client_credentials']);
      for (const cookie of ['=', ';;;', '_session=%zz', '_interaction=%E0%80; _interaction=x', `x=${'y'.repeat(7000)}`, '_session="open']) sends.push(['GET', path, { ...H, cookie }]);
      for (const host of ['evil.example', 'localhost:99999', '[::1', '%zz']) sends.push(['GET', path, { host }]);
      for (const query of ['?%zz', '?a=%00', '?client_id=web&client_id=x', '?client_id[]=a', '?__proto__[x]=1', '?client_id=web&response_type=code&scope=openid&redirect_uri=https://app.example.test/cb&request=garbage']) sends.push(['GET', path + query, H]);
      sends.push(['GET', `${path}/%zz`, H], ['GET', `${path}/%C0%AF`, H]);
      for (const [method, target, headers, body] of sends) {
        const { status, text } = await exchange(port, method, target, headers, body);
        sent += 1;
        if (status >= 500 || STACK.test(text)) bad.push(`${status} ${method} ${target} ${JSON.stringify(headers)} ${body ?? ''}: ${text.slice(0, 160)}`);
      }
    }
    assert.deepEqual(bad, []);
    assert.ok(sent > 1000, `only ${sent} requests sent`);
  });

  it("takes Object.prototype's own names as usernames like any other, through the admin API and sign-in", async () => {
    const token = await clientCredentialsToken(server.url, OPS, `${server.issuer}/admin`, 'admin');
    for (const username of ['__proto__', 'constructor', 'hasOwnProperty']) {
      const created = await fetch(`${server.url}/admin/users`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ username, password: 'correct horse battery staple', name: username }),
      });
      assert.equal(created.status, 201, await created.text());
      const { page } = await signedInToAccountPage(server.issuer, username, 'correct horse battery staple');
      assert.equal(page.status, 200);
      const factors = await fetch(`${server.url}/admin/users/${username}/mfa`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(factors.status, 200);
      assert.equal(((await factors.json()) as { username: string }).username, username);
    }
    await addUser(server.env, 'toString', 'correct horse battery staple');
    const listed = (await (await fetch(`${server.url}/admin/users`, { headers: { authorization: `Bearer ${token}` } })).json()) as Array<{ username: string }>;
    assert.deepEqual(listed.map((user) => user.username).sort(), ['__proto__', 'constructor', 'hasOwnProperty', 'toString']);
  });
});
