/** The OpenAPI 3.1 description of the admin API, served at /admin/openapi.json. */

const error = { $ref: '#/components/responses/Error' };
const unauthorized = { $ref: '#/components/responses/Unauthorized' };
const forbidden = { $ref: '#/components/responses/Forbidden' };
const notFound = { $ref: '#/components/responses/NotFound' };
const read = [{ adminToken: ['admin:read'] }];
const write = [{ adminToken: ['admin'] }];
const clientId = { name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'the client_id' };
const username = { name: 'username', in: 'path', required: true, schema: { type: 'string' } };
const json = (schema: object, description = 'OK') => ({ description, content: { 'application/json': { schema } } });

export function openApiDocument(issuer: string) {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Latchkey admin API',
      version: '1',
      description:
        'Clients and users of this Latchkey. Authenticate with an access token for the resource ' +
        `"${issuer}/admin", obtained with the client_credentials grant by a client registered with ` +
        'the "admin" (read and write) or "admin:read" scope.',
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
          summary: "Replace a client's metadata (its secret stays)",
          security: write,
          requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Client' } } } },
          responses: { 200: json({ $ref: '#/components/schemas/Client' }), 400: error, 401: unauthorized, 403: forbidden, 404: notFound },
        },
        delete: { operationId: 'deleteClient', summary: 'Delete a client; its tokens stop working', security: write, responses: { 204: { description: 'deleted' }, 401: unauthorized, 403: forbidden, 404: notFound } },
      },
      '/clients/{id}/secret': {
        parameters: [clientId],
        post: {
          operationId: 'rotateClientSecret',
          summary: 'Generate a new secret; the previous one keeps working for the configured grace period',
          security: write,
          responses: {
            200: json({
              type: 'object',
              required: ['client_id', 'client_secret', 'previous_secret_valid_for'],
              properties: { client_id: { type: 'string' }, client_secret: { type: 'string' }, previous_secret_valid_for: { type: 'integer', description: 'seconds' } },
            }),
            400: error,
            401: unauthorized,
            403: forbidden,
            404: notFound,
          },
        },
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
        post: { operationId: 'disableUser', summary: 'Stop a user from signing in: their sessions end (apps with back-channel logout are told), their grants and tokens are revoked', security: write, responses: { 200: json({ $ref: '#/components/schemas/User' }), 401: unauthorized, 403: forbidden, 404: notFound } },
      },
      '/users/{username}/enable': {
        parameters: [username],
        post: { operationId: 'enableUser', summary: 'Allow a disabled user to sign in again', security: write, responses: { 200: json({ $ref: '#/components/schemas/User' }), 401: unauthorized, 403: forbidden, 404: notFound } },
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
            client_secret: { type: 'string', description: 'only in the response that creates it' },
            client_name: { type: 'string' },
            redirect_uris: { type: 'array', items: { type: 'string', format: 'uri' } },
            post_logout_redirect_uris: { type: 'array', items: { type: 'string', format: 'uri' } },
            grant_types: { type: 'array', items: { type: 'string' } },
            response_types: { type: 'array', items: { type: 'string' } },
            token_endpoint_auth_method: { type: 'string', enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] },
            application_type: { type: 'string', enum: ['web', 'native'] },
            scope: { type: 'string' },
            owner: { type: 'string', description: 'the sub of the developer who registered it on the developer page' },
          },
          additionalProperties: true,
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
        NotFound: json({ $ref: '#/components/schemas/Error' }, 'no such client or user'),
      },
    },
  };
}
