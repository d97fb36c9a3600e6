/**
 * heldByClientNow (src/provider/resource-servers.ts): a person's access token introspects active only
 * while its client may still request every scope it holds; a store outage is not taken for "held".
 */
import assert from 'node:assert/strict';
import type { Client, Provider } from 'oidc-provider';
import { heldByClientNow } from '../../src/provider/resource-servers.js';

const engine = (find: (id: string) => Promise<unknown>) => ({ Client: { find } }) as unknown as Provider;
const token = { clientId: 'app', scope: 'openid email', clientCredentials: false };
/** An API introspecting the token: not its client. */
const api = { clientId: 'api' } as Client;

describe('unit: a person’s token is held to its client as registered now (introspection)', () => {
  it('holds while the client may request every scope; not once one was taken away', async () => {
    assert.equal(await heldByClientNow(engine(async () => ({ scope: 'openid email profile' })), api, token), true);
    assert.equal(await heldByClientNow(engine(async () => ({ scope: 'openid' })), api, token), false);
  });

  it('a refresh token holds while its client may keep offline access: offline_access requestable and the refresh_token grant allowed', async () => {
    const refresh = { clientId: 'app', scope: 'openid offline_access email', clientCredentials: false, refresh: { acr: 'pwd', mfaEverywhere: false } };
    const client = (scope: string, grantTypes = ['authorization_code', 'refresh_token'], metadata: Record<string, unknown> = {}) =>
      ({ clientId: 'app', scope, grantTypeAllowed: (type: string) => grantTypes.includes(type), metadata: () => metadata });
    // Its refresh is narrowed to what is left: email taken away alone does not end it.
    assert.equal(await heldByClientNow(engine(async () => client('openid offline_access')), api, refresh), true);
    assert.equal(await heldByClientNow(engine(async () => client('openid email')), api, refresh), false);
    assert.equal(await heldByClientNow(engine(async () => client('openid offline_access email', ['authorization_code'])), api, refresh), false);
  });

  it('a refresh token from a sign-in weaker than its client requires now does not hold (step-up)', async () => {
    const refresh = (acr: string, mfaEverywhere = false) => ({ clientId: 'app', scope: 'openid offline_access', clientCredentials: false, refresh: { acr, mfaEverywhere } });
    const client = (metadata: Record<string, unknown>) => ({ clientId: 'app', scope: 'openid offline_access', grantTypeAllowed: () => true, metadata: () => metadata });
    assert.equal(await heldByClientNow(engine(async () => client({ require_mfa: true })), api, refresh('pwd')), false);
    assert.equal(await heldByClientNow(engine(async () => client({ require_mfa: true })), api, refresh('mfa')), true);
    assert.equal(await heldByClientNow(engine(async () => client({})), api, refresh('pwd', true)), false);
    assert.equal(await heldByClientNow(engine(async () => client({})), api, refresh('pwd')), true);
  });

  it('a token issued before its client was made (a client of the id deleted, and the id given again) does not hold', async () => {
    const made = (clientIdIssuedAt?: number) => engine(async () => ({ scope: 'openid email', clientIdIssuedAt }));
    assert.equal(await heldByClientNow(made(1000), api, { ...token, iat: 999 }), false);
    assert.equal(await heldByClientNow(made(1000), api, { ...token }), false, 'a token without its time counts as before');
    assert.equal(await heldByClientNow(made(1000), api, { ...token, iat: 1000 }), true);
    assert.equal(await heldByClientNow(made(), api, { ...token, iat: 999 }), true, 'a client without its creation time (made before it was kept)');
  });

  it('a store outage is the request’s 503, never a token said to be held', async () => {
    const outage = new Error('Connection is closed.');
    await assert.rejects(heldByClientNow(engine(() => Promise.reject(outage)), api, token), outage);
  });

  it('a client that cannot be loaded holds nothing', async () => {
    assert.equal(await heldByClientNow(engine(() => Promise.reject(new Error('invalid_client_metadata'))), api, token), false);
  });
});
