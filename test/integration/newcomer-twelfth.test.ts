/**
 * A newcomer's first hour, twelfth pass (docs/security-passes.md): two embedded servers started from
 * one directory as the README's quick start says ("Port 3000 taken?"), and the CLI beside them.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '../helpers/eventually.js';
import { latchkey, serveProcess, type Run, type ServerProcess } from '../helpers/process.js';
import { freePort, startRedisServer } from '../helpers/redis.js';
import { testDir, testEnv } from '../helpers/server.js';

/** `latchkey serve` expected to refuse: its run, or a failure if it started instead (stopped by the pid its run file names). */
async function refusedStart(env: Record<string, string>): Promise<Run> {
  let exited = false;
  const run = latchkey(env, ['serve']).finally(() => (exited = true));
  const started = eventually(async () => {
    if (exited) return;
    const response = await fetch(`http://127.0.0.1:${env.PORT}/healthz`);
    if (!response.ok) throw new Error(`healthz ${response.status}`);
  }, 600).then(() => 'started' as const);
  const first = await Promise.race([run, started.catch(() => run)]);
  if (first === 'started') {
    const { pid } = JSON.parse(readFileSync(`${env.EMBEDDED_FILE}.server`, 'utf8')) as { pid: number };
    process.kill(pid, 'SIGTERM');
    await run;
    assert.fail('the second server started');
  }
  return first;
}

