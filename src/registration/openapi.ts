/** The OpenAPI 3.1 description of the admin API, served at /admin/openapi.json. */

import { MIN_CLIENT_SECRET_LENGTH } from './policy.js';
import { MAX_ENTRY_LENGTH, MAX_LIST_ENTRIES } from './metadata-limits.js';

const error = { $ref: '#/components/responses/Error' };
const unauthorized = { $ref: '#/components/responses/Unauthorized' };
const forbidden = { $ref: '#/components/responses/Forbidden' };
const notFound = { $ref: '#/components/responses/NotFound' };
const read = [{ adminToken: ['admin:read'] }];
const write = [{ adminToken: ['admin'] }];
const clientId = { name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'the client_id' };
const identifier = { name: 'identifier', in: 'path', required: true, schema: { type: 'string' }, description: "the API's identifier (a URI), URL-encoded" };
const apiParameter = { name: 'api', in: 'path', required: true, schema: { type: 'string' }, description: "the API's identifier (a URI), URL-encoded" };
const username = { name: 'username', in: 'path', required: true, schema: { type: 'string' } };
const json = (schema: object, description = 'OK') => ({ description, content: { 'application/json': { schema } } });

export function openApiDocument(issuer: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Latchkey admin API',
      version: '1',
      description:
        'Clients, users, APIs, client grants and upstream identity providers of this Latchkey. Authenticate with an access token for the resource ' +
        `"${issuer}/admin", obtained with the client_credentials grant by a client an operator granted ` +
        'the "admin" (read and write) or "admin:read" scope at that API (latchkey apis grant). Tokens issued to people are never accepted. ' +
        'A request body is application/json in UTF-8 (no other +json type): one of another type is refused with 415, never read as none.',
    },
    servers: [{ url: `${issuer}/admin` }],
    security: read,
    paths: {
      '/clients': {
        get: { operationId: 'listClients', summary: 'List clients (without secrets)', security: read, responses: { 200: json({ type: 'array', items: { $ref: '#/components/schemas/Client' } }), 401: unauthorized, 403: forbidden } },
        post: {
          operationId: 'createClient',
          summary: 'Register a client; a confidential client gets a generated secret, shown only in this response',
          security: write,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Client' } } } },
          responses: { 201: json({ $ref: '#/components/schemas/Client' }), 400: error, 401: unauthorized, 403: forbidden, 409: error },
        },
      },
      '/clients/{id}': {
        parameters: [clientId],
        get: { operationId: 'getClient', summary: 'One client (without its secret)', security: read, responses: { 200: json({ $ref: '#/components/schemas/Client' }), 401: unauthorized, 403: forbidden, 404: notFound } },
        put: {
          operationId: 'updateClient',
          summary: "Replace a client's metadata; its secret stays unless the body names one, which replaces it with no grace (the old secret, one still in a rotation's grace, and the tokens the client got for itself with them end at once)",
          security: write,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Client' } } } },
          // 409: the client was changed meanwhile (a secret rotated, say), or is defined in the configuration; nothing was written.
          responses: { 200: json({ $ref: '#/components/schemas/Client' }), 400: error, 401: unauthorized, 403: forbidden, 404: notFound, 409: error },
        },
        delete: { operationId: 'deleteClient', summary: 'Delete a client; its tokens stop working (409: a client of the configuration, changed there)', security: write, responses: { 204: { description: 'deleted' }, 401: unauthorized, 403: forbidden, 404: notFound, 409: error } },
      },
      '/clients/{id}/secret': {
        parameters: [clientId],
        post: {
          operationId: 'rotateClientSecret',
          summary: 'Generate a new secret; the previous one keeps working for the configured grace period, or less if asked (0: it stops at once)',
          security: write,
          requestBody: {
            required: false,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  additionalProperties: false,
                  properties: { previous_secret_valid_for: { type: 'integer', minimum: 0, description: 'seconds, at most the configured grace (0: the old secret leaked; the tokens the client got for itself end too)' } },
                },
              },
            },
          },
          responses: {
            200: json({
              type: 'object',
              required: ['client_id', 'client_secret', 'previous_secret_valid_for'],
              properties: {
                client_id: { type: 'string' },
                client_secret: { type: 'string' },
                previous_secret_valid_for: { type: 'integer', description: 'seconds' },
                registration_access_token: { type: 'string', description: 'for a client registered by RFC 7591: its new RFC 7592 token (the old ones ended)' },
              },
            }),
            400: error,
            401: unauthorized,
            403: forbidden,
            404: notFound,
            409: error,
          },
        },
      },
      '/clients/{id}/grants': {
        parameters: [clientId],
        get: {
          operationId: 'listClientGrants',
          summary: 'What an operator granted this client, per API identifier',
          security: read,
          responses: { 200: json({ type: 'object', additionalProperties: { $ref: '#/components/schemas/Grant' } }), 401: unauthorized, 403: forbidden, 404: notFound },
        },
      },
      '/clients/{id}/grants/{api}': {
        parameters: [clientId, apiParameter],
        put: {
          operationId: 'setClientGrant',
          summary: "Set the client's grant at an API: client_credentials scopes, introspection, default API",
          security: write,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Grant' } } } },
          responses: { 200: json({ $ref: '#/components/schemas/Grant' }), 400: error, 401: unauthorized, 403: forbidden, 404: notFound, 409: error },
        },
        delete: {
          operationId: 'revokeClientGrant',
          summary: "Revoke the client's grant at an API; its next token request and privileged calls are refused (409: what the configuration's grant gives, changed there)",
          security: write,
          responses: { 204: { description: 'revoked' }, 401: unauthorized, 403: forbidden, 404: notFound, 409: error },
        },
      },
      '/apis': {
        get: { operationId: 'listApis', summary: 'List APIs (built in, configured, stored)', security: read, responses: { 200: json({ type: 'array', items: { $ref: '#/components/schemas/Api' } }), 401: unauthorized, 403: forbidden } },
        post: {
          operationId: 'createApi',
          summary: 'Register an API (resource server); no client gets its scopes until granted',
          security: write,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Api' } } } },
          responses: { 201: json({ $ref: '#/components/schemas/Api' }), 400: error, 401: unauthorized, 403: forbidden, 409: error },
        },
      },
      '/apis/{identifier}': {
        parameters: [identifier],
        delete: { operationId: 'deleteApi', summary: 'Remove a stored API and every grant at it', security: write, responses: { 204: { description: 'removed' }, 401: unauthorized, 403: forbidden, 404: notFound, 409: error } },
      },
      '/users': {
        get: { operationId: 'listUsers', summary: 'List users', security: read, responses: { 200: json({ type: 'array', items: { $ref: '#/components/schemas/User' } }), 401: unauthorized, 403: forbidden } },
        post: {
          operationId: 'createUser',
          summary: 'Create a user',
          security: write,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/NewUser' } } } },
          responses: { 201: json({ $ref: '#/components/schemas/User' }), 400: error, 401: unauthorized, 403: forbidden, 409: error },
        },
      },
      '/users/{username}/disable': {
        parameters: [username],
        post: { operationId: 'disableUser', summary: 'Stop a user from signing in: their sessions end (apps with back-channel logout are told), their grants and tokens are revoked, their remembered consents forgotten; everything issued to them up to now ends first, in one step, so a failure half-way (503: ask again) leaves none of it working, enabled again or not', security: write, responses: { 200: json({ $ref: '#/components/schemas/User' }), 401: unauthorized, 403: forbidden, 404: notFound } },
      },
      '/users/{username}/enable': {
        parameters: [username],
        post: { operationId: 'enableUser', summary: 'Allow a disabled user to sign in again', security: write, responses: { 200: json({ $ref: '#/components/schemas/User' }), 401: unauthorized, 403: forbidden, 404: notFound } },
      },
      '/upstreams': {
        get: { operationId: 'listUpstreams', summary: 'List upstream identity providers (without secrets)', security: read, responses: { 200: json({ type: 'array', items: { $ref: '#/components/schemas/Upstream' } }), 401: unauthorized, 403: forbidden } },
        post: {
          operationId: 'createUpstream',
          summary: 'Add an upstream identity provider; its client secret is sealed at rest and never returned',
          security: write,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/NewUpstream' } } } },
          responses: { 201: json({ $ref: '#/components/schemas/Upstream' }), 400: error, 401: unauthorized, 403: forbidden, 409: error },
        },
      },
      '/upstreams/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: "the upstream's id" }],
        delete: { operationId: 'deleteUpstream', summary: 'Remove an upstream identity provider: sign-in through it stops, and the sessions it signed in end with the grants they made, as do the grants made with a sign-in through it whose session ended already (the accounts it made stay)', security: write, responses: { 204: { description: 'removed' }, 401: unauthorized, 403: forbidden, 404: notFound } },
      },
      '/users/{username}/mfa': {
        parameters: [username],
        get: { operationId: 'getUserSecondFactors', summary: "A user's second factors (passkeys, authenticator app, recovery codes left), without secrets", security: read, responses: { 200: json({ $ref: '#/components/schemas/SecondFactors' }), 401: unauthorized, 403: forbidden, 404: notFound } },
      },
      '/users/{username}/mfa/reset': {
        parameters: [username],
        post: { operationId: 'resetUserSecondFactors', summary: "Remove every second factor of a user (e.g. a lost phone) and end the sessions signed in with one, with their grants and the consents those were made under: they sign in with their password and set one up again", security: write, responses: { 200: json({ $ref: '#/components/schemas/SecondFactors' }), 401: unauthorized, 403: forbidden, 404: notFound } },
      },
      '/openapi.json': {
        get: { operationId: 'openApi', summary: 'This document', security: [], responses: { 200: json({ type: 'object' }) } },
      },
    },
    components: {
      securitySchemes: {
        adminToken: {
          type: 'oauth2',
          flows: { clientCredentials: { tokenUrl: `${issuer}/token`, scopes: { admin: 'read and change clients and users', 'admin:read': 'read clients and users' } } },
        },
      },
      schemas: {
        Client: {
          type: 'object',
          description: 'OAuth client metadata (RFC 7591 names)',
          required: ['client_id'],
          properties: {
            client_id: { type: 'string' },
            client_secret: { type: 'string', minLength: MIN_CLIENT_SECRET_LENGTH, description: `generated unless given when the client is created (a chosen one: at least ${MIN_CLIENT_SECRET_LENGTH} random characters, URL-safe ones for clients that send it in a Basic header as it is, e.g. openssl rand -hex 32); only in the response that creates it` },
            client_name: { type: 'string' },
            redirect_uris: { type: 'array', maxItems: MAX_LIST_ENTRIES.redirect_uris, items: { type: 'string', format: 'uri', maxLength: MAX_ENTRY_LENGTH } },
            post_logout_redirect_uris: { type: 'array', maxItems: MAX_LIST_ENTRIES.post_logout_redirect_uris, items: { type: 'string', format: 'uri', maxLength: MAX_ENTRY_LENGTH } },
            grant_types: { type: 'array', items: { type: 'string' } },
            response_types: { type: 'array', items: { type: 'string' } },
            token_endpoint_auth_method: { type: 'string', enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] },
            application_type: { type: 'string', enum: ['web', 'native'] },
            scope: { type: 'string' },
            owner: { type: 'string', description: 'the sub of the developer who registered it on the developer page' },
            require_pushed_authorization_requests: { type: 'boolean', description: 'its authorization requests must be pushed first (RFC 9126)' },
            dpop_bound_access_tokens: { type: 'boolean', description: 'every token request needs a DPoP proof; its tokens are DPoP-bound (RFC 9449)' },
            require_mfa: { type: 'boolean', description: 'its people must sign in with a second factor (ID token acr mfa or phr)' },
            client_id_issued_at: { type: 'integer', readOnly: true, description: 'epoch seconds the client was made (RFC 7591): what a client of the same id deleted before was given (consents, grants, tokens) does not carry over' },
          },
          additionalProperties: true,
        },
        Api: {
          type: 'object',
          required: ['identifier'],
          properties: {
            identifier: { type: 'string', format: 'uri', description: 'the resource indicator (RFC 8707), the aud of its tokens' },
            scopes: { type: 'array', items: { type: 'string' } },
            format: { type: 'string', enum: ['jwt', 'opaque'], default: 'jwt' },
            accessTokenTTL: { type: 'integer', minimum: 1, description: 'seconds, at most ttl.apiAccessTokenMax' },
            privileged: { type: 'boolean', readOnly: true },
            addedAt: { type: 'integer', readOnly: true, description: 'epoch seconds a stored API was added: what a person granted before, at an API of the same identifier removed since, does not carry over' },
            source: { type: 'string', enum: ['builtin', 'config', 'store'], readOnly: true },
          },
        },
        Grant: {
          type: 'object',
          properties: {
            scopes: { type: 'array', items: { type: 'string' }, description: "the API's scopes this client gets with client_credentials" },
            introspect: { type: 'boolean', description: 'the client serves as this API: it may introspect tokens meant for it' },
            default: { type: 'boolean', description: 'client_credentials without resource is for this API' },
          },
          additionalProperties: false,
        },
        NewUser: {
          type: 'object',
          required: ['username', 'password'],
          additionalProperties: false,
          properties: {
            username: { type: 'string' },
            password: { type: 'string', minLength: 8, maxLength: 1024 },
            name: { type: 'string' },
            given_name: { type: 'string' },
            family_name: { type: 'string' },
            email: { type: 'string', format: 'email' },
            email_verified: { type: 'boolean' },
            locale: { type: 'string' },
          },
        },
        SecondFactors: {
          type: 'object',
          description: "a person's second factors: names and dates (epoch seconds), never a secret",
          required: ['sub', 'username', 'passkeys', 'recoveryCodesLeft'],
          properties: {
            sub: { type: 'string' },
            username: { type: 'string' },
            passkeys: {
              type: 'array',
              items: {
                type: 'object',
                required: ['id', 'name', 'createdAt'],
                properties: { id: { type: 'string' }, name: { type: 'string' }, createdAt: { type: 'integer' }, lastUsedAt: { type: 'integer' } },
              },
            },
            totp: { type: 'object', description: 'the authenticator app, when set up', properties: { createdAt: { type: 'integer' }, lastUsedAt: { type: 'integer' } } },
            recoveryCodesLeft: { type: 'integer', minimum: 0 },
          },
        },
        User: {
          type: 'object',
          required: ['sub', 'username', 'disabled'],
          properties: {
            sub: { type: 'string' },
            username: { type: 'string' },
            disabled: { type: 'boolean' },
            name: { type: 'string' },
            email: { type: 'string' },
            email_verified: { type: 'boolean' },
          },
        },
        NewUpstream: {
          type: 'object',
          required: ['id', 'issuer', 'client_id', 'client_secret'],
          additionalProperties: false,
          properties: {
            id: { type: 'string', pattern: '^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$' },
            issuer: { type: 'string', format: 'uri', description: 'https (or http on a loopback host); discovered at <issuer>/.well-known/openid-configuration' },
            client_id: { type: 'string' },
            client_secret: { type: 'string' },
            scope: { type: 'string', default: 'openid email profile' },
            display_name: { type: 'string', description: 'the login page shows "Continue with <display_name>"' },
            link_by_email: { type: 'boolean', default: false, description: 'offer a first sign-in the local account with the same (verified) email, linked once the person signs in to that account' },
            end_session: { type: 'boolean', default: false, description: "signing out at Latchkey also ends the upstream session" },
            domains: { type: 'array', items: { type: 'string' }, description: 'email domains of its people: a login_hint at one of them goes straight to this upstream, and only addresses at them are taken as verified' },
            claims: { type: 'object', description: 'our claim → the upstream claim it is read from', additionalProperties: { type: 'string' } },
          },
        },
        Upstream: {
          type: 'object',
          required: ['id', 'issuer', 'client_id', 'redirect_uri'],
          properties: {
            id: { type: 'string' },
            issuer: { type: 'string', format: 'uri' },
            client_id: { type: 'string' },
            scope: { type: 'string' },
            display_name: { type: 'string' },
            link_by_email: { type: 'boolean' },
            end_session: { type: 'boolean' },
            domains: { type: 'array', items: { type: 'string' } },
            claims: { type: 'object', additionalProperties: { type: 'string' } },
            redirect_uri: { type: 'string', format: 'uri', description: 'register this at the upstream' },
            backchannel_logout_uri: { type: 'string', format: 'uri', description: "register this at the upstream for its back-channel logout" },
          },
        },
        Error: {
          type: 'object',
          required: ['error'],
          properties: { error: { type: 'string' }, error_description: { type: 'string' } },
        },
      },
      responses: {
        Error: json({ $ref: '#/components/schemas/Error' }, 'refused, with an RFC 6749 / RFC 7591 error code'),
        Unauthorized: json({ $ref: '#/components/schemas/Error' }, 'no valid admin access token'),
        Forbidden: json({ $ref: '#/components/schemas/Error' }, 'the token lacks the scope this needs'),
        NotFound: json({ $ref: '#/components/schemas/Error' }, 'no such client, user, API or grant'),
      },
    },
  };
}
