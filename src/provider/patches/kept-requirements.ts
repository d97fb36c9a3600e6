/**
 * RFC 7592 §2.2 lets the server keep values of its own in an update. A client writing its own
 * registration (the engine's client_update route) cannot lift a protection it has, whoever set it:
 * a second factor for its people (`require_mfa`, step-up.ts), sender-constrained access tokens
 * (`dpop_bound_access_tokens`, RFC 9449 §5.2) or pushed authorization requests
 * (`require_pushed_authorization_requests`, RFC 9126 §6). A leaked registration access token must
 * not turn a password into enough for that app's people, nor its tokens back into bearer tokens, nor
 * its requests back into front-channel ones. Only an operator lifts them (CLI, admin API).
 * Pinned by test/e2e/attacks.test.ts ("a client cannot lift …").
 */
import type { KoaContextWithOIDC } from 'oidc-provider';
import { clientMetadata } from '../client-metadata.js';
import { REQUIRE_MFA_PROPERTY } from './step-up.js';

export const KEPT_REQUIREMENTS = [REQUIRE_MFA_PROPERTY, 'dpop_bound_access_tokens', 'require_pushed_authorization_requests'] as const;

/** `metadata`: the registration being validated; the engine keeps what is set on it. */
export function keepRequirements(ctx: unknown, metadata: Record<string, unknown>): void {
  const oidc = (ctx as KoaContextWithOIDC | undefined)?.oidc;
  if (oidc?.route !== 'client_update' || !oidc.client) return;
  const current = clientMetadata(oidc.client);
  for (const requirement of KEPT_REQUIREMENTS) if (current[requirement] === true) metadata[requirement] = true;
}
