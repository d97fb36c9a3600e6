/**
 * What ends when an operator takes API access away (apis/apis.ts GrantEndings): a client's grant
 * revoked ends the tokens it got for itself at that API, a scope taken from it those that carry the
 * scope (client_grant entries); an API
 * removed ends every token for it (an api entry), a scope taken out of an API that stays those that
 * carry the scope (scoped api entries). Both reach introspection at once and resource
 * servers through the feed, as a deleted client's tokens do.
 */
import type { GrantEndings } from '../apis/apis.js';
import type { RevocationList } from './list.js';

export function grantEndings(list: RevocationList): GrantEndings {
  return {
    clientGrantNarrowed: (clientId, identifier, scopes) => list.revokeClientGrant(clientId, identifier, scopes),
    apiRemoved: (identifier) => list.revokeApi(identifier),
    apiScopesTaken: (identifier, scopes) => list.revokeApiScopes(identifier, scopes),
    apiRemovedAt: (identifier) => list.apiRemovedAt(identifier),
  };
}
