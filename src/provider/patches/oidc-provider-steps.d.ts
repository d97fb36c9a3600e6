/** oidc-provider's endpoint steps (lib/actions/; the package ships no types for them): see jwt-access-tokens.ts and form-bodies.ts. */
declare module 'oidc-provider/lib/actions/introspection.js' {
  const steps: unknown[];
  export default steps;
}
declare module 'oidc-provider/lib/actions/revocation.js' {
  const steps: unknown[];
  export default steps;
}
declare module 'oidc-provider/lib/actions/token.js' {
  const steps: unknown[];
  export default steps;
}
declare module 'oidc-provider/lib/actions/userinfo.js' {
  const steps: unknown[];
  export default steps;
}
