/**
 * Review of the sixteenth passes' merged changes (h12): docs/security-passes.md, "Looked at in the
 * sixteenth passes: review of the merged changes (h12)".
 *
 * (Its review of the CLI's compile cache is gone with the cache: docs/security-passes.md says why.)
 *
 * A CONFIG_FILE written as a .env was said to be refused "never [printing] a value", but only when
 * YAML read it as one string: a value with ": " on any line (`TITLE=Latchkey: sign in`) made it no
 * YAML at all, and the error quoted its first line, `("COOKIE_KEYS=<the secret>")`; a single line
 * `KEYS_SECRETS=abc: def` was a mapping, refused as the unknown setting "KEYS_SECRETS=abc". Both
 * are the .env refusal now, and a YAML error never quotes a NAME=value line.
 */
import assert from 'node:assert/strict';
import { refusedConfigFile } from '../helpers/config-files.js';

describe('review of the sixteenth passes (h12): a CONFIG_FILE written as a .env never prints a value', function () {
  const SECRET = 'a-cookie-secret-nobody-may-read';
  const refusal = refusedConfigFile('.env');
  const DOT_ENV = 'FILE: expected a mapping of settings (as config/default.yaml writes them), not NAME=value lines as in a .env, which are environment variables: export them, or write each as YAML';

  it('a .env with ": " in a later value (no YAML at all) is refused as a .env, its first line not quoted', () => {
    const said = refusal(`COOKIE_KEYS=${SECRET}\nTITLE=Latchkey: sign in\n`);
    assert.doesNotMatch(said, new RegExp(SECRET));
    assert.equal(said, `${DOT_ENV}: COOKIE_KEYS is written cookie: {keys: …}`);
    assert.doesNotMatch(refusal(`# settings\nexport KEYS_SECRETS=${SECRET}\nREDIS_URL=redis://:pw@redis: 6379\n`), new RegExp(`${SECRET}|pw@`));
  });

  it('a one-line .env whose value has ": " (YAML reads a mapping) is refused as a .env, not as the unknown setting "NAME=value"', () => {
    const said = refusal('KEYS_SECRETS=abc-secret: def\n');
    assert.doesNotMatch(said, /abc-secret|: def/);
    assert.equal(said, `${DOT_ENV}: KEYS_SECRETS is written keys: {secrets: …}`);
  });

  it('a YAML error never quotes a NAME=value line (a .env line pasted into a YAML file); other lines as before', () => {
    const said = refusal(`port: 3001\nCOOKIE_KEYS=${SECRET}\n  bad: [\n`);
    assert.doesNotMatch(said, new RegExp(SECRET));
    assert.match(said, /^FILE: not valid YAML: /);
    assert.match(refusal('port: 3001: x\n'), /^FILE: not valid YAML: .*\("port: 3001: x"\)$/);
  });
});
