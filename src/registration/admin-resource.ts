/**
 * The admin API as a resource server (RFC 8707): its identifier and scopes. A privileged resource
 * server gives a client only the scopes an operator registered for it.
 */
export const ADMIN_SCOPES = ['admin', 'admin:read'];

export function adminResourceServer(issuer: string) {
  return { identifier: `${issuer}/admin`, scopes: [...ADMIN_SCOPES], format: 'opaque' as const, privileged: true };
}
