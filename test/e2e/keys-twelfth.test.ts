/**
 * Signing keys rotating without anyone noticing, twelfth fresh-eyes passes (docs/security-passes.md,
 * "Looked at in the twelfth fresh-eyes passes of 2026-12-07: signing keys rotate without anyone
 * noticing"): a kid names one key, in the ring and so in the JWKS.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey } from '../../src/keyring/keyring.js';
import { eventually } from '../helpers/eventually.js';
import { latchkey, serveProcess } from '../helpers/process.js';
import { freePort } from '../helpers/redis.js';
import { testDir } from '../helpers/server.js';

describe('e2e: a key ring naming one kid twice (twelfth fresh-eyes passes)', function () {
  this.timeout(60_000);
  const dir = testDir();
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is refused with one line naming the kid, by serve and by the CLI (before: serve ended with the engine\'s stack trace, the CLI took it)', async () => {
    const keys = join(dir, 'keys');
    mkdirSync(keys, { recursive: true });
    // An operator's provisioned ring: the current key copied in as the next one too.
    const current = await generateKey(2048, 'current');
    const { activatedAt: _activatedAt, ...asNext } = current;
    writeFileSync(join(keys, 'keyring.json'), JSON.stringify({ version: 1, keys: [current, { ...asNext, state: 'next' }] }), { mode: 0o600 });
    const env = { PORT: String(await freePort()), METRICS_ENABLED: 'false', LOG_LEVEL: 'silent', EMBEDDED_FILE: join(dir, 'store.json'), KEYS_DIR: keys };
    for (const args of [['keys', 'list'], ['serve']]) {
      const run = await latchkey(env, args);
      assert.equal(run.status, 1, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      const lines = run.stderr.trim().split('\n').filter((line) => !line.startsWith('latchkey: acting on'));
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, new RegExp(`keyring\\.json holds the key ${current.kid} twice`));
    }
  });

  it('written under a running server, is not taken: its JWKS keeps one entry per kid and it says why (before: it served the kid twice, where oauth4webapi and openid-client find "multiple applicable keys" and refuse every token the key signs)', async () => {
    const keys = join(dir, 'running-keys');
    const env = { PORT: String(await freePort()), METRICS_ENABLED: 'false', LOG_LEVEL: 'warn', EMBEDDED_FILE: join(dir, 'running-store.json'), KEYS_DIR: keys, KEYS_REFRESH_INTERVAL: '0.2', KEYS_PUBLISH_LEAD: '1' };
    const server = await serveProcess(env);
    try {
      const ring = JSON.parse(readFileSync(join(keys, 'keyring.json'), 'utf8')) as { version: 1; keys: { kid: string; state: string }[] };
      const current = ring.keys.find((key) => key.state === 'current')!;
      // An operator's hand edit: the current key pasted in again as a retired one.
      writeFileSync(join(keys, 'keyring.json'), JSON.stringify({ ...ring, keys: [...ring.keys, { ...current, state: 'retired', retiredAt: new Date().toISOString() }] }));
      await eventually(async () => assert.match(server.stdout() + server.stderr(), new RegExp(`holds the key ${current.kid} twice`)), 100);
      const kids = ((await (await fetch(`${server.url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
      assert.equal(kids.length, new Set(kids).size, `one entry per kid: ${kids.join(', ')}`);
    } finally {
      await server.stop();
    }
  });

  it('read half-written, then whole but unusable: both reasons are said (before: once per outage, so only "not JSON", which was no longer true; sixteenth passes)', async () => {
    const keys = join(dir, 'half-keys');
    const env = { PORT: String(await freePort()), METRICS_ENABLED: 'false', LOG_LEVEL: 'warn', EMBEDDED_FILE: join(dir, 'half-store.json'), KEYS_DIR: keys, KEYS_REFRESH_INTERVAL: '0.2', KEYS_PUBLISH_LEAD: '1' };
    const server = await serveProcess(env);
    try {
      const text = readFileSync(join(keys, 'keyring.json'), 'utf8');
      const ring = JSON.parse(text) as { version: 1; keys: { kid: string; state: string }[] };
      const current = ring.keys.find((key) => key.state === 'current')!;
      // An editor's save caught half-way, then finished with the current key pasted in again.
      writeFileSync(join(keys, 'keyring.json'), text.slice(0, text.length >> 1));
      await eventually(async () => assert.match(server.stdout() + server.stderr(), /keyring\.json is not a Latchkey key ring \(not JSON\)/), 100);
      writeFileSync(join(keys, 'keyring.json'), JSON.stringify({ ...ring, keys: [...ring.keys, { ...current, state: 'retired', retiredAt: new Date().toISOString() }] }));
      await eventually(async () => assert.match(server.stdout() + server.stderr(), new RegExp(`holds the key ${current.kid} twice`)), 100);
    } finally {
      await server.stop();
    }
  });
});
