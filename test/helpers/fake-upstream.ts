/** What the fake upstream identity providers of the tests have in common. */

/** The discovery document of a fake upstream at `issuer`: code flow, PKCE S256, RS256 ID tokens. */
export function upstreamDiscovery(issuer: string) {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    jwks_uri: `${issuer}/jwks`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    code_challenge_methods_supported: ['S256'],
  };
}
