/**
 * Running Latchkey in production: Redis outages under load, rolling restarts, worker processes,
 * metrics, logs that keep secrets, and rate limits. Real redis-server processes throughout.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Agent as HttpAgent, request } from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import * as oidc from 'openid-client';
import { createLogger } from '../../src/ops/logger.js';
import { Agent } from '../helpers/agent.js';
import { startBalancer } from '../helpers/balancer.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey, serveProcess } from '../helpers/process.js';
import { freePort, startRedisServer, type RedisServer } from '../helpers/redis.js';
import { startRelay } from '../helpers/relay.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';
import { signedInToAccountPage, signInSteps } from '../helpers/sign-in.js';

const SECRET = 'operations-test-secret-with-plenty-of-entropy-0123';
const PASSWORD = 'operations test password';
const REDIRECT = 'https://ops.example.test/callback';
const CLIENTS = JSON.stringify([
  { client_id: 'svc', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
  { client_id: 'svc2', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] },
  { client_id: 'web', client_secret: SECRET, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'] },
]);
const basic = (id: string) => `Basic ${Buffer.from(`${id}:${SECRET}`).toString('base64')}`;

/** One POST on a fresh connection (no keep-alive), as many clients behind a load balancer do. */
function post(url: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((done, fail) => {
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => done({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', fail);
    req.end(body);
  });
}
const clientCredentials = (base: string, client = 'svc') => post(`${base}/token`, 'grant_type=client_credentials', { authorization: basic(client) });

/** Runs `once` in `concurrency` loops until stopped; records every outcome ('error' for a failed connection). */
function load(once: () => Promise<{ status: number }>, concurrency = 3) {
  const outcomes: (number | string)[] = [];
  let running = true;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        outcomes.push((await once()).status);
      } catch (error) {
        outcomes.push(`error: ${(error as Error).message}`);
        await new Promise((done) => setTimeout(done, 20));
      }
    }
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

/** Signs a person in and returns the tokens (with a refresh token) and the agent holding the session. */
async function signIn(base: string, issuer: string) {
  const config = await oidc.discovery(new URL(issuer), 'web', SECRET, oidc.ClientSecretBasic(SECRET), { execute: [oidc.allowInsecureRequests] });
  const agent = new Agent();
  const authorize = async (prompt: string) => {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT, scope: 'openid offline_access', prompt,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const page = await signInSteps(agent, await agent.follow(url.href.replace(issuer, base), {}, REDIRECT), { username: 'ops', password: PASSWORD, stopAt: REDIRECT });
    return { page, verifier };
  };
  const { page, verifier } = await authorize('consent');
  const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: verifier });
  return { config, agent, authorize, tokens };
}

