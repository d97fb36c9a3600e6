/** oidc-provider's endpoint steps (lib/actions/; the package ships no types for them): see jwt-access-tokens.ts and form-bodies.ts. */
declare module 'oidc-provider/lib/actions/*.js' {
  const steps: unknown[];
  export default steps;
}
/** The authorization endpoints' steps, built once per endpoint name (lib/actions/authorization/): see offline-access.ts. */
declare module 'oidc-provider/lib/actions/authorization/index.js' {
  export default function authorizationAction(endpoint: string): unknown[];
}
