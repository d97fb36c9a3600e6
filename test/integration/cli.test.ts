/**
 * The latchkey CLI: its commands on Redis (cli-commands.ts; on the embedded store:
 * cli-embedded.test.ts), and its usage: help, usage errors, the README's reference, the walkthrough.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { ROOT } from '../../src/paths.js';
import { cliReference } from '../helpers/docs.js';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { startServer, testDir, testEnv } from '../helpers/server.js';
import { Agent } from '../helpers/agent.js';
import { startRelyingParty } from '../helpers/relying-party.js';
import { signInSteps } from '../helpers/sign-in.js';
import { cliCommands, PASSWORD, REDIRECT, sampleRp } from './cli-commands.js';

cliCommands('redis');

describe('latchkey CLI: usage', function () {
  // One test here starts the CLI twenty times, a Node process each: seconds apiece on a busy machine.
  this.timeout(90_000);
  const dir = testDir();
  let env: Record<string, string>;
  before(async () => {
    env = testEnv(dir, await freePort());
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('usage errors are one line ending with "see latchkey <command> --help", not the whole help', async () => {
    const cases: [string[], RegExp][] = [
      [['users', 'add', '--password-stdin'], /^latchkey: missing required argument 'username'; see latchkey users add --help$/],
      // The missing name first, then the missing flag (which says how the password is given).
      [['users', 'add'], /^latchkey: missing required argument 'username'; see latchkey users add --help$/],
      [['users', 'add', 'eve'], /^latchkey: --password-stdin is required: the password is read from standard input, e\.g\. printf '%s' "\$PASSWORD" \| latchkey users add eve --password-stdin; see latchkey users add --help$/],
      [['users', 'passwd', 'eve'], /^latchkey: --password-stdin is required: .* latchkey users passwd eve --password-stdin; see latchkey users passwd --help$/],
      [['clients', 'add', '--client-id', 'x', '--bogus'], /^latchkey: unknown option '--bogus'; see latchkey clients add --help$/],
      // The flag a newcomer tries first says which one is taken, and why not it (it said "unknown option").
      [['users', 'add', 'eve', '--password', 'hunter2-hunter2'], /^latchkey: a password is not taken on the command line \(shell history, ps\): pipe it to --password-stdin, e\.g\. printf '%s' "\$PASSWORD" \| latchkey users add eve --password-stdin, .*; see latchkey users add --help$/],
      [['users', 'passwd', 'eve', '--password=hunter2-hunter2'], /^latchkey: a password is not taken on the command line .* latchkey users passwd eve --password-stdin, .*; see latchkey users passwd --help$/],
      [['frob'], /^latchkey: unknown command 'frob'; see latchkey --help$/],
      // The quick start's `users add <your name>` with a name of two words (tenth newcomer pass): the line shows it quoted.
      [['users', 'add', 'Bob', 'Smith'], /^latchkey: too many arguments for 'add'\. Expected 1 argument but got 2; a username that holds a space is quoted as one, as in latchkey users add 'Ada Lovelace' --password-stdin, and a password .*; see latchkey users add --help$/],
      [['users', 'add', 'Bob', 'Smith', '--password-stdin'], /^latchkey: too many arguments for 'add'\. Expected 1 argument but got 2; a username that holds a space is quoted as one, as in latchkey users add 'Ada Lovelace' --password-stdin, and a password .*; see latchkey users add --help$/],
      [['clients', 'remove', 'a', 'b'], /^latchkey: too many arguments for 'remove'\. Expected 1 argument but got 2; an argument that holds a space is quoted: latchkey clients remove 'a b'; see latchkey clients remove --help$/],
      // A word more after the username of a command that reads a password may be that password (as --password's value is):
      // not written back, nor quoted into a username to copy (users add 'eve hunter2-…' made a user named with it; h8, 2026-12-07).
      [['users', 'passwd', 'eve', 'hunter2-hunter2'], /^latchkey: too many arguments for 'passwd'\. Expected 1 argument but got 2; a username that holds a space is quoted as one, as in latchkey users passwd 'Ada Lovelace' --password-stdin, and a password is not taken on the command line \(shell history, ps\): pipe it to --password-stdin; see latchkey users passwd --help$/],
      [['users', 'add', 'eve', 'hunter2-hunter2', '--password-stdin'], /^latchkey: too many arguments for 'add'\. Expected 1 argument but got 2; a username that holds a space is quoted as one, as in latchkey users add 'Ada Lovelace' --password-stdin, and a password is not taken on the command line \(shell history, ps\): pipe it to --password-stdin; see latchkey users add --help$/],
      // Nor a credential given as the argument (an initial access token pasted with its "Bearer ").
      [['registration', 'token', 'revoke', 'Bearer', 'hunter2-initial-access-token'], /^latchkey: too many arguments for 'revoke'\. Expected 1 argument but got 2; see latchkey registration token revoke --help$/],
      // The server's settings are environment variables, not options of serve: the line names the one meant.
      [['serve', '--port', '3001'], /^latchkey: unknown option '--port'; settings are environment variables: PORT=3001 latchkey serve \(README, Configuration\); see latchkey serve --help$/],
      [['serve', '--keys-secrets', 'hunter2'], /^latchkey: unknown option '--keys-secrets'; settings are environment variables: KEYS_SECRETS=… latchkey serve \(README, Configuration\); see latchkey serve --help$/],
      // Written --option=value, the unknown option is named without its value (commander's line held it whole; h8, 2026-12-07).
      [['serve', '--keys-secrets=hunter2-hunter2'], /^latchkey: unknown option '--keys-secrets=…'; settings are environment variables: KEYS_SECRETS=… latchkey serve \(README, Configuration\); see latchkey serve --help$/],
      [['serve', '--redis-url=redis://127.0.0.1:6379/0?password=hunter2-hunter2'], /^latchkey: unknown option '--redis-url=…'; settings are environment variables: REDIS_URL=… latchkey serve \(README, Configuration\); see latchkey serve --help$/],
      [['serve', '--port=3001'], /^latchkey: unknown option '--port=…'; settings are environment variables: PORT=3001 latchkey serve \(README, Configuration\); see latchkey serve --help$/],
      [['clients', 'add', '--client-id', 'x', '--client-secret=hunter2-hunter2'], /^latchkey: unknown option '--client-secret=…'.*; see latchkey clients add --help$/],
      // Commander's suggestion stays on the one line (it printed it on a second one).
      [['user', 'list'], /^latchkey: unknown command 'user' \(did you mean users\?\); see latchkey --help$/],
      [['clients', 'add', '--client-id', 'x', '--redirect-url', REDIRECT], /^latchkey: unknown option '--redirect-url' \(did you mean --redirect-uri\?\); see latchkey clients add --help$/],
      // A kid (an RFC 7638 thumbprint, base64url) that starts with "-" reads as an option: the line says how to give it.
      [['keys', 'revoke', '-gtXczvLi7ZY'], /^latchkey: unknown option '-gtXczvLi7ZY'; a value that starts with "-" goes after "--": latchkey keys revoke -- -gtXczvLi7ZY; see latchkey keys revoke --help$/],
      // A client_id too (an operator's, or one registered before RFC 7591 ids avoided a leading "-"): the command to run keeps the options typed with it.
      [['clients', 'update', '-beZ5T9WPxAWR7', '--require-mfa'], /^latchkey: unknown option '-beZ5T9WPxAWR7'; a value that starts with "-" goes after "--": latchkey clients update --require-mfa -- -beZ5T9WPxAWR7; see latchkey clients update --help$/],
      // Not the engine's "redirect_uris must contain members", which names no flag.
      [['clients', 'add', '--client-id', 'x'], /^latchkey: --redirect-uri is required for an app people sign in to \(authorization_code\); a service takes --grant-type client_credentials, a device or CLI --device; see latchkey clients add --help$/],
      [['grants', 'revoke'], /^latchkey: give --user, --client or both; see latchkey grants revoke --help$/],
      [['registration', 'token', 'create', '--expires-in', 'soon'], /^latchkey: option '--expires-in <seconds>' argument 'soon' is invalid\. expected a positive number of seconds; see latchkey registration token create --help$/],
      // An initial access token that never ends by itself (its lifetime was unbounded: 2^53 seconds were taken).
      [['registration', 'token', 'create', '--expires-in', '9007199254740991'], /^latchkey: option '--expires-in <seconds>' argument '9007199254740991' is invalid\. expected at most 2592000 seconds \(30 days\); see latchkey registration token create --help$/],
      // Bounded as the WORKERS setting is (at most 256): 99999 was taken, and forked processes until the machine gave out (bad input and blips, ninth pass).
      [['serve', '--workers', '257'], /^latchkey: --workers: expected a number of processes from 0 \(one per core\) to 256, got "257"; see latchkey serve --help$/],
      [['serve', '--workers', '-1'], /^latchkey: --workers: expected a number of processes from 0 \(one per core\) to 256, got "-1"; see latchkey serve --help$/],
      [['users', 'add', 'eve', '--password-stdin', '--email', 'notanemail'], /^latchkey: --email: expected an email address, got "notanemail"; see latchkey users add --help$/],
      [['users', 'add', 'eve', '--password-stdin', '--locale', 'xx_yy!!'], /^latchkey: --locale: expected a BCP 47 language tag such as en-GB, got "xx_yy!!"; see latchkey users add --help$/],
    ];
    for (const [args, pattern] of cases) {
      const run = await latchkey(env, args, 'a long enough password');
      assert.equal(run.status, 1, args.join(' '));
      assert.ok(!run.stderr.includes('hunter2'), `a password given on the command line is not repeated: ${run.stderr}`);
      const lines = run.stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, pattern);
    }
    const users = JSON.parse((await latchkey(env, ['users', 'list'])).stdout) as unknown[];
    assert.deepEqual(users, [], 'nothing was created by a refused command');
  });

  it('a Redis that is not running is one line naming REDIS_URL and the connection\'s error, as serve says it', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const run = await latchkey({ ...env, REDIS_URL: url }, ['users', 'list']);
    assert.equal(run.status, 1);
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 2, run.stderr);
    // Not "the store is unreachable (Reached the max retries per request limit (which is 1). Refer to ...)".
    assert.match(lines[1]!, new RegExp(`^latchkey: REDIS_URL: cannot reach Redis ${url} \\(connect ECONNREFUSED 127\\.0\\.0\\.1:\\d+\\); expected a running Redis that accepts these credentials$`));
  });

  it("the README's CLI reference lists every command with exactly the options its --help has", async function () {
    this.timeout(180_000);
    const documented = cliReference();
    assert.ok(documented.size > 20, [...documented.keys()].join(', '));
    for (const [command, flags] of documented) {
      const run = await latchkey(env, [...command.split(' '), '--help']);
      assert.equal(run.status, 0, `latchkey ${command} --help: ${run.stderr}`);
      const options = new Set([...run.stdout.matchAll(/^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)/gm)].map((match) => match[1]!));
      options.delete('--help');
      assert.deepEqual([...options].sort(), [...flags].sort(), `latchkey ${command}: --help against the README`);
    }
  });

  it('latchkey --help says which store the commands act on, and how to choose Redis', async () => {
    const run = await latchkey(env, ['--help']);
    assert.equal(run.status, 0);
    assert.match(run.stdout, /give it the same REDIS_URL \(and REDIS_KEY_PREFIX, if set\) as the server/);
    assert.match(run.stdout, /without REDIS_URL it acts on the embedded store/);
  });

  it('latchkey --version prints the package version', async () => {
    const run = await latchkey(env, ['--version']);
    assert.equal(run.status, 0);
    assert.equal(run.stdout.trim(), (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  });

  it('apis grant to a client without the client_credentials grant type says its scopes are unusable (eighth newcomer pass)', async () => {
    for (const args of [
      ['clients', 'add', '--client-id', 'web-app', '--redirect-uri', 'https://app.example.com/callback'],
      ['clients', 'add', '--client-id', 'service', '--grant-type', 'client_credentials'],
      ['apis', 'add', 'https://api.example.com', '--scope', 'read'],
    ]) {
      const run = await latchkey(env, args);
      assert.equal(run.status, 0, run.stderr);
    }
    const web = await latchkey(env, ['apis', 'grant', '--client', 'web-app', '--api', 'https://api.example.com', '--scope', 'read']);
    assert.equal(web.status, 0, web.stderr);
    assert.match(web.stderr, /^latchkey: client "web-app" has no client_credentials grant type, so it cannot use these scopes .*--grant-type client_credentials/m);
    const service = await latchkey(env, ['apis', 'grant', '--client', 'service', '--api', 'https://api.example.com', '--scope', 'read']);
    assert.equal(service.status, 0, service.stderr);
    assert.doesNotMatch(service.stderr, /client_credentials/);
  });

  it('users passwd for an unknown user says so before anything about the password', async () => {
    const run = await latchkey(env, ['users', 'passwd', 'nosuch', '--password-stdin'], 'short');
    assert.equal(run.status, 1);
    assert.match(run.stderr, /^latchkey: no user "nosuch"$/m);
  });

  it('an ending on a store without a key ring (no server has started on it, or it lost everything) says that no session was ended and no app told', async () => {
    const added = await latchkey(env, ['users', 'add', 'ringless', '--password-stdin'], 'a long enough password');
    assert.equal(added.status, 0, added.stderr);
    for (const [args, stdin] of [[['users', 'passwd', 'ringless', '--password-stdin'], 'another long enough password'], [['users', 'disable', 'ringless']]] as const) {
      const run = await latchkey(env, [...args], stdin);
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stderr, /^latchkey: the store has no key ring \(no server has started on it, or it lost everything\): no session was ended here and no app told; .* restart the servers and run this again/m, args.join(' '));
    }
  });

  it('npm run sample-rp says clearly when Latchkey is unreachable, or what answers at ISSUER does not speak HTTP', async () => {
    const port = await freePort();
    const run = await sampleRp({ ISSUER: `http://localhost:${port}`, CLIENT_SECRET: 'x', PORT: '0' });
    assert.equal(run.status, 1);
    assert.equal(run.stderr.trim(), `cannot reach Latchkey at http://localhost:${port} (ECONNREFUSED): start it (npm start), or set ISSUER to where it runs`);
    // A database's port, say: the connection is taken and closed without an HTTP answer (Node's fetch: "fetch failed").
    const silent = createServer((socket) => socket.end());
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    const silentPort = (silent.address() as AddressInfo).port;
    try {
      const closed = await sampleRp({ ISSUER: `http://localhost:${silentPort}`, CLIENT_SECRET: 'x', PORT: '0' });
      assert.equal(closed.status, 1);
      assert.match(closed.stderr.trim(), new RegExp(`^no Latchkey at http://localhost:${silentPort}: what listens there does not speak HTTP \\(.+\\); set ISSUER to the issuer Latchkey logs at start`));
    } finally {
      silent.close();
    }
  });

  it('npm run sample-rp at an ISSUER where Latchkey is not (another program on the port, another spelling of the issuer) says what to set', async () => {
    // Latchkey moved to PORT=3001 because something else holds 3000, and ISSUER was left at its default.
    const other = createHttpServer((_req, res) => res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>Not found</h1>'));
    await new Promise<void>((done) => other.listen(0, '127.0.0.1', done));
    const otherPort = (other.address() as AddressInfo).port;
    const latchkeyServer = await startServer();
    try {
      const elsewhere = await sampleRp({ ISSUER: `http://localhost:${otherPort}`, CLIENT_SECRET: 'x', PORT: '0' });
      assert.equal(elsewhere.status, 1);
      // Not openid-client's "unexpected HTTP response status code".
      assert.equal(elsewhere.stderr.trim(), `no Latchkey at http://localhost:${otherPort}: its discovery document answered HTTP 404; set ISSUER to the issuer Latchkey logs at start ("latchkey is listening")`);
      const spelt = latchkeyServer.issuer.replace('localhost', '127.0.0.1');
      const respelt = await sampleRp({ ISSUER: spelt, CLIENT_SECRET: 'x', PORT: '0' });
      assert.equal(respelt.status, 1);
      // Not "discovered metadata issuer does not match the expected issuer".
      assert.equal(respelt.stderr.trim(), `Latchkey at ${spelt} calls itself ${latchkeyServer.issuer}: set ISSUER=${latchkeyServer.issuer} (the issuer must match exactly)`);
    } finally {
      other.close();
      await latchkeyServer.stop();
    }
  });

  it('the sample app started with a wrong CLIENT_SECRET says, after the sign-in, which setting to check', async () => {
    const rpPort = await freePort();
    const latchkeyServer = await startServer({
      clients: [{ client_id: 'demo', client_secret: 'the-secret-latchkey-printed-0123456789abcdef', redirect_uris: [`http://localhost:${rpPort}/callback`] }],
    });
    const rp = await startRelyingParty({ issuer: latchkeyServer.issuer, clientId: 'demo', clientSecret: 'a-secret-copied-from-elsewhere', publicUrl: (port) => `http://localhost:${port}`, title: 'Sample app', port: rpPort });
    try {
      await latchkeyServer.accounts.create('alice', PASSWORD);
      const agent = new Agent();
      const page = await signInSteps(agent, await agent.follow(`${rp.url}/login`), { username: 'alice', password: PASSWORD, login: 'required', consent: 'required' });
      assert.equal(page.status, 500);
      assert.match(page.html, /invalid_client: client authentication failed\. Check CLIENT_SECRET: it is the client_secret that latchkey clients add printed \(shown only once; lost, get a new one with npx latchkey clients rotate-secret demo --grace 0\); and CLIENT_ID: npx latchkey clients list shows the clients Latchkey has/);
    } finally {
      await rp.close();
      await latchkeyServer.stop();
    }
  });

  it('npm run sample-rp with a wrong CLIENT_SECRET (or an unknown CLIENT_ID) stops at start with one line saying what to set, not after a sign-in', async () => {
    const latchkeyServer = await startServer({
      clients: [{ client_id: 'demo', client_secret: 'the-secret-latchkey-printed-0123456789abcdef', redirect_uris: [REDIRECT] }],
    });
    try {
      for (const [clientId, secret] of [['demo', 'a-secret-copied-from-elsewhere'], ['demo2', 'the-secret-latchkey-printed-0123456789abcdef']] as const) {
        const run = await sampleRp({ ISSUER: latchkeyServer.issuer, CLIENT_ID: clientId, CLIENT_SECRET: secret, PORT: '0' });
        assert.equal(run.status, 1, run.stderr);
        assert.equal(
          run.stderr.trim(),
          `Latchkey refused CLIENT_ID=${clientId} with this CLIENT_SECRET (invalid_client): set CLIENT_SECRET to the client_secret that latchkey clients add printed for ${clientId} (lost: npx latchkey clients rotate-secret ${clientId} --grace 0 prints a new one), or, if Latchkey has no client ${clientId} (npx latchkey clients list shows its clients; an unknown client is refused alike), set CLIENT_ID to yours or add it (walkthrough, step 2)`,
        );
      }
    } finally {
      await latchkeyServer.stop();
    }
  });

  it('npm run sample-rp without CLIENT_SECRET (or with an empty one) says where its value comes from, and how to get one without jq', async () => {
    for (const secret of [undefined, '']) {
      const run = await sampleRp({ PORT: '0', CLIENT_ID: 'demo2', ...(secret === undefined ? {} : { CLIENT_SECRET: secret }) });
      assert.equal(run.status, 1);
      assert.equal(
        run.stderr.trim(),
        "set CLIENT_SECRET to the client_secret that 'latchkey clients add' printed for this app (the README's walkthrough, step 2, which needs jq; without it, install jq, and npx latchkey clients rotate-secret demo2 --grace 0 | jq -r .client_secret prints a new one)",
      );
    }
  });

  it('npm run sample-rp on a busy PORT (one exported for Latchkey) says so in one line: PORT is its own, and what to register', async () => {
    const latchkeyServer = await startServer();
    const busy = createServer();
    await new Promise<void>((done) => busy.listen(0, '127.0.0.1', done));
    const port = (busy.address() as AddressInfo).port;
    try {
      const run = await sampleRp({ ISSUER: latchkeyServer.url, CLIENT_SECRET: 'x', PORT: String(port) });
      assert.equal(run.status, 1);
      // Not "listen EADDRINUSE: address already in use 127.0.0.1:3000".
      assert.equal(run.stderr.trim(), `port ${port} is in use: PORT is the sample app's own port (default 8080), not Latchkey's; give it a free one, registered in the app's redirect URI http://localhost:<PORT>/callback (walkthrough, step 2)`);
    } finally {
      busy.close();
      await latchkeyServer.stop();
    }
  });
});