describe('operations', function () {
  this.timeout(120_000);

  describe('a Redis outage under load (AOF on)', () => {
    let redis: RedisServer;
    let server: TestServer;
    before(async () => {
      redis = await startRedisServer({ appendonly: true });
      // Commands wait 2 s, not half a second: the sign-in and the checks after the outage must not
      // time out on a loaded runner (the outage itself is answered 503 all the same).
      server = await startServer({ redisUrl: redis.url, env: { CLIENTS, REDIS_COMMAND_TIMEOUT: '2000' } });
      await server.accounts.create('ops', PASSWORD);
    });
    after(async () => {
      await server?.stop();
      await redis?.stop();
    });

    it('no crash, 503 only while Redis is down, recovery by itself, and sessions and refresh tokens from before still work', async () => {
      const before = await signIn(server.url, server.issuer);
      const traffic = load(() => clientCredentials(server.url));
      await eventually(async () => assert.ok(traffic.outcomes.filter((s) => s === 200).length >= 5));

      await redis.kill();
      await eventually(async () => assert.ok(traffic.outcomes.includes(503), 'answers 503 while Redis is down'), 100);
      await redis.restart();
      const mark = traffic.outcomes.length;
      await eventually(async () => assert.ok(traffic.outcomes.slice(mark).filter((s) => s === 200).length >= 5, 'recovered'), 100);
      const outcomes = await traffic.stop();

      assert.deepEqual([...new Set(outcomes)].sort(), [200, 503], `only 200 and 503: ${[...new Set(outcomes)]}`);
      const refreshed = await oidc.refreshTokenGrant(before.config, before.tokens.refresh_token!);
      assert.ok(refreshed.access_token, 'the refresh token issued before the outage works');
      const silent = await before.authorize('none');
      assert.ok(new URL(silent.page.url).searchParams.get('code'), 'the session from before the outage signs in silently');
    });
  });

  describe('a server shutting down', () => {
    it('answers with Connection: close from then on, a request in flight at that moment too: a keep-alive client that stays busy moves to another instance, rather than being served here until shutdownTimeout cuts its connection', async () => {
      const redis = await startRedisServer();
      const relay = await startRelay(redis.port);
      const server = await startServer({ redisUrl: relay.url, env: { CLIENTS } });
      const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
      /** GET `path` on the agent's one connection: its status and Connection header. */
      const get = (path: string) =>
        new Promise<{ status?: number; connection?: string }>((done, fail) => {
          request(`${server.url}${path}`, { agent }, (response) => {
            response.resume();
            response.on('end', () => done({ status: response.statusCode, connection: response.headers.connection }));
          })
            .on('error', fail)
            .end();
        });
      try {
        assert.deepEqual(await get('/healthz'), { status: 200, connection: 'keep-alive' });
        // A request in flight (its Redis PING held) when the server begins to shut down.
        const held = await relay.hold((chunk) => /ping/i.test(chunk), () => get('/readyz'));
        const stopped = server.stop();
        const answer = await held.release();
        // Before the fix: keep-alive, and the same connection served on.
        assert.equal(answer.connection, 'close', JSON.stringify(answer));
        await stopped;
      } finally {
        agent.destroy();
        relay.release();
        relay.close();
        await redis.stop();
      }
    });
  });

  describe('two instances behind a load balancer', () => {
    let redis: RedisServer;
    const dir = testDir();
    before(async () => {
      redis = await startRedisServer();
    });
    after(async () => {
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('a rolling restart fails no request', async () => {
      const balancer = await startBalancer();
      const options = { redisUrl: redis.url, dir, env: { CLIENTS, ISSUER: balancer.url } };
      let a = await startServer(options);
      let b = await startServer(options);
      balancer.route(a.url);
      const traffic = load(() => clientCredentials(balancer.url));
      const served = async () => {
        const mark = traffic.outcomes.length;
        await eventually(async () => assert.ok(traffic.outcomes.length >= mark + 10));
      };
      await served();
      for (const step of ['a', 'b'] as const) {
        const [leaving, staying] = step === 'a' ? [a, b] : [b, a];
        balancer.route(staying.url, { drain: true });
        // A load balancer drains before the instance stops (its deregistration delay): a connection it
        // opened to the leaving instance just before the switch gets to send its request. Node's
        // server.close() closes connections that have not sent one yet as idle.
        await new Promise((done) => setTimeout(done, 250));
        await leaving.close(); // graceful: requests in flight finish
        const replacement = await startServer(options);
        if (step === 'a') a = replacement;
        else b = replacement;
        balancer.route(replacement.url, { drain: true });
        await served();
      }
      const outcomes = await traffic.stop();
      assert.ok(outcomes.length > 30);
      assert.deepEqual(outcomes.filter((s) => s !== 200), [], 'zero failed requests');
      await a.close();
      await b.close();
      await balancer.close();
    });
  });

  describe('serve --workers 2', () => {
    let redis: RedisServer;
    const dir = testDir();
    before(async () => {
      redis = await startRedisServer();
    });
    after(async () => {
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('two worker processes answer on one port, the primary serves their summed metrics, replaces a worker that dies, and SIGTERM exits 0', async () => {
      const [port, metricsPort] = [await freePort(), await freePort()];
      const env = { ...testEnv(dir, port, { redisUrl: redis.url, env: { CLIENTS, LOG_LEVEL: 'info', METRICS_PORT: String(metricsPort) } }) };
      const server = await serveProcess(env, ['--workers', '2']);
      const rawLines = () => server.stdout().split('\n').filter(Boolean);
      const lines = () => rawLines().map((line) => JSON.parse(line) as Record<string, unknown>);
      const listening = () => lines().filter((l) => l.msg === 'latchkey is listening').map((l) => l.pid as number);
      await eventually(async () => assert.equal(listening().length, 2), 100);
      const insecure = () => lines().filter((l) => /^INSECURE/.test(String(l.msg)));
      assert.equal(insecure().length, 1, 'the public-secrets warning once, from the primary, not once per worker');
      assert.ok(!listening().includes(insecure()[0]!.pid as number), 'logged by the primary');

      // Which worker takes a connection is the kernel's and the primary's business: under load one
      // worker can take many in a row. So send requests until both have served (each is logged
      // with its pid), rather than a fixed number that only usually reaches both.
      let sent = 0;
      const servedBy = () => new Set(lines().filter((l) => l.msg === 'request' && l.route === 'token').map((l) => l.pid));
      await eventually(async () => {
        assert.equal((await clientCredentials(server.url)).status, 200);
        sent += 1;
        assert.equal(servedBy().size, 2, 'both workers served requests');
      }, 500);
      assert.deepEqual([...servedBy()].sort(), [...listening()].sort());

      await eventually(async () => {
        const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        assert.match(metrics, new RegExp(`^latchkey_tokens_issued_total\\{grant_type="client_credentials"\\} ${sent}$`, 'm'));
      });

      // A worker that dies after it started is replaced, after a backoff, and the log line says which.
      const victim = listening()[0]!;
      process.kill(victim, 'SIGKILL');
      await eventually(async () => assert.equal(listening().length, 3, 'a replacement started'), 200);
      const died = rawLines().find((line) => line.includes('"worker died: starting another"'))!;
      assert.equal(died.match(/"pid":/g)?.length, 1, `one pid field (the primary's): ${died}`);
      const entry = JSON.parse(died) as Record<string, unknown>;
      assert.equal(entry.workerPid, victim);
      assert.equal(entry.signal, 'SIGKILL');
      assert.equal(entry.restartInMs, 1000);
      assert.notEqual(entry.exitCode, '[redacted]');
      assert.equal((await clientCredentials(server.url)).status, 200);
      assert.equal(insecure().length, 1, 'a replacement worker does not repeat it');

      assert.equal(await server.stop(), 0);
      assert.ok(lines().filter((l) => l.msg === 'shutting down').length >= 3, 'the primary and both workers shut down');
    });

    it("LOG_FORMAT=json: Node's process warnings are JSON log lines too, from a worker (the passkey library's ExperimentalWarnings at the first account page), never stderr text", async () => {
      const port = await freePort();
      // NODE_NO_WARNINGS unset (serveProcess sets it): warnings on, as an operator runs it.
      const env = testEnv(dir, port, { redisUrl: redis.url, env: { CLIENTS, LOG_LEVEL: 'info', LOG_FORMAT: 'json', NODE_NO_WARNINGS: '' } });
      assert.equal((await latchkey(env, ['users', 'add', 'wanda', '--password-stdin'], `${PASSWORD}\n`)).status, 0);
      const server = await serveProcess(env, ['--workers', '2']);
      try {
        const { page } = await signedInToAccountPage(env.ISSUER!, 'wanda', PASSWORD);
        assert.match(page.html, /[Pp]asskey/);
        const lines = () => server.stdout().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
        await eventually(async () => assert.ok(lines().some((l) => l.event === 'process.warning'), server.stdout()), 100);
        const warnings = lines().filter((l) => l.event === 'process.warning');
        assert.ok(warnings.every((l) => l.level === 40 && typeof l.name === 'string' && typeof l.msg === 'string'), JSON.stringify(warnings));
        assert.ok(warnings.some((l) => l.name === 'ExperimentalWarning' && /Web Crypto API/.test(String(l.msg))), JSON.stringify(warnings));
        assert.equal(new Set(warnings.map((l) => `${String(l.pid)} ${String(l.msg)}`)).size, warnings.length, 'each once per process');
        assert.equal(server.stderr(), '');
      } finally {
        await server.stop();
      }
    });

    for (const workers of ['1', '4']) {
      it(`--workers ${workers}: a server that cannot start (Redis unreachable, a wrong KEYS_SECRETS) exits 1 with one line saying why`, async () => {
        const unreachable = `redis://:a-redis-password@127.0.0.1:${await freePort()}`;
        const cases: [Record<string, string>, RegExp][] = [
          [{ REDIS_URL: unreachable }, /^latchkey: REDIS_URL: cannot reach Redis redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ \(connect ECONNREFUSED [^)]+\); expected a running Redis/],
          // The ring in this Redis was sealed with the default secret by the test above: named, with
          // the way to switch to one's own (a newcomer did not know what "old" was: newcomer pass).
          [{ KEYS_SECRETS: 'not-the-secret-that-sealed-these-keys-0123456789' }, /^latchkey: key \S+ was sealed with a secret that is not in keys\.secrets \(KEYS_SECRETS\): it was sealed with the public development secret \(keys\.secrets in config\/default\.yaml\); list yours first and keep that one after it: KEYS_SECRETS=<yours>,insecure-development-keyring-secret$/],
        ];
        for (const [extra, pattern] of cases) {
          const env = testEnv(dir, await freePort(), { redisUrl: redis.url, env: { CLIENTS, LOG_LEVEL: 'info', ...extra } });
          const run = await latchkey(env, ['serve', '--workers', workers]);
          assert.equal(run.status, 1, run.stderr);
          assert.match(run.stderr.trim(), pattern);
          assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
          assert.ok(!run.stderr.includes('a-redis-password'));
          assert.doesNotMatch(run.stdout, /answering 503/, 'nothing was being served');
          // The one line is the only error: no log line per process repeats it (a newcomer's terminal shows both streams).
          assert.deepEqual(run.stdout.split('\n').filter((l) => /"level":(50|60)/.test(l)), [], run.stdout);
          assert.ok(run.stdout.split('\n').filter((l) => l.includes('"worker died')).length === 0, 'no restart loop');
        }
      });
    }
  });

  describe('serve with a rediss:// URL at a Redis without TLS', () => {
    let redis: RedisServer;
    const dir = testDir();
    before(async () => {
      redis = await startRedisServer();
    });
    after(async () => {
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('exits 1 with one line that names REDIS_URL and says TLS, not "the store is unreachable (Command timed out)"', async () => {
      const env = testEnv(dir, await freePort(), { redisUrl: redis.url.replace(/^redis:/, 'rediss:'), env: { CLIENTS } });
      const run = await latchkey(env, ['serve', '--workers', '1']);
      assert.equal(run.status, 1, run.stderr);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
      assert.match(run.stderr.trim(), /^latchkey: REDIS_URL: cannot reach Redis rediss:\/\/\S+ \([^)]+\); rediss:\/\/ needs a Redis that speaks TLS on that port/);
    });

    it('says TLS where the handshake\'s hang ends in the connection\'s timeout (connect ETIMEDOUT) rather than a command\'s: a CLI command, and serve with a longer REDIS_COMMAND_TIMEOUT', async () => {
      // Before, the hint was given only where no connection error came first: a CLI command (it waits
      // longer for Redis than a server's request) said only "connect ETIMEDOUT".
      const env = testEnv(dir, await freePort(), { redisUrl: redis.url.replace(/^redis:/, 'rediss:'), env: { CLIENTS } });
      for (const [args, extra] of [[['users', 'list'], {}], [['serve', '--workers', '1'], { REDIS_COMMAND_TIMEOUT: '8000' }]] as const) {
        const run = await latchkey({ ...env, ...extra }, [...args]);
        assert.equal(run.status, 1, run.stderr);
        assert.match(run.stderr.trim().split('\n').at(-1)!, /^latchkey: REDIS_URL: cannot reach Redis rediss:\/\/\S+ \(connect ETIMEDOUT\); rediss:\/\/ needs a Redis that speaks TLS on that port/, args.join(' '));
      }
    });
  });

  describe('serve and the CLI with a REDIS_URL where something else than Redis answers', () => {
    // A newcomer's wrong port: Latchkey's own HTTP port, or any HTTP server, answers RESP with "HTTP/1.1 400".
    let notRedis: Server;
    let port: number;
    // One that closes on what it cannot parse, as Node's HTTP server often does before it answers, and one that closes on sight.
    let closers: { server: Server; port: number }[];
    const dir = testDir();
    const listening = async (server: Server) => {
      const at = await freePort();
      await new Promise<void>((resolve) => server.listen(at, '127.0.0.1', resolve));
      return at;
    };
    before(async () => {
      // A client that finds no Redis here may close with a reset (unread data left): the peer's right, not this test's failure.
      const tolerant = (socket: Socket) => socket.on('error', () => {});
      notRedis = createNetServer((socket) => tolerant(socket).once('data', () => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n')));
      port = await listening(notRedis);
      closers = [];
      for (const server of [createNetServer((socket) => tolerant(socket).once('data', () => socket.destroy())), createNetServer((socket) => tolerant(socket).destroy())]) {
        closers.push({ server, port: await listening(server) });
      }
    });
    after(async () => {
      for (const server of [notRedis, ...(closers ?? []).map((closer) => closer.server)]) await new Promise((resolve) => server?.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    });

    it('exits 1 with one line that names REDIS_URL and says it is not Redis, not ioredis\'s stack trace ("Unknown RESP type … Please report this")', async () => {
      const url = `redis://127.0.0.1:${port}`;
      for (const args of [['serve', '--workers', '1'], ['users', 'list']]) {
        const env = testEnv(dir, await freePort(), { redisUrl: url, env: { CLIENTS } });
        const run = await latchkey(env, args);
        assert.equal(run.status, 1, run.stderr);
        const failure = run.stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
        assert.deepEqual(failure, [`latchkey: REDIS_URL: ${url} answers, but not as Redis (its answer began with "H", as an HTTP server's does); expected the address and port of a running Redis`], run.stderr);
      }
    });

    it('a database Redis does not have (/99 of 16): one line saying so, where ioredis went on with database 0 and acted on its data', async () => {
      const redis = await startRedisServer();
      try {
        const url = `${redis.url}/99`;
        for (const args of [['serve', '--workers', '1'], ['users', 'list']]) {
          const env = testEnv(dir, await freePort(), { redisUrl: url, env: { CLIENTS } });
          const run = await latchkey(env, args);
          assert.equal(run.status, 1, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
          const failure = run.stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
          assert.deepEqual(failure, [`latchkey: REDIS_URL: ${url} names a database that Redis does not have (ERR DB index is out of range); expected a database number below its databases setting (16 by default), or none`], run.stderr);
        }
      } finally {
        await redis.stop();
      }
    });

    it('a read-only replica, a full Redis (maxmemory, noeviction): one line saying which, not "cannot reach" it or its "credentials"', async () => {
      const [master, replica, full] = [await startRedisServer(), await startRedisServer(), await startRedisServer()];
      const raw = [new Redis(replica.url), new Redis(full.url)];
      try {
        await raw[0]!.call('REPLICAOF', '127.0.0.1', String(master.port));
        await raw[1]!.call('CONFIG', 'SET', 'maxmemory', '1');
        const cases = [
          [replica.url, 'is a read-only replica (READONLY You can\'t write against a read only replica.); expected its master, or Sentinel (REDIS_MODE=sentinel) to find it'],
          [full.url, 'is full and refuses writes (OOM command not allowed when used memory > \'maxmemory\'.); expected a Redis with room under its maxmemory'],
        ] as const;
        for (const [url, said] of cases) {
          for (const args of [['serve', '--workers', '1'], ['users', 'add', 'someone', '--password-stdin']]) {
            const env = testEnv(dir, await freePort(), { redisUrl: url, env: { CLIENTS } });
            const run = await latchkey(env, args, 'a long enough password for someone');
            assert.equal(run.status, 1, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
            const failure = run.stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
            assert.deepEqual(failure, [`latchkey: REDIS_URL: Redis ${url} ${said}`], `${args.join(' ')}: ${run.stderr}`);
          }
        }
      } finally {
        for (const connection of raw) connection.disconnect();
        for (const redis of [master, replica, full]) await redis.stop();
      }
    });

    it('a server that takes the connection and closes it: one line saying so, not "cannot reach" with ioredis\'s "max retries per request"', async () => {
      for (const closer of closers) {
        const url = `redis://127.0.0.1:${closer.port}`;
        for (const args of [['serve', '--workers', '1'], ['users', 'list']]) {
          const env = testEnv(dir, await freePort(), { redisUrl: url, env: { CLIENTS } });
          const run = await latchkey(env, args);
          assert.equal(run.status, 1, run.stderr);
          const failure = run.stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
          assert.equal(failure.length, 1, run.stderr);
          // Which of the socket's errors comes first (a write's or a read's, EPIPE or ECONNRESET) is the kernel's race with the close.
          const pattern = new RegExp(`^latchkey: REDIS_URL: ${url.replaceAll('.', '\\.')} took the connection and closed it without a Redis answer \\(((write|read) (EPIPE|ECONNRESET)|closed)\\); expected the address and port of a running Redis \\(6379 by default\\), not another service's$`);
          assert.match(failure[0]!, pattern);
        }
      }
    });
  });

  describe('metrics, logs and rate limits', () => {
    let redis: RedisServer;
    let server: TestServer;
    const logLines: string[] = [];
    before(async () => {
      redis = await startRedisServer();
      server = await startServer({
        redisUrl: redis.url,
        env: { CLIENTS, RATE_LIMIT_PER_CLIENT: '5', RATE_LIMIT_REGISTRATION_PER_IP: '2', LOG_LEVEL: 'info' },
        logger: createLogger('debug', { write: (line: string) => void logLines.push(line) }),
      });
      await server.accounts.create('ops', PASSWORD);
    });
    after(async () => {
      await server?.stop();
      await redis?.stop();
    });

    const scrape = async () => (await (await fetch(server.metricsUrl!)).text()).split('\n');
    const value = (lines: string[], series: string) => Number(lines.find((line) => line.startsWith(`${series} `))?.split(' ')[1] ?? 0);

    it('the metrics listener answers HEAD as GET without a body, another method 405 with Allow, another path 404 (RFC 9110 §9.3.2, §15.5.6)', async () => {
      const url = server.metricsUrl!;
      const head = await fetch(url, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.match(head.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      assert.equal(await head.text(), '');
      assert.equal((await fetch(`${url}?name[]=latchkey_tokens_issued_total`)).status, 200, 'a query is no other path');
      const post = await fetch(url, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
      assert.equal((await fetch(url.replace(/\/metrics$/, '/other'))).status, 404);
    });

    it('metrics expose the listed series with the right counts after a known workload', async () => {
      const before = await scrape();
      for (let n = 0; n < 3; n += 1) assert.equal((await clientCredentials(server.url, 'svc2')).status, 200);
      await signIn(server.url, server.issuer); // one successful login, one authorization_code grant
      const failed = new Agent();
      const verifier = oidc.randomPKCECodeVerifier();
      const page = await failed.follow(
        `${server.url}/auth?client_id=web&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(REDIRECT)}&code_challenge=${await oidc.calculatePKCECodeChallenge(verifier)}&code_challenge_method=S256`,
      );
      await failed.submit(page, '/login', { username: 'ops', password: 'wrong password' }, REDIRECT);

      const after = await scrape();
      const delta = (series: string) => value(after, series) - value(before, series);
      assert.equal(delta('latchkey_tokens_issued_total{grant_type="client_credentials"}'), 3);
      assert.equal(delta('latchkey_tokens_issued_total{grant_type="authorization_code"}'), 1);
      assert.equal(delta('latchkey_logins_total{outcome="success"}'), 1);
      assert.equal(delta('latchkey_logins_total{outcome="failure"}'), 1);
      assert.ok(delta('latchkey_http_request_duration_seconds_count{route="token",method="POST",status="2xx"}') >= 4);
      assert.ok(after.some((line) => /^latchkey_store_command_duration_seconds_count\{operation="[a-zA-Z]+",outcome="ok"\} \d+/.test(line)));
      assert.equal(value(after, 'latchkey_signing_keys{state="current"}'), 1);
      assert.ok(delta('latchkey_provider_events_total{event="grant.success"}') >= 4);
      assert.ok(after.some((line) => line.startsWith('latchkey_process_resident_memory_bytes')));
    });

    it('logs carry request ids, clients, grant types and outcomes, and never a token, code, secret or password', async () => {
      logLines.length = 0;
      const flow = await signIn(server.url, server.issuer);
      const refreshed = await oidc.refreshTokenGrant(flow.config, flow.tokens.refresh_token!);
      await oidc.tokenIntrospection(flow.config, refreshed.access_token);
      await oidc.tokenRevocation(flow.config, refreshed.refresh_token!);
      const secrets = [
        PASSWORD, SECRET, flow.tokens.access_token, flow.tokens.refresh_token!, flow.tokens.id_token!,
        refreshed.access_token, refreshed.refresh_token!, refreshed.id_token!,
      ];
      // The session cookie's value is a bearer secret too (interaction ids are in URLs by design).
      const codes = flow.agent.setCookies.filter((line) => line.startsWith('lk_session=')).map((line) => line.split(';')[0]!.slice('lk_session='.length)).filter(Boolean);
      assert.ok(codes.length > 0);
      assert.ok(logLines.length > 10, 'the flow was logged');
      for (const line of logLines) {
        for (const secret of [...secrets, ...codes]) assert.ok(!line.includes(secret), `a secret in the log: ${line}`);
        assert.doesNotMatch(line, /[?&](code|state|nonce|code_verifier|client_secret|refresh_token)=/, line);
      }
      const requests = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.msg === 'request');
      const refresh = requests.find((entry) => entry.grant_type === 'refresh_token');
      assert.ok(refresh && refresh.client_id === 'web' && refresh.outcome === 'ok' && typeof refresh.requestId === 'string' && typeof refresh.ms === 'number');
      // The engine's event of a request is on that request's line: one line per token request.
      assert.equal(refresh.event, 'grant.success');
      assert.equal(logLines.filter((line) => line.includes(`"requestId":"${refresh.requestId as string}"`)).length, 1);
    });

    it("a failed client authentication's line says why, in the engine's words, where the client learns only \"client authentication failed\"", async () => {
      logLines.length = 0;
      const tries = [['svc2', 'not the secret'], ['nobody', SECRET]] as const;
      for (const [id, secret] of tries) {
        const answer = await post(`${server.url}/token`, 'grant_type=client_credentials', { authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });
        assert.equal(answer.status, 401);
        assert.deepEqual(JSON.parse(answer.text), { error: 'invalid_client', error_description: 'client authentication failed' });
      }
      const lines = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.msg === 'request' && entry.path === '/token');
      assert.deepEqual(lines.map((entry) => [entry.outcome, entry.error_description, entry.error_detail]), [
        ['invalid_client', 'client authentication failed', 'invalid secret provided'],
        ['invalid_client', 'client authentication failed', 'client not found'],
      ]);
      for (const line of logLines) assert.ok(!line.includes('not the secret'), line);
    });

    it("a refusal whose description Latchkey rewrote after the engine's event (a client's own token at userinfo) is logged with the description the client was told, not the engine's \"invalid token provided\"", async () => {
      const own = JSON.parse((await clientCredentials(server.url, 'svc2')).text) as { access_token: string };
      logLines.length = 0;
      const answer = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${own.access_token}` } });
      assert.equal(answer.status, 401);
      const told = ((await answer.json()) as { error_description: string }).error_description;
      assert.match(told, /^this access token is a client's own \(client_credentials\)/);
      const line = logLines.map((text) => JSON.parse(text) as Record<string, unknown>).find((entry) => entry.msg === 'request' && entry.path === '/me');
      assert.ok(line, 'the request was logged');
      assert.equal(line.outcome, 'invalid_token');
      assert.equal(line.event, 'userinfo.error');
      assert.equal(line.error_description, told);
    });

    it('rate limits: the client over its allowance gets 429 with Retry-After; other clients and registration limits are separate', async () => {
      const statuses: number[] = [];
      for (let n = 0; n < 7; n += 1) statuses.push((await clientCredentials(server.url, 'svc')).status);
      assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200]);
      assert.equal(statuses[6], 429);
      const refused = await clientCredentials(server.url, 'svc');
      assert.equal(refused.status, 429);
      assert.equal((JSON.parse(refused.text) as { error: string }).error, 'temporarily_unavailable');
      const response = await fetch(`${server.url}/token`, { method: 'POST', headers: { authorization: basic('svc'), 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
      assert.ok(Number(response.headers.get('retry-after')) > 0);

      // Sending another client's client_id without its secret does not use up its allowance.
      for (let n = 0; n < 8; n += 1) await post(`${server.url}/token`, 'grant_type=client_credentials', { authorization: `Basic ${Buffer.from('svc2:wrong').toString('base64')}` });
      assert.equal((await clientCredentials(server.url, 'svc2')).status, 200);

      const register = () => fetch(`${server.url}/reg`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"redirect_uris":["https://x.example.test/cb"]}' });
      assert.equal((await register()).status, 401, 'no initial access token');
      assert.equal((await register()).status, 401);
      assert.equal((await register()).status, 429, 'registration is limited per IP');
      assert.match((await scrape()).join('\n'), /latchkey_rate_limited_total\{endpoint="token",limit="client"\} [1-9]/);
    });
  });
});
