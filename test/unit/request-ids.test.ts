/**
 * http/request-ids.ts: request ids are random version-4 UUIDs, as crypto.randomUUID() makes them.
 */
import assert from 'node:assert/strict';
import { newRequestId } from '../../src/http/request-ids.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it('are version-4 UUIDs, all different, over several batches', () => {
    const ids = Array.from({ length: 1000 }, () => newRequestId());
    for (const id of ids) assert.match(id, UUID_V4);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('spread their random bits over every hex digit (none stuck)', () => {
    const seen = Array.from({ length: 36 }, () => new Set<string>());
    for (let n = 0; n < 2000; n += 1) [...newRequestId()].forEach((char, i) => seen[i]!.add(char));
    for (const [i, chars] of seen.entries()) {
      const expected = [8, 13, 18, 23].includes(i) ? 1 : i === 14 ? 1 : i === 19 ? 4 : 16;
      assert.equal(chars.size, expected, `position ${i}: ${[...chars].join('')}`);
    }
  });
});
