/**
 * The eighteenth newcomer pass (h4): the words a developer new to Latchkey types for what the CLI
 * names otherwise. Commander's nearest spelling sent `latchkey apps add` to `apis` (an API, not an
 * app: an app is a client here) and `latchkey tokens revoke` to `keys` (the signing keys). See
 * docs/security-passes.md, "the newcomer's first hour (h4)".
 */
import assert from 'node:assert/strict';
import { latchkey } from '../helpers/process.js';

describe('newcomer, eighteenth pass: the CLI', () => {
  it('an unknown command that is a word for something the CLI names otherwise says which command does it, never the nearest spelling', async function () {
    this.timeout(30_000);
    const cases: [string[], string][] = [
      [['apps', 'add'], "unknown command 'apps'; an app is a client here: latchkey clients add --client-id ID --redirect-uri URI (clients list, clients remove)"],
      [['app', 'list'], "unknown command 'app'; an app is a client here: latchkey clients add --client-id ID --redirect-uri URI (clients list, clients remove)"],
      [['Applications'], "unknown command 'Applications'; an app is a client here: latchkey clients add --client-id ID --redirect-uri URI (clients list, clients remove)"],
      [['tokens', 'revoke'], "unknown command 'tokens'; a person's or a client's tokens end with latchkey grants revoke --user USERNAME or --client ID; one token is revoked by its client at the revocation endpoint (RFC 7009, /token/revocation)"],
      [['revoke'], "unknown command 'revoke'; a person's or a client's tokens end with latchkey grants revoke --user USERNAME or --client ID; one token is revoked by its client at the revocation endpoint (RFC 7009, /token/revocation)"],
      [['people', 'add'], "unknown command 'people'; people are users here: latchkey users add USERNAME (users list, users disable)"],
      [['accounts'], "unknown command 'accounts'; people are users here: latchkey users add USERNAME (users list, users disable)"],
      [['start'], "unknown command 'start'; the server is latchkey serve (npm start in a checkout)"],
      [['rotate'], "unknown command 'rotate'; latchkey keys rotate rotates the signing keys, latchkey clients rotate-secret ID a client's secret"],
      [['config'], "unknown command 'config'; settings are config/default.yaml, config/<NODE_ENV>.yaml, CONFIG_FILE and environment variables, read at start (README, Configuration)"],
    ];
    const runs = await Promise.all(cases.map(([args]) => latchkey({}, args)));
    for (const [i, [args, said]] of cases.entries()) {
      assert.equal(runs[i]!.status, 1, args.join(' '));
      assert.equal(runs[i]!.stdout, '');
      assert.equal(runs[i]!.stderr, `latchkey: ${said}; see latchkey --help\n`, args.join(' '));
    }
    // The same within a group: another tool's verb for one of ours (commander said "did you mean update?" for clients create).
    const verbs: [string[], string][] = [
      [['clients', 'create', '--client-id', 'x'], "unknown command 'create'; did you mean latchkey clients add?; see latchkey clients --help"],
      [['clients', 'delete', 'x'], "unknown command 'delete'; did you mean latchkey clients remove?; see latchkey clients --help"],
      [['clients', 'rotate', 'x'], "unknown command 'rotate'; did you mean latchkey clients rotate-secret?; see latchkey clients --help"],
      [['users', 'show'], "unknown command 'show'; did you mean latchkey users list?; see latchkey users --help"],
      [['users', 'password', 'alice'], "unknown command 'password'; did you mean latchkey users passwd?; see latchkey users --help"],
      [['apis', 'create', 'https://api.example.com'], "unknown command 'create'; did you mean latchkey apis add?; see latchkey apis --help"],
      [['registration', 'token', 'new'], "unknown command 'new'; did you mean latchkey registration token create?; see latchkey registration token --help"],
      [['keys', 'generate'], "unknown command 'generate'; a new signing key is made by latchkey keys rotate (the next key signs, and a new next key is published); see latchkey keys --help"],
    ];
    const verbRuns = await Promise.all(verbs.map(([args]) => latchkey({}, args)));
    for (const [i, [args, said]] of verbs.entries()) assert.equal(verbRuns[i]!.stderr, `latchkey: ${said}\n`, args.join(' '));
    // A slip of a command's own name keeps commander's suggestion, and a word of no meaning here says only that.
    assert.equal((await latchkey({}, ['client', 'list'])).stderr, "latchkey: unknown command 'client' (did you mean clients?); see latchkey --help\n");
    assert.equal((await latchkey({}, ['frob'])).stderr, "latchkey: unknown command 'frob'; see latchkey --help\n");
  });
});
