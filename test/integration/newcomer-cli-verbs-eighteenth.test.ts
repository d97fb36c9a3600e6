/**
 * The eighteenth passes' review of 593f89f1 (h13): within a group, another tool's verb for one of our
 * commands names ours. `rotate`, the other tools' word for a client secret's rotation, is the name of
 * `keys rotate` too, and was taken as the command of every word for a new secret: `latchkey keys
 * new-secret` (a newcomer after the key ring's secret, KEYS_SECRETS) was told "did you mean latchkey
 * keys rotate?", the signing keys' rotation. See docs/security-passes.md, "review of the commits named
 * in your topic (h13)".
 */
import assert from 'node:assert/strict';
import { latchkey } from '../helpers/process.js';

describe('newcomer, eighteenth passes (h13): a word for a new secret is no signing key rotation', () => {
  it('keys new-secret, secret and reset-secret name no keys rotate; clients rotate and new-secret still name clients rotate-secret', async function () {
    this.timeout(30_000);
    const words = ['new-secret', 'secret', 'reset-secret'];
    const runs = await Promise.all([...words.map((word) => latchkey({}, ['keys', word])), latchkey({}, ['clients', 'rotate', 'x']), latchkey({}, ['clients', 'new-secret', 'x'])]);
    for (const [i, word] of words.entries()) {
      assert.equal(runs[i]!.status, 1, word);
      assert.match(runs[i]!.stderr, new RegExp(`^latchkey: unknown command '${word}'`), word);
      assert.doesNotMatch(runs[i]!.stderr, /keys rotate/, word);
    }
    assert.equal(runs[3]!.stderr, "latchkey: unknown command 'rotate'; did you mean latchkey clients rotate-secret?; see latchkey clients --help\n");
    assert.equal(runs[4]!.stderr, "latchkey: unknown command 'new-secret'; did you mean latchkey clients rotate-secret?; see latchkey clients --help\n");
  });
});
