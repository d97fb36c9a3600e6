/**
 * Bad input gets the protocol's error and status, or a page for a person; never a 500, never a
 * stack trace, never a redirect to an unregistered URI.
 */
import assert from 'node:assert/strict';
import { Agent } from '../helpers/agent.js';
import { startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { answerTo as rawAnswer } from '../helpers/raw-exchange.js';

const REDIRECT = 'https://app.example.test/callback';
/** A redirect URI registered with its trailing slash. */
const SLASHED = 'https://app.example.test/signed-in/';
const SECRET = 'web-app-secret-with-plenty-of-entropy-0123456789';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

describe('e2e: bad input gets a clean protocol error', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let server: TestServer;

  before(async () => {
    redis = await startRedisServer();
    server = await startServer({
      redisUrl: redis.url,
      env: {
        CLIENTS: JSON.stringify([
          { client_id: 'web', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token', 'client_credentials'] },
          { client_id: 'slashed', client_secret: SECRET, redirect_uris: [SLASHED] },
          { client_id: 'local', client_secret: SECRET, redirect_uris: ['http://localhost:8080/cb'] },
        ]),
      },
    });
  });
  after(async () => {
    await server?.stop();
    await redis?.stop();
  });

  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

  async function token(body: string | URLSearchParams, headers: Record<string, string> = {}) {
    const response = await fetch(`${server.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
      body,
    });
    const text = await response.text();
    assert.doesNotMatch(text, /\bat [\w.<>]+ \(|node_modules|\.ts:\d+/, 'no stack trace');
    return { status: response.status, json: JSON.parse(text) as { error?: string; error_description?: string }, headers: response.headers };
  }

  function authorize(params: Record<string, string>) {
    const url = new URL('/auth', server.url);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return new Agent().follow(url.href, {}, REDIRECT);
  }

  it('unknown client → 401 invalid_client', async () => {
    const { status, json, headers } = await token('grant_type=client_credentials', { authorization: basic('nobody', 'x') });
    assert.equal(status, 401);
    assert.equal(json.error, 'invalid_client');
    assert.match(headers.get('www-authenticate') ?? '', /Basic/);
  });

  it('wrong secret → 401 invalid_client', async () => {
    const { status, json } = await token('grant_type=client_credentials', { authorization: basic('web', 'wrong') });
    assert.equal(status, 401);
    assert.equal(json.error, 'invalid_client');
  });

  it('unsupported grant type → 400 unsupported_grant_type', async () => {
    const { status, json } = await token('grant_type=password&username=a&password=b', { authorization: basic('web', SECRET) });
    assert.equal(status, 400);
    assert.equal(json.error, 'unsupported_grant_type');
  });

  it('missing grant_type → 400 invalid_request', async () => {
    const { status, json } = await token('', { authorization: basic('web', SECRET) });
    assert.equal(status, 400);
    assert.equal(json.error, 'invalid_request');
  });

  it('an unknown code → 400 invalid_grant', async () => {
    const { status, json } = await token(new URLSearchParams({ grant_type: 'authorization_code', code: 'forged', redirect_uri: REDIRECT, code_verifier: 'a'.repeat(43) }), {
      authorization: basic('web', SECRET),
    });
    assert.equal(status, 400);
    assert.equal(json.error, 'invalid_grant');
  });

  it('malformed form body → 400 invalid_request', async () => {
    const { status, json } = await token('%%%=%E0%A4%A', { authorization: basic('web', SECRET) });
    assert.equal(status, 400);
    assert.equal(json.error, 'invalid_request');
  });

  it('JSON where a form is required → 400 invalid_request', async () => {
    const { status, json } = await token('{"grant_type":"client_credentials"}', { authorization: basic('web', SECRET), 'content-type': 'application/json' });
    assert.equal(status, 400);
    assert.equal(json.error, 'invalid_request');
  });

  it('oversized body (1 MB) → 413 invalid_request, not a 500 (RFC 9110 §15.5.14)', async () => {
    const { status, json } = await token(`grant_type=client_credentials&scope=${'a'.repeat(1024 * 1024)}`, { authorization: basic('web', SECRET) });
    assert.equal(status, 413);
    assert.equal(json.error, 'invalid_request');
  });

  it('duplicated parameters → 400 invalid_request', async () => {
    const { status, json } = await token('grant_type=client_credentials&grant_type=client_credentials', { authorization: basic('web', SECRET) });
    assert.equal(status, 400);
    assert.equal(json.error, 'invalid_request');
  });

  it('an authorization request without PKCE is refused at the client with invalid_request', async () => {
    const page = await authorize({ client_id: 'web', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's1' });
    const params = new URL(page.url).searchParams;
    assert.ok(page.url.startsWith(REDIRECT));
    assert.equal(params.get('error'), 'invalid_request');
    assert.match(params.get('error_description') ?? '', /PKCE/);
    assert.equal(params.get('state'), 's1');
  });

  it('PKCE with the plain method is refused (S256 only)', async () => {
    const page = await authorize({ client_id: 'web', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' });
    assert.equal(new URL(page.url).searchParams.get('error'), 'invalid_request');
  });

  it('an implicit response type is refused', async () => {
    const page = await authorize({ client_id: 'web', response_type: 'id_token', redirect_uri: REDIRECT, scope: 'openid', nonce: 'n', code_challenge: CHALLENGE, code_challenge_method: 'S256' });
    assert.ok(page.url.startsWith(REDIRECT));
    assert.equal(new URL(page.url).searchParams.get('error') ?? new URLSearchParams(new URL(page.url).hash.slice(1)).get('error'), 'unsupported_response_type');
  });

  it('an unregistered redirect_uri shows an error page and never redirects', async () => {
    for (const redirect of ['https://evil.example/callback', `${REDIRECT}/extra`, `${REDIRECT}?x=1`, REDIRECT.toUpperCase()]) {
      const page = await authorize({ client_id: 'web', response_type: 'code', redirect_uri: redirect, scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' });
      assert.equal(page.status, 400, redirect);
      assert.ok(page.url.startsWith(server.url), `stayed on the provider for ${redirect}`);
      assert.match(page.html, /Unsafe return address/);
      assert.ok(!page.html.includes('evil.example') || page.html.includes('redirect_uri'), 'no link to the attacker');
    }
  });

  it("a redirect_uri a trailing slash, a scheme, a port or a loopback name away from a registered one: the page's details say which, and nothing of other near URIs", async () => {
    const asked = async (redirect: string, client = 'web') => {
      const page = await authorize({ client_id: client, response_type: 'code', redirect_uri: redirect, scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' });
      assert.equal(page.status, 400, redirect);
      assert.match(page.html, /Unsafe return address/);
      return page.html.replaceAll('&#39;', "'");
    };
    assert.match(await asked(`${REDIRECT}/`), new RegExp(`redirect_uri did not match any of the client's registered redirect_uris; ${REDIRECT}/ differs from a registered one only by its trailing slash \\(redirect URIs are compared exactly\\)`));
    assert.match(await asked(SLASHED.slice(0, -1), 'slashed'), /differs from a registered one only by a trailing slash/);
    for (const other of [`${REDIRECT}/extra`, 'https://evil.example/callback/', `${REDIRECT}?x=1`]) assert.doesNotMatch(await asked(other), /trailing slash|differs/, other);
    // The scheme, the port or a loopback name alone (newcomer pass: only the slash was said); two of them at once, nothing.
    assert.match(await asked('http://app.example.test/callback'), /differs from a registered one only by its scheme \(http\) \(redirect URIs are compared exactly\)/);
    assert.match(await asked('https://app.example.test:8443/callback'), /differs from a registered one only by its port/);
    assert.match(await asked('http://127.0.0.1:8080/cb', 'local'), /differs from a registered one only by its host name \(localhost, 127\.0\.0\.1 and \[::1\] are three URIs\)/);
    assert.match(await asked('http://localhost:8081/cb', 'local'), /only by its port/);
    for (const other of ['http://app.example.test:8443/callback', 'https://app.example.test/callback/extra', 'http://127.0.0.1:8081/cb', 'https://evil.example:8080/cb']) assert.doesNotMatch(await asked(other, other.includes('8080') || other.includes('8081') ? 'local' : 'web'), /differs/, other);
  });

  it("a near miss's details repeat no words of a link's writer: a fragment, a scheme of words, dot segments or spaces in a redirect_uri get the engine's words alone (content injection, CWE-74; security-passes.md, eighth passes, the web pages)", async () => {
    // Anyone may write a link to /auth with this app's client_id: the page is on Latchkey's origin.
    const words = 'Your account is locked. Call support at +1-800-555-0100';
    for (const redirect of [
      `http://app.example.test/callback#${words}`,
      `http://app.example.test/callback#${words.replace(/ /g, '-')}`,
      `https://app.example.test:8443/callback#${words}`,
      'call-support-at-1-800-555-0100://app.example.test/callback',
      'http://app.example.test/Call-support-at-1-800-555-0100/../callback',
      `http://app.example.test/callback#\u202e${words}`,
    ]) {
      const page = await authorize({ client_id: 'web', response_type: 'code', redirect_uri: redirect, scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' });
      assert.equal(page.status, 400, redirect);
      assert.match(page.html, /Unsafe return address/, redirect);
      assert.doesNotMatch(page.html, /account.is.locked|1-800-555-0100|differs/i, redirect);
      assert.doesNotMatch(page.html, /\u202e/, redirect);
    }
    // The developer's own near miss is still named.
    assert.match((await authorize({ client_id: 'web', response_type: 'code', redirect_uri: 'http://app.example.test/callback', scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' })).html, /differs from a registered one only by its scheme \(http\)/);
  });

  it('an unknown client at the authorization endpoint shows an error page', async () => {
    const page = await authorize({ client_id: 'nobody', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: CHALLENGE, code_challenge_method: 'S256' });
    assert.equal(page.status, 400);
    assert.match(page.html, /Unknown application/);
  });

  it('an unknown path → 404 JSON for programs, a page for people', async () => {
    const json = await fetch(`${server.url}/no/such/thing`, { headers: { accept: 'application/json' } });
    assert.equal(json.status, 404);
    assert.deepEqual(await json.json(), { error: 'not_found', error_description: 'no such endpoint' });
    const html = await fetch(`${server.url}/no/such/thing`, { headers: { accept: 'text/html' } });
    assert.equal(html.status, 404);
    assert.match(await html.text(), /Page not found/);
  });

  it('userinfo without a valid token → 401 with WWW-Authenticate', async () => {
    const response = await fetch(`${server.url}/me`, { headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(response.status, 401);
    assert.match(response.headers.get('www-authenticate') ?? '', /Bearer.*error="invalid_token"/);
  });

  it('token, introspection and revocation without any client authentication → 401 invalid_client (RFC 6749 §5.2)', async () => {
    for (const [path, body] of [['/token', 'grant_type=client_credentials'], ['/token/introspection', 'token=abc'], ['/token/revocation', 'token=abc']]) {
      const response = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body,
      });
      assert.equal(response.status, 401, path);
      assert.match(response.headers.get('www-authenticate') ?? '', /^Basic realm=/);
      assert.equal(((await response.json()) as { error: string }).error, 'invalid_client');
    }
  });

  describe('form bodies at the token, introspection and revocation endpoints (provider/patches/form-bodies.ts)', () => {
    const BOM = '\uFEFF';
    // The patch reads plain forms (no charset, or UTF-8) itself; these types go to oidc-provider's
    // own reader, so each body sent both ways must get the same answer.
    const ours = ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded;charset=UTF-8', 'application/x-www-form-urlencoded; charset="utf-8"'];
    const engines = ['application/x-www-form-urlencoded; x=1', 'application/x-www-form-urlencoded; charset=utf8', 'Application/X-WWW-Form-Urlencoded; charset=iso-8859-1'];
    const bodies: Record<string, string> = {
      plain: 'grant_type=client_credentials',
      'percent-encoded UTF-8': 'grant_type=client_credentials&scope=%C3%A9t%C3%A9',
      'a leading byte-order mark': `${BOM}grant_type=client_credentials`,
      empty: '',
      'just over 56 KiB': `grant_type=client_credentials&x=${'a'.repeat(56 * 1024)}`,
    };
    /** What matters of an answer: the status, the error and its description, or a token's type. */
    const gist = async (path: string, body: string, type: string) => {
      const response = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': type, accept: 'application/json', authorization: basic('web', SECRET) },
        body,
      });
      const text = await response.text();
      assert.doesNotMatch(text, /\bat [\w.<>]+ \(|node_modules/, 'no stack trace');
      const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      return { status: response.status, error: json.error, description: json.error_description, tokenType: json.token_type, active: json.active };
    };

    it('each body gets the answer oidc-provider\'s own reader gives it, with and without a charset', async () => {
      for (const [name, body] of Object.entries(bodies)) {
        for (const [index, type] of ours.entries()) {
          for (const path of ['/token', '/token/introspection', '/token/revocation']) {
            const sent = path === '/token' ? body : body.replace('grant_type=client_credentials', 'token=abc');
            assert.deepEqual(await gist(path, sent, type), await gist(path, sent, engines[index]!), `${name} as ${type} at ${path}`);
          }
        }
      }
      // And the answers are the ones meant: a token for a plain body; the engine never decodes by
      // the charset (Koa's context has no ctx.charset), so a byte-order mark stays in the first name.
      assert.equal((await gist('/token', bodies.plain!, ours[1]!)).tokenType, 'Bearer');
      assert.equal((await gist('/token', bodies['a leading byte-order mark']!, ours[1]!)).description, "missing required parameter 'grant_type'");
      // Over the limit: 413 before either reader (patches/oversized-bodies.ts, RFC 9110 §15.5.14).
      assert.deepEqual(await gist('/token', bodies['just over 56 KiB']!, ours[0]!), { status: 413, error: 'invalid_request', description: 'the request body is larger than the 56 KiB this endpoint reads', tokenType: undefined, active: undefined });
    });

    it('a chunked body over 56 KiB, and one cut off midway, are refused or dropped; the server answers on', async () => {
      const { request } = await import('node:http');
      const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('web', SECRET) } }, (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('error', reject);
        req.write('grant_type=client_credentials&x=');
        for (let i = 0; i < 8; i += 1) req.write('a'.repeat(8 * 1024));
        req.end();
      });
      assert.equal(chunked.status, 413);
      assert.equal((JSON.parse(chunked.body) as { error_description: string }).error_description, 'the request body is larger than the 56 KiB this endpoint reads');
      // The forms a person posts (the device code entry, the sign-out confirmation): 413 with a page, not a stack.
      for (const path of ['/device', '/session/end/confirm']) {
        const page = await fetch(`${server.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
          body: new Blob([`xsrf=x&user_code=ABCD-EFGH&pad=${'a'.repeat(57 * 1024)}`]).stream(),
          duplex: 'half',
        } as RequestInit);
        assert.equal(page.status, 413, path);
        assert.match(page.headers.get('content-type') ?? '', /^text\/html/, path);
        assert.doesNotMatch(await page.text(), /at [\w.]+ \(|node_modules/, `${path}: no stack trace`);
      }

      await new Promise<void>((resolve) => {
        const req = request(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '1000', authorization: basic('web', SECRET) } });
        req.on('error', () => resolve());
        req.write('grant_type=client_credentials');
        setTimeout(() => req.destroy(), 100);
      });
      assert.equal((await gist('/token', bodies.plain!, ours[0]!)).tokenType, 'Bearer');
    });
  });

  it("what Node's HTTP parser refuses (a 20 KB URL, a header over 16 KiB, a control byte in Cookie, an unknown method), and a CONNECT, get a JSON error with the security headers, then the connection closes", async () => {
    const { connect } = await import('node:net');
    /**
     * Everything the server writes back to `request`, sent on a raw connection, until it closes it;
     * `kept`: on a connection kept alive after an answered request (a client's pool reuses them).
     */
    const raw = (request: string, kept = false) =>
      new Promise<string>((resolve) => {
        const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
        const first = 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n';
        let answer = '';
        socket.on('data', (chunk: Buffer) => {
          answer += chunk.toString('latin1');
          // The first answer whole (its head and Content-Length bytes of body): the refused request goes next.
          const [head, body] = answer.split('\r\n\r\n');
          if (kept && body !== undefined && Buffer.byteLength(body) === Number(/content-length: (\d+)/i.exec(head!)?.[1])) {
            kept = false;
            answer = '';
            socket.end(request);
          }
        });
        // The server may close before it read all of a request it refused: a reset is an end too.
        socket.on('error', () => resolve(answer));
        socket.on('close', () => resolve(answer));
        if (kept) socket.write(first);
        else socket.end(request);
      });
    const cases: [string, string, number][] = [
      ['a 20 KB URL', `GET /auth?client_id=web&state=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`, 431],
      ['a header over 16 KiB', `GET /token HTTP/1.1\r\nHost: localhost\r\nX-Padding: ${'a'.repeat(17 * 1024)}\r\n\r\n`, 431],
      ['a control byte in Cookie', 'GET /account HTTP/1.1\r\nHost: localhost\r\nCookie: a=b\u0001c\r\n\r\n', 400],
      ['an unknown method', 'BREW /token HTTP/1.1\r\nHost: localhost\r\n\r\n', 400],
    ];
    for (const [what, request, status, kept] of [...cases.map((c) => [...c, false] as const), ...cases.map(([what, ...rest]) => [`${what}, on a kept-alive connection`, ...rest, true] as const)]) {
      const answer = await raw(request, kept);
      const [head, body] = answer.split('\r\n\r\n') as [string, string | undefined];
      assert.match(head, new RegExp(`^HTTP/1\\.1 ${status} `), `${what}: ${answer}`);
      const headers = new Map(head.split('\r\n').slice(1).map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      assert.match(headers.get('content-security-policy') ?? '', /default-src 'none'/, what);
      assert.equal(headers.get('x-content-type-options'), 'nosniff', what);
      assert.equal(headers.get('x-frame-options'), 'DENY', what);
      assert.equal(headers.get('cache-control'), 'no-store', what);
      assert.match(headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/, what);
      assert.equal(headers.get('content-type'), 'application/json; charset=utf-8', what);
      assert.equal(headers.get('connection'), 'close', what);
      assert.equal(Number(headers.get('content-length')), Buffer.byteLength(body ?? ''), what);
      const json = JSON.parse(body ?? '') as { error: string; error_description: string };
      assert.equal(json.error, 'invalid_request', what);
      assert.match(json.error_description, status === 431 ? /larger than the 16 KiB/ : /not well-formed HTTP/, what);
    }
    // CONNECT (no proxy here): 405 with the same headers, where Node closed without a word.
    const connected = await raw('CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n');
    assert.match(connected, /^HTTP\/1\.1 405 /, `CONNECT: ${connected}`);
    assert.match(connected, /\r\nx-content-type-options: nosniff\r\n/i);
    assert.match(connected, /"error":"invalid_request","error_description":"this server is no proxy/);
  });

  it('a valid request pipelined before one the parser refuses gets its own answer first (RFC 9112 §9.3.2): the refusal was read as its answer, and a refresh or code exchange it had carried out was lost', async () => {
    const { connect } = await import('node:net');
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(Number(new URL(server.url).port), '127.0.0.1');
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      socket.on('error', () => resolve(text));
      socket.on('close', () => resolve(text));
      // A token request the store answers (an unknown client: 401 once it was looked up), then a
      // control byte in Cookie; written, not ended (a client that half-closes has its requests dropped).
      const body = 'grant_type=client_credentials&client_id=nobody-here&client_secret=not-a-secret-of-anyone-at-all';
      socket.write(
        `POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
          'GET /account HTTP/1.1\r\nHost: localhost\r\nCookie: a=b\u0001c\r\n\r\n',
      );
    });
    // Its own answer first; then the refusal, or the connection closed (Node ends it after an answer
    // once its parser refused what followed): a client tries again what was not answered.
    const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(([, status]) => Number(status));
    assert.equal(statuses[0], 401, `the token request's own answer comes first: ${answer.slice(0, 400)}`);
    assert.ok(statuses.slice(1).every((status) => status === 400) && statuses.length <= 2, `then the refusal at most: ${statuses.join(', ')}`);
    assert.match(answer, /"error":"invalid_client"/);
  });

  it('a body the parser refuses midway (a malformed chunk) is answered 400 and the connection closed, at every endpoint that reads a body: the refusal waited for the refused request\'s own answer, which waited for the rest of its body, and the connection was held open for as long as the client kept it (bad input and blips, ninth pass)', async () => {
    /** What the server writes back before it closes the connection, or undefined if it still holds it after 5 s. */
    const answerTo = (request: string) => rawAnswer(Number(new URL(server.url).port), request, 5_000);
    const chunked = (path: string, start: string) =>
      `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n${start.length.toString(16)}\r\n${start}\r\nzz\r\n`;
    for (const path of ['/token', '/token/introspection', '/request', '/device', '/interaction/some-uid/login', '/account/password', '/session/end/confirm']) {
      const answer = await answerTo(chunked(path, 'grant_type=client_credentials&username=a'));
      assert.notEqual(answer, undefined, `${path}: the connection is still held 5 s after the parser refused its body`);
      assert.match(answer!, /^HTTP\/1\.1 400 /, `${path}: ${answer}`);
      assert.match(answer!, /"error":"invalid_request","error_description":"the request is not well-formed HTTP/, path);
    }
    // After an earlier request on the connection, answered first (RFC 9112 §9.3.2), as before.
    const pipelined = await answerTo(`GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n${chunked('/token', 'grant_type=x')}`);
    assert.deepEqual([...(pipelined ?? '').matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(([, status]) => status), ['200', '400'], pipelined);
  });

  it('the server still answers after all of the above', async () => {
    const response = await fetch(`${server.url}/.well-known/openid-configuration`);
    assert.equal(response.status, 200);
  });
});
