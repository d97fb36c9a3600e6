/**
 * The admin API as a resource server (RFC 8707): its identifier and scopes. It is privileged: only
 * clients an operator granted a scope here reach it, with client_credentials tokens (src/apis/).
 */
export const ADMIN_SCOPES = ['admin', 'admin:read'];

export function adminResourceServer(issuer: string) {
  return { identifier: `${issuer}/admin`, scopes: [...ADMIN_SCOPES], format: 'opaque' as const, privileged: true };
}