describe('a newcomer, twelfth pass', function () {
  // Each case is a Node process of its own: seconds apiece on a busy machine.
  this.timeout(180_000);
  const dir = testDir();
  let env: Record<string, string>;
  let first: ServerProcess;
  before(async () => {
    env = testEnv(dir, await freePort());
    first = await serveProcess(env);
  });
  after(async () => {
    await first?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const ringFile = () => join(env.KEYS_DIR!, 'keyring.json');

  it("a second embedded server given its own PORT, METRICS_PORT and EMBEDDED_FILE but the first one's KEYS_DIR is refused in one line naming KEYS_DIR (the two shared keys/keyring.json, each rotating and revoking the other's keys)", async () => {
    const port = await freePort();
    const other = { ...env, PORT: String(port), ISSUER: `http://localhost:${port}`, EMBEDDED_FILE: join(dir, 'other.json') };
    const ringBefore = readFileSync(ringFile(), 'utf8');
    const run = await refusedStart(other);
    assert.equal(run.status, 1, run.stderr);
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, run.stderr);
    assert.match(
      lines[0]!,
      new RegExp(`^latchkey: KEYS_DIR: .*keyring\\.json is the signing key ring of the latchkey server at ${env.ISSUER} \\(pid \\d+, on .*store\\.json\\); two embedded stores on one key ring rotate and revoke each other's keys: give this one its own, e\\.g\\. KEYS_DIR=keys/other \\(or stop that one\\)$`),
    );
    assert.equal(readFileSync(ringFile(), 'utf8'), ringBefore, 'the first server key ring is as it was');

    // Given its own KEYS_DIR, as the README now says, it starts, with keys of its own.
    const second = await serveProcess({ ...other, KEYS_DIR: join(dir, 'other-keys') });
    try {
      const kids = async (url: string) => ((await (await fetch(`${url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
      const [mine, theirs] = await Promise.all([kids(first.url), kids(second.url)]);
      assert.deepEqual(mine.filter((kid) => theirs.includes(kid)), []);
    } finally {
      await second.stop();
    }
    assert.ok(!existsSync(join(dir, 'other-keys', 'keyring.json.server')), 'a server that stopped leaves no record of using its key ring');
  });

  it("the CLI given another EMBEDDED_FILE (no server on it, or one with its own KEYS_DIR) refuses what opens the key ring the running server uses, saying so; keys rotate --now rotated that server's keys while it said it acted on the other store", async () => {
    const ringBefore = readFileSync(ringFile(), 'utf8');
    const elsewhere = { ...env, EMBEDDED_FILE: join(dir, 'no-server.json') };
    for (const args of [['keys', 'rotate', '--now'], ['keys', 'list'], ['keys', 'revoke', 'some-kid']]) {
      const run = await latchkey(elsewhere, args);
      assert.equal(run.status, 1, `${args.join(' ')}: ${run.stderr}`);
      const lines = run.stderr.trim().split('\n');
      assert.match(lines[0]!, /^latchkey: acting on the embedded store file .*no-server\.json \(no server is running on it/);
      assert.match(
        lines[1]!,
        new RegExp(`^latchkey: keys\\.dir \\(KEYS_DIR\\): .*keyring\\.json is the signing key ring of the latchkey server at ${env.ISSUER} \\(pid \\d+, on .*store\\.json\\), not of .*no-server\\.json: unset EMBEDDED_FILE to act on that server, or give this store its own KEYS_DIR`),
      );
      assert.equal(lines.length, 2, run.stderr);
    }
    assert.equal(readFileSync(ringFile(), 'utf8'), ringBefore, "the running server's key ring is as it was");
    // What does not open the ring goes on, and with the server's own settings the ring is the server's to act on.
    assert.equal((await latchkey(elsewhere, ['users', 'list'])).status, 0);
    const listed = await latchkey(env, ['keys', 'list']);
    assert.equal(listed.status, 0, listed.stderr);
  });

  it('a scope written with commas (--scope read,write) is refused at apis add and in resourceServers, saying scopes are separated by spaces, and clients add says so of known scopes joined so (apis add made one scope "read,write"; clients add said only "not offered")', async () => {
    const said = (stderr: string) => stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
    const api = await latchkey(env, ['apis', 'add', 'https://commas.example.com', '--scope', 'read,write']);
    assert.equal(api.status, 1, api.stderr);
    assert.deepEqual(said(api.stderr), ['latchkey: scope "read,write" holds a comma: scopes are separated by spaces, not commas (RFC 6749 section 3.3); name each on its own: read write']);
    const apis = JSON.parse((await latchkey(env, ['apis', 'list'])).stdout) as { identifier: string }[];
    assert.deepEqual(apis.filter((listed) => listed.identifier === 'https://commas.example.com'), []);

    const client = await latchkey(env, ['clients', 'add', '--client-id', 'commas', '--redirect-uri', 'http://localhost:8080/callback', '--scope', 'openid,profile']);
    assert.equal(client.status, 1, client.stderr);
    const [line, ...more] = said(client.stderr);
    assert.deepEqual(more, [], client.stderr);
    assert.match(line!, /^latchkey: invalid_client_metadata: scope "openid,profile" is not offered here; allowed: .*; scopes are separated by spaces, not commas \(RFC 6749 section 3\.3\)$/);
    // Words none of which is a scope here are not taken for a list.
    const unknown = await latchkey(env, ['clients', 'add', '--client-id', 'commas', '--redirect-uri', 'http://localhost:8080/callback', '--scope', 'foo,bar']);
    assert.equal(unknown.status, 1, unknown.stderr);
    assert.doesNotMatch(unknown.stderr, /commas/);
    // The configuration's APIs are held to the same rule, at every start and CLI command.
    const configured = await latchkey({ ...env, RESOURCE_SERVERS: JSON.stringify([{ identifier: 'https://configured.example.com', scopes: ['read,write'] }]) }, ['users', 'list']);
    assert.equal(configured.status, 1, configured.stderr);
    assert.deepEqual(said(configured.stderr), ['latchkey: resourceServers.0.scopes.0 (RESOURCE_SERVERS): "read,write" holds a comma: scopes are separated by spaces, not commas (RFC 6749 section 3.3); name each on its own: read write, got "read,write"']);
    // Space-separated, as the refusals say, both are taken.
    const spaced = await latchkey(env, ['apis', 'add', 'https://commas.example.com', '--scope', 'read write']);
    assert.equal(spaced.status, 0, spaced.stderr);
    assert.deepEqual((JSON.parse(spaced.stdout) as { scopes: string[] }).scopes, ['read', 'write']);
  });

  it("a server on Redis started beside the running embedded one does not import the embedded one's keys/keyring.json: the two issuers signed with one private key, and a key revoked on Redis went on signing there", async () => {
    const redis = await startRedisServer();
    try {
      const port = await freePort();
      const ringBefore = readFileSync(ringFile(), 'utf8');
      const onRedis = await serveProcess({ ...env, PORT: String(port), ISSUER: `http://localhost:${port}`, REDIS_URL: redis.url, LOG_LEVEL: 'info' });
      try {
        const kids = async (url: string) => ((await (await fetch(`${url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
        const [embedded, shared] = await Promise.all([kids(first.url), kids(onRedis.url)]);
        assert.deepEqual(embedded.filter((kid) => shared.includes(kid)), [], 'no key of the embedded server is in the Redis one\'s JWKS');
        assert.match(onRedis.stdout(), /not importing the signing keys of .*keyring\.json: the latchkey server at http:\/\/localhost:\d+ \(pid \d+, on the embedded store .*store\.json\) signs with them; the store gets a key ring of its own/);
        assert.doesNotMatch(onRedis.stdout(), /delete it once this server runs/);
      } finally {
        await onRedis.stop();
      }
      assert.equal(readFileSync(ringFile(), 'utf8'), ringBefore, "the embedded server's key ring is as it was");
    } finally {
      await redis.stop();
    }
  });
});
