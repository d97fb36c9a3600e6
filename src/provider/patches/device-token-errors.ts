/**
 * A device is told, at the token endpoint, of how the person's side of its flow ended only by codes
 * that end a device's polling and that a device client knows (RFC 8628 §3.5's access_denied and
 * expired_token, RFC 6749 §5.2's, RFC 8707's invalid_target and RFC 9449's invalid_dpop_proof).
 *
 * oidc-provider saves on the device code whatever error ended the person's side of the flow
 * (lib/actions/authorization/device.js deviceUserFlowErrors) and throws it again, by name, at the
 * device's next poll (grant_common.js throwIfAsyncGrantError), after consuming the code
 * (consumeGrantSource): that answer is the last, every later poll is invalid_grant. Those are the
 * authorization endpoint's errors: a person without the second factor the device asked for
 * (acr_values=mfa, a client's require_mfa) sent the device `unmet_authentication_requirements`, whose
 * IANA entry is for the authorization endpoint; an RFC 8628 client that meets a code it does not know
 * can only guess (fifteenth fresh-eyes pass at the new kinds of clients). And a person who stopped at
 * an upstream that is down ("Stop and tell the device", interactions/upstream.ts) sent it
 * `temporarily_unavailable`, the authorization endpoint's "try again later" (RFC 6749 §4.1.2.1), which
 * our own token endpoint answers (with 503 or 429) to be retried: a device that did was told its
 * code was spent. So no code that asks for another poll passes (authorization_pending, slow_down,
 * temporarily_unavailable, use_dpop_nonce), however it came to be saved (review of the fifteenth
 * passes).
 *
 * What it changes: DeviceCode.find is wrapped: on the token endpoint, a device code holding an error
 * outside those codes is read as `access_denied` (§3.5: "the authorization request was denied"; the
 * person's side ended without approval), its description starting with the saved code, so the
 * device's developer still reads why. Nothing is written (the code's consume() writes only its mark):
 * the /device pages read the saved error (interactions/device.ts) on their own routes. Pinned by
 * test/e2e/new-clients-fifteenth.test.ts and test/e2e/review-fifteenth-device-errors.test.ts.
 */
import { Provider } from 'oidc-provider';

/** What the token endpoint may tell a device of its flow's end, as saved on the code: codes that end its polling. */
const TOKEN_ENDPOINT_CODES = new Set([
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
  'invalid_dpop_proof',
  'access_denied',
  'expired_token',
]);

interface EndedCode {
  error?: string;
  errorDescription?: string;
}

export function deviceTokenErrors(provider: Provider): void {
  const DeviceCode = provider.DeviceCode as unknown as { find(id: string, ...rest: unknown[]): Promise<EndedCode | undefined> };
  const find = DeviceCode.find.bind(DeviceCode);
  DeviceCode.find = async (id: string, ...rest: unknown[]) => {
    const code = await find(id, ...rest);
    if (code && typeof code.error === 'string' && !TOKEN_ENDPOINT_CODES.has(code.error) && Provider.ctx?.oidc?.route === 'token') {
      code.errorDescription = code.errorDescription ? `${code.error}: ${code.errorDescription}` : code.error;
      code.error = 'access_denied';
    }
    return code;
  };
}
