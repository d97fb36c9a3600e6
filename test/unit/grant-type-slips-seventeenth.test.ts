/**
 * A grant type a slip away from one Latchkey offers (`client-credentials`, another case, the device
 * grant's short name for its URN) is refused naming the one meant, on every path that writes a
 * client (the registration policy: RFC 7591, the admin API, the developer page, `latchkey clients
 * add --grant-type`), where the refusal gave the list alone (docs/security-passes.md, "Looked at in
 * the seventeenth passes: the newcomer's first hour"). A page shows the rule alone (the value is the
 * registrant's words: a client metadata document's are shown on Latchkey's origin).
 */
import assert from 'node:assert/strict';
import { errors } from 'oidc-provider';
import { shownOf } from '../../src/http/errors.js';
import { DEVICE_CODE_GRANT, enforcePolicy, type RegistrationPolicy } from '../../src/registration/policy.js';

const GRANTS = ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT];
const POLICY: RegistrationPolicy = {
  authMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  privilegedScopes: [],
  offered: { grantTypes: GRANTS, algorithms: {} },
};

function refused(grantTypes: unknown[]): { description: string; shown: string | undefined } {
  try {
    enforcePolicy(POLICY, { redirect_uris: ['https://app.example.com/cb'], grant_types: grantTypes }, false);
  } catch (error) {
    assert.ok(error instanceof errors.InvalidClientMetadata, String(error));
    return { description: error.error_description!, shown: shownOf(error) };
  }
  assert.fail(`accepted ${JSON.stringify(grantTypes)}`);
}

describe('registration: a grant type a slip away from an offered one (seventeenth passes)', () => {
  const list = `grant_types can only contain: ${GRANTS.join(', ')}`;

  it('names the grant type meant', () => {
    const hyphen = refused(['client-credentials']);
    assert.equal(hyphen.description, `${list}; "client-credentials" is not one of them: did you mean client_credentials?`);
    assert.equal(hyphen.shown, list);
    assert.match(refused(['authorization_code', 'Refresh_Token']).description, /"Refresh_Token" is not one of them: did you mean refresh_token\?$/);
    assert.match(refused(['device_code']).description, /did you mean urn:ietf:params:oauth:grant-type:device_code\?$/);
  });

  it('another grant type gets the list alone', () => {
    assert.equal(refused(['password']).description, list);
    assert.equal(refused([7]).description, list);
  });
});
