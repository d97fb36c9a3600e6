/**
 * ops/logger.ts lineWriter: the request line written without pino's per-field assembly is the
 * line pino writes for the same fields, byte for byte, and pino writes it where it could not be.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pino } from 'pino';
import { createLogger, LineBatches, lineWriter, type LineFields } from '../../src/ops/logger.js';

/** A destination that keeps its lines. */
function capture() {
  const lines: string[] = [];
  return { lines, write: (line: string) => void lines.push(line) };
}
const withoutTime = (line: string) => line.replace(/,"time":\d+,/, ',"time":0,');

/** Strings without a lone surrogate (see lineWriter): any other character, ASCII control characters and quotes often. */
const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('"', '\\', '\u0000', '\u001f', '\n', '\u007f', 'é', '\u2028', 'a', '/'), maxLength: 30 }),
  fc.string({ minLength: 95, maxLength: 140 }),
);
const value = fc.oneof(text, fc.double(), fc.integer(), fc.constant(undefined));
const fields = fc.dictionary(fc.oneof(fc.constantFrom('requestId', 'path', 'ms', 'status', 'outcome', 'msg2'), fc.string({ maxLength: 8 })), value, { maxKeys: 12 });

describe('the request line (lineWriter)', () => {
  it('is pino’s line for the same fields, for any strings and numbers', () => {
    const ours = capture();
    const theirs = capture();
    const child = (dest: ReturnType<typeof capture>) => createLogger('info', dest).child({}, { redact: { paths: [], censor: '[redacted]' } });
    const write = lineWriter(child(ours), 'request');
    assert.equal(write.name, 'asPino');
    const reference = child(theirs);
    fc.assert(
      fc.property(fields, (sample: LineFields) => {
        write(sample);
        reference.info(sample, 'request');
        assert.equal(withoutTime(ours.lines.at(-1)!), withoutTime(theirs.lines.at(-1)!));
      }),
      { numRuns: 500 },
    );
    // The app's own line, its field order.
    write({ requestId: 'r-1', method: 'POST', path: '/token', status: 200, ms: 0.25, route: 'token', client_id: 'app', grant_type: undefined, outcome: 'ok' });
    assert.match(ours.lines.at(-1)!, /^\{"level":30,"time":\d+,"service":"latchkey","pid":\d+,"requestId":"r-1","method":"POST","path":"\/token","status":200,"ms":0\.25,"route":"token","client_id":"app","outcome":"ok","msg":"request"\}\n$/);
  });

  it('`written`: fields given as JSON.stringify writes them make the same line, and nothing below the level', () => {
    const ours = capture();
    const theirs = capture();
    const child = (dest: ReturnType<typeof capture>) => createLogger('info', dest).child({}, { redact: { paths: [], censor: '[redacted]' } });
    const write = lineWriter(child(ours), 'request');
    const reference = child(theirs);
    fc.assert(
      fc.property(fields, (sample: LineFields) => {
        const json = JSON.stringify(sample);
        fc.pre(json !== '{}');
        write.written!(json.slice(1, -1));
        reference.info(sample, 'request');
        assert.equal(withoutTime(ours.lines.at(-1)!), withoutTime(theirs.lines.at(-1)!));
      }),
      { numRuns: 300 },
    );
    const quiet = capture();
    const logger = createLogger('warn', quiet);
    lineWriter(logger, 'request').written!('"path":"/"');
    assert.deepEqual(quiet.lines, []);
  });

  it('writes nothing below the logger’s level', () => {
    const out = capture();
    const logger = createLogger('warn', out);
    lineWriter(logger, 'request')({ path: '/' });
    assert.deepEqual(out.lines, []);
    logger.level = 'info';
    lineWriter(logger, 'request')({ path: '/' });
    assert.equal(out.lines.length, 1);
  });

  it('goes through pino where pino would write another line (a hook, a mixin)', () => {
    const out = capture();
    const hooked = pino({ hooks: { streamWrite: (line) => line.replace('request', 'hooked') } }, out);
    const write = lineWriter(hooked, 'request');
    assert.equal(write.name, 'throughPino');
    assert.equal(write.written, undefined, 'the fields are given to pino');
    write({ path: '/' });
    assert.match(out.lines[0]!, /"msg":"hooked"/);
    assert.equal(lineWriter(pino({ mixin: () => ({ extra: 1 }) }, out), 'request').name, 'throughPino');
    assert.equal(lineWriter(pino({ messageKey: 'message' }, out), 'request').name, 'throughPino');
  });
});

describe('stdout batches (LineBatches)', () => {
  const recorder = () => {
    const writes: string[] = [];
    return { writes, write: (batch: string) => writes.push(batch) > 0, flush: () => {}, flushSync: () => {} };
  };

  it('hands over whole lines, at most 4 KiB at once, as soon as a batch reaches 3.5 KiB', () => {
    const stream = recorder();
    const batches = new LineBatches(stream);
    const lines = Array.from({ length: 200 }, (_, i) => `{"n":${i},"path":"/${'é'.repeat(i % 90)}"}\n`);
    for (const line of lines) batches.write(line);
    batches.flushSync();
    assert.equal(stream.writes.join(''), lines.join(''));
    for (const [i, batch] of stream.writes.entries()) {
      assert.ok(Buffer.byteLength(batch) <= 4096, `batch ${i} over 4 KiB`);
      assert.ok(batch.endsWith('\n'));
      // Each but the last reached 3.5 KiB or could not take the next line.
      if (i < stream.writes.length - 1) {
        const next = stream.writes[i + 1]!.slice(0, stream.writes[i + 1]!.indexOf('\n') + 1);
        assert.ok(Buffer.byteLength(batch) >= 3584 || Buffer.byteLength(batch + next) > 4096, `batch ${i} handed early`);
      }
    }
    assert.ok(stream.writes.length > 3);
  });

  it('a line over 4 KiB goes alone; what waits goes within 100 ms and at flush', async () => {
    const stream = recorder();
    const batches = new LineBatches(stream);
    batches.write('a\n');
    batches.write(`${'x'.repeat(5000)}\n`);
    assert.deepEqual(stream.writes, ['a\n', `${'x'.repeat(5000)}\n`]);
    batches.write('b\n');
    await new Promise((done) => setTimeout(done, 150));
    assert.deepEqual(stream.writes.at(-1), 'b\n');
    batches.write('c\n');
    batches.flush();
    assert.deepEqual(stream.writes.at(-1), 'c\n');
  });
});
