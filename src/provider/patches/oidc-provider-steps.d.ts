/** oidc-provider's endpoint steps (lib/actions/; the package ships no types for them): see jwt-access-tokens.ts and form-bodies.ts. */
declare module 'oidc-provider/lib/actions/*.js' {
  const steps: unknown[];
  export default steps;
}
/** The authorization endpoints' steps, built once per endpoint name (lib/actions/authorization/): see offline-access.ts. */
declare module 'oidc-provider/lib/actions/authorization/index.js' {
  export default function authorizationAction(endpoint: string): unknown[];
}
/** The engine's internals of a provider (lib/helpers/weak_cache.js): see error-descriptions.ts and method-not-allowed.ts. */
declare module 'oidc-provider/lib/helpers/weak_cache.js' {
  export default function instance(provider: unknown): unknown;
}
/** The engine's key store (lib/helpers/keystore.js), which a client's jwks_uri keys extend: see client-jwks-freshness.ts. */
declare module 'oidc-provider/lib/helpers/keystore.js' {
  export default class KeyStore {
    selectForVerify(options: unknown): unknown[];
  }
}
/** The engine's request context (lib/helpers/als.js), which Provider.ctx reads: see store/engine-request.ts. */
declare module 'oidc-provider/lib/helpers/als.js' {
  import type { AsyncLocalStorage } from 'node:async_hooks';
  const requests: AsyncLocalStorage<unknown>;
  export default requests;
}
/** The engine's errors (lib/helpers/errors.js, what its `errors` export is): see store/adapter.ts. */
declare module 'oidc-provider/lib/helpers/errors.js' {
  import type { errors } from 'oidc-provider';
  export const InvalidGrant: typeof errors.InvalidGrant;
  export const InvalidRequestUri: typeof errors.InvalidRequestUri;
}
/** The engine's router (lib/helpers/router.js): see cors-header-scan.ts. */
declare module 'oidc-provider/lib/helpers/router.js' {
  export default class Router {}
}
/** Koa's response prototype (CommonJS): see cors-header-scan.ts. */
declare module 'koa/lib/response.js' {
  const response: object;
  export default response;
}
/** The registration endpoints' steps (RFC 7591 create, RFC 7592 read, update, delete): see client-secret-digests.ts. */
declare module 'oidc-provider/lib/actions/registration.js' {
  export const post: unknown[];
  export const get: unknown[];
  export const put: unknown[];
  export const del: unknown[];
}
/** The device flow's entry of a user code at /device (RFC 8628 §3.3): see user-code-entry.ts. */
declare module 'oidc-provider/lib/actions/code_verification.js' {
  export const get: unknown[];
  export const post: unknown[];
}
/** The engine's DPoP helpers (lib/helpers/validate_dpop.js, challenge.js): see dpop-proofs-once.ts. */
declare module 'oidc-provider/lib/helpers/validate_dpop.js' {
  export function getDpopJwt(provider: unknown, ctx: unknown): { payload: Record<string, unknown> } | undefined;
}
declare module 'oidc-provider/lib/helpers/challenge.js' {
  export const CHALLENGE_OK_WINDOW: number;
}
/** The engine's user codes (lib/helpers/user_codes.js): see unique-user-codes.ts. */
declare module 'oidc-provider/lib/helpers/user_codes.js' {
  export function generate(charset: string, mask: string): string;
  export function normalize(input: string): string;
}
