/**
 * resourceServerInfo for a client acting for itself works out what a grant holds at an API once per
 * API and grant as read (issue 18): the same answer while both are unchanged, and never an answer
 * made of an API or a grant changed since (Apis parses each change into new objects).
 */
import assert from 'node:assert/strict';
import type { Client, KoaContextWithOIDC } from 'oidc-provider';
import type { ApiDefinition, Apis, ClientGrant } from '../../src/apis/apis.js';
import { resourceServerInfo } from '../../src/provider/resource-servers.js';

const API = 'https://api.example.com/';
const client = { clientId: 'svc' } as Client;
const request = (scope: string) => ({ oidc: { route: 'token', params: { grant_type: 'client_credentials', scope } } }) as unknown as KoaContextWithOIDC;

describe('resourceServerInfo (client_credentials)', () => {
  let api: ApiDefinition;
  let grant: ClientGrant | undefined;
  const apis = { find: async () => api, grantAt: async () => grant } as unknown as Apis;
  const refusal = (scope: string) => resourceServerInfo(apis, request(scope), API, client).then(() => undefined, (error: { error?: string }) => error.error);

  beforeEach(() => {
    api = Object.freeze({ identifier: API, scopes: Object.freeze(['read', 'write', 'admin']), format: 'opaque' as const, accessTokenTTL: 300 });
    grant = Object.freeze({ scopes: Object.freeze(['write', 'read']) });
  });

  it('gives the same answer while the API and the grant are unchanged', async () => {
    const first = await resourceServerInfo(apis, request('read'), API, client);
    assert.deepEqual(first, { audience: API, scope: 'read write', accessTokenFormat: 'opaque', accessTokenTTL: 300 });
    assert.equal(await resourceServerInfo(apis, request('write read'), API, client), first);
    assert.equal(await refusal('admin'), 'invalid_scope');
  });

  it('never answers from a grant or an API changed since', async () => {
    await resourceServerInfo(apis, request('read'), API, client);
    grant = Object.freeze({ scopes: Object.freeze(['read']) });
    assert.equal(await refusal('write'), 'invalid_scope');
    assert.equal((await resourceServerInfo(apis, request('read'), API, client)).scope, 'read');
    api = Object.freeze({ ...api, scopes: Object.freeze(['write']), format: 'jwt' as const });
    assert.equal(await refusal('read'), 'invalid_scope', 'a scope taken out of the API');
    grant = Object.freeze({ scopes: Object.freeze(['read', 'write']) });
    assert.deepEqual(await resourceServerInfo(apis, request('write'), API, client), { audience: API, scope: 'write', accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg: 'RS256' } } });
    grant = undefined;
    assert.equal(await refusal('write'), 'invalid_scope', 'a grant revoked');
  });
});
