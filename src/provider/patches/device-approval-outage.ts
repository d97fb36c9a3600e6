/**
 * A device approval at /device that the store fails (Redis paused past its command timeout, or
 * away) answers 503 and leaves the device code as the person can take it on from: approved whole
 * once the store runs what was sent, or pending, never dead (sixth blips pass,
 * test/e2e/blips-6.test.ts).
 *
 * Before, an approval whose device code write timed out (a Redis paused with it in its socket,
 * which runs it once resumed, after the answer) killed the code two ways, each enough alone:
 *
 * - oidc-provider's `deviceUserFlowErrors` (lib/actions/authorization/device.js) catches any
 *   error of the device pages and saves it onto the device code: the outage became `error:
 *   server_error`, written after the approval's own write, so the device's next poll was refused
 *   (`invalid_grant`, the code taken as answered) and the person's retry "already used". Here a
 *   `server_error` is not saved onto the device code at /device (`code_verification`,
 *   `device_resume`): it is no answer of the person's (they allowed or denied nothing), nor of the
 *   device's request; the code stays what it was, pending for the device, and the error page
 *   still shows. A person's denial (`access_denied`) and the engine's other refusals are saved as
 *   before.
 * - The resume renews the browser session's id as it approves (Session#resetIdentifier), and the
 *   engine's Session#save ends the old id before it writes the new one: the approval failed, the
 *   old id's ending was sent (queued behind the held write, run once resumed) and the new id was
 *   never written. The approval, run late, then named a session gone, and the device code bound to
 *   it (expiresWithSession) was no longer found: `invalid_grant`. A renewal now writes the new id
 *   first and ends the old one once it landed (session-renewals.ts, on every route): a save that
 *   fails leaves the old id (and its uid's index) in place, and one written late replaces it under
 *   the same uid. The two writes go to the store together (store/adapter.ts DEFERRING_ROUTES holds device_resume's
 *   writes back, as the authorization resume's): a connection cut after they reached Redis (their
 *   answer lost) left the approval without the session that names its grant, refused at the poll
 *   just as well.
 *
 *
 * And a code taken on at Continue (the engine marks it `inFlight` and refuses it from then on as
 * "already used") whose request the store failed after the mark's write (503) was left so: the
 * person's retry was refused, and the device waited until its code expired (eighth blips pass).
 * The mark now names the browser session that made it (its uid, in place of `true`), and that
 * browser may take the code on again, the code neither approved nor denied: an attempt answered
 * 503, or a sign-in left half-way. Another browser is still refused, so one code is never being
 * approved in two; a mark written by a release before this one (`true`) stays as it was.
 *
 * Relies on: deviceUserFlowErrors saving `error` with errOut's `server_error` for errors it does
 * not know; code_verification refusing a code with a truthy `inFlight` (lib/actions/code_verification.js)
 * and setting it to `true` before its save.
 */
import { Provider } from 'oidc-provider';

const AT_DEVICE = new Set(['code_verification', 'device_resume']);

type Saving = { error?: unknown; jti?: string; inFlight?: unknown; accountId?: unknown };

const oidcOf = () => (Provider.ctx as { oidc?: { route?: string; session?: { uid?: string } } } | undefined)?.oidc;
const route = () => oidcOf()?.route;
/** The uid of the browser session at /device (the engine loads it for the form's xsrf check). */
const sessionUid = () => (route() === 'code_verification' ? oidcOf()?.session?.uid : undefined);

export function deviceApprovalOutages(provider: Provider): void {
  const DeviceCode = provider.DeviceCode as unknown as { prototype: { save(this: Saving, ...args: unknown[]): Promise<unknown> } };
  const saveCode = DeviceCode.prototype.save;
  if (typeof saveCode !== 'function') throw new Error('oidc-provider DeviceCode#save is gone: review src/provider/patches/device-approval-outage.ts');
  DeviceCode.prototype.save = function (this: Saving, ...args: unknown[]) {
    // The engine's catch-all (deviceUserFlowErrors): nothing written, the code is left as it was.
    if (this.error === 'server_error' && AT_DEVICE.has(route() ?? '')) return Promise.resolve(this.jti);
    // Continue's mark names the browser that made it.
    if (this.inFlight === true) this.inFlight = sessionUid() ?? true;
    return saveCode.apply(this, args);
  };
}

/**
 * The other half of the in-flight mark (above): a code this browser took on at Continue and that
 * is neither approved nor denied is found as not in flight, so the engine takes it on again.
 * Installed before user-code-entry.ts's throttle wraps the lookup: a code taken on again is no miss.
 */
export function deviceCodesInFlightPerBrowser(provider: Provider): void {
  const DeviceCode = provider.DeviceCode as unknown as { findByUserCode(this: unknown, ...args: unknown[]): Promise<Saving | undefined> };
  const findByUserCode = DeviceCode.findByUserCode;
  if (typeof findByUserCode !== 'function') throw new Error('oidc-provider DeviceCode.findByUserCode is gone: review src/provider/patches/device-approval-outage.ts');
  DeviceCode.findByUserCode = async function (this: unknown, ...args: unknown[]) {
    const code = await findByUserCode.apply(this, args);
    const uid = sessionUid();
    if (code && uid !== undefined && code.inFlight === uid && code.accountId === undefined && code.error === undefined) code.inFlight = undefined;
    return code;
  };
}
