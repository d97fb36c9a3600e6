/**
 * ops/logger.ts createServerLogger: `latchkey serve`'s log as configured (log.format): JSON lines to
 * a pipe or a file, readable lines at a terminal, the same redaction either way.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createServerLogger, lineWriter } from '../../src/ops/logger.js';

/** A stream that keeps what is written to it, said to be a terminal or not. */
function output(isTTY: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY });
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, lines: () => text.trimEnd().split('\n') };
}
const settled = () => new Promise((resolve) => setImmediate(resolve));

/** What the server writes at start, a secret by mistake, and a request's line. */
async function write(logger: Awaited<ReturnType<typeof createServerLogger>>): Promise<void> {
  logger.info({ port: 3000, issuer: 'http://localhost:3000' }, 'latchkey is listening');
  logger.warn({ password: 'hunter2', client_secret: 'do-not-print-me' }, 'careful');
  lineWriter(logger, 'request')({ method: 'GET', path: '/jwks', status: 200 });
  await settled();
}

describe("the server's log format (createServerLogger)", () => {
  it('auto at a terminal: one readable line per entry (time, level, message, fields), the request line too, secrets redacted', async () => {
    const out = output(true);
    await write(await createServerLogger('info', 'auto', out.stream));
    const lines = out.lines();
    assert.equal(lines.length, 3, lines.join('\n'));
    assert.match(lines[0]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: latchkey is listening \{"port":3000,"issuer":"http:\/\/localhost:3000"\}$/);
    assert.match(lines[1]!, /^\[[\d:.]+\] WARN: careful \{"password":"\[redacted\]","client_secret":"\[redacted\]"\}$/);
    assert.match(lines[2]!, /^\[[\d:.]+\] INFO: request \{"method":"GET","path":"\/jwks","status":200\}$/);
  });

  it('auto to a pipe or a file, and json at a terminal: JSON lines, secrets redacted', async () => {
    for (const [format, isTTY] of [['auto', false], ['json', true]] as const) {
      const out = output(isTTY);
      await write(await createServerLogger('info', format, out.stream));
      const entries = out.lines().map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.deepEqual(entries.map((entry) => entry.msg), ['latchkey is listening', 'careful', 'request'], `${format}, terminal: ${isTTY}`);
      assert.equal(entries[0]!.issuer, 'http://localhost:3000');
      assert.equal(entries[1]!.password, '[redacted]');
      assert.equal(entries[2]!.path, '/jwks');
    }
  });

  it('pretty to a pipe: readable lines all the same (no colours), and the level is kept', async () => {
    const out = output(false);
    const logger = await createServerLogger('warn', 'pretty', out.stream);
    logger.info('not at warn');
    logger.error({ err: new Error('boom') }, 'failed');
    await settled();
    const text = out.lines().join('\n');
    assert.match(text, /^\[[\d:.]+\] ERROR: failed /);
    assert.ok(!text.includes('not at warn') && !text.includes('\u001b['), text);
  });
});
