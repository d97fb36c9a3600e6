/**
 * Which client assertion audiences name us (src/provider/client-assertions.ts): the issuer
 * identifier, alone or beside our own endpoint URLs; never an endpoint URL alone, never anyone
 * else beside us (audience injection, draft-ietf-oauth-rfc7523bis).
 */
import assert from 'node:assert/strict';
import { namesOurIssuer } from '../../src/provider/client-assertions.js';

const ISSUER = 'https://id.example.test';
const OURS = new Set([ISSUER, `${ISSUER}/token`, `${ISSUER}/token/introspection`]);

describe('client assertions: the audience names our issuer', () => {
  it('the issuer, as a string or in an array beside our own endpoint URLs', () => {
    assert.equal(namesOurIssuer(ISSUER, ISSUER, OURS), true);
    assert.equal(namesOurIssuer([ISSUER], ISSUER, OURS), true);
    assert.equal(namesOurIssuer([ISSUER, `${ISSUER}/token`], ISSUER, OURS), true);
    assert.equal(namesOurIssuer([`${ISSUER}/token/introspection`, ISSUER], ISSUER, OURS), true);
  });

  it('not an endpoint URL alone, another spelling of the issuer, or anyone else beside it', () => {
    for (const aud of [`${ISSUER}/token`, [`${ISSUER}/token`], [`${ISSUER}/token`, `${ISSUER}/token/introspection`], `${ISSUER}/`, 'https://ID.example.test', [ISSUER, 'https://evil.example.test'], ['https://evil.example.test', ISSUER], [ISSUER, 42], [ISSUER, null], [], undefined, 42, { aud: ISSUER }]) {
      assert.equal(namesOurIssuer(aud, ISSUER, OURS), false, JSON.stringify(aud));
    }
  });

  it('explicitly typed (client-authentication+jwt): the issuer alone', () => {
    assert.equal(namesOurIssuer(ISSUER, ISSUER, OURS, true), true);
    assert.equal(namesOurIssuer([ISSUER], ISSUER, OURS, true), true);
    assert.equal(namesOurIssuer([ISSUER, `${ISSUER}/token`], ISSUER, OURS, true), false);
  });
});
