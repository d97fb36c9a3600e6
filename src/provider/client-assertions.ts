/**
 * Client assertions (private_key_jwt, RFC 7523 §3): oidc-provider requires exp and jti and refuses
 * a jti seen before, until the assertion expires. An assertion valid for a year could be kept and
 * replayed by whoever copies it before its first use, and it fills the replay store for that long.
 * So an assertion must say when it was made (iat) and live at most `maxLifetime` seconds
 * (exp - iat), and it must not claim to be made in the future.
 */
import { errors, type Configuration } from 'oidc-provider';

export function boundedClientAssertions(maxLifetime: number, clockTolerance: number): NonNullable<Configuration['assertJwtClientAuthClaimsAndHeader']> {
  return (_ctx, claims) => {
    const { iat, exp } = claims as { iat?: unknown; exp?: unknown };
    if (typeof iat !== 'number' || !Number.isFinite(iat)) {
      throw new errors.InvalidClientAuth('iat (issued at) must be provided in the client_assertion JWT');
    }
    if (iat > Date.now() / 1000 + clockTolerance) {
      throw new errors.InvalidClientAuth('iat (issued at) of the client_assertion JWT is in the future');
    }
    if (typeof exp === 'number' && exp - iat > maxLifetime) {
      throw new errors.InvalidClientAuth(`the client_assertion JWT must expire at most ${maxLifetime} seconds after it was issued`);
    }
  };
}
