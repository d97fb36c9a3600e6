/**
 * The README walkthrough's steps 4 and 5 as a newcomer does them, in Debian's Chromium: two sample
 * apps (`npm run sample-rp`, each its own process) on localhost:<port 1> and localhost:<port 2>,
 * registered with `latchkey clients add`, in one browser. Browsers keep cookies per host, not per
 * port, so the two apps' session cookies must have names of their own: under one name, signing in
 * at the second app signed the first out, and single sign-on looked broken. Then "Sign out
 * everywhere" at the first ends the second through back-channel logout, which it says on stdout.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ROOT } from '../../src/paths.js';
import { launchChromium, screenshots } from '../helpers/browser.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { startServer, testDir, testEnv, type TestServer } from '../helpers/server.js';

const PASSWORD = 'a long passphrase';

interface SampleApp {
  readonly url: string;
  /** Everything it wrote to stdout so far, by line. */
  lines(): string[];
  stop(): Promise<void>;
}

/** `PORT=… CLIENT_ID=… CLIENT_SECRET=… npm run sample-rp` (walkthrough steps 3 and 5), ready when it says where it listens. */
async function sampleApp(env: Record<string, string>): Promise<SampleApp> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'relying-party.ts')], {
    env: { PATH: process.env.PATH, NODE_NO_WARNINGS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  process.once('exit', () => child.kill('SIGKILL'));
  try {
    await eventually(async () => {
      if (child.exitCode !== null) throw new Error(`npm run sample-rp exited: ${stderr}`);
      assert.match(stdout, /^sample app on /m);
    }, 300);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url: `http://localhost:${env.PORT}`,
    lines: () => stdout.split('\n').filter(Boolean),
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('e2e (Chromium): the walkthrough\'s two sample apps on two ports of localhost, in one browser', function () {
  this.timeout(90_000);
  const dir = testDir();
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let demo: SampleApp;
  let demo2: SampleApp;
  let env: Record<string, string>;
  const shot = screenshots('walkthrough-two-apps');

  before(async () => {
    const port = await freePort();
    // Back-channel logout to apps on localhost needs the server started so (the walkthrough says when).
    const options = { dir, port, env: { OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true' } };
    server = await startServer(options);
    env = testEnv(dir, port, options);
    const added = await latchkey(env, ['users', 'add', 'alice', '--password-stdin', '--name', 'Alice', '--email', 'alice@example.com'], PASSWORD);
    assert.equal(added.status, 0, added.stderr);
    const app = async (clientId: string) => {
      const appPort = await freePort();
      const origin = `http://localhost:${appPort}`;
      const run = await latchkey(env, [
        'clients', 'add', '--client-id', clientId, '--name', clientId === 'demo' ? 'Sample app' : 'Second app',
        '--redirect-uri', `${origin}/callback`, '--post-logout-redirect-uri', `${origin}/signed-out`,
        '--backchannel-logout-uri', `${origin}/backchannel-logout`,
      ]);
      assert.equal(run.status, 0, run.stderr);
      const secret = (JSON.parse(run.stdout) as { client_secret: string }).client_secret;
      return sampleApp({ ISSUER: server.issuer, PORT: String(appPort), CLIENT_ID: clientId, CLIENT_SECRET: secret, TITLE: clientId });
    };
    demo = await app('demo');
    demo2 = await app('demo2');
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
  });

  after(async () => {
    await browser?.close();
    await demo?.stop();
    await demo2?.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const status = () => page.locator('#status').innerText();
  /** At `app`, "Sign in with Latchkey", and alice's username and password at Latchkey. */
  const signInWithPassword = async (app: SampleApp) => {
    await page.goto(app.url);
    await page.click('#signin');
    await page.fill('input[name="username"]', 'alice');
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button:has-text("Sign in")');
  };

  it('signed in at the first app, then at the second without the password: both stay signed in side by side', async () => {
    await signInWithPassword(demo);
    await page.click('button:has-text("Allow")');
    await page.waitForURL(`${demo.url}/`);
    assert.match(await status(), /Signed in as Alice/);

    await page.goto(demo2.url);
    await page.click('#signin');
    await page.waitForSelector('text=Allow access?');
    assert.equal(await page.locator('input[name="password"]').count(), 0, 'no password asked');
    await page.click('button:has-text("Allow")');
    await page.waitForURL(`${demo2.url}/`);
    assert.match(await status(), /Signed in as Alice/);
    await shot(page, 'demo2-signed-in');

    await page.goto(demo.url);
    assert.match(await status(), /Signed in as Alice/, 'the first app kept its session while the second signed in');
    await page.goto(demo2.url);
    assert.match(await status(), /Signed in as Alice/, 'and the second kept its own');
  });

  it('"Sign out everywhere" at the first app signs the second out too, and the second says so in one line', async () => {
    await page.goto(demo.url);
    await page.click('#signout');
    await page.click('button:has-text("Sign out everywhere")');
    await page.waitForURL(`${demo.url}/signed-out`);
    const said = await eventually(async () => {
      const lines = demo2.lines().filter((line) => line.startsWith('back-channel logout'));
      assert.equal(lines.length, 1, demo2.lines().join('\n'));
      return lines[0]!;
    });
    assert.match(said, /^back-channel logout: ended session sid=[\w-]+$/);
    await page.goto(demo2.url);
    assert.match(await status(), /Not signed in/, "the second app's session ended");
    await shot(page, 'demo2-signed-out-by-back-channel');
  });

  it("the CLI, run without the server's OUTBOUND_ALLOW_PRIVATE_NETWORKS (the walkthrough sets it on the server alone), disables a person signed in at an app on localhost: the app is told at once", async () => {
    await signInWithPassword(demo2);
    const allow = page.locator('button:has-text("Allow")');
    await Promise.race([page.waitForURL(`${demo2.url}/`), allow.waitFor().then(() => allow.click())]);
    await page.waitForURL(`${demo2.url}/`);
    assert.match(await status(), /Signed in as Alice/);
    const before = demo2.lines().filter((line) => line.startsWith('back-channel logout')).length;
    const run = await latchkey({ ...env, OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'false' }, ['users', 'disable', 'alice']);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /posting to apps on loopback and private addresses as the server at .* does \(its OUTBOUND_ALLOW_PRIVATE_NETWORKS\)/);
    await eventually(async () => assert.equal(demo2.lines().filter((line) => line.startsWith('back-channel logout')).length, before + 1, demo2.lines().join('\n')), 100);
    await page.goto(demo2.url);
    assert.match(await status(), /Not signed in/, "the app's session ended");
    assert.equal((await latchkey(env, ['users', 'enable', 'alice'])).status, 0);
  });
});
