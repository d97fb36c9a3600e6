/** Small token-endpoint calls shared by the key and revocation suites (plain fetch, no client library). */
import assert from 'node:assert/strict';
import { TokenRejected, type ResourceServer } from '../../src/resource-server/index.js';

export const API = 'https://api.example.test';
export const OPAQUE_API = 'https://ledger.example.test';
/**
 * Two APIs and the operator grants the suites rely on: the client `machine` gets their scopes with
 * client_credentials, the client `api` serves as both (it introspects their tokens).
 */
export const RESOURCE_SERVERS = JSON.stringify([
  { identifier: API, scopes: ['read', 'write'], format: 'jwt', grants: [{ client_id: 'machine', scopes: ['read', 'write'] }, { client_id: 'api', introspect: true }] },
  { identifier: OPAQUE_API, scopes: ['read'], format: 'opaque', grants: [{ client_id: 'machine', scopes: ['read'] }, { client_id: 'api', introspect: true }] },
]);

/** The operator's grant that lets a client read the revocation feed (as latchkey/resource-server does). */
export async function grantFeed(server: { apis: { grant(client: string, api: string, grant: { scopes: string[] }): Promise<unknown> }; issuer: string }, clientId: string) {
  await server.apis.grant(clientId, `${server.issuer}/revocations`, { scopes: ['revocations'] });
}

export interface ClientCredentials {
  readonly id: string;
  readonly secret: string;
}

export const basic = ({ id, secret }: ClientCredentials) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** A machine client's static metadata, as CLIENTS entries. */
export function machineClient({ id, secret }: ClientCredentials, extra: Record<string, unknown> = {}) {
  return { client_id: id, client_secret: secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], ...extra };
}

/** The confidential web app the endings passes sign people in to (webClient). */
export const WEB: ClientCredentials = { id: 'web', secret: 'web-client-secret-with-plenty-of-entropy-0123456789' };

/** A web app's static metadata, as CLIENTS entries: confidential, signing people in with a code, and refreshing. */
export function webClient({ id, secret }: ClientCredentials, redirectUris: string[], extra: Record<string, unknown> = {}) {
  return { client_id: id, client_secret: secret, redirect_uris: redirectUris, grant_types: ['authorization_code', 'refresh_token'], ...extra };
}

/** client_credentials for a resource server; returns the access token. */
export async function clientCredentialsToken(baseUrl: string, client: ClientCredentials, resource = API, scope = 'read'): Promise<string> {
  const response = await fetch(`${baseUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client) },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
  });
  const body = (await response.json()) as { access_token?: string; error?: string; error_description?: string };
  assert.equal(response.status, 200, `token endpoint: ${body.error} ${body.error_description}`);
  return body.access_token!;
}

/** Calls introspection or revocation as `client`. */
export async function tokenEndpoint(
  baseUrl: string,
  path: '/token/introspection' | '/token/revocation',
  client: ClientCredentials,
  token: string,
): Promise<{ status: number; body: Record<string, unknown> | string }> {
  const response = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic(client) },
    body: new URLSearchParams({ token }),
  });
  const text = await response.text();
  let body: Record<string, unknown> | string = text;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // empty body (revocation)
  }
  return { status: response.status, body };
}

export async function introspect(baseUrl: string, client: ClientCredentials, token: string): Promise<Record<string, unknown>> {
  const { status, body } = await tokenEndpoint(baseUrl, '/token/introspection', client, token);
  assert.equal(status, 200, JSON.stringify(body));
  return body as Record<string, unknown>;
}

/** A JSON call to the admin API with an operator's bearer token: its status and its JSON body (empty when none). */
export async function adminJson(baseUrl: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, string> }> {
  const response = await fetch(`${baseUrl}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json().catch(() => ({}))) as Record<string, string> };
}

/** Whether latchkey/resource-server `helper` accepts `token` (false: invalid_token; anything else is thrown). */
export const acceptedBy = (helper: ResourceServer, token: string): Promise<boolean> =>
  helper.verify(`Bearer ${token}`).then(
    () => true,
    (error: unknown) => {
      if (error instanceof TokenRejected && error.code === 'invalid_token') return false;
      throw error;
    },
  );
